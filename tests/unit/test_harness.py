"""tools/harness.py without an engine or a broker: what a failed `docker build` is reduced to,
and the parts of LocalBroker and LocalCluster that need no Java.

make docker-test runs a really broken build through the legacy builder; these cover both
builders' layouts (BuildKit's is what a user's Docker Desktop prints)."""

import os
import signal
import socket
import subprocess
import sys

import pytest

from tools import harness

STEP = "RUN apt-get install -y no-such-package"
ERROR = "E: Unable to locate package no-such-package"


def test_legacy_builder_output_gives_the_step_and_its_error_lines():
    stdout = "\n".join([
        "Sending build context to Docker daemon  4.1MB",
        "Step 1/9 : FROM python:3.11-slim-bookworm AS runtime",
        " ---> c1162e3904c9",
        f"Step 2/9 : {STEP}",
        " ---> Running in 0345124f7f0c",
        "Reading package lists...",
        f"\x1b[91m{ERROR}\n\x1b[0mRemoving intermediate container 0345124f7f0c",
    ])
    stderr = "\n".join([
        "DEPRECATED: The legacy builder is deprecated and will be removed in a future release.",
        "            Install the buildx component to build images with BuildKit:",
        "            https://docs.docker.com/go/buildx/",
        "",
        f"The command '/bin/sh -c {STEP[4:]}' returned a non-zero code: 100",
    ])
    summary = harness.build_failure(stdout + "\n" + stderr).splitlines()
    assert summary[0] == f"Step 2/9: {STEP}"
    assert ERROR in summary and summary[-1].endswith("returned a non-zero code: 100")
    assert not any("DEPRECATED" in line or "buildx" in line or "\x1b" in line
                   or "intermediate container" in line for line in summary), summary


def test_buildkit_output_gives_the_step_and_its_error_lines():
    output = "\n".join([
        "#5 [runtime 2/2] " + STEP,
        "#5 0.512 Reading package lists...",
        f"#5 0.913 {ERROR}",
        f'#5 ERROR: process "/bin/sh -c {STEP[4:]}" did not complete successfully: exit code: 100',
        "------",
        f" > [runtime 2/2] {STEP}:",
        "0.512 Reading package lists...",
        f"0.913 {ERROR}",
        "------",
        "Dockerfile:11",
        "--------------------",
        f"  11 | >>> {STEP}",
        "--------------------",
        f'ERROR: failed to solve: process "/bin/sh -c {STEP[4:]}" did not complete '
        "successfully: exit code: 100",
    ])
    summary = harness.build_failure(output).splitlines()
    assert summary[0] == f"step [runtime 2/2] {STEP}"
    assert f"0.913 {ERROR}" in summary
    assert summary[-1].startswith("ERROR: failed to solve:")
    assert not any(line.startswith("Dockerfile:") for line in summary)


def test_output_of_neither_kind_keeps_its_last_lines():
    lines = [f"line {n}" for n in range(30)]
    summary = harness.build_failure("\n".join(lines)).splitlines()
    assert summary == lines[-harness.BUILD_ERROR_LINES:]


# ---------------------------------------------------------------- LocalBroker and LocalCluster
# Their parts that need no Java: ports, folders, and what kill and close do to the process a
# node's pid file names. A stand-in takes the JVM's place there: a plain Python process whose
# command line is what the launcher recognises as its broker (java ... kafka.Kafka CONFIG).
# Starting real brokers and clusters is tests/test_broker.py's, test_outages.py's and
# test_cluster.py's.

def stand_in_for_the_jvm(folder, ignore_sigterm=False):
    """A process that broker/launcher.py takes for the broker of `folder` (its pid file names
    it, its command line is `java ... kafka.Kafka FOLDER/server.properties`); no Java."""
    folder.mkdir(parents=True, exist_ok=True)
    code = "import signal, time\n"
    if ignore_sigterm:
        code += "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    code += "print('ready', flush=True)\ntime.sleep(300)\n"
    process = subprocess.Popen(["java", "-c", code, "kafka.Kafka",
                                str(folder.resolve() / "server.properties")],
                               executable=sys.executable, stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    assert process.stdout.readline() == "ready\n"  # its signal disposition is set
    (folder / "broker.pid").write_text(f"{process.pid}\n")
    return process


@pytest.fixture
def stand_ins():
    """Every stand-in started is reaped (killed first if it still runs) at the end."""
    started = []

    def start(folder, ignore_sigterm=False):
        started.append(stand_in_for_the_jvm(folder, ignore_sigterm))
        return started[-1]

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_broker_of_our_own_gets_free_ports_and_a_temporary_folder_that_close_removes():
    broker = harness.LocalBroker()
    try:
        assert broker.state_dir.is_dir()
        assert broker.controller_port == broker.port + 1
        assert broker.bootstrap == f"localhost:{broker.port}"
        for port in (broker.port, broker.controller_port):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))  # free: nothing listens there
        assert broker.pid() is None
    finally:
        broker.close()
    assert not broker.state_dir.exists()
    broker.close()  # a second close is harmless


