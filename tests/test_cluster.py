"""The three-node cluster: failover with nothing lost, and the replication factor.

A private cluster of broker/launcher.py on free ports (its folders under a temporary one),
started and brought back after each kill with `make cluster`, as a user does; the session broker
is not involved. The programs get the cluster as a bootstrap list.
"""

import time

import pytest
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.errors import KafkaError

from helpers import (assert_exact, assert_one_clean_sentence, current_topic_id, days_counted,
                     offsets_in, wait_until)
from tools import harness, p7check

pytestmark = pytest.mark.chaos  # a three-node cluster of its own, nodes killed and restarted

DOWN_SEC = 10          # the "bring it back 10 s later"
TWO_DOWN_SEC = 15
PROGRESS_TIMEOUT = 300  # a loaded 2-core machine recovers slowly; a passing run never waits it
CATCH_UP_TIMEOUT = 300


@pytest.fixture(scope="module")
def module_cluster(tmp_path_factory):
    """The cluster of this module's tests; stopped, with no node left, after the last one."""
    with harness.LocalCluster(tmp_path_factory.mktemp("cluster")) as cluster, \
            harness.use_bootstrap(cluster.bootstrap):  # for p7check
        yield cluster


@pytest.fixture
def cluster(module_cluster):
    """The module's cluster with all three nodes up, whatever an earlier test left behind."""
    module_cluster.start()
    yield module_cluster


@pytest.fixture
def start(run_program, cluster):
    """start("producer.py", *args, delay=, factor=): conftest's run_program on the cluster, with
    P7_REPLICATION_FACTOR=factor (killed at the end of the test, also when it failed)."""

    def run(name, *args, delay=None, factor="3"):
        return run_program(name, *args, delay=delay, env={
            "KAFKA_BOOTSTRAP": cluster.bootstrap, "P7_REPLICATION_FACTOR": factor})

    return run


def describe_topic():
    """{partition: (leader, replicas, isr)} of `temperatures`; {} while the cluster cannot say."""
    admin = p7check.new_admin()
    try:
        return harness.partition_states(admin, p7check.TOPIC)
    finally:
        admin.close()


def topic_ends():
    """The topic's end offsets; None while the cluster cannot say (kafka-python gives up on a
    bootstrap node that just died instead of asking the next one)."""
    try:
        return p7check.end_offsets()
    except KafkaError:
        return None


def topic_total():
    ends = topic_ends()
    return None if ends is None else sum(ends.values())


def fully_replicated():
    partitions = describe_topic()
    return len(partitions) == p7check.PARTITIONS and all(
        leader >= 0 and len(isr) == 3 for leader, _replicas, isr in partitions.values())


def counted(folder):
    """The sum of the partition files' checkpoint offsets."""
    return sum(offsets_in(folder, range(p7check.PARTITIONS)).values())


def assert_alive(*programs):
    for program in programs:
        assert program.running(), f"{program.describe()} died: {program.tail(8)}"


def test_producer_refuses_more_replicas_than_live_brokers(start):
    """P7_REPLICATION_FACTOR=4 on three nodes, 1 below min.insync.replicas=2, or not a number:
    one sentence each, exit non-zero, and the topic is left as it was."""
    before = current_topic_id()
    for factor, complaint in (("4", "only 3 brokers are live"),
                              ("1", "below the brokers' min.insync.replicas=2"),
                              ("three", "must be a whole number")):
        producer = start("producer.py", factor=factor)
        assert producer.wait(60) != 0
        assert complaint in assert_one_clean_sentence(producer.stderr), producer.stderr
    assert current_topic_id() == before


def set_min_insync_replicas(value):
    admin = p7check.new_admin()
    try:
        admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, p7check.TOPIC,
                                            configs={"min.insync.replicas": str(value)})])
    finally:
        admin.close()


