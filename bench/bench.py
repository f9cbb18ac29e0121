#!/usr/bin/env python3
"""Benchmarks of the P7 pipeline, each figure beside its ceiling measured in the same run.

    make bench                                   # full run (15-20 minutes), writes BENCHMARKS.md
    PYTHONPATH=files .venv/bin/python -m bench.bench --quick     # small sizes (about 90 s)
    KAFKA_BOOTSTRAP=localhost:19492 PYTHONPATH=files .venv/bin/python -m bench.bench --out /tmp/B.md

It runs from the repository's root as a module (the tooling is the `tools` and `broker`
packages) with files/ on PYTHONPATH, as the programs there find each other; the processes it
starts inherit that.

These are measurements, not tests: nothing asserts a time. Correctness is checked, though: every
consumer run must end with partition files that tools/p7check.py's oracle agrees with.

The broker at KAFKA_BOOTSTRAP (default localhost:9092) is started through broker/launcher.py
when nothing answers there (the launcher picks the state folder from the port) and stopped at the
end only if this run started it. The `temperatures` topic is recreated: do not run this against
a broker whose data you want to keep.

1. consumer catch-up: consumer.py on a backlog of a century, one process for the four partitions
   and two workers [0, 1] + [2, 3], against a bare kafka-python fetch-and-parse loop;
2. producer: producer.py's send path against a bare KafkaProducer with the same settings, and
   with max_in_flight_requests_per_connection=5;
3. freshness: send at the assignment's pace (0.5 s per message), time until the checkpoint file
   that covers the message is written;
4. memory: the catch-up consumer's peak RSS, and its RSS along the century;
5. end to end: producer.py and consumer.py started together, a century, exactly once;
6. scale: catch-up time and peak memory on 1, 10 and 30 simulated centuries (bench/scale.py);
7. the dashboard under a flood: requests per second and latency at 1, 100 and 1,000 concurrent
   clients (bench/dashboard_flood.py, which also runs alone and fills in only its section).

Section 1 also runs the one-process pair with kafka-python's pure-Python CRC32C (the crc32c
package hidden, bench/no_crc32c), to show what the package is worth.
"""

import argparse
import contextlib
import datetime
import io
import itertools
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import google.protobuf
import kafka
from google.protobuf.internal import api_implementation
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

import consumer as p7consumer  # files/consumer.py (PYTHONPATH=files)
import producer as p7producer  # files/producer.py
import weather  # files/weather.py
from broker import launcher as kafka_launcher
from report_pb2 import Report
from bench import dashboard_flood, scale
from bench.report import RSS_MARKS, fmt_rate, render
from tools import harness, p7check
from tools.harness import FILES, ROOT, ProgramTimeout
from tools.p7check import PARTITIONS, TOPIC

BENCH = ROOT / "bench"

os.environ.setdefault("KAFKA_BOOTSTRAP", "localhost:9092")
BOOTSTRAP = os.environ["KAFKA_BOOTSTRAP"]
# Our own use of the weather generator never sleeps; the freshness loop paces itself.
os.environ["WEATHER_DELAY_SEC"] = "0"

SEED = 7
PACE_SEC = 0.5
POLL_SEC = 0.005
DUPLICATE_FACTOR = 1.05
# The targets: consumer.py catches up at 0.9x its bare loop or better, producer.py sends at 0.8x.
CONSUMER_TARGET = 0.9
PRODUCER_TARGET = 0.8
# A folder whose crc32c.py fails to import: first on a child's PYTHONPATH, it makes kafka-python
# fall back to its pure-Python CRC32C, to show what the crc32c package is worth.
NO_CRC32C = BENCH / "no_crc32c"
FRESHNESS_TARGET_SEC = 1.0
TWO_WORKERS = ([0, 1], [2, 3])
ONE_WORKER = ([0, 1, 2, 3],)
# The fetch settings whose kafka-python defaults the "defaults" consumer variant restores.
FETCH_SETTINGS = ("max_poll_records", "fetch_max_bytes", "max_partition_fetch_bytes",
                  "fetch_min_bytes", "fetch_max_wait_ms")
