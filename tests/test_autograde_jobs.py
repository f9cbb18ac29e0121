"""autograde.py --batch --native --jobs 2 grades a class as one at a time does: the same score
for every submission, correct or not, while two are graded at once on brokers and sandbox slots
of their own; and it leaves none of its brokers running. Chaos tier: the batch starts the
second lane's broker (and the first's, on a free port of this test's own)."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from submissions import final_variants
from tools import harness
from tools.harness import ROOT

pytestmark = pytest.mark.chaos

AUTOGRADE = ROOT / "autograde.py"
# Check 7 runs the producer and both consumers to exact statistics: the grading that depends
# most on the machine's pace.
CHECKS = "1,7"
CORRECT = ["relative_paths", "join_files_path", "rounds_in_threads"]
WRONG = ["counts_duplicates", "degrees_truncated"]
GRADE_TIMEOUT = 1200


def make_class(folder):
    shutil.copytree(final_variants.FINAL, folder / "final",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for name in CORRECT + WRONG:
        assert final_variants.VARIANTS[name].correct == (name in CORRECT), name
        final_variants.make(name, folder / name)
    return folder


def grade(klass, jobs, port):
    env = dict(os.environ, KAFKA_BOOTSTRAP=f"localhost:{port}")
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--batch", str(klass), "--native",
                           "--jobs", str(jobs), "--only", CHECKS], capture_output=True,
                          text=True, env=env, timeout=GRADE_TIMEOUT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    with open(klass / "autograde-results" / "results.csv") as f:
        return {row["name"]: row for row in csv.DictReader(f)}, output


def brokers_used(klass):
    """The ports of the brokers the children graded with, as their logs name them."""
    logs = (klass / "autograde-results").glob("*.log")
    return {int(port) for log in logs
            for port in re.findall(r"broker: the launcher's broker on localhost:(\d+)",
                                   log.read_text(errors="replace"))}


def test_two_at_a_time_gives_the_scores_of_one_at_a_time(tmp_path):
    klass = make_class(tmp_path / "class")
    port = harness.free_port_run(2)
    alone, alone_output = grade(klass, 1, port)
    together, together_output = grade(klass, 2, port)
    lanes = brokers_used(klass)
    assert "2 at a time" in together_output, together_output[-2000:]
    assert together == alone, f"--jobs 1:\n{alone_output[-3000:]}\n--jobs 2:\n" \
                              f"{together_output[-3000:]}"
    full = str(json.loads((klass / "autograde-results" / "final.json").read_text())["full_score"])
    for name in ["final"] + CORRECT:
        assert alone[name]["score"] == full != "0", (name, alone[name])
    for name in WRONG:
        assert int(alone[name]["score"]) < int(full), (name, alone[name])
    assert port in lanes and len(lanes) == 2, (lanes, together_output[-2000:])
    still = [lane for lane in lanes if harness.launcher("status", "--port", lane).returncode == 0]
    assert not still, f"the brokers on {still} that the batch started are still running"
