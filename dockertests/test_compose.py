"""docs/cluster.md's Docker Compose section: compose.yaml's cluster of p7 images, with the
programs run inside it by `compose exec`, one node killed mid-stream and started again.

One test, as one user session: up, produce, consume, kill and start a node, stop, check exact.
It runs with whichever Compose is there: `docker compose` (v2) or Debian's `docker-compose` (v1,
which `make docker-compose` installs), under a project name of its own, on free host ports (the
README container's 9092 stays untouched), and `down -v` removes it all at the end.
"""

import os
import shutil
import subprocess

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from broker.launcher import broker_is_ready
from tools import harness, p7check
from conftest import (IMAGE, ROOT, TIMEOUT, assert_exact, copy_of_files, logs, producer_running,
                      wait_caught_up)

SERVICES = ("kafka1", "kafka2", "kafka3")
WEATHER_DELAY_SEC = "0.002"     # about 500 days a second
PRODUCED_BEFORE_KILL = 1000
PRODUCED_WHILE_DOWN = 1000      # writes go on with two of three nodes (min ISR 2)
# Three JVMs starting at once on two shared cores: measured 19 s on an idle machine, 76 s on a
# busy one.
NODES_TIMEOUT = 300
KILLED = "kafka3"               # neither the producer's node (kafka1) nor the consumer's (kafka2)


def compose_command():
    """`docker compose` where the v2 plugin is installed, else Debian's `docker-compose`."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor `docker-compose` is installed: `make "
                "docker-compose` installs Debian's (apt-get install docker-compose, as root)")


class Project:
    """compose.yaml under a project name of its own, with the files copy and ports it is given
    through compose.yaml's variables."""

    def __init__(self, files_dir, ports):
        self.name = f"p7-compose-test-{harness.unique_suffix()}"
        self.files_dir = files_dir
        self.ports = ports
        self.command = compose_command() + ["-p", self.name, "-f", str(ROOT / "compose.yaml")]
        self.env = dict(os.environ, P7_FILES=str(files_dir),
                        **{f"P7_KAFKA{n}_PORT": str(port) for n, port in enumerate(ports, 1)})

    def __call__(self, *args, timeout=harness.DOCKER_TIMEOUT + 60):
        done = subprocess.run(self.command + list(args), capture_output=True, text=True,
                              env=self.env, timeout=timeout, cwd=ROOT)
        assert done.returncode == 0, f"compose {' '.join(args)}: {done.stdout}{done.stderr}"
        return done.stdout

    def container(self, service):
        """The service's container as tools/harness.py drives one (exec, programs, state)."""
        container_id = self("ps", "-q", service).strip()
        assert container_id, f"compose has no container for {service}"
        return harness.Container(container_id, IMAGE, self.files_dir)

    def bootstrap(self):
        return ",".join(f"localhost:{port}" for port in self.ports)


@pytest.fixture(scope="module")
def project(image, tmp_path_factory):
    folder = tmp_path_factory.mktemp("compose")
    project = Project(copy_of_files(folder), [harness.free_port() for _ in SERVICES])
    saved = os.environ.get("KAFKA_BOOTSTRAP")
    # p7check on the host, through kafka1's published port: the node this test never stops.
    os.environ["KAFKA_BOOTSTRAP"] = f"localhost:{project.ports[0]}"
    try:
        project("up", "-d", "--no-build")
        yield project
    finally:
        # Files the containers wrote as root go first, while a container can remove them.
        subprocess.run(project.command + ["exec", "-T", "kafka1", "sh", "-c",
                                          "rm -rf /files/* /files/.[!.]*"],
                       capture_output=True, env=project.env, timeout=harness.DOCKER_TIMEOUT)
        subprocess.run(project.command + ["down", "-v"], capture_output=True,
                       env=project.env, timeout=harness.DOCKER_TIMEOUT + 60)
        if saved is None:
            os.environ.pop("KAFKA_BOOTSTRAP", None)
        else:
            os.environ["KAFKA_BOOTSTRAP"] = saved