OFFSET_RE = re.compile(rb'"offset":\s*(\d+)')

SIZES = {
    "full": {"years": 100, "repeats": 7, "producer_messages": 40_000, "producer_repeats": 7,
             "fresh_messages": 200, "e2e_years": 100},
    "quick": {"years": 10, "repeats": 1, "producer_messages": 5_000, "producer_repeats": 1,
              "fresh_messages": 30, "e2e_years": 10},
}


class BenchError(Exception):
    """The benchmark could not run (or a consumer got the stats wrong)."""


def say(text):
    print(f"bench: {text}", flush=True)


# ---------------------------------------------------------------- broker and topic

def admin_client():
    return KafkaAdminClient(bootstrap_servers=BOOTSTRAP.split(","), client_id="p7-bench-admin")


def delete_topic():
    admin = admin_client()
    try:
        if TOPIC in admin.list_topics():
            admin.delete_topics([TOPIC])
            p7check.wait_until(lambda: TOPIC not in admin.list_topics(), 60,
                               f"topic {TOPIC} to be deleted")
    finally:
        admin.close()


def recreate_topic():
    admin = admin_client()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            p7producer.recreate_topic(admin, TOPIC, PARTITIONS)
    finally:
        admin.close()


class Offsets:
    """The topic's end offsets through one long-lived client (no bootstrap per question)."""

    def __init__(self):
        self.consumer = p7check.new_consumer()
        self.tps = [TopicPartition(TOPIC, n) for n in range(PARTITIONS)]

    def ends(self):
        return {tp.partition: end for tp, end in self.consumer.end_offsets(self.tps).items()}

    def close(self):
        self.consumer.close()


# ---------------------------------------------------------------- processes and files

def child_env(pure_crc=False, **extra):
    # files/ on the path: the bench/ helpers import the programs there, as bench.py does.
    path = [str(NO_CRC32C)] * pure_crc + [str(ROOT), str(FILES)]
    env = dict(os.environ, KAFKA_BOOTSTRAP=BOOTSTRAP, PYTHONUNBUFFERED="1",
               PYTHONPATH=os.pathsep.join(path), **extra)
    env.pop("P7_BIRTHDAY", None)  # the plain stats consumer, without the birthday extra
    return env


def start_child(workdir, name, argv, env):
    """A python script of argv as its own process, cwd files/, output in the work folder."""
    script, *args = argv
    return harness.Program(script, args, workdir, env=env, cwd=FILES, log_name=(
        f"{name}-{time.monotonic_ns()}"))


def cpu_seconds(pid):
    """User + system CPU time the process has used so far (None once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_kib(pid):
    """{"VmRSS": kib, "VmHWM": kib} of the process, {} once it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, value = line.split(":")
                    values[key] = int(value.split()[0])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return values


def wait_for_recreated_topic(producer, old_topic_id):
    admin = admin_client()
    try:
        harness.wait_for_recreated_topic(admin, TOPIC, old_topic_id, PARTITIONS,
                                         still_going=producer.running)
    except AssertionError:
        raise BenchError(f"producer.py did not recreate {TOPIC}: {producer.stderr}") from None
    finally:
        admin.close()


def current_topic_id():
    admin = admin_client()
    try:
        return harness.topic_id(admin, TOPIC)
    finally:
        admin.close()


