"""files/report_pb2.py is what protoc makes of files/report.proto today."""

import filecmp
import subprocess
import sys

from tools.harness import FILES


def test_committed_report_pb2_matches_report_proto(tmp_path):
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{FILES}",
                    f"--python_out={tmp_path}", str(FILES / "report.proto")], check=True)
    assert filecmp.cmp(tmp_path / "report_pb2.py", FILES / "report_pb2.py", shallow=False), \
        "files/report_pb2.py is stale: regenerate it from report.proto"


