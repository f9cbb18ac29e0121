"""tools/scripts/run_pipeline.py (`make run`) without a broker: a program that dies ends the
pipeline with its last words. The whole pipeline on the real broker: tests/test_plot.py."""

import os
import subprocess
import sys

from tools.harness import ROOT, free_port


def test_run_pipeline_reports_a_program_that_dies(tmp_path):
    # No broker on this port: the producer gives up with an error, and the pipeline with it.
    env = dict(os.environ, KAFKA_BOOTSTRAP=f"localhost:{free_port()}")
    args = ["--delay", 0.002, "--duration", 60, "--dir", tmp_path, "--log-dir", tmp_path / "logs",
            "--dashboard-port", free_port()]
    result = subprocess.run([sys.executable, "-m", "tools.scripts.run_pipeline", *map(str, args)],
                            capture_output=True, text=True, env=env, cwd=ROOT, timeout=90)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "producer.py exited unexpectedly" in result.stderr
    assert "cannot reach the Kafka broker" in result.stderr  # its last stderr lines
