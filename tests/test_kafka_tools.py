"""Kafka's own tools (broker/bin/, `launcher.py tool`) on this project's topics, against the
session's broker: kafka-topics describes `temperatures`, kafka-get-offsets agrees with the
topic's end offsets, kafka-console-consumer reads `birthday-temperatures`, and
kafka-consumer-groups shows the debug group's members and a group's lag. A tool not offered:
tests/unit/test_launcher_cli.py."""

import os
import subprocess

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from helpers import ROOT, wait_until
from tools import p7check

pytestmark = pytest.mark.broker

BIN = ROOT / "broker" / "bin"
TOOL_TIMEOUT_SEC = 120  # a JVM's start on a busy machine


def tool(name, *args, broker=None, env=None):
    full_env = dict(os.environ, **(env or {}))
    if broker:
        full_env["KAFKA_BOOTSTRAP"] = broker
    return subprocess.run([str(BIN / name), *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=TOOL_TIMEOUT_SEC)


def test_kafka_topics_describes_temperatures(broker, produce):
    produce(100)
    result = tool("kafka-topics", "--describe", "--topic", p7check.TOPIC, broker=broker)
    assert result.returncode == 0, result.stderr
    assert "PartitionCount: 4" in result.stdout
    partitions = [line for line in result.stdout.splitlines()
                  if line.strip().startswith(f"Topic: {p7check.TOPIC}\tPartition:")]
    assert len(partitions) == 4, result.stdout
    assert "birthday-temperatures" in tool("kafka-topics", "--list", broker=broker).stdout


def test_kafka_get_offsets_agrees_with_the_topic(broker, produce):
    end_offsets = produce(200)
    result = tool("kafka-get-offsets", "--topic", p7check.TOPIC, broker=broker)
    assert result.returncode == 0, result.stderr
    told = {}
    for line in result.stdout.split():
        topic, partition, offset = line.rsplit(":", 2)
        assert topic == p7check.TOPIC
        told[int(partition)] = int(offset)
    assert told == dict(end_offsets)


def test_kafka_console_consumer_reads_birthday_temperatures(broker, produce):
    produce(10)  # (re)creates birthday-temperatures, empty
    readings = [b"1997,51.25", b"1998,49.5", b"1999,55.0"]
    producer = KafkaProducer(bootstrap_servers=broker, acks="all")
    for reading in readings:
        producer.send("birthday-temperatures", reading)
    producer.flush()
    producer.close()
    result = tool("kafka-console-consumer", "--topic", "birthday-temperatures",
                  "--from-beginning", "--max-messages", len(readings), "--timeout-ms", 60000,
                  broker=broker)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [reading.decode() for reading in readings]


def test_kafka_consumer_groups_shows_the_debug_group(broker, produce, run_program):
    produce(10)
    debug = run_program("debug.py")
    # debug.py joins group "debug" and is given all four partitions.
    wait_until(lambda: len(debug_rows(broker)) == 4, 120, "debug's four partitions in the group")
    assert debug.stop() == 0, debug.stderr


def debug_rows(broker):
    result = tool("kafka-consumer-groups", "--describe", "--group", "debug", broker=broker)
    return [line.split() for line in result.stdout.splitlines()
            if line.split()[:2] == ["debug", p7check.TOPIC]]


def test_kafka_consumer_groups_shows_a_groups_lag(broker, produce):
    end_offsets = produce(100)
    group = "p7-tools-test"
    consumer = KafkaConsumer(bootstrap_servers=broker, group_id=group,
                             enable_auto_commit=False)
    committed = {partition: end // 2 for partition, end in end_offsets.items()}
    consumer.assign([TopicPartition(p7check.TOPIC, p) for p in committed])
    consumer.commit({TopicPartition(p7check.TOPIC, p): OffsetAndMetadata(offset, "", -1)
                     for p, offset in committed.items()})
    consumer.close()
    result = tool("kafka-consumer-groups", "--describe", "--group", group, broker=broker)
    assert result.returncode == 0, result.stderr
    lag = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if fields[:2] == [group, p7check.TOPIC]:
            partition, current, end, behind = map(int, fields[2:6])
            assert (current, end) == (committed[partition], end_offsets[partition])
            lag[partition] = behind
    assert lag == {p: end_offsets[p] - committed[p] for p in committed}
