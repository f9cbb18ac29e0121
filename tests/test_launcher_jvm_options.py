"""KAFKA_OPTS with which the real Java exits at once (it prints its version or its help, refuses
an option, takes a word for its main class): `launcher.py start` says so in one sentence with
Java's last line, exit code 1, before anything is formatted or started; options with which Java
runs Kafka pass the same check. The sentences themselves, without Java:
tests/unit/test_launcher_settings.py."""

import os

import pytest

from broker import launcher as launcher_module
from helpers import assert_one_clean_sentence
from tools import harness

# Each test runs Java, and a broker of its own would start should the launcher let one through.
pytestmark = pytest.mark.chaos


@pytest.fixture
def unstarted_broker(tmp_path):
    """Free ports and a state folder of our own, not started; whatever a start there left
    running is stopped (or killed) afterwards."""
    broker = harness.LocalBroker(tmp_path / "state")
    try:
        yield broker
    finally:
        broker.close()


@pytest.mark.parametrize("options, words", [
    ("-version", ["Java exited at once with KAFKA_OPTS='-version' instead of running Kafka",
                  "its last line: ", "fix or unset KAFKA_OPTS"]),
    ("-help", ["Java exited at once with KAFKA_OPTS='-help'", "its last line: "]),
    ("--dry-run", ["Java exited at once with KAFKA_OPTS='--dry-run'"]),
    ("p7.NoSuchMain", ["Java exited at once with KAFKA_OPTS='p7.NoSuchMain'",
                       "ClassNotFoundException: p7.NoSuchMain"]),
    ("-XX:+Bogus", ["Java refuses KAFKA_OPTS='-XX:+Bogus': Unrecognized VM option 'Bogus'"]),
    ("-Xbogus", ["Java refuses KAFKA_OPTS='-Xbogus': Unrecognized option: -Xbogus"]),
])
def test_java_exiting_at_once_is_one_sentence_and_starts_nothing(unstarted_broker, options,
                                                                 words):
    port = unstarted_broker.port
    env = dict(os.environ, KAFKA_BOOTSTRAP=f"localhost:{port}", KAFKA_OPTS=options)
    env.pop("KAFKA_HEAP_OPTS", None)
    result = harness.launcher("--state-dir", unstarted_broker.state_dir, "start", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    line = assert_one_clean_sentence(result.stderr)
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in line, line
    state = launcher_module.State(unstarted_broker.state_dir)
    assert not (state.data / "meta.properties").exists(), "nothing should be formatted"
    assert state.pid() is None and not state.pid_file.exists()
    assert not launcher_module.port_is_open(port)


@pytest.mark.parametrize("formatted", [False, True])
def test_options_with_which_java_runs_kafka_pass_the_check(unstarted_broker, monkeypatch,
                                                           formatted):
    """The check before a start, with the real Java and Kafka: on storage not yet formatted
    (StorageTool finds a problem) and on formatted storage (it finds the log directory)."""
    monkeypatch.setenv("KAFKA_OPTS", "-Dp7.test=1 -XshowSettings:properties")
    monkeypatch.delenv("KAFKA_HEAP_OPTS", raising=False)
    state = launcher_module.State(unstarted_broker.state_dir)
    port = unstarted_broker.port
    launcher_module.write_config(state, port, port + 1, "127.0.0.1")
    classpath = launcher_module.classpath()
    if formatted:
        monkeypatch.delenv("KAFKA_OPTS")
        launcher_module.format_storage(state, classpath)
        monkeypatch.setenv("KAFKA_OPTS", "-Dp7.test=1 -XshowSettings:properties")
        assert (state.data / "meta.properties").exists()
    launcher_module.check_settings(classpath, state)