class FileWatcher:
    """Polls partition-N.json files; remembers when each new offset was first seen."""

    def __init__(self, folder, partitions):
        self.paths = {n: Path(folder) / f"partition-{n}.json" for n in partitions}
        self.stamps = dict.fromkeys(partitions)
        self.offsets = dict.fromkeys(partitions)
        self.history = {n: [] for n in partitions}
        self.first_seen = None  # the first moment every file existed

    def poll(self):
        now = time.monotonic()
        for n, path in self.paths.items():
            try:
                st = os.stat(path)
            except FileNotFoundError:
                continue
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
            if stamp == self.stamps[n]:
                continue
            offset = read_offset(path)
            if offset is None:
                continue
            self.stamps[n] = stamp
            if offset != self.offsets[n]:
                self.offsets[n] = offset
                self.history[n].append((now, offset))
        if self.first_seen is None and all(v is not None for v in self.offsets.values()):
            self.first_seen = now
        return now

    def reached(self, ends):
        return all((self.offsets[n] or 0) >= ends[n] for n in self.paths)

    def first_progress(self):
        times = [t for hist in self.history.values() for t, offset in hist if offset > 0]
        return min(times, default=None)

    def written_at(self, partition, offset):
        """When a file covering `offset` (file offset > offset) was first seen."""
        for seen, file_offset in self.history[partition]:
            if file_offset > offset:
                return seen
        return None


def read_offset(path):
    """The "offset" of a partition file, read from its first bytes (the files are replaced
    atomically, so any open sees a whole file)."""
    try:
        with open(path, "rb") as f:
            head = f.read(256)
    except FileNotFoundError:
        return None
    match = OFFSET_RE.search(head)
    if match:
        return int(match.group(1))
    try:
        with open(path) as f:
            return json.load(f).get("offset")
    except (FileNotFoundError, ValueError):
        return None


def verify_files(folder, ends):
    """The oracle's verdict on each partition file: a list of problems, empty when all agree."""
    problems = []
    for n, end in ends.items():
        # Reading a partition of millions of records (section 6) takes minutes, not seconds.
        offset, wrong = p7check.check_partition_file(Path(folder) / f"partition-{n}.json", n,
                                                     timeout=max(60, end / 5_000))
        if offset != end:
            problems.append(f"partition {n}: offset {offset} != end offset {end}")
        problems.extend(f"partition {n}: {p}" for p in wrong[:5])
    return problems


# ---------------------------------------------------------------- numbers

def require_exact(code, consumer, folder, ends, label):
    """A figure counts only if consumer.py stopped cleanly with files equal to the topic."""
    if code != 0:
        raise BenchError(f"{label}: consumer.py exited with {code}: {consumer.stderr}")
    problems = verify_files(folder, ends)
    if problems:
        raise BenchError(f"{label}: the partition files disagree with the topic: {problems}")


def percentile(values, fraction):
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def century_target(years):
    """Messages for `years` simulated years with the generator's 5% duplicates (rounded up)."""
    days = (datetime.date(1990 + years, 1, 1) - weather.START_DATE).days
    return math.ceil(days * DUPLICATE_FACTOR)


def readings_before(year, seed=SEED):
    """How many messages the seeded generator sends before `year`-01-01 (exactly)."""
    stop = f"{year}-01-01"
    return sum(1 for _ in itertools.takewhile(lambda r: r[0] < stop,
                                              weather.get_next_weather(0, seed=seed)))


def nth_reading(count, seed=SEED):
    """The (date, degrees) of the count-th message the seeded generator sends."""
    return next(itertools.islice(weather.get_next_weather(0, seed=seed), count - 1, None))


# ---------------------------------------------------------------- 0. the backlog

def preload(offsets, years, workdir):
    """producer.py at delay 0 until the topic holds `years` simulated years; returns info."""
    target = century_target(years)
    start = time.monotonic()
    old_topic_id = current_topic_id()
    producer = start_child(workdir, "producer", [FILES / "producer.py", "--seed", SEED],
                           child_env(WEATHER_DELAY_SEC="0"))
    try:
        wait_for_recreated_topic(producer, old_topic_id)
        p7check.wait_until(lambda: sum(offsets.ends().values()) >= target, 300,
                           f"{target} messages in {TOPIC}", interval=0.02)
        code = producer.stop()
    finally:
        producer.kill()
    if code != 0:
        raise BenchError(f"producer.py exited with {code}: {producer.stderr}")
    seconds = time.monotonic() - start
    ends = offsets.ends()
    total = sum(ends.values())
    last_date = nth_reading(total)[0]
    covered_days = (datetime.date.fromisoformat(last_date) - weather.START_DATE).days + 1
    return {"years": years, "target": target, "ends": ends, "total": total,
            "exact_century": readings_before(1990 + years), "last_date": last_date,
            "covered_years": covered_days / 365.2425, "seconds": seconds}


