"""autograde.py against the real broker: it passes the reference programs, and it fails consumers
that were broken on purpose (a grader that cannot fail proves nothing). One full run grades the
reference programs; a broken consumer is graded only on the checks its break is about, plus
those that must still pass (--only). The registry's plan: tests/unit/test_grader_registry.py."""

import json
import os
import shutil
import subprocess
import sys

from helpers import ROOT, FILES

AUTOGRADE = ROOT / "autograde.py"
GRADE_TIMEOUT = 300  # one run takes well under a minute here; autograde has its own deadlines


def grade(broker, tmp_path, *args):
    """Run autograde.py; returns (exit code, {check number: result}, output)."""
    report = tmp_path / "results.json"
    env = dict(os.environ, KAFKA_BOOTSTRAP=broker)
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--json", str(report), *args],
                          capture_output=True, text=True, env=env, timeout=GRADE_TIMEOUT)
    output = done.stdout + done.stderr
    assert report.exists(), output
    results = json.loads(report.read_text())
    for result in results:
        assert {"check", "points", "max_points", "passed", "reason"} <= set(result), result
    return done.returncode, {r["number"]: r for r in results}, output


def test_reference_programs_pass(broker, tmp_path):
    code, results, output = grade(broker, tmp_path)
    assert sorted(results) == list(range(1, 12)), output
    for number in range(1, 12):
        assert results[number]["passed"] is True, f"check {number} failed:\n{output}"
        assert results[number]["points"] == results[number]["max_points"] > 0
    assert code == 0, output
    assert "score: 100/100" in output


def broken_submission(tmp_path, original, replacement):
    """A copy of files/ whose consumer.py has `original` (found exactly once) replaced."""
    submission = tmp_path / "submission" / "files"
    shutil.copytree(FILES, submission,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "partition-*.json*",
                                                  "birthday.json*", "yearly_trends.png*"))
    consumer = submission / "consumer.py"
    source = consumer.read_text()
    assert source.count(original) == 1, f"{original!r} moved in consumer.py: update this " \
                                        "test's substitution"
    consumer.write_text(source.replace(original, replacement))
    return submission


def test_grader_fails_a_consumer_that_counts_duplicates(broker, tmp_path):
    submission = broken_submission(tmp_path, "if date <= dates.newest:",
                                   "if False:  # broken by the test")

    # 7 is what the break is about; 2, 3, 5 and 6 run the same programs and must still pass.
    code, results, output = grade(broker, tmp_path, "--files", str(submission),
                                  "--only", "2,3,5,6,7")

    assert code == 1, output
    assert sorted(results) == [2, 3, 5, 6, 7], output
    exact = results[7]
    assert exact["passed"] is False and exact["points"] == 0, output
    assert "count" in exact["reason"] or "sum" in exact["reason"], output
    # The failure is the consumer's, not the grader's: what the break cannot touch still passes.
    for number in (2, 3, 5, 6):
        assert results[number]["passed"] is True, f"check {number} failed:\n{output}"


def test_grader_fails_a_consumer_that_writes_in_place(broker, tmp_path):
    # The checkpoint written straight into partition-N.json: a reader can find it half written
    # (check 7 may fail too: its oracle reads the files while that consumer writes them).
    submission = broken_submission(tmp_path, "os.replace(tmp_path, path)",
                                   'open(path, "w").write(open(tmp_path).read())  # broken')

    code, results, output = grade(broker, tmp_path, "--files", str(submission), "--only", "9")

    assert code == 1, output
    assert sorted(results) == [7, 9], output   # 9 judges the reader that 7 runs
    atomic = results[9]
    assert atomic["passed"] is False and atomic["points"] == 0, output
    assert "did not parse" in atomic["reason"], output


# Whether or not this machine runs a Docker engine, the grader must find none.
NO_ENGINE = dict(os.environ, DOCKER_HOST="unix:///nonexistent/docker.sock")


def test_a_plain_python3_hands_over_to_the_project_venv():
    # -S leaves site-packages out: a python3 without the project's packages, as on a fresh
    # machine after `make venv`. Only the .venv's python gets as far as looking for Docker.
    done = subprocess.run([sys.executable, "-S", str(AUTOGRADE), "--docker"],
                          capture_output=True, text=True, timeout=120, env=NO_ENGINE)
    assert done.returncode == 2
    assert "make venv" not in done.stderr and "no Docker engine" in done.stderr, done.stderr


def test_without_kafka_python_says_how_to_get_it(tmp_path):
    # A copy without a .venv beside it, run by a python3 that lacks the packages (-S).
    shutil.copy(AUTOGRADE, tmp_path / "autograde.py")
    for package in ("tools", "grader"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-S", str(tmp_path / "autograde.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "make venv" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_docker_mode_without_an_engine_says_so():
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--docker"], capture_output=True,
                          text=True, timeout=120, env=NO_ENGINE)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "Docker" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_only_an_unknown_check_says_so():
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--only", "7,12"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "no check 12" in done.stderr and len(done.stderr.strip().splitlines()) == 1

