"""autograde.py against the real broker: a plain, correct submission in the assignment's style
(tests/submissions/plain) and this project's own files/ score 100/100; each classic mistake
(tests/submissions/mutants.py) fails the check that names it, with a reason a student can act
on, graded on that check and what it needs (--only). The final version's corpus:
tests/test_autograde_final.py; --batch: tests/test_autograde_batch.py; the registry's plan and
the source readers: tests/unit/test_grader_*.py."""

import pytest

from helpers import autograde
from submissions import mutants

pytestmark = pytest.mark.broker

PLAIN = mutants.PLAIN / "files"
ALL_CHECKS = list(range(1, 13))


def grade(broker, tmp_path, *args):
    """(exit code, {check number: result}, output) of autograde.py."""
    code, _, checks, output = autograde(broker, tmp_path, *args)
    return code, checks, output


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
