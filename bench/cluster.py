#!/usr/bin/env python3
"""The three-node cluster against the single broker, in the same run, and a leader killed
mid-stream. Run after bench.bench by `make bench`; it writes its section at the end of
BENCHMARKS.md (replacing an earlier one).

    PYTHONPATH=files .venv/bin/python -m bench.cluster [--quick] [--out BENCHMARKS.md]

It starts a broker of its own and a cluster of its own on free ports, in a temporary folder,
and stops both at the end: nothing of the user's is touched.

1. throughput: bench/producer_runner.py (producer.py's own producer and produce()) sends the
   same readings to the single broker (replication 1) and to the cluster (replication 3,
   min.insync.replicas 2, acks=all); then consumer.py 0 1 2 3 catches up with that backlog on
   each, and its files are checked against the topic (tools/p7check.py).
2. failover: producer.py at full speed and consumer.py 0 1 2 3 on the cluster; the node
   leading partition 0 is killed -9 and brought back 10 s later with `make cluster`. The
   topic's appends carry the broker's clock (message.timestamp.type=LogAppendTime), so the
   producer's stall is read afterwards from the topic itself: the longest time without an
   append. The consumer's lag is its checkpoint files, sampled every 50 ms, against the
   appends made by then.
"""

import argparse
import bisect
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from kafka.admin import ConfigResource, ConfigResourceType

import producer as p7producer  # files/producer.py (PYTHONPATH=files)
from bench.bench import verify_files
from bench.sections import replace_section
from tools import harness, p7check
from tools.harness import FILES, ROOT

BENCH = ROOT / "bench"
SECTION = "## The three-node cluster"
MESSAGES = 100_000
QUICK_MESSAGES = 20_000
ROUNDS = 2
DOWN_SEC = 10
STEADY_SEC = 10
SAMPLE_SEC = 0.05
CATCH_UP_TIMEOUT = 300


def say(text):
    print(f"bench.cluster: {text}", flush=True)


class Target:
    """Where the programs send: the single broker or the cluster, with its replication."""

    def __init__(self, name, bootstrap, factor):
        self.name, self.bootstrap, self.factor = name, bootstrap, factor

    def env(self, **extra):
        return dict(os.environ, KAFKA_BOOTSTRAP=self.bootstrap, P7_REPLICATION_FACTOR=self.factor,
                    PYTHONUNBUFFERED="1", WEATHER_DELAY_SEC="0",
                    PYTHONPATH=os.pathsep.join([str(ROOT), str(FILES)]), **extra)

    def use(self):
        """p7check (and our admin calls) talk to this target from now on."""
        os.environ["KAFKA_BOOTSTRAP"] = self.bootstrap

    def recreate_topic(self):
        self.use()
        admin = p7check.new_admin()
        try:
            p7producer.REPLICATION_FACTOR = self.factor
            p7producer.recreate_topic(admin, p7check.TOPIC, p7check.PARTITIONS)
        finally:
            admin.close()


def produce_backlog(workdir, target, count):
    """(seconds, CPU seconds) of producer_runner.py sending `count` readings to `target`."""
    target.recreate_topic()
    child = harness.Program(BENCH / "producer_runner.py", ["producer.py", count], workdir,
                            env=target.env(), cwd=FILES,
                            log_name=f"producer-{target.name}-{time.monotonic_ns()}")
    try:
        if child.wait(600) != 0:
            raise RuntimeError(f"producer_runner.py on the {target.name} failed: "
                               f"{child.tail(8)}")
    finally:
        child.kill()
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return result["seconds"], result["cpu_seconds"]


def counted(folder):
    """The readings the consumer has checkpointed so far, over all partitions."""
    return sum(max(offset, 0) for offset in p7check.partition_offsets(folder).values())


def verify(folder, ends):
    problems = verify_files(folder, ends)
    if problems:
        raise RuntimeError(f"the partition files disagree with the topic: {problems[:3]}")


def catch_up(workdir, target):
    """Seconds for consumer.py 0 1 2 3, started now, to checkpoint the whole topic (process
    start included); its files are checked against the topic."""
    target.use()
    ends = p7check.end_offsets()
    folder = Path(tempfile.mkdtemp(dir=workdir))
    started = time.monotonic()
    consumer = harness.Program(FILES / "consumer.py", ["0", "1", "2", "3", "--dir", folder],
                               workdir, env=target.env(), cwd=folder,
                               log_name=f"consumer-{target.name}-{time.monotonic_ns()}")
    try:
        harness.wait_until(lambda: p7check.partition_offsets(folder) == ends or not consumer.running(),
                           CATCH_UP_TIMEOUT, f"consumer.py to catch up on the {target.name}",
                           interval=0.01)
        seconds = time.monotonic() - started
        if consumer.stop() != 0:
            raise RuntimeError(f"consumer.py on the {target.name} failed: {consumer.tail(8)}")
    finally:
        consumer.kill()
    verify(folder, ends)
    return seconds, sum(ends.values())


