"""Soak test of the data half of reliability, run by hand (not part of `make test`):

    .venv/bin/python -m tools.scripts.soak_data --seconds 300

On a broker of its own (free ports, a temporary folder; the one at KAFKA_BOOTSTRAP is not
touched), against a live producer.py, one `consumer.py 0 1 2 3` owns the partition files while
- a reader thread parses the live partition files in a tight loop (every read must be JSON),
- a second consumer.py (one or two partitions, or the two rounds) tries to take over every
  second and must be refused,
- a hostile message of a rotating kind is injected every --poison-every seconds,
- the owner is killed with SIGKILL every --kill-every seconds and restarted at once (it must
  never be locked out by its dead self).
At the end the files must equal tools/p7check.py's oracle, and, independently of the date
rule, every real reading of the producer must be counted exactly once. Prints the figures.
"""

import argparse
import itertools
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kafka import KafkaProducer

from tools.partition_files import ConcurrentReader
from tools import harness, p7check
from tools.harness import FILES
SECOND_OWNERS = (["0"], ["2", "3"], ["1", "--reset"], [])


def report(date, degrees=50.0):
    encoded = date.encode()
    return bytes([0x0A, len(encoded)]) + encoded + b"\x11" + struct.pack("<d", degrees)


# (name, key, value): far-ahead dates, bad dates, bad values, an old replay.
POISONS = [
    ("far future", b"December", report("2999-12-31")),
    ("year 9999", b"March", report("9999-03-31")),
    ("ISO week date", b"May", report("1990-W20-1")),
    ("30 February", b"February", report("1990-02-30")),
    ("month of another key", b"June", report("1990-07-01")),
    ("null value", b"July", None),
    ("not a protobuf", b"August", b"\xff\xfe garbage"),
    ("1e308 degrees", b"September", report("1990-09-01", 1e308)),
    ("NaN degrees", b"October", report("1990-10-01", float("nan"))),
    ("an old replay", b"January", report("1990-01-01")),
]


started = []  # killed when the soak ends, whatever happened


def start(name, *args, folder, env):
    program = harness.Program(FILES / name, args, folder, env=env)
    started.append(program)
    return program


def start_owner(data_dir, work, env):
    """consumer.py 0 1 2 3, once it holds its partitions' locks."""
    owner = start("consumer.py", "0", "1", "2", "3", "--dir", str(data_dir), folder=work,
                     env=env)

    def locked():
        if not owner.running():
            raise AssertionError(f"the owner exited with {owner.returncode}: see {work}")
        try:
            return (data_dir / "partition-3.json.lock").read_text().strip() == str(owner.pid)
        except FileNotFoundError:
            return False

    p7check.wait_until(locked, 60, "the owner to take its locks")
    return owner


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--poison-every", type=float, default=2)
    parser.add_argument("--kill-every", type=float, default=10)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="p7-soak-"))
    try:
        with harness.LocalBroker() as broker, harness.use_bootstrap(broker.bootstrap):
            print(f"a broker of our own on {broker.bootstrap}; logs in {work}", flush=True)
            env = dict(os.environ, PYTHONUNBUFFERED="1", WEATHER_DELAY_SEC="0.002")
            try:
                return soak(args, work, env)
            finally:
                for program in started:
                    program.kill()
    except harness.BrokerError as err:
        print(f"soak_data: error: {err}", file=sys.stderr)
        return 1
    except AssertionError as err:  # a wait that timed out: the soak failed
        print(f"FAIL: {err}; logs in {work}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def soak(args, work, env):
    data_dir = work / "d"
    data_dir.mkdir()

    producer = start("producer.py", "--seed", "21", folder=work, env=env)
    p7check.wait_until(lambda: sum(p7check.end_offsets().values()) > 400, 60, "the producer")
    owner = start_owner(data_dir, work, env)
    reader = ConcurrentReader(data_dir)  # every read parses, no file vanishes
    reader.start()
    injector = KafkaProducer(bootstrap_servers=p7check.bootstrap(), acks="all")
    injected, refused, not_refused, kills = set(), 0, [], 0
    poisons = itertools.cycle(POISONS)
    deadline = time.monotonic() + args.seconds
    next_poison = next_kill = time.monotonic()
    for attempt in itertools.count():
        if time.monotonic() > deadline:
            break
        if time.monotonic() >= next_poison:
            name, key, value = next(poisons)
            meta = injector.send(p7check.TOPIC, key=key, value=value).get(timeout=30)
            injected.add((meta.partition, meta.offset))
            next_poison += args.poison_every
        if time.monotonic() >= next_kill and attempt:
            owner.kill()
            kills += 1
            owner = start_owner(data_dir, work, env)
            next_kill += args.kill_every
        second = subprocess.run([sys.executable, str(FILES / "consumer.py"),
                                 *SECOND_OWNERS[attempt % len(SECOND_OWNERS)],
                                 "--dir", str(data_dir)], capture_output=True, text=True,
                                env=env, timeout=60)
        if second.returncode == 1 and "kept by process" in second.stderr:
            refused += 1
        else:
            not_refused.append(second.stderr.strip()[-300:])
        if not owner.running():
            raise AssertionError(f"the owner exited with {owner.returncode}: see {work}")
    injector.close()
    producer.stop(timeout=60)
    ends = p7check.end_offsets()

    p7check.wait_until(lambda: p7check.partition_offsets(data_dir) == ends, 300,
                       "the owner to catch up")
    owner_exit = owner.stop(timeout=60)
    reader.stop()

    problems, real_readings = [], 0
    for n in range(p7check.PARTITIONS):
        path = data_dir / f"partition-{n}.json"
        offset, found = p7check.check_partition_file(path, n)
        problems += [f"partition {n}: {p}" for p in found]
        data = json.loads(path.read_text())
        real_dates = {p7check.decode(record)[1] for record in p7check.read_partition(n, offset)
                      if (n, record.offset) not in injected}
        counted = sum(stats["count"] for month, years in data.items()
                      if month not in ("partition", "offset") for stats in years.values())
        real_readings += len(real_dates)
        if counted != len(real_dates):
            problems.append(f"partition {n}: counted {counted} of {len(real_dates)} real dates")
    print(f"{args.seconds:.0f} s, {sum(ends.values())} messages: {len(injected)} hostile "
          f"messages of {len(POISONS)} kinds injected; {refused} second owners refused, "
          f"{len(not_refused)} not; {kills} kill -9 of the owner, each restarted at once; "
          f"{reader.reads} concurrent reads, {reader.failure_count} failed; {real_readings} real "
          f"readings, oracle problems: {len(problems)}; owner exit {owner_exit}")
    for line in (not_refused + reader.failures + problems)[:10]:
        print("  " + line)
    print(f"logs in {work}")
    return 0 if not (not_refused or reader.failure_count or problems or owner_exit) else 1


if __name__ == "__main__":
    sys.exit(main())
