"""grader/course_env.py without building anything: the course lock says what the course image
had, environment_problem tells an environment's fault from a student's, and the venv's marker,
build lock and fallbacks behave, on fake venv folders (no pip runs here; tests/test_course_env.py
builds the real venv)."""

import re
import subprocess
import sys
import threading

import pytest

from grader import course_env
from grader.course_env import (COURSE, CourseEnvError, CourseFiles, environment_problem,
                               read_bounds, read_pins)
from tools import harness
from tools.harness import ROOT

FINAL_ASSIGNMENT = ROOT.parent / "shared" / "assignment-final.md"
COURSE_PINS = {"pandas": "2.1.1", "matplotlib": "3.8.0", "kafka-python": "2.0.2",
               "grpcio": "1.58.0", "grpcio-tools": "1.58.0"}


def major(version):
    return int(version.split(".")[0])


# ---------------------------------------------------------------- the lock

def test_the_requirements_pin_the_course_images_five_packages():
    assert read_pins(COURSE.requirements) == COURSE_PINS


def test_the_lock_pins_each_course_package_at_its_course_version():
    locked = read_pins(COURSE.lock)
    wrong = {name: locked.get(name) for name, version in read_pins(COURSE.requirements).items()
             if locked.get(name) != version}
    assert not wrong, f"grader/course.lock disagrees with the course pins: {wrong}"


def test_the_pins_are_those_of_the_published_final_assignment():
    if not FINAL_ASSIGNMENT.exists():
        pytest.skip(f"{FINAL_ASSIGNMENT} is not there to compare the course pins with")
    header = FINAL_ASSIGNMENT.read_text().split("\n---\n", 1)[0]
    match = re.search(r"The course image of this version pins: `([^`]+)`", header)
    assert match, f"{FINAL_ASSIGNMENT.name}'s header no longer lists the image's pins"
    published = dict(pin.split("==") for pin in match[1].split())
    assert read_pins(COURSE.requirements) == {course_env.canonical(name): version
                                              for name, version in published.items()}


def test_the_lock_keeps_numpy_below_2_for_pandas_2_1():
    assert read_bounds(COURSE.requirements)["numpy"] == "<2"
    assert major(read_pins(COURSE.lock)["numpy"]) < 2


def test_the_lock_keeps_setuptools_with_pkg_resources_for_grpc_tools_protoc():
    assert read_bounds(COURSE.requirements)["setuptools"] == "<81"
    assert major(read_pins(COURSE.lock)["setuptools"]) < 82  # 82 removed pkg_resources


def test_the_lock_keeps_protobuf_below_5_for_grpcio_tools_1_58():
    assert major(read_pins(COURSE.lock)["protobuf"]) < 5


def test_the_lock_pins_everything_underneath():
    locked = read_pins(COURSE.lock)
    for name in ("numpy", "protobuf", "setuptools", "python-dateutil", "pillow"):
        assert name in locked, f"grader/course.lock does not pin {name}"
    assert "make course-lock" in COURSE.lock.read_text()
    assert re.search(r"^course-lock:", (ROOT / "Makefile").read_text(), re.M)


def test_the_dockerfile_takes_the_build_arguments_course_image_passes():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "ARG PYTHON_REQUIREMENTS=requirements.txt\n" in dockerfile
    assert "ARG PYTHON_CONSTRAINTS=requirements.lock\n" in dockerfile


def test_git_and_docker_ignore_the_course_venv():
    assert ".venv-course/" in (ROOT / ".gitignore").read_text().splitlines()
    assert ".venv-course" in (ROOT / ".dockerignore").read_text().splitlines()


# ---------------------------------------------------------------- environment_problem

MISSING_PANDAS = """\
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/plot.py", line 2, in <module>
    import pandas as pd
ModuleNotFoundError: No module named 'pandas'
"""

MISSING_PROTOBUF = """\
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/consumer.py", line 4, in <module>
    import report_pb2
  File "/tmp/p7-grade-x1/report_pb2.py", line 5, in <module>
    from google.protobuf import descriptor as _descriptor
ModuleNotFoundError: No module named 'google'
"""

MISSING_GRPC_TOOLS = ("/work/main/.venv/bin/python: Error while finding module specification "
                      "for 'grpc_tools.protoc' (ModuleNotFoundError: No module named "
                      "'grpc_tools')\n")

KAFKA_BROKEN_ON_ITS_PYTHON = """\
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/producer.py", line 3, in <module>
    from kafka import KafkaAdminClient, KafkaProducer
  File "/usr/lib/python3.12/site-packages/kafka/__init__.py", line 23, in <module>
    from kafka.consumer import KafkaConsumer
  File "/usr/lib/python3.12/site-packages/kafka/record/legacy_records.py", line 50, in <module>
    from kafka.codec import (
  File "/usr/lib/python3.12/site-packages/kafka/codec.py", line 9, in <module>
    from kafka.vendor.six.moves import range
ModuleNotFoundError: No module named 'kafka.vendor.six.moves'
"""