def throughput(workdir, targets, count, rounds):
    """Producer and consumer rates on each target, the targets interleaved in every round."""
    results = {target.name: {"produce": [], "consume": []} for target in targets}
    for round_number in range(1, rounds + 1):
        for target in targets:
            seconds, cpu = produce_backlog(workdir, target, count)
            consume_seconds, messages = catch_up(workdir, target)
            results[target.name]["produce"].append(count / seconds)
            results[target.name]["consume"].append(messages / consume_seconds)
            say(f"round {round_number}, {target.name}: producer {count / seconds:,.0f} msg/s, "
                f"consumer {messages / consume_seconds:,.0f} msg/s (files exact)")
    return {name: {kind: statistics.median(rates) for kind, rates in figures.items()}
            for name, figures in results.items()}


def append_times(ends):
    """Every message's append time (broker clock, seconds), sorted, and partition 0's."""
    times, first_partition = [], []
    for n, end in ends.items():
        stamps = [record.timestamp / 1000 for record in p7check.read_partition(n, end)]
        times += stamps
        if n == 0:
            first_partition = sorted(stamps)
    return sorted(times), first_partition


def longest_gap(times, start, stop):
    """The longest time between consecutive appends within [start, stop], and when it began."""
    window = [t for t in times if start <= t <= stop]
    gaps = [(later - earlier, earlier) for earlier, later in zip(window, window[1:])]
    return max(gaps, default=(0.0, start))


def failover(workdir, cluster, target):
    """Kill -9 the leader of partition 0 mid-stream, bring it back DOWN_SEC later."""
    target.use()
    folder = Path(tempfile.mkdtemp(dir=workdir))
    env = target.env()
    producer = harness.Program(FILES / "producer.py", ["--seed", "7"], workdir, env=env,
                               cwd=folder, log_name="producer-failover")
    programs = [producer]
    samples = []  # (wall time, sum of the checkpoint offsets)
    try:
        admin = p7check.new_admin()
        try:
            harness.wait_for_recreated_topic(admin, p7check.TOPIC, None, p7check.PARTITIONS,
                                             still_going=producer.running)
            admin.alter_configs([ConfigResource(
                ConfigResourceType.TOPIC, p7check.TOPIC,
                configs={"message.timestamp.type": "LogAppendTime"})])
            leader = harness.partition_states(admin, p7check.TOPIC)[0][0]
        finally:
            admin.close()
        consumer = harness.Program(FILES / "consumer.py", ["0", "1", "2", "3", "--dir", folder],
                                   workdir, env=env, cwd=folder, log_name="consumer-failover")
        programs.append(consumer)

        def sample_for(seconds):
            until = time.monotonic() + seconds
            while time.monotonic() < until:
                samples.append((time.time(), counted(folder)))
                time.sleep(SAMPLE_SEC)

        sample_for(STEADY_SEC)
        killed_at = time.time()
        cluster.kill(leader)
        sample_for(DOWN_SEC)
        restart_started = time.time()
        cluster.start()
        back_at = time.time()
        sample_for(STEADY_SEC)
        for program in programs:
            if not program.running():
                raise RuntimeError(f"{program.describe()} died in the failover: "
                                   f"{program.tail(8)}")
        stopped_at = time.time()
        if producer.stop() != 0:
            raise RuntimeError(f"producer.py failed: {producer.tail(8)}")
        ends = p7check.end_offsets()
        harness.wait_until(lambda: p7check.partition_offsets(folder) == ends or not consumer.running(),
                           CATCH_UP_TIMEOUT, "consumer.py to catch up after the failover")
        if consumer.stop() != 0:
            raise RuntimeError(f"consumer.py failed: {consumer.tail(8)}")
    finally:
        for program in programs:
            program.kill()
    verify(folder, ends)
    missing = p7check.missing_days(ends)
    if missing:
        raise RuntimeError(f"{len(missing)} days missing from the topic, the first {missing[0]}")

    times, first_partition = append_times(ends)
    before = [t for t in times if t < killed_at]
    steady_rate = len([t for t in before if t >= killed_at - STEADY_SEC / 2]) / (STEADY_SEC / 2)
    stall, stall_start = longest_gap(times, killed_at - 1, stopped_at)
    partition_0_stall, _ = longest_gap(first_partition, killed_at - 1, stopped_at)
    lags = [bisect.bisect_right(times, at) - counted for at, counted in samples]
    before_kill = [lag for (at, _), lag in zip(samples, lags) if at < killed_at]
    return {
        "leader": leader,
        "messages": len(times),
        "steady_rate": steady_rate,
        "stall": stall,
        "stall_after_kill": stall_start - killed_at,
        "partition_0_stall": partition_0_stall,
        "restart_seconds": back_at - restart_started,
        "peak_lag": max(lags),
        "peak_lag_at": samples[lags.index(max(lags))][0] - killed_at,
        "steady_peak_lag": max(before_kill, default=0),
        "producer_said": [line for line in producer.stderr.splitlines() if line.strip()],
        "consumer_waits": consumer.stderr.count("waiting for the broker"),
    }


