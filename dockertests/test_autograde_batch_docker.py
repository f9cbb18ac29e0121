"""autograde.py --batch --image (the course's environment) over the final version's corpus: it
writes its table, and a SIGTERM in the middle leaves no container, image of the run, or
grader process behind."""

import csv
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from conftest import ROOT, run
from tools.harness import wait_until

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from submissions import final_variants  # noqa: E402

AUTOGRADE = ROOT / "autograde.py"
QUICK_CHECKS = "1,2,6"      # no producer: seconds a submission in a container
TIMEOUT = 900               # the first --image builds the course's image


def grader_containers():
    found = run("docker", "ps", "-aq", "--filter", "name=p7-autograde-").stdout.split()
    return set(found)


def make_class(tmp_path, count):
    klass = tmp_path / "class"
    for index in range(count):
        shutil.copytree(final_variants.FINAL, klass / f"student{index}",
                        ignore=shutil.ignore_patterns("__pycache__"))
    return klass


def test_batch_image_writes_its_table(tmp_path):
    klass = make_class(tmp_path, 2)
    before = grader_containers()
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--batch", str(klass), "--image",
                           "--only", QUICK_CHECKS], capture_output=True, text=True,
                          timeout=TIMEOUT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "[1/2] student0 ... 20/20" in output and "[2/2] student1 ... 20/20" in output, output
    with open(klass / "autograde-results" / "results.csv") as f:
        rows = {row["name"]: row for row in csv.DictReader(f)}
    assert [rows[name]["score"] for name in sorted(rows)] == ["20", "20"], rows
    assert grader_containers() == before


def test_sigterm_to_a_batch_image_leaves_no_container(tmp_path):
    klass = make_class(tmp_path, 3)
    before = grader_containers()
    log = tmp_path / "batch.out"
    with open(log, "w") as out:
        batch = subprocess.Popen([sys.executable, str(AUTOGRADE), "--batch", str(klass),
                                  "--image", "--only", QUICK_CHECKS], stdout=out,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True)
    try:
        # The second submission's container is up: its grading has begun.
        wait_until(lambda: ("[2/3] student1" in log.read_text()
                            and grader_containers() - before) or batch.poll() is not None,
                   TIMEOUT, "the batch to start grading the second submission in a container")
        assert batch.poll() is None, log.read_text()
        batch.send_signal(signal.SIGTERM)
        code = batch.wait(timeout=180)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
            batch.wait()
    output = log.read_text()
    assert code == 143, output
    assert "[1/3] student0 ... 20/20" in output, output
    assert "not graded: student1, student2" in output, output
    assert grader_containers() == before, "a grading container survived the SIGTERM"
    leftover = subprocess.run(["pgrep", "-f", str(klass)], capture_output=True, text=True)
    assert not leftover.stdout.strip(), f"processes of the batch survived: {leftover.stdout}"
