"""`make venv` checks Python (3.11 or newer, with venv) before it installs anything and says in
one sentence what is needed and what it found; Java gets a one-sentence warning (the venv does
not need it; the launcher refuses an old one: tests/test_broker.py). Python 3.10 is played by
this Python with a sitecustomize that changes sys.version_info, Java 11 by a script on PATH."""

import os
import shutil
import subprocess
import sys

import pytest

from tools.harness import ROOT

NEEDED = ("Makefile", "requirements.txt", "requirements-dev.txt", "requirements.lock",
          "broker/preflight.py", "broker/venv_install.py", "broker/launcher.py")


def copy_of_the_project(tmp_path):
    copy = tmp_path / "project"
    for name in NEEDED:
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, copy / name)
    return copy


def outside_make():
    """This process's environment without what an outer make (`make test`) passes down: the
    `make venv` a user types is a make of its own, and says `make:`, not `make[1]:`."""
    return {k: v for k, v in os.environ.items() if k not in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS")}


def python_reporting(tmp_path, version):
    fake = tmp_path / "fake-python"
    fake.mkdir()
    (fake / "sitecustomize.py").write_text(f"import sys\nsys.version_info = {version!r}\n")
    return dict(outside_make(), PYTHONPATH=str(fake))


def java_reporting(tmp_path, version_line):
    bin_dir = tmp_path / "fake-java"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(0o755)
    env = {k: v for k, v in outside_make().items() if k != "JAVA_HOME"}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def test_make_venv_refuses_python_3_10_before_installing(tmp_path):
    copy = copy_of_the_project(tmp_path)
    env = python_reporting(tmp_path, (3, 10, 12, "final", 0))
    result = subprocess.run(["make", "venv", f"PYTHON={sys.executable}"], cwd=copy, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("make:")]
    assert len(lines) == 1, result.stderr
    assert "needs Python 3.11 or newer" in lines[0] and "is Python 3.10.12" in lines[0]
    assert not (copy / ".venv").exists(), "make venv went on after the check"


def test_python_3_11_passes(tmp_path):
    env = python_reporting(tmp_path, (3, 11, 0, "final", 0))
    result = subprocess.run([sys.executable, str(ROOT / "broker" / "preflight.py")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_an_old_java_is_one_sentence_of_warning(tmp_path):
    env = java_reporting(tmp_path, 'openjdk version "11.0.2" 2019-01-15')
    result = subprocess.run([sys.executable, str(ROOT / "broker" / "preflight.py")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert "warning: Kafka needs Java 17 or newer" in result.stderr
    assert "is Java 11" in result.stderr


def test_java_8_is_told_by_its_old_version_string(tmp_path):
    env = java_reporting(tmp_path, 'java version "1.8.0_392"')
    result = subprocess.run([sys.executable, str(ROOT / "broker" / "preflight.py")], env=env,
                            capture_output=True, text=True, timeout=120)
    assert "is Java 8" in result.stderr


@pytest.mark.skipif(not shutil.which("java") and not os.environ.get("JAVA_HOME"),
                    reason="no Java here (the unit tests need none)")
def test_this_machines_java_is_accepted():
    result = subprocess.run([sys.executable, str(ROOT / "broker" / "preflight.py")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stderr == "", result.stderr