# ---------------------------------------------------------------- 1 + 4. consumer catch-up

def run_consumers(workdir, groups, ends, label, override=None, timeout=600, pure_crc=False):
    """consumer.py processes (one per group) from empty files until every file reaches `ends`."""
    folder = Path(tempfile.mkdtemp(prefix="files-", dir=workdir))
    total = sum(ends.values())
    if override is None:
        script, env = FILES / "consumer.py", child_env(pure_crc)
    else:
        script = BENCH / "consumer_variant.py"
        env = child_env(pure_crc, P7_BENCH_CONSUMER_KWARGS=json.dumps(override))
    watcher = FileWatcher(folder, ends)
    start = time.monotonic()
    children = [start_child(workdir, f"consumer{''.join(map(str, g))}", [script, *g, "--dir", folder],
                      env) for g in groups]
    rss_marks, rss_samples, next_sample = {}, [], start
    try:
        while True:
            now = watcher.poll()
            for child in children:
                if not child.running():
                    raise BenchError(f"{label}: {child.name} exited early: {child.stderr}")
            if len(children) == 1:
                done_fraction = sum(min(watcher.offsets[n] or 0, end)
                                    for n, end in ends.items()) / total
                for mark in RSS_MARKS:
                    if mark not in rss_marks and done_fraction >= mark:
                        rss_marks[mark] = memory_kib(children[0].pid).get("VmRSS")
                if now >= next_sample:
                    rss_samples.append((now - start, done_fraction,
                                        memory_kib(children[0].pid).get("VmRSS")))
                    next_sample = now + 0.25
            if watcher.reached(ends):
                break
            if now - start > timeout:
                raise BenchError(f"{label}: not caught up after {timeout} s; files at "
                                 f"{watcher.offsets}, ends {ends}")
            time.sleep(POLL_SEC)
        done = now
        cpu = sum(cpu_seconds(child.pid) or 0 for child in children)
        peaks = [memory_kib(child.pid).get("VmHWM") for child in children]
        codes = [child.stop() for child in children]
    finally:
        for child in children:
            child.kill()
    if any(codes):
        raise BenchError(f"{label}: exit codes {codes}: "
                         + " | ".join(c.stderr[-500:] for c in children))
    problems = verify_files(folder, ends)
    if problems:
        raise BenchError(f"{label}: the partition files disagree with the topic: {problems}")
    file_bytes = {n: os.path.getsize(folder / f"partition-{n}.json") for n in ends}
    shutil.rmtree(folder)
    ready = watcher.first_seen or done
    return {"label": label, "messages": total, "seconds": done - start,
            "startup": ready - start, "first_progress": (watcher.first_progress() or done) - start,
            "rate": total / (done - start), "fetch_rate": total / max(done - ready, 1e-9),
            "cpu_seconds": cpu, "cpu_rate": total / max(cpu, 1e-9),
            "peak_kib": peaks, "rss_marks": rss_marks, "rss_samples": rss_samples,
            "file_bytes": file_bytes, "verified": True}


