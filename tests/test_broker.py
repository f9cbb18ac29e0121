"""The launcher starts, reuses and stops a real Kafka broker, and reports what goes wrong. What it
refuses before Java starts a broker: tests/unit/test_launcher_cli.py."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from broker import launcher as launcher_module
from helpers import ROOT, assert_one_clean_sentence, broker_port, launcher
from tools import harness

# The session broker; a test that starts a broker of its own, or fetches Kafka, is chaos.
pytestmark = pytest.mark.broker


def test_the_session_broker_answers_kafka_clients(broker):
    admin = KafkaAdminClient(bootstrap_servers=broker)
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()


def test_a_second_start_reuses_the_running_broker(broker):
    result = launcher("start")
    assert result.returncode == 0, result.stderr
    assert "reusing" in result.stdout and f"localhost:{broker_port()}" in result.stdout


@pytest.fixture
def own_broker(tmp_path):
    """A second broker on free ports with its own state folder, not started: each test starts
    it through the launcher as it needs (own_broker.launcher("start", env=...)). Whatever it
    started is stopped afterwards, and killed if it would not stop."""
    broker = harness.LocalBroker(tmp_path / "state")
    try:
        yield broker
    finally:
        broker.close()


@pytest.mark.chaos
def test_start_waits_until_ready_and_stop_frees_the_port(own_broker):
    started = own_broker.launcher("start")
    assert started.returncode == 0, started.stdout + started.stderr
    assert f"ready on localhost:{own_broker.port}" in started.stdout
    assert (own_broker.state_dir / "logs" / "server.log").exists(), "the broker wrote no log file"

    # Ready means ready: a client gets an answer at once, with no retry loop of its own.
    admin = KafkaAdminClient(bootstrap_servers=own_broker.bootstrap)
    try:
        assert isinstance(admin.list_topics(), list)
    finally:
        admin.close()
    assert own_broker.launcher("status").returncode == 0

    stopped = own_broker.launcher("stop")
    assert stopped.returncode == 0, stopped.stderr
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", own_broker.port)) != 0, \
            "the port is still taken after stop"
    again = own_broker.launcher("stop")
    assert again.returncode == 0 and "no broker" in again.stdout


@pytest.mark.chaos
def test_a_broker_of_our_own_restarts_and_leaves_no_jvm_when_its_block_fails():
    """harness.LocalBroker, which the outage tests and the soaks rely on: kill -9 and a start
    bring it back on its port, restart() is a clean stop and start, and a `with` block that
    fails still ends with no JVM and no folder left."""
    pids = []
    with pytest.raises(ZeroDivisionError):
        with harness.LocalBroker() as broker:
            state_dir = broker.state_dir
            pids.append(broker.pid())
            broker.kill()
            assert broker.pid() is None and not process_runs(pids[-1])
            broker.start()
            pids.append(broker.pid())
            broker.restart()
            pids.append(broker.pid())
            admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
            try:
                assert isinstance(admin.list_topics(), list)
            finally:
                admin.close()
            1 / 0  # the block fails while the broker runs
    assert None not in pids and len(set(pids)) == 3, pids
    assert not any(process_runs(pid) for pid in pids), "a JVM was left behind"
    assert not state_dir.exists(), "the temporary state folder was left behind"


def process_runs(pid):
    """Whether `pid` is a process that has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def broker_setting(bootstrap, name):
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        answer = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1", [name])],
                                        config_filter="all")
    finally:
        admin.close()
    return answer["broker"]["1"][name]["value"]