def test_readings_kafka_refuses_are_held_and_sent_again_in_order(tmp_path, cluster, start):
    """Fewer in-sync replicas than min.insync.replicas (one node down, the topic asking for
    three): Kafka refuses every write and kafka-python gives up after its 10 retries. The
    producer says so once, keeps the readings Kafka did not acknowledge, and sends them again in
    their order once the node is back: every day is in the topic and counted exactly once."""
    producer = start("producer.py", "--seed", "7", delay=0.0005)
    wait_until(lambda: fully_replicated() or not producer.running(), 90,
               "the producer to create `temperatures`")
    wait_until(lambda: (topic_total() or 0) >= 2000 or not producer.running(),
               60, "2000 messages")
    set_min_insync_replicas(3)
    victim = describe_topic()[0][0]
    cluster.kill(victim)
    wait_until(lambda: "did not take readings" in producer.stderr or not producer.running(), 90,
               "the producer to say that Kafka refuses its readings")
    assert "in-sync replicas is lower than the configured minimum" in producer.stderr, producer.stderr
    cluster.start()
    wait_until(lambda: "takes readings again" in producer.stderr or not producer.running(), 90,
               "the producer to send the held readings")
    refused_at = wait_until(topic_total, PROGRESS_TIMEOUT, "the topic's end offsets")
    wait_until(lambda: (topic_total() or 0) > refused_at + 2000
               or not producer.running(), 60, "the producer to carry on")
    set_min_insync_replicas(2)
    assert producer.stop() == 0, producer.stderr
    assert "Traceback" not in producer.stderr
    assert producer.stderr.count("did not take readings") == 1, producer.stderr
    folder = tmp_path / "files"
    folder.mkdir()
    consumer = start("consumer.py", "0", "1", "2", "3", "--dir", folder)
    ends = wait_until(topic_ends, PROGRESS_TIMEOUT, "the topic's end offsets")
    wait_until(lambda: offsets_in(folder, range(p7check.PARTITIONS)) == ends
               or not consumer.running(), CATCH_UP_TIMEOUT, "the consumer to catch up")
    assert consumer.stop() == 0, consumer.tail(8)
    assert_exact_and_complete(folder, ends)


def assert_exact_and_complete(folder, ends):
    """The partition files agree with the topic up to `ends`, the topic holds every day since
    1990-01-01, and the files count each of them once."""
    assert offsets_in(folder, range(p7check.PARTITIONS)) == ends
    assert_exact(folder, range(p7check.PARTITIONS))
    assert p7check.missing_days(ends) == []
    counted_readings, days = days_counted(folder)
    assert counted_readings == days, "a day was skipped or counted twice"


def test_failover_loses_nothing_and_kills_no_program(tmp_path, cluster, start):
    """producer.py at high speed and two consumers on the cluster, replication 3. kill -9 the
    node leading partition 0, `make cluster` 10 s later; the same to another node; then two of
    the three nodes down at once for 15 s. Nothing dies, the files are exact, and the topic holds
    every day since 1990-01-01."""
    folder = tmp_path / "files"
    folder.mkdir()
    producer = start("producer.py", "--seed", "7", delay=0.0002)
    wait_until(lambda: fully_replicated() or not producer.running(), 90,
               "the producer to create `temperatures`, every partition on three nodes")
    assert_alive(producer)
    assert {len(replicas) for _, replicas, _ in describe_topic().values()} == {3}
    consumers = [start("consumer.py", "0", "1", "--dir", folder),
                 start("consumer.py", "2", "3", "--dir", folder)]
    programs = [producer, *consumers]

    def keeps_going(what):
        """Both the topic and the files grow again (or a program died: the assert says so)."""
        topic = wait_until(topic_total, PROGRESS_TIMEOUT, "the topic's end offsets")
        files = counted(folder)
        wait_until(lambda: ((topic_total() or 0) > topic
                            and counted(folder) > files)
                   or not all(p.running() for p in programs), PROGRESS_TIMEOUT,
                   f"the producer and the consumers to make progress {what}")
        assert_alive(*programs)

    keeps_going("on the healthy cluster")
    killed = []
    for round_number in (1, 2):
        # The node leading partition 0, unless it was killed before: then another.
        leader = describe_topic()[0][0]
        victim = leader if leader not in killed else next(n for n in (1, 2, 3)
                                                          if n not in killed)
        cluster.kill(victim)
        killed.append(victim)
        time.sleep(DOWN_SEC)  # the outage itself: the scenario, not a wait for a condition
        assert_alive(*programs)
        keeps_going(f"with node {victim} down")
        cluster.start()
        wait_until(fully_replicated, PROGRESS_TIMEOUT,
                   f"node {victim} to be back in every partition's in-sync replicas")
        keeps_going(f"after node {victim} came back")

    # Two of three down: no quorum and fewer in-sync replicas than min.insync.replicas. The
    # producer holds its readings (it may say so once) and carries on once a node is back.
    first, second = [n for n in (1, 2, 3) if n != killed[-1]][:2]
    cluster.kill(first)
    cluster.kill(second)
    time.sleep(TWO_DOWN_SEC)
    assert_alive(*programs)
    cluster.start()
    wait_until(fully_replicated, PROGRESS_TIMEOUT, "both nodes to be back in sync")
    keeps_going("after two nodes were down")

    assert producer.stop() == 0, producer.tail(8)
    assert "Traceback" not in producer.stderr, producer.stderr
    ends = wait_until(topic_ends, PROGRESS_TIMEOUT, "the topic's end offsets")
    wait_until(lambda: offsets_in(folder, range(p7check.PARTITIONS)) == ends
               or not all(c.running() for c in consumers), CATCH_UP_TIMEOUT,
               "the consumers to catch up with the topic")
    for consumer in consumers:
        assert consumer.stop() == 0, consumer.tail(8)
        assert "Traceback" not in consumer.stderr, consumer.stderr
    assert_exact_and_complete(folder, ends)