def run_ceiling(workdir, groups, ends, label, config=None, pure_crc=False):
    """Bare fetch-and-parse processes (bench/bare_consumer.py), one per group, in parallel."""
    total = sum(ends.values())
    argv_config = ["--config", json.dumps(config)] if config else []
    start = time.monotonic()
    children = [start_child(workdir, f"ceiling{''.join(map(str, g))}",
                      [BENCH / "bare_consumer.py", "--ends",
                       ",".join(f"{n}:{ends[n]}" for n in g), *argv_config],
                            child_env(pure_crc))
                for g in groups]
    try:
        codes = [child.wait(600) for child in children]
    finally:
        for child in children:
            child.kill()
    if any(codes):
        raise BenchError(f"{label}: " + " | ".join(c.stderr[-500:] for c in children))
    stamps = [json.loads(child.stdout.strip().splitlines()[-1]) for child in children]
    done = max(s["done"] for s in stamps)
    ready = max(s["connected"] for s in stamps)
    records = sum(s["records"] for s in stamps)
    if records != total:
        raise BenchError(f"{label}: read {records} records, expected {total}")
    crcs = {s["crc32c"] for s in stamps}
    if crcs != {"python" if pure_crc else "crc32c package"}:
        raise BenchError(f"{label}: kafka-python checked the CRCs with {crcs}")
    return {"label": label, "messages": total, "seconds": done - start,
            "startup": ready - start, "rate": total / (done - start),
            "fetch_rate": total / max(done - ready, 1e-9), "cpu_seconds": sum(s["cpu_seconds"] for s in stamps),
            "cpu_rate": total / max(sum(s["cpu_seconds"] for s in stamps), 1e-9),
            "peak_kib": [s.get("peak_kib") for s in stamps]}


def consumer_fetch_settings():
    """The fetch settings of consumer.py's stats workers (its CONSUMER_CONFIG)."""
    return {k: v for k, v in p7consumer.CONSUMER_CONFIG.items() if k in FETCH_SETTINGS}


def bench_catchup(workdir, backlog, repeats):
    ends = backlog["ends"]
    defaults = {k: KafkaConsumer.DEFAULT_CONFIG[k] for k in FETCH_SETTINGS}
    # The ceiling fetches exactly as consumer.py does: the ratio is the cost of what consumer.py
    # adds (validation, stats, files), not of a fetch configuration.
    settings = consumer_fetch_settings()
    runs = {key: [] for key in ("one", "two", "one_defaults", "ceiling_one", "ceiling_two",
                                "ceiling_one_nocrc", "one_nocrc")}
    for round_number in range(1, repeats + 1):
        say(f"catch-up round {round_number}/{repeats}")
        # Interleaved, so that a burst of load from elsewhere hits all of them alike.
        runs["ceiling_one"].append(run_ceiling(workdir, ONE_WORKER, ends, "ceiling, 1 process",
                                               settings))
        runs["one"].append(run_consumers(workdir, ONE_WORKER, ends, "consumer.py 0 1 2 3"))
        runs["ceiling_two"].append(run_ceiling(workdir, TWO_WORKERS, ends,
                                               "ceiling, 2 processes", settings))
        runs["two"].append(run_consumers(workdir, TWO_WORKERS, ends,
                                         "consumer.py 0 1 + consumer.py 2 3"))
        runs["one_defaults"].append(run_consumers(workdir, ONE_WORKER, ends,
                                                  "consumer.py 0 1 2 3, kafka-python's "
                                                  "default fetch settings",
                                                  override=defaults))
        # The same pair with kafka-python's pure-Python CRC32C: what the crc32c package is worth.
        runs["ceiling_one_nocrc"].append(run_ceiling(workdir, ONE_WORKER, ends,
                                                     "ceiling, 1 process, no crc32c", settings,
                                                     pure_crc=True))
        runs["one_nocrc"].append(run_consumers(workdir, ONE_WORKER, ends,
                                               "consumer.py 0 1 2 3, no crc32c", pure_crc=True))
        for key, values in runs.items():
            say(f"  {values[-1]['label']}: {values[-1]['seconds']:.2f} s, "
                f"{fmt_rate(values[-1]['rate'])} msg/s, {values[-1]['cpu_seconds']:.2f} s CPU")
    return {"runs": runs, "settings": settings, "defaults": defaults}


# ---------------------------------------------------------------- 2. producer

def run_producer(workdir, mode, count, *options):
    """(wall seconds, CPU seconds) of one bench/producer_runner.py process."""
    child = start_child(workdir, "producer-bench", [BENCH / "producer_runner.py", mode, count,
                                                    *options], child_env())
    code = child.wait(600)
    if code != 0:
        raise BenchError(f"producer benchmark {mode} failed: {child.stderr[-800:]}")
    result = json.loads(child.stdout.strip().splitlines()[-1])
    return result["seconds"], result["cpu_seconds"], result.get("records_per_request") or 0