PANDAS_WITHOUT_ITS_NUMPY = """\
Process Process-1:
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/plot.py", line 1, in <module>
    import pandas
  File "/usr/lib/python3/dist-packages/pandas/__init__.py", line 16, in <module>
    raise ImportError(
ImportError: Unable to import required dependencies:
numpy: No module named 'numpy'
"""

MISSING_REQUESTS = """\
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/producer.py", line 1, in <module>
    import requests
ModuleNotFoundError: No module named 'requests'
"""

MISSPELT_NAME = """\
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/producer.py", line 1, in <module>
    from kafka import KafkaProducr
ImportError: cannot import name 'KafkaProducr' from 'kafka' \
(/work/main/.venv-course/lib/python3.11/site-packages/kafka/__init__.py)
"""

MADE_UP_SUBMODULE = """\
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/consumer.py", line 2, in <module>
    import kafka.streams
ModuleNotFoundError: No module named 'kafka.streams'
"""

NO_TKINTER = """\
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/plot.py", line 3, in <module>
    plt.figure()
  File "/work/main/.venv-course/lib/python3.11/site-packages/matplotlib/backends/_backend_tk.py", \
line 1, in <module>
    import tkinter as tk
ModuleNotFoundError: No module named '_tkinter'
"""

A_STUDENTS_OWN_BUG = """\
Traceback (most recent call last):
  File "/tmp/p7-grade-x1/consumer.py", line 40, in <module>
    stats[month]["count"] += 1
KeyError: 'January'
"""


@pytest.mark.parametrize("stderr, module, version", [
    (MISSING_PANDAS, "pandas", "pandas 2.1.1"),
    (MISSING_PROTOBUF, "google.protobuf", "protobuf "),
    (MISSING_GRPC_TOOLS, "grpc_tools", "grpcio-tools 1.58.0"),
    (KAFKA_BROKEN_ON_ITS_PYTHON, "kafka", "kafka-python 2.0.2"),
    (PANDAS_WITHOUT_ITS_NUMPY, "pandas", "pandas 2.1.1"),
], ids=["pandas missing", "google namespace missing", "python -m grpc_tools.protoc",
        "kafka broken inside", "pandas broken inside"])
def test_a_course_module_that_fails_to_import_is_the_environments(stderr, module, version):
    verdict = environment_problem(stderr)
    assert verdict is not None
    assert verdict.startswith("environment: ")
    assert f"environment: {module} " in verdict
    assert f"the course image has it ({version}" in verdict
    assert "\n" not in verdict


@pytest.mark.parametrize("stderr", [MISSING_REQUESTS, MISSPELT_NAME, MADE_UP_SUBMODULE,
                                    NO_TKINTER, A_STUDENTS_OWN_BUG, ""],
                         ids=["requests", "misspelt name", "made-up submodule", "tkinter",
                              "KeyError", "nothing"])
def test_what_the_course_image_lacked_too_is_the_students(stderr):
    assert environment_problem(stderr) is None


def test_the_first_environment_problem_among_several_tracebacks_is_named():
    assert "environment: pandas " in environment_problem(MISSING_REQUESTS + MISSING_PANDAS)


def test_the_module_names_come_from_the_lock(tmp_path):
    lock = tmp_path / "course.lock"
    lock.write_text("requests==2.31.0\n    # via -r requirements.txt\n")
    assert "environment: requests " in environment_problem(MISSING_REQUESTS, lock=lock)
    assert environment_problem(MISSING_PANDAS, lock=lock) is None


def test_every_locked_package_has_import_names():
    modules = course_env.course_modules()
    for expected in ("pandas", "numpy", "matplotlib", "kafka", "grpc", "grpc_tools",
                     "google.protobuf", "dateutil", "PIL"):
        assert expected in modules
    assert set(read_pins(COURSE.lock)) == {distribution for distribution, _ in modules.values()}


# ---------------------------------------------------------------- the venv's marker and build

