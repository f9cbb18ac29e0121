"""autograde.py on submissions of the course's FINAL version (shared/assignment-final.md), against
the real broker: a plain, correct one (tests/submissions/final) scores 100/100 with
`--version final` and is told apart as the final version without it; each variant of
tests/submissions/final_variants.py gets its verdicts check by check (the correct ones pass
every check they are graded on, the mutants fail the check that names their mistake, with words
a student can act on), graded on the checks that prove it (--only)."""

import pytest

from helpers import autograde
from submissions import final_variants

pytestmark = pytest.mark.broker

FINAL = final_variants.FINAL / "files"
FINAL_CHECKS = list(range(1, 12))   # the final version has no check 12 (no birthday part)


def grade(broker, tmp_path, *args):
    """(exit code, the JSON results, {check number: result}, output) of autograde.py."""
    return autograde(broker, tmp_path, *args)


def test_a_plain_final_submission_scores_100(broker, tmp_path):
    code, results, checks, output = grade(broker, tmp_path, "--files", str(FINAL),
                                          "--version", "final")
    assert results["version"] == "final", output
    assert sorted(checks) == FINAL_CHECKS, output
    for number, result in checks.items():
        assert result["status"] == "PASS", f"check {number} did not pass:\n{output}"
        assert result["points"] == result["max_points"] > 0
    assert results["score"] == results["full_score"] == 100, output
    assert code == 0, output
    assert "score: 100/100" in output
    # Its programs ran with the course image's packages (kafka-python 2.0.2 and pandas), as
    # they would in the course's container, not with this project's newer pins.
    assert results["environment"] == "course", output
    # Its weather.py ignores the grader's pace: graded with the pristine one, and it says so.
    assert "graded with the grader's pristine weather.py" in output


def test_a_final_submission_is_told_apart_without_version(broker, tmp_path):
    # Checks 1 and 2 need no broker: the version is decided from the folder before any runs.
    code, results, checks, output = grade(broker, tmp_path, "--files", str(FINAL),
                                          "--only", "1,2")
    assert results["version"] == "final", output
    assert "version: the final version of P7 (told apart by" in output
    # Check 1 of the final version asks for month.svg, not the draft's partition files.
    assert "month.svg" in checks[1]["check"], output
    assert checks[1]["status"] == checks[2]["status"] == "PASS", output
    assert code == 0, output


@pytest.mark.parametrize("name", sorted(final_variants.VARIANTS))
def test_each_final_variant_gets_its_verdicts(broker, tmp_path, name):
    variant = final_variants.VARIANTS[name]
    files = final_variants.make(name, tmp_path / name)

    code, results, checks, output = grade(broker, tmp_path, "--files", str(files),
                                          "--version", "final", "--only", variant.only)

    assert results["version"] == "final", output
    for number, verdict in sorted(variant.expect.items()):
        assert number in checks, f"check {number} was not graded:\n{output}"
        result = checks[number]
        if verdict == "PASS":
            assert result["status"] == "PASS", f"check {number} did not pass:\n{output}"
            assert result["points"] == result["max_points"] > 0
        else:
            status, words = verdict
            assert status == "FAIL"
            assert result["status"] == "FAIL" and result["points"] == 0, \
                f"check {number} did not fail:\n{output}"
            for word in words:
                assert word in result["reason"], \
                    f"{word!r} not in check {number}'s reason:\n{output}"
    if variant.correct:
        # Another right way to do the assignment: whatever else --only pulled in passes too
        # (an ENVIRONMENT verdict would mean it ran without the course's packages).
        assert all(r["status"] == "PASS" for r in checks.values()), output
        assert code == 0, output
    else:
        assert code == 1, output