def bench_producer(workdir, count, repeats):
    start = time.process_time()
    for _ in itertools.islice(weather.get_next_weather(0, seed=SEED), count):
        pass
    generator_seconds = time.process_time() - start
    runs = {"producer_py": [], "producer_py_list": [], "bare_1": [], "bare_5": [],
            "bare_partitioner": []}
    for round_number in range(1, repeats + 1):
        say(f"producer round {round_number}/{repeats}")
        runs["bare_1"].append(run_producer(workdir, "bare", count))
        runs["producer_py"].append(run_producer(workdir, "producer.py", count))
        runs["bare_5"].append(run_producer(workdir, "bare", count, "--in-flight", 5))
        runs["producer_py_list"].append(run_producer(workdir, "producer.py-list", count))
        runs["bare_partitioner"].append(run_producer(workdir, "bare", count, "--partitioner"))
        for key, values in runs.items():
            say(f"  {key}: {count / values[-1][0]:,.0f} msg/s, {values[-1][1]:.2f} s CPU, "
                f"{values[-1][2]:.0f} messages per request")
    return {"count": count, "runs": runs, "generator_seconds": generator_seconds,
            "rates": {key: count / statistics.median(v[0] for v in values)
                      for key, values in runs.items()},
            "cpu_rates": {key: count / statistics.median(v[1] for v in values)
                          for key, values in runs.items()},
            "per_request": {key: statistics.median(v[2] for v in values)
                            for key, values in runs.items()},
            "ratios": {key: paired_speedups(values, runs["bare_1"])
                       for key, values in runs.items()},
            "vs_plain": paired_speedups(runs["producer_py"], runs["bare_partitioner"])}


def paired_speedups(runs, base_runs):
    """How much faster `runs` were than `base_runs`, round by round, then the median:
    (wall ratio, CPU ratio)."""
    return tuple(statistics.median(base[i] / run[i] for run, base in zip(runs, base_runs))
                 for i in (0, 1))


# ---------------------------------------------------------------- 3. freshness

def bench_freshness(workdir, count):
    """Messages at PACE_SEC into a fresh topic, consumer.py following: send -> file written."""
    recreate_topic()
    folder = Path(tempfile.mkdtemp(prefix="fresh-", dir=workdir))
    watcher = FileWatcher(folder, range(PARTITIONS))
    consumer = start_child(workdir, "consumer-fresh", [FILES / "consumer.py", 0, 1, 2, 3,
                                                 "--dir", folder], child_env())
    producer = p7producer.make_producer()
    sent = []  # (send time, future, ack time holder)
    try:
        p7check.wait_until(lambda: watcher.poll() and watcher.first_seen, 60,
                           "consumer.py to create its files", interval=POLL_SEC)
        time.sleep(1.0)  # let it settle into its poll loop
        readings = weather.get_next_weather(0, seed=SEED)
        start = time.monotonic()
        for i in range(count):
            date, degrees = next(readings)
            due = start + i * PACE_SEC
            while time.monotonic() < due:
                watcher.poll()
                time.sleep(POLL_SEC)
            acked = []
            sent_at = time.monotonic()
            future = producer.send(TOPIC, key=p7producer.MONTH_KEYS[date[5:7]],
                                   value=Report(date=date, degrees=degrees).SerializeToString())
            future.add_callback(lambda _md, acked=acked: acked.append(time.monotonic()))
            sent.append((sent_at, future, acked, date))
            watcher.poll()
        producer.flush()
        ends = {n: 0 for n in range(PARTITIONS)}
        for _, future, _, _ in sent:
            md = future.get(timeout=30)
            ends[md.partition] = max(ends[md.partition], md.offset + 1)
        deadline = time.monotonic() + 30
        while not watcher.reached(ends):
            if time.monotonic() > deadline or not consumer.running():
                raise BenchError(f"freshness: files at {watcher.offsets}, ends {ends}: "
                                 f"{consumer.stderr[-500:]}")
            watcher.poll()
            time.sleep(POLL_SEC)
        peak = memory_kib(consumer.pid).get("VmHWM")
        code = consumer.stop()
    finally:
        producer.close()
        consumer.kill()
    require_exact(code, consumer, folder, ends, "freshness")
    delays, ack_delays = [], []
    for sent_at, future, acked, _date in sent:
        md = future.get()
        written = watcher.written_at(md.partition, md.offset)
        delays.append(written - sent_at)
        if acked:
            ack_delays.append(acked[0] - sent_at)
    shutil.rmtree(folder)
    return {"count": count, "p50": percentile(delays, 0.5), "p99": percentile(delays, 0.99),
            "max": max(delays), "ack_p50": percentile(ack_delays, 0.5),
            "ack_p99": percentile(ack_delays, 0.99), "peak_kib": peak}