@pytest.fixture
def files(tmp_path):
    """A course environment of text files and an empty venv folder: nothing is installed."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("six==1.16.0\n")
    lock = tmp_path / "course.lock"
    lock.write_text("six==1.16.0\n    # via -r requirements.txt\n")
    return CourseFiles(requirements=requirements, lock=lock, venv=tmp_path / "venv",
                       build_lock=tmp_path / "venv.lock")


def fake_venv(files, digest, notes=()):
    """A venv folder whose python runs (a link to ours) and whose marker says `digest`."""
    files.python.parent.mkdir(parents=True, exist_ok=True)
    files.python.symlink_to(sys.executable)
    course_env.write_marker(files, digest, list(notes))


def test_a_venv_with_the_current_digest_is_ready_with_its_notes(files):
    fake_venv(files, files.digest(), ["pandas 2.1.1 does not install here: graded with 2.1.4"])
    assert course_env.ready_notes(files, files.digest()) == [
        "pandas 2.1.1 does not install here: graded with 2.1.4"]


def test_a_venv_built_for_other_files_is_stale(files):
    fake_venv(files, files.digest())
    files.lock.write_text("six==1.17.0\n")
    assert course_env.ready_notes(files, files.digest()) is None
    files.lock.write_text("six==1.16.0\n    # via -r requirements.txt\n")
    files.requirements.write_text("six==1.16.0\nidna==3.7\n")
    assert course_env.ready_notes(files, files.digest()) is None


@pytest.mark.parametrize("spoil", ["no venv", "no marker", "garbled marker", "python gone"])
def test_an_incomplete_venv_is_not_ready(files, spoil):
    if spoil != "no venv":
        fake_venv(files, files.digest())
    if spoil == "no marker":
        files.marker.unlink()
    elif spoil == "garbled marker":
        files.marker.write_text('{"sha256": ')
    elif spoil == "python gone":
        files.python.unlink()
        files.python.symlink_to(files.venv / "no-such-interpreter")
    assert course_env.ready_notes(files, files.digest()) is None


def test_a_ready_venv_is_reused_without_building(files, monkeypatch):
    fake_venv(files, files.digest(), ["a note"])
    monkeypatch.setattr(course_env, "_build_venv", pytest.fail)
    heard = []
    assert course_env.course_python(heard.append, files=files) == (files.python, ["a note"])
    assert heard == []


def fake_build(built, hold=None):
    """A stand-in for _build_venv that counts builds and makes a ready fake venv; `hold` (an
    Event) keeps it building until set."""

    def build(files, digest, progress):
        built.append(digest)
        if hold is not None:
            assert hold.wait(30), "the concurrent callers never queued behind the build"
        fake_venv(files, digest)
        return []

    return build


def test_a_stale_venv_is_rebuilt_once(files, monkeypatch):
    fake_venv(files, "0" * 64)
    files.python.unlink()
    built = []
    monkeypatch.setattr(course_env, "_build_venv", fake_build(built))
    assert course_env.course_python(files=files) == (files.python, [])
    assert course_env.course_python(files=files) == (files.python, [])
    assert built == [files.digest()]


def test_callers_at_once_build_the_venv_once(files, monkeypatch):
    callers = 4
    hold, built, results, waiting = threading.Event(), [], [], []

    def progress(sentence):
        waiting.append(sentence)
        if len(waiting) == callers - 1:  # every other caller waits for the build's lock
            hold.set()

    monkeypatch.setattr(course_env, "_build_venv", fake_build(built, hold))
    threads = [threading.Thread(target=lambda: results.append(
        course_env.course_python(progress, files=files))) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert built == [files.digest()]
    assert results == [(files.python, [])] * callers
    assert all(sentence.startswith("waiting for another process building") for sentence in waiting)


def test_a_build_lock_held_too_long_is_one_sentence(files, monkeypatch):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import fcntl, sys; f = open(sys.argv[1], 'a'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); sys.stdin.read()",
         str(files.build_lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        monkeypatch.setattr(course_env, "LOCK_WAIT_TIMEOUT", 0.3)
        with pytest.raises(CourseEnvError, match=r"^waited 0\.3 s for another process "
                                                  r"building .* and gave up$"):
            course_env.course_python(files=files)
    finally:
        holder.stdin.close()
        holder.wait(10)


# ---------------------------------------------------------------- fallbacks, as pure functions

def test_a_pin_falls_back_to_its_major_minor_then_to_its_bound():
    assert course_env.fallback_specs("pandas", "2.1.1") == ["pandas==2.1.*", "pandas"]
    assert course_env.fallback_specs("numpy", "1.26.4", "<2") == ["numpy==1.26.*", "numpy<2"]
    assert course_env.fallback_specs("tzdata", "2026") == ["tzdata"]


def test_substitutes_replace_their_lines_and_join_the_requirements():
    text = course_env.substituted_requirements(COURSE.requirements,
                                               {"pandas": "2.1.4", "numpy": "1.26.0",
                                                "pytz": "2024.1"})
    lines = text.splitlines()
    assert "pandas==2.1.4" in lines and "pandas==2.1.1" not in lines
    assert "numpy==1.26.0" in lines and "numpy<2" not in lines
    assert "pytz==2024.1" in lines
    assert "matplotlib==3.8.0" in lines


def test_a_note_per_package_that_is_not_at_its_locked_version():
    locked = {"pandas": "2.1.1", "numpy": "1.26.4", "pytz": "2023.3", "six": "1.16.0"}
    installed = {"pandas": "2.1.4", "numpy": "1.26.4", "pytz": "2024.1"}
    assert course_env.substitution_notes(locked, installed, {"pandas": "2.1.1"}) == [
        "pandas 2.1.1 does not install here: graded with 2.1.4",
        "pytz 2023.3 is 2024.1 here, as the substitutes need",
        "six 1.16.0 is not installed here: the substitutes do not need it"]
    assert course_env.substitution_notes(locked, dict(locked), {}) == []
    # A version that failed to show up once but was installed after all needs no note.
    assert course_env.substitution_notes(locked, dict(locked), {"six": "1.16.0"}) == []


def test_pips_last_error_line_is_the_one_quoted():
    output = ("Collecting pandas==2.1.1\nERROR: Could not find a version that satisfies the "
              "requirement pandas==2.1.1 (from versions: none)\nERROR: No matching "
              "distribution found for pandas==2.1.1\n")
    assert course_env.last_error_line(output) == ("ERROR: No matching distribution found for "
                                                  "pandas==2.1.1")
    conflict = ("ERROR: Cannot install grpcio-tools==1.58.0 because these package versions have "
                "conflicting dependencies.\n\nThe conflict is caused by:\n    grpcio-tools "
                "1.58.0 depends on protobuf<5.0dev\n\nERROR: ResolutionImpossible: for help "
                "visit https://pip.pypa.io/en/latest/topics/dependency-resolution/\n")
    assert course_env.last_error_line(conflict) == conflict.splitlines()[0]
    assert course_env.last_error_line("  \n") == "(pip printed nothing)"


# ---------------------------------------------------------------- the image, without Docker

def test_the_course_image_is_built_once_with_the_course_files(monkeypatch, tmp_path):
    monkeypatch.setattr(course_env, "IMAGE_BUILD_LOCK", tmp_path / "image.lock")
    images, builds = set(), []

    def build_image(context, tag, build_args=None):
        builds.append((context, tag, build_args))
        images.add(tag)

    monkeypatch.setattr(course_env, "_image_exists", lambda tag: tag in images)
    monkeypatch.setattr(harness, "build_image", build_image)
    tag = course_env.course_image()
    assert tag == f"p7-autograde-course:{course_env.image_digest()[:12]}"
    assert course_env.course_image() == tag
    assert builds == [(ROOT, tag, {"PYTHON_REQUIREMENTS": "grader/course-requirements.txt",
                                   "PYTHON_CONSTRAINTS": "grader/course.lock"})]


def test_the_image_tag_changes_with_the_dockerfile(monkeypatch, tmp_path):
    """An image built from another Dockerfile (or broker files) is never reused."""
    before = course_env.image_digest()
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text((ROOT / "Dockerfile").read_text() + "# changed\n")
    monkeypatch.setattr(course_env, "ROOT", tmp_path)
    assert course_env.image_digest() != before


def test_a_failed_image_build_says_why(monkeypatch, tmp_path):
    monkeypatch.setattr(course_env, "IMAGE_BUILD_LOCK", tmp_path / "image.lock")
    monkeypatch.setattr(course_env, "_image_exists", lambda tag: False)

    def build_image(context, tag, build_args=None):
        raise harness.DockerError("docker build failed: step [stage-2 3/9] RUN pip install\n"
                                  "ERROR: No matching distribution found for pandas==2.1.1")

    monkeypatch.setattr(harness, "build_image", build_image)
    with pytest.raises(CourseEnvError, match=r"(?s)^could not build the course image "
                                             r"p7-autograde-course:\w{12}: docker build failed: "
                                             r"step .*pandas==2\.1\.1$"):
        course_env.course_image()


# ---------------------------------------------------------------- harness.Program's interpreter

def test_a_program_runs_with_the_interpreter_it_is_given(tmp_path):
    interpreter = tmp_path / "fake-python"
    interpreter.write_text('#!/bin/sh\necho "fake-python ran $*"\n')
    interpreter.chmod(0o755)
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    program = harness.Program(script, ["x"], tmp_path, python=interpreter)
    assert program.wait() == 0
    assert program.stdout == f"fake-python ran {script} x\n"
    default = harness.Program(script, [], tmp_path)
    assert default.wait() == 0
    assert default.stdout == "hello\n"
