"""autograde.py against the real broker: a plain, correct submission in the assignment's style
(tests/submissions/plain) and this project's own files/ score 100/100; each classic mistake
(tests/submissions/mutants.py) fails the check that names it, with a reason a student can act
on, graded on that check and what it needs (--only); --batch grades a class, stops a
submission that hangs and leaves nothing of it running. The registry's plan and the source
readers: tests/unit/test_grader_*.py."""

import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT
from submissions import mutants

pytestmark = pytest.mark.broker

AUTOGRADE = ROOT / "autograde.py"
PLAIN = mutants.PLAIN / "files"
GRADE_TIMEOUT = 600  # a full run takes about 2 minutes here; autograde has its own deadlines
ALL_CHECKS = list(range(1, 13))


def grade(broker, tmp_path, *args):
    """Run autograde.py; returns (exit code, {check number: result}, output)."""
    report = tmp_path / "results.json"
    env = dict(os.environ, KAFKA_BOOTSTRAP=broker)
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--json", str(report), *args],
                          capture_output=True, text=True, env=env, timeout=GRADE_TIMEOUT)
    output = done.stdout + done.stderr
    assert report.exists(), output
    results = json.loads(report.read_text())
    # The course grader's shape, with each check's details beside it.
    assert set(results) >= {"score", "full_score", "tests"}, results
    checks = {r["number"]: r for r in results["checks"]}
    assert results["score"] == sum(r["points"] for r in checks.values())
    for result in checks.values():
        outcome = results["tests"][result["check"]]
        if result["status"] == "PASS":
            assert outcome == f"PASS ({result['points']}/{result['max_points']})"
        else:
            assert result["reason"] in outcome
    return done.returncode, checks, output


def require_full_marks(code, results, output):
    assert sorted(results) == ALL_CHECKS, output
    for number, result in results.items():
        if number == 12:  # the birthday part, a TODO in the draft: said, never graded
            assert result["status"] == "SKIPPED" and result["max_points"] == 0, output
            continue
        assert result["passed"] is True, f"check {number} failed:\n{output}"
        assert result["points"] == result["max_points"] > 0
    assert code == 0, output
    assert "score: 100/100" in output


def test_a_plain_correct_submission_scores_100(broker, tmp_path):
    code, results, output = grade(broker, tmp_path, "--files", str(PLAIN))
    require_full_marks(code, results, output)
    # Its weather.py ignores the pace: graded with the pristine one, and the report says so.
    assert "graded with the grader's pristine weather.py" in output
    # It writes to /files: natively that is the grading copy, never this machine's /files.
    assert "write to /files" in output
    # A student's submission runs with the course image's packages, graded as the draft it is.
    assert "environment: the course image's packages" in output
    assert "version: the draft version of P7 (told apart by" in output


def test_this_projects_files_score_100(broker, tmp_path):
    code, results, output = grade(broker, tmp_path)
    require_full_marks(code, results, output)
    assert "pristine" not in output  # files/weather.py honours the grader's pace
    # Written for this project's pins, not the course image's.
    assert "environment: this project's packages" in output


@pytest.mark.parametrize("name", sorted(mutants.MUTANTS))
def test_each_classic_mistake_fails_its_check(broker, tmp_path, name):
    mutant = mutants.MUTANTS[name]
    files = mutants.make(name, tmp_path / name)

    code, results, output = grade(broker, tmp_path, "--files", str(files),
                                  "--only", mutant.only)

    assert code == 1, output
    failed = results[mutant.check]
    assert failed["status"] == "FAIL" and failed["points"] == 0, output
    for words in mutant.reason_words:
        assert words in failed["reason"], f"{words!r} not in the reason:\n{output}"