@pytest.mark.chaos
def test_kafka_variables_set_broker_settings_and_the_heap(own_broker):
    """The apache/kafka image's convention: KAFKA_LOG_RETENTION_HOURS=1 is log.retention.hours=1
    in the broker's effective config; KAFKA_HEAP_OPTS replaces the launcher's 512 MB heap."""
    env = dict(os.environ, KAFKA_LOG_RETENTION_HOURS="1", KAFKA_HEAP_OPTS="-Xmx300m -Xms300m")
    started = own_broker.launcher("start", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    assert broker_setting(own_broker.bootstrap, "log.retention.hours") == "1"
    pid = own_broker.pid()
    assert pid is not None, "the broker's pid file names no running broker"
    arguments = open(f"/proc/{pid}/cmdline", "rb").read().decode().split("\0")
    assert "-Xmx300m" in arguments and "-Xmx512m" not in arguments


@pytest.mark.parametrize("variable, value, words", [
    ("KAFKA_NUM_PARTITIONS", "many", ["Kafka refuses KAFKA_NUM_PARTITIONS='many'",
                                      "num.partitions"]),
    ("KAFKA_HEAP_OPTS", "-Xmx5", ["Java refuses KAFKA_HEAP_OPTS='-Xmx5'"]),
    ("KAFKA_ADVERTISED_LISTENERS", "PLAINTEXT://x:1", ["KAFKA_ADVERTISED_LISTENERS would set "
                                                       "advertised.listeners"]),
])
def test_a_kafka_variable_the_broker_refuses_is_one_sentence(own_broker, variable, value, words):
    env = dict(os.environ, **{variable: value})
    result = own_broker.launcher("start", env=env)
    assert result.returncode == 1
    line = assert_one_clean_sentence(result.stderr)
    for word in words:
        assert word in line
    assert not (own_broker.state_dir / "data" / "meta.properties").exists(), "nothing should be formatted"


@pytest.mark.chaos
def test_kafka_home_is_used_when_it_holds_a_release(own_broker, tmp_path):
    """The Docker path: KAFKA_HOME/libs instead of Maven. The Maven cache has the same jars."""
    version = launcher_module.kafka_version()
    cached = ROOT / "broker" / ".cache" / f"kafka-{version}"
    assert launcher_module.cache_is_complete(cached, version), \
        "the session broker should have filled the cache"
    release = tmp_path / "kafka_2.13"
    shutil.copytree(cached, release / "libs")
    env = dict(os.environ, KAFKA_HOME=str(release))
    started = own_broker.launcher("start", env=env)
    assert started.returncode == 0, started.stdout + started.stderr
    pid = own_broker.pid()
    assert pid is not None, "the broker's pid file names no running broker"
    command_line = open(f"/proc/{pid}/cmdline", "rb").read().decode()
    assert f"{release / 'libs'}/*" in command_line, "the broker did not run from KAFKA_HOME"


@pytest.mark.chaos
def test_foreground_mode_listens_where_told(own_broker, tmp_path):
    """What the container runs: config written for 0.0.0.0, advertised as localhost."""
    port = own_broker.port
    env = dict(os.environ, P7_LISTEN_HOST="0.0.0.0")
    # Start in the background with the same settings the container's --foreground uses.
    started = own_broker.launcher("start", env=env)
    assert started.returncode == 0, started.stderr
    config = (own_broker.state_dir / "server.properties").read_text()
    assert f"listeners=PLAINTEXT://0.0.0.0:{port}," in config
    assert f"advertised.listeners=PLAINTEXT://localhost:{port}" in config
    native = (ROOT / "broker" / ("server.properties")).read_text()
    assert config.startswith(native), "the shared broker config must be used as it is"


@pytest.mark.chaos
def test_launchers_started_at_once_fetch_kafka_once(tmp_path):
    """make test starts two brokers at once on a fresh clone: the jar cache is filled by one
    launcher while the other waits, and both find it complete."""
    copy = tmp_path / "broker"
    shutil.copytree(ROOT / "broker", copy, ignore=shutil.ignore_patterns(".cache", ".run*"))
    fetches = [subprocess.Popen([sys.executable, str(copy / "launcher.py"), "fetch"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outputs = [fetch.communicate(timeout=600)[0] for fetch in fetches]
    assert [fetch.returncode for fetch in fetches] == [0, 0], outputs
    assert sum("fetching Apache Kafka" in output for output in outputs) == 1, outputs
    version = (ROOT / "broker" / "kafka-version").read_text().strip()
    libs = copy / ".cache" / f"kafka-{version}"
    assert (libs / ".complete").exists()
    assert "Maven: downloaded" in outputs[0] + outputs[1], "no progress was shown"

    # A cache filled for another pom.xml (here: the one before Kafka's tools) is fetched again,
    # into a folder of its own that then takes the old one's place.
    (libs / ".complete").write_text(f"{version}\n")
    (libs / f"kafka-tools-{version}.jar").unlink()
    again = subprocess.run([sys.executable, str(copy / "launcher.py"), "fetch"],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert "fetching Apache Kafka" in again.stderr
    assert (libs / f"kafka-tools-{version}.jar").exists()
    assert sorted(p.name for p in (copy / ".cache").iterdir()) == [".fetch.lock",
                                                                   f"kafka-{version}"]