def render(figures, failed_over, count, rounds, started):
    single, cluster = figures["single broker"], figures["cluster"]
    f = failed_over
    said = "; ".join(f["producer_said"]) or "nothing (kafka-python's own retries sufficed)"
    return f"""{SECTION}

Measured by `python -m bench.cluster` (part of `make bench`) on {started:%Y-%m-%d %H:%M} UTC: a
broker and a three-node cluster of its own (`make cluster`'s launcher, on free ports), Kafka
{kafka_version()}, on this 2-core machine; other work may have run beside it.

### Throughput, same run

{count:,} readings; {rounds} round(s), the two targets interleaved in each, the median shown.
Producer: `bench/producer_runner.py` (producer.py's own producer and `produce()`, acks=all,
idempotence, one request in flight). Consumer: `consumer.py 0 1 2 3` catching up with that
backlog, process start included; every run's files were checked exact against the topic.

| | single broker (replication 1) | cluster (replication 3, min ISR 2) | cluster / single |
|---|---:|---:|---:|
| producer.py, msg/s | {single['produce']:,.0f} | {cluster['produce']:,.0f} | {cluster['produce'] / single['produce']:.2f} |
| consumer.py catch-up, msg/s | {single['consume']:,.0f} | {cluster['consume']:,.0f} | {cluster['consume'] / single['consume']:.2f} |

With acks=all a write on the cluster is acknowledged only once a second node has fetched it,
one request in flight per connection: the producer pays a replication round trip per batch.
The consumer reads from the leaders alone, so replication costs it little.

### A leader killed mid-stream

producer.py at full speed and `consumer.py 0 1 2 3` on the cluster; after {STEADY_SEC} s the
node leading partition 0 (node {f['leader']}) was killed -9 and brought back {DOWN_SEC} s later
with `make cluster` (which took {f['restart_seconds']:.1f} s to see all three nodes again);
{STEADY_SEC} s more, then the producer was stopped. The stall is read from the topic's append
times (LogAppendTime, the broker's clock), the lag from the consumer's checkpoint files sampled
every {SAMPLE_SEC * 1000:.0f} ms against the appends made by then.

| | |
|---|---:|
| messages in the run | {f['messages']:,} |
| appends before the kill | {f['steady_rate']:,.0f} msg/s |
| producer stall: the longest time without any append, from the kill on | {f['stall']:.1f} s (began {f['stall_after_kill']:+.1f} s after the kill) |
| partition 0 alone: the longest time without an append | {f['partition_0_stall']:.1f} s |
| consumer's peak lag | {f['peak_lag']:,} messages ({f['peak_lag_at']:.1f} s after the kill) |
| consumer's peak lag before the kill | {f['steady_peak_lag']:,} messages |

Nothing was lost: the consumer's files were exact against the topic and the topic held every
day from 1990-01-01 on. The producer said: {said}. The consumer said {f['consumer_waits']}
time(s) that it waited for the broker, and each time that it was back.

The stall is mostly Kafka's failure detection: the controller fences a node that missed its
heartbeats for `broker.session.timeout.ms` (9 s by default) and only then moves its
leaderships; until then the producer's batches for the dead leader wait (kafka-python retries
them), and with at most 20,000 unacknowledged readings the producer soon waits as a whole.
"""


def kafka_version():
    return (ROOT / "broker" / "kafka-version").read_text().strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description="The cluster against the single broker.")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_MESSAGES:,} readings, "
                                                              "one round")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    count, rounds = (QUICK_MESSAGES, 1) if args.quick else (MESSAGES, ROUNDS)
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="p7-bench-cluster-") as workdir:
        workdir = Path(workdir)
        say("starting a broker and a cluster of our own")
        with harness.LocalBroker(workdir / "broker") as single, \
                harness.LocalCluster(workdir / "cluster") as cluster:
            targets = [Target("single broker", single.bootstrap, "1"),
                       Target("cluster", cluster.bootstrap, "3")]
            figures = throughput(workdir, targets, count, rounds)
            say("failover: killing the leader of partition 0 mid-stream")
            failed_over = failover(workdir, cluster, targets[1])
    text = render(figures, failed_over, count, rounds, started)
    replace_section(args.out, SECTION, text)
    say(f"wrote {SECTION[3:]!r} into {args.out}")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
