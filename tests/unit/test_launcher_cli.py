"""broker/launcher.py where it needs no Java and starts no broker: a port held by another
program, Java missing or older than 17, a KAFKA_HOME that holds no release, a Kafka tool not
offered (each one sentence, exit 1, nothing formatted); the jar cache's marker; and the
Dockerfile, which gets Kafka through the same files and launcher. Starting brokers for real:
tests/test_broker.py."""

import os
import re
import socket
import subprocess
import sys

import pytest

from broker import launcher as launcher_module
from helpers import assert_one_clean_sentence
from tools.harness import ROOT, LocalBroker, launcher


@pytest.fixture
def unstarted_broker(tmp_path):
    """A broker of our own on free ports with its own state folder, not started: each test asks
    the launcher to start it (unstarted_broker.launcher("start", env=...)) and expects a refusal.
    Should the launcher start it after all, it is stopped afterwards."""
    broker = LocalBroker(tmp_path / "state")
    try:
        yield broker
    finally:
        broker.close()


def test_a_port_held_by_another_program_is_a_clear_error(unstarted_broker):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = launcher("--state-dir", str(unstarted_broker.state_dir), "start", "--port",
                          str(port), timeout=60)
    assert result.returncode == 1
    line = assert_one_clean_sentence(result.stderr)
    assert f"port {port}" in line and "held by another program" in line


def test_missing_java_is_a_clear_error(unstarted_broker, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(sys.executable, bin_dir / "python3")
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "KAFKA_HOME")}
    env["PATH"] = str(bin_dir)
    result = unstarted_broker.launcher("start", env=env)
    assert result.returncode == 1
    assert "Java is not installed" in assert_one_clean_sentence(result.stderr)


def test_a_java_older_than_17_is_a_clear_error(unstarted_broker, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    java = bin_dir / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.22\" 2024-01-16' >&2\n")
    java.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("JAVA_HOME", "KAFKA_HOME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    result = unstarted_broker.launcher("start", env=env)
    assert result.returncode == 1
    line = assert_one_clean_sentence(result.stderr)
    assert "Kafka needs Java 17 or newer" in line and "is Java 11" in line
    assert not (unstarted_broker.state_dir / "data").exists(), \
        "nothing should be formatted with a Java too old"


def test_a_kafka_home_that_is_no_release_is_a_clear_error(unstarted_broker, tmp_path):
    env = dict(os.environ, KAFKA_HOME=str(tmp_path))
    result = unstarted_broker.launcher("start", env=env)
    assert result.returncode == 1
    assert "not an unpacked Kafka release" in assert_one_clean_sentence(result.stderr)


def test_a_tool_not_offered_is_one_sentence():
    result = subprocess.run([sys.executable, str(ROOT / "broker" / "launcher.py"), "tool",
                             "kafka-configs"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    line = assert_one_clean_sentence(result.stderr)
    assert "'kafka-configs' is not one of the Kafka tools offered here" in line
    assert "kafka-topics" in line


def test_dockerfile_uses_the_native_version_config_and_pins():
    """Without an engine (make docker-test builds and runs the image): the Dockerfile gets Kafka
    through the very files and launcher the native path uses, and its final stage keeps only
    what the programs need."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    version = (ROOT / "broker" / "kafka-version").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version)
    assert version not in dockerfile, "the Kafka version must come from broker/kafka-version"
    stages = re.split(r"^FROM ", dockerfile, flags=re.M)[1:]
    assert len(stages) >= 2, "Maven belongs in a build stage of its own"
    build, final = "".join(stages[:-1]), stages[-1]
    assert "launcher.py fetch" in build and "maven" in build
    assert "COPY broker/kafka-version broker/pom.xml broker/launcher.py" in build
    assert "maven" not in final and "curl" not in dockerfile and "archive.apache" not in dockerfile
    assert re.search(r"COPY --from=\S+ /opt/p7/broker/\.cache /opt/p7/broker/\.cache", final)
    steps = re.sub(r"\\\n\s*", " ", final).splitlines()
    copied_files = {name for step in steps if step.startswith("COPY ")
                    and step.split()[-1] == "/opt/p7/broker/" for name in step.split()[1:-1]}
    for needed in ("broker/launcher.py", "broker/server.properties", "broker/log4j2.properties",
                   "broker/kafka-version", "broker/pom.xml", "broker/tools-log4j2.properties"):
        assert needed in copied_files, f"{needed} is not copied into the image"
    assert "COPY broker/bin/ /opt/p7/broker/bin/" in final
    assert re.search(r"^ENV PATH=/opt/p7/broker/bin:\$PATH$", final, re.M)
    assert re.search(r"pip install [^\n]*-r /opt/p7/requirements\.txt", final)
    assert "pytest" not in (ROOT / "requirements.txt").read_text(), "test tools stay out"
    assert "openjdk-17" in dockerfile
    assert "P7_LISTEN_HOST=0.0.0.0" in final
    assert re.search(r'CMD \["python3", "/opt/p7/broker/launcher.py", "start", "--foreground"\]',
                     final)


def test_the_cache_marker_follows_the_pom(tmp_path, monkeypatch):
    pom = tmp_path / "pom.xml"
    pom.write_text("<project/>")
    monkeypatch.setattr(launcher_module, "POM", pom)
    before = launcher_module.cache_marker("4.1.1")
    pom.write_text("<project><!-- other jars --></project>")
    assert launcher_module.cache_marker("4.1.1") != before
    assert before.startswith("4.1.1\n")