# ---------------------------------------------------------------- 5. end to end

def bench_end_to_end(workdir, offsets, years):
    """producer.py and consumer.py started together on a missing topic, until a century is
    produced (the producer is then stopped) and every file reached the end offsets."""
    target = century_target(years)
    delete_topic()
    folder = Path(tempfile.mkdtemp(prefix="e2e-", dir=workdir))
    watcher = FileWatcher(folder, range(PARTITIONS))
    start = time.monotonic()
    producer = start_child(workdir, "producer-e2e", [FILES / "producer.py", "--seed", SEED],
                     child_env(WEATHER_DELAY_SEC="0"))
    consumer = start_child(workdir, "consumer-e2e", [FILES / "consumer.py", 0, 1, 2, 3,
                                               "--dir", folder], child_env())
    try:
        wait_for_recreated_topic(producer, None)

        def produced_enough():
            watcher.poll()
            return sum(offsets.ends().values()) >= target or not producer.running()

        p7check.wait_until(produced_enough, 300, f"{target} messages", interval=0.02)
        if producer.stop() != 0:
            raise BenchError(f"end to end: producer.py failed: {producer.stderr}")
        produced = time.monotonic()
        ends = offsets.ends()
        deadline = time.monotonic() + 300
        while not watcher.reached(ends):
            now = watcher.poll()
            if now > deadline or not consumer.running():
                raise BenchError(f"end to end: files at {watcher.offsets}, ends {ends}: "
                                 f"{consumer.stderr[-500:]}")
            time.sleep(POLL_SEC)
        done = time.monotonic()
        code = consumer.stop()
    finally:
        producer.kill()
        consumer.kill()
    require_exact(code, consumer, folder, ends, "end to end")
    shutil.rmtree(folder)
    total = sum(ends.values())
    return {"years": years, "total": total, "seconds": done - start,
            "produced_seconds": produced - start, "lag_seconds": done - produced,
            "first_file": (watcher.first_seen or done) - start,
            "rate": total / (done - start), "last_date": nth_reading(total)[0]}


# ---------------------------------------------------------------- environment

def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    try:
        java = subprocess.run(["java", "-version"], capture_output=True, text=True,
                              timeout=30).stderr.strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        java = "unknown"
    return {"nproc": os.cpu_count(), "usable_cpus": len(os.sched_getaffinity(0)), "cpu": cpu,
            "memory": f"{mem_kib / 1024 / 1024:.1f} GiB", "kernel": platform.release(),
            "python": platform.python_version(), "kafka_python": kafka.__version__,
            "protobuf": f"{google.protobuf.__version__} ({api_implementation.Type()} backend)",
            "kafka": (ROOT / "broker" / "kafka-version").read_text().strip(), "java": java}


def other_brokers():
    """Kafka brokers on this machine that are not the one under test (sharing the CPUs)."""
    try:
        port = kafka_launcher.default_port()
    except kafka_launcher.LauncherError:  # a KAFKA_BOOTSTRAP the launcher cannot serve
        port = None
    ours = kafka_launcher.State(kafka_launcher.default_state_dir(port)).pid() if port else None
    count = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"kafka.Kafka" in cmdline and int(pid) != ours:
            count += 1
    return count


