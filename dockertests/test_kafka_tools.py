"""Kafka's conventions in the image: its tools on PATH (`docker exec p7 kafka-topics ...`) on this
project's topics, KAFKA_* variables as broker settings and KAFKA_HEAP_OPTS as the heap
(`docker run -e ...`), a refused setting as one sentence, and `docker exec --user` writing files
the host's user owns (the README's Troubleshooting). Everything is asked inside the container
with docker exec, so no port is published."""

import os
import time

import pytest

from tools import harness
from conftest import TIMEOUT, copy_of_files, run

HEAP = "-Xmx384m -Xms384m"
FAST = "WEATHER_DELAY_SEC=0.002"


def docker_exec(container, *command, user=None, timeout=TIMEOUT):
    as_user = ["--user", user] if user else []
    return run("docker", "exec", *as_user, container, *command, timeout=timeout)


def ok(result):
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def wait_for(condition, what, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(1)
    raise AssertionError(f"no {what} within {timeout} s")


@pytest.fixture(scope="module")
def container(image, tmp_path_factory):
    """docker run -d -e KAFKA_LOG_RETENTION_HOURS=1 -e KAFKA_HEAP_OPTS=... -v COPY:/files p7,
    with the producer run once at full speed; removed at the end."""
    folder = copy_of_files(tmp_path_factory.mktemp("tools"))
    os.chmod(folder, 0o777)  # `--user` below writes here too
    name = f"p7-tools-test-{harness.unique_suffix()}"
    ok(run("docker", "run", "-d", "--name", name, "-v", f"{folder}:/files",
           "-e", "KAFKA_LOG_RETENTION_HOURS=1", "-e", f"KAFKA_HEAP_OPTS={HEAP}", image))
    try:
        wait_for(lambda: docker_exec(name, "python3", "/opt/p7/broker/launcher.py",
                                     "status").returncode == 0, f"broker in {name}")
        ok(run("docker", "exec", "-d", "-e", FAST, name, "python3", "/files/producer.py"))
        wait_for(lambda: offsets(name) and sum(offsets(name).values()) >= 1000,
                 "1000 messages from the producer")
        yield name, folder
    finally:
        run("docker", "exec", name, "sh", "-c", "rm -rf /files/* /files/.[!.]*")
        run("docker", "rm", "-f", name)


def offsets(name):
    result = docker_exec(name, "kafka-get-offsets", "--topic", "temperatures")
    if result.returncode != 0:
        return {}
    return {int(line.split(":")[1]): int(line.split(":")[2]) for line in result.stdout.split()}


def test_kafka_topics_describes_temperatures(container):
    name, _ = container
    described = ok(docker_exec(name, "kafka-topics", "--describe", "--topic", "temperatures"))
    assert "PartitionCount: 4" in described
    assert ok(docker_exec(name, "sh", "-c", "command -v kafka-topics")).strip() \
        == "/opt/p7/broker/bin/kafka-topics"


def test_kafka_get_offsets_grows_with_the_producer(container):
    name, _ = container
    first = offsets(name)
    assert sorted(first) == [0, 1, 2, 3]
    wait_for(lambda: sum(offsets(name).values()) > sum(first.values()), "new messages")


def test_kafka_console_consumer_reads_birthday_temperatures(container):
    name, _ = container
    ok(docker_exec(name, "python3", "-c",
                   "from kafka import KafkaProducer\n"
                   "p = KafkaProducer(bootstrap_servers='localhost:9092', acks='all')\n"
                   "[p.send('birthday-temperatures', v) for v in (b'1997,51.25', b'1998,49.5')]\n"
                   "p.flush()"))
    read = ok(docker_exec(name, "kafka-console-consumer", "--topic", "birthday-temperatures",
                          "--from-beginning", "--max-messages", "2", "--timeout-ms", "60000"))
    assert read.split() == ["1997,51.25", "1998,49.5"]


def test_kafka_consumer_groups_shows_the_debug_group(container):
    name, _ = container
    ok(run("docker", "exec", "-d", name, "python3", "/files/debug.py"))

    def debug_rows():
        described = docker_exec(name, "kafka-consumer-groups", "--describe", "--group", "debug")
        return [line for line in described.stdout.splitlines()
                if line.split()[:2] == ["debug", "temperatures"]]
    wait_for(lambda: len(debug_rows()) == 4, "debug's four partitions in the group")


def test_kafka_variables_reach_the_broker(container):
    name, _ = container
    value = ok(docker_exec(name, "python3", "-c",
                           "from kafka import KafkaAdminClient\n"
                           "from kafka.admin import ConfigResource, ConfigResourceType as T\n"
                           "a = KafkaAdminClient(bootstrap_servers='localhost:9092')\n"
                           "r = ConfigResource(T.BROKER, '1', ['log.retention.hours'])\n"
                           "print(a.describe_configs([r], config_filter='all')"
                           "['broker']['1']['log.retention.hours']['value'])"))
    assert value.strip() == "1"
    command_line = ok(docker_exec(name, "cat", "/proc/1/cmdline")).split("\0")
    assert HEAP.split()[0] in command_line and "-Xmx512m" not in command_line


def test_a_refused_kafka_variable_stops_the_container_with_one_sentence(image):
    result = run("docker", "run", "--rm", "-e", "KAFKA_NUM_PARTITIONS=many", image)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "Kafka refuses KAFKA_NUM_PARTITIONS='many' (num.partitions)" in last


def test_exec_as_the_hosts_user_writes_files_the_user_owns(container):
    """The README's fix for root-owned files: docker exec --user "$(id -u):$(id -g)"."""
    name, folder = container
    user = "1234:1234"
    ok(docker_exec(name, "python3", "/files/consumer.py", "1", "--iterations", "3", user=user,
                   timeout=300))
    written = folder / "partition-1.json"
    assert written.exists()
    assert (written.stat().st_uid, written.stat().st_gid) == (1234, 1234)
    assert (folder / "partition-1.json.lock").stat().st_uid == 1234
