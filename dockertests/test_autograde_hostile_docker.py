"""autograde.py --image on a hostile submission (issue 31, the Docker part): the grader's own
scripts over the submission's code (the weather.py pace probe, check 2's protoc and field
listings, the report_pb2 field numbers) run in the submission's container, never on this
machine, and the submission's programs run there as nobody, not as the container's root.

The submission is the final-version corpus submission whose weather.py and report_pb2.py, at
import, write a canary file at a host path, append a line to the grader's own
grader/CONTRACT.md (its absolute host path), and note `argv[0] uid` in /files/uids.txt."""

import json
import shutil
import sys
import uuid
from pathlib import Path

from conftest import ROOT, run

# The grader's corpus lives with the tests (tests/submissions); appended, so that this folder's
# conftest stays the one imported.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from submissions import final_variants  # noqa: E402

CONTRACT = ROOT / "grader" / "CONTRACT.md"
NOBODY = 65534

HOSTILE = '''\
# At import: reach the host if this runs there.
import os as _os, sys as _sys
for _path, _text in (({canary!r}, "the submission's code ran here\\n"),
                     ({contract!r}, "\\nA hostile submission was here.\\n")):
    try:
        with open(_path, "a") as _out:
            _out.write(_text)
    except OSError:
        pass
try:
    with open("/files/uids.txt", "a") as _out:
        _out.write(f"{{_sys.argv[0]}} {{_os.getuid()}}\\n")
except OSError:
    pass
'''


def hostile_submission(tmp_path, canary):
    """A copy of the final corpus submission with HOSTILE at the top of weather.py and
    report_pb2.py; returns its files/."""
    shutil.copytree(final_variants.FINAL, tmp_path / "hostile",
                    ignore=shutil.ignore_patterns("__pycache__"))
    files = tmp_path / "hostile" / "files"
    code = HOSTILE.format(canary=str(canary), contract=str(CONTRACT))
    for name in ("weather.py", "report_pb2.py"):
        path = files / name
        path.write_text(code + path.read_text())
    return files


def test_autograde_image_runs_no_submission_code_on_the_host(image, tmp_path):
    canary = Path(f"/tmp/p7-canary-{uuid.uuid4().hex}")
    contract = CONTRACT.read_bytes()
    files = hostile_submission(tmp_path, canary)
    result_file = tmp_path / "grade.json"
    graded = run(sys.executable, ROOT / "autograde.py", "--image", image, "--version", "final",
                 "--only", "1,2,3", "--keep", "--files", files, "--json", result_file)
    kept = [line.split("kept the grading folder ", 1)[1].strip()
            for line in graded.stdout.splitlines() if "kept the grading folder " in line]
    try:
        output = graded.stdout[-3000:] + graded.stderr[-2000:]
        assert not canary.exists(), f"the submission's code ran on the host: {canary}"
        assert CONTRACT.read_bytes() == contract, "the submission's code wrote grader/CONTRACT.md"
        # The verdict: written, and the hostile lines change nothing that is graded.
        results = json.loads(result_file.read_text())["checks"]
        assert [(r["number"], r["status"]) for r in results] == [
            (1, "PASS"), (2, "PASS"), (3, "PASS")], output
        # The code did run, in the container: the probe (python3 -c) and producer.py (which
        # imports report_pb2), each as nobody.
        assert kept, output
        uids = [line.rsplit(" ", 1) for line in
                (Path(kept[0]) / "files" / "uids.txt").read_text().splitlines()]
        assert any(who == "-c" for who, _ in uids), uids
        assert any(who == "/files/producer.py" for who, _ in uids), uids
        assert all(uid == str(NOBODY) for _, uid in uids), uids
    finally:
        canary.unlink(missing_ok=True)
        if CONTRACT.read_bytes() != contract:
            CONTRACT.write_bytes(contract)
        for folder in kept:
            shutil.rmtree(folder, ignore_errors=True)
