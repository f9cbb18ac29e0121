"""autograde.py where no broker is needed: its command line (bad arguments, the Docker modes
without an engine, a python3 without the project's packages) answers in one sentence, and each
classic mistake of tests/submissions/mutants.py still changes the plain submission. Grading
against the session broker: tests/test_autograde.py."""

import os
import shutil
import subprocess
import sys

import pytest

from submissions import mutants
from tools.harness import ROOT

AUTOGRADE = ROOT / "autograde.py"
PLAIN = mutants.PLAIN / "files"


def test_the_mutants_change_what_they_say(tmp_path):
    # Each mutant's changes still apply to plain/ (make() asserts it) and change it.
    for name in mutants.MUTANTS:
        files = mutants.make(name, tmp_path / name)
        changed = [file for file, _, _ in mutants.MUTANTS[name].changes]
        assert any((files / f).read_text() != (PLAIN / f).read_text() for f in changed), name


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


@pytest.mark.parametrize("args", [["--docker"], ["--image", "p7"]])
def test_docker_modes_without_an_engine_say_so(args):
    done = subprocess.run([sys.executable, str(AUTOGRADE), *args], capture_output=True,
                          text=True, timeout=120, env=NO_ENGINE)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "Docker" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args, words", [
    (["--only", "7,13"], "no check 13"),
    (["--batch", "/nonexistent/class", "--native"], "is not a folder"),
    (["--timeout", "10"], "--timeout goes with --batch"),
    (["--jobs", "2"], "--jobs goes with --batch"),
    (["--native", "--image"], "--native grades without Docker"),
])
def test_bad_arguments_are_one_sentence(args, words):
    done = subprocess.run([sys.executable, str(AUTOGRADE), *args],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_batch_without_an_engine_asks_for_native(tmp_path):
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--batch", str(tmp_path)],
                          capture_output=True, text=True, timeout=120, env=NO_ENGINE)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "--native" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_jobs_must_be_a_whole_number_of_at_least_one():
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--batch", "/tmp", "--native",
                           "--jobs", "0"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--jobs: '0' is not a whole number of at least 1" in done.stderr, done.stderr