def wait_for_three_nodes(project, ports):
    """Until each of `ports` answers naming all three brokers (the quorum has a leader that let
    every node in)."""
    containers = [project.container(service) for service in SERVICES]

    def answering():
        for container in containers:
            container.require_running()  # a node that died says so at once, with its log
        return all(broker_is_ready(port, brokers=3) for port in ports)
    p7check.wait_until(answering, NODES_TIMEOUT, f"all three nodes to answer on {ports}",
                       interval=1)


def total_produced():
    """The messages in the topic; 0 when the question met the killed node. kafka-python asks
    one of the brokers it knows and gives up when that one refuses: the next poll asks again."""
    try:
        return sum(p7check.end_offsets().values())
    except KafkaError:
        return 0


def describe_topic():
    admin = KafkaAdminClient(bootstrap_servers=[p7check.bootstrap()], client_id="p7-compose-test")
    try:
        (topic,) = admin.describe_topics([p7check.TOPIC])
        # "all": the topic's effective settings, those it takes from the brokers included.
        configs = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC,
                                                         p7check.TOPIC)], config_filter="all")
    finally:
        admin.close()
    settings = {name: entry["value"] for name, entry in configs["topic"][p7check.TOPIC].items()}
    return topic["partitions"], settings


def in_sync_everywhere():
    try:
        partitions, _settings = describe_topic()
    except KafkaError:
        return False  # as in total_produced()
    return all(len(p["isr_nodes"]) == 3 for p in partitions)


def test_three_nodes_replicate_and_survive_one_killed_mid_stream(project, tmp_path):
    wait_for_three_nodes(project, project.ports)
    producing, consuming = project.container("kafka1"), project.container("kafka2")

    # docs/cluster.md's commands, the cluster's KAFKA_BOOTSTRAP and P7_REPLICATION_FACTOR=3 coming
    # from compose.yaml.
    project("exec", "-d", "-e", f"WEATHER_DELAY_SEC={WEATHER_DELAY_SEC}", "kafka1",
            "python3", "/files/producer.py")
    consumer = consuming.program("consumer.py", ["0", "1", "2", "3"], logs(tmp_path))
    try:
        p7check.wait_until(lambda: total_produced() >= PRODUCED_BEFORE_KILL, TIMEOUT,
                           f"{PRODUCED_BEFORE_KILL} messages on the cluster")
        partitions, settings = describe_topic()
        assert len(partitions) == p7check.PARTITIONS
        assert all(len(p["replica_nodes"]) == 3 for p in partitions), partitions
        assert settings["min.insync.replicas"] == "2", settings
        assert settings["unclean.leader.election.enable"] == "false", settings

        project("kill", KILLED)
        before = p7check.wait_until(total_produced, TIMEOUT, "the topic's end offsets")
        p7check.wait_until(lambda: total_produced() >= before + PRODUCED_WHILE_DOWN, TIMEOUT,
                           f"{PRODUCED_WHILE_DOWN} more messages with {KILLED} down")
        assert producer_running(producing), "the producer died when a node was killed"

        project("start", KILLED)
        wait_for_three_nodes(project, project.ports)
        # Back in every partition's ISR: it kept its data (named volume) and caught up.
        p7check.wait_until(in_sync_everywhere, TIMEOUT, f"{KILLED} back in sync", interval=1)

        producing.exec("sh", "-c", f"kill -TERM {' '.join(producer_running(producing))}")
        p7check.wait_until(lambda: not producer_running(producing), 60,
                           "the producer to stop on SIGTERM")
        wait_caught_up(consuming, consumer, list(range(p7check.PARTITIONS)))
        assert consumer.stop() == 0, consumer.stderr
    finally:
        consumer.kill()
    assert_exact(consuming, range(p7check.PARTITIONS))