def test_a_given_folder_is_kept(tmp_path):
    (tmp_path / "state" / "logs").mkdir(parents=True)
    broker = harness.LocalBroker(tmp_path / "state", port=harness.free_port())
    broker.close()
    assert broker.controller_port is None  # the launcher's default: the port after it
    assert (tmp_path / "state" / "logs").is_dir()


def test_a_cluster_of_our_own_has_three_nodes_with_a_folder_each():
    cluster = harness.LocalCluster()
    try:
        first = cluster.ports[0]
        assert cluster.ports == [first, first + 1, first + 2]
        assert cluster.bootstrap == ",".join(f"localhost:{port}" for port in cluster.ports)
        assert [cluster.node_dir(n).name for n in cluster.node_ids] == ["node-1", "node-2",
                                                                          "node-3"]
        # The launcher takes the three ports after the client ports as controller ports.
        for port in range(first, first + 6):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))
    finally:
        cluster.close()
    assert not cluster.state_dir.exists()


def test_killing_a_node_that_does_not_run_is_one_sentence():
    cluster = harness.LocalCluster()
    try:
        with pytest.raises(harness.BrokerError, match=r"^node 2 of the Kafka in .* is not "
                                                      r"running$"):
            cluster.kill(2)
        with pytest.raises(harness.BrokerError, match=r"^no node of the Kafka in .* is "
                                                      r"running$"):
            cluster.kill()
    finally:
        cluster.close()


def test_kill_is_sigkill_and_returns_once_the_node_is_gone(tmp_path, stand_ins):
    """A stand-in that ignores SIGTERM: only SIGKILL ends it."""
    cluster = harness.LocalCluster(tmp_path)
    process = stand_ins(cluster.node_dir(2), ignore_sigterm=True)
    others = [stand_ins(cluster.node_dir(n)) for n in (1, 3)]
    assert cluster.pid(2) == process.pid
    cluster.kill(2)
    assert cluster.pid(2) is None
    assert process.wait(timeout=5) == -signal.SIGKILL
    assert [cluster.pid(n) for n in (1, 3)] == [p.pid for p in others], "only node 2 dies"
    cluster.kill()  # every node left
    assert [p.wait(timeout=5) for p in others] == [-signal.SIGKILL] * 2


def test_close_stops_a_node_through_the_launcher(tmp_path, stand_ins):
    broker = harness.LocalBroker(tmp_path / "state")
    process = stand_ins(broker.state_dir)
    broker.close()
    assert process.wait(timeout=5) == -signal.SIGTERM, "the launcher's stop is SIGTERM"
    assert not (broker.state_dir / "broker.pid").exists()


def test_close_kills_a_node_it_started_whose_pid_file_is_gone(tmp_path, stand_ins):
    """What a start left running is killed at close even when the launcher lost track of it
    (its pid file is gone: no stop reaches it)."""
    broker = harness.LocalBroker(tmp_path / "state")
    process = stand_ins(broker.state_dir, ignore_sigterm=True)
    broker._remember_pids()  # as start() does
    (broker.state_dir / "broker.pid").unlink()
    broker.close()
    assert process.wait(timeout=5) == -signal.SIGKILL


def test_a_stale_pid_file_names_no_node_and_close_spares_its_process(tmp_path):
    """A pid file naming another program (the broker died, its pid was reused): neither pid(),
    kill nor close signal that program."""
    stranger = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        broker = harness.LocalBroker(tmp_path / "state")
        broker.state_dir.mkdir()
        (broker.state_dir / "broker.pid").write_text(f"{stranger.pid}\n")
        assert broker.pid() is None
        with pytest.raises(harness.BrokerError):
            broker.kill()
        broker.close()
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_the_launcher_is_asked_about_this_brokers_own_folder_and_port(tmp_path):
    broker = harness.LocalBroker(tmp_path / "state")
    try:
        status = broker.launcher("status")
        assert status.returncode == 1
        assert f"no broker answers on localhost:{broker.port}" in status.stdout
    finally:
        broker.close()


def test_use_bootstrap_sets_kafka_bootstrap_for_the_block_only(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP", "localhost:1")
    with harness.use_bootstrap("localhost:2,localhost:3"):
        assert os.environ["KAFKA_BOOTSTRAP"] == "localhost:2,localhost:3"
    assert os.environ["KAFKA_BOOTSTRAP"] == "localhost:1"
    monkeypatch.delenv("KAFKA_BOOTSTRAP")
    with pytest.raises(ZeroDivisionError):
        with harness.use_bootstrap("localhost:2"):
            1 / 0
    assert "KAFKA_BOOTSTRAP" not in os.environ