# ---------------------------------------------------------------- main

def report_settings(sizes):
    """The constants of this run that BENCHMARKS.md's text names."""
    return {"bootstrap": BOOTSTRAP, "seed": SEED, "consumer_target": CONSUMER_TARGET,
            "producer_target": PRODUCER_TARGET,
            "fresh_target": FRESHNESS_TARGET_SEC, "duplicate_factor": DUPLICATE_FACTOR,
            "partitions": PARTITIONS, "pace": PACE_SEC, "poll_sec": POLL_SEC,
            "e2e_target": century_target(sizes["e2e_years"])}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Benchmark the P7 pipeline into BENCHMARKS.md.")
    parser.add_argument("--quick", action="store_true", help="small sizes (development)")
    parser.add_argument("--out", default=str(ROOT / "BENCHMARKS.md"),
                        help="where to write the report (default: BENCHMARKS.md at the root)")
    parser.add_argument("--note", default="",
                        help="a sentence for the report about the conditions of the run")
    parser.add_argument("--keep-broker", action="store_true",
                        help="leave a broker this run started running")
    args = parser.parse_args(argv)
    sizes = SIZES["quick" if args.quick else "full"]

    began = time.monotonic()
    results = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "machine": machine(),
               "load": {"start": os.getloadavg()}}
    resources = contextlib.ExitStack()
    try:
        if args.keep_broker:
            started = harness.launcher("start")
            if started.returncode != 0:
                raise RuntimeError(started.stderr or started.stdout)
        else:
            resources.enter_context(harness.local_broker())
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as err:
        print(f"bench: error: could not start the broker: {err}", file=sys.stderr)
        return 1
    workdir = Path(tempfile.mkdtemp(prefix="p7-bench-"))
    offsets = None
    try:
        results["load"]["other_brokers"] = other_brokers()
        offsets = Offsets()
        say(f"1+4. preloading {sizes['years']} years")
        results["backlog"] = backlog = preload(offsets, sizes["years"], workdir)
        say(f"   {backlog['total']:,} messages in {backlog['seconds']:.1f} s")
        results["catchup"] = bench_catchup(workdir, backlog, sizes["repeats"])
        say(f"2. producer, {sizes['producer_messages']:,} messages")
        results["producer"] = bench_producer(workdir, sizes["producer_messages"],
                                             sizes["producer_repeats"])
        say(f"3. freshness, {sizes['fresh_messages']} messages at {PACE_SEC} s "
            f"(~{sizes['fresh_messages'] * PACE_SEC:.0f} s)")
        results["freshness"] = fresh = bench_freshness(workdir, sizes["fresh_messages"])
        say(f"   p50 {fresh['p50'] * 1000:.1f} ms, p99 {fresh['p99'] * 1000:.1f} ms")
        say(f"5. end to end, {sizes['e2e_years']} years")
        results["e2e"] = e2e = bench_end_to_end(workdir, offsets, sizes["e2e_years"])
        say(f"   {e2e['seconds']:.2f} s")
        results["scale"] = scale.bench_scale(workdir, scale.YEARS["quick" if args.quick
                                                                 else "full"],
                                             sys.modules[__name__])
        say("7. the dashboard under a flood")
        try:
            results["dashboard"] = dashboard_flood.bench_dashboard(workdir)
        except RuntimeError as err:
            raise BenchError(f"the dashboard's flood: {err}") from None
        results["load"]["end"] = os.getloadavg()
        results["seconds"] = time.monotonic() - began
        Path(args.out).write_text(render(results, args, report_settings(sizes)))
        say(f"wrote {args.out} ({results['seconds']:.0f} s)")
    except (BenchError, ProgramTimeout) as err:
        print(f"bench: error: {err}", file=sys.stderr)
        print(f"bench: the programs' output is kept in {workdir}", file=sys.stderr)
        return 1
    finally:
        if offsets:
            offsets.close()
        resources.close()
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
