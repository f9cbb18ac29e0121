"""Broker outages under load, the scenario: kill -9 a broker of our own and start it again,
over and over, while producer.py (no delay), consumer.py (all partitions, with the birthday
feature) and debug.py run; then check that nothing was lost and nothing counted twice.

run_outages() runs it: on a harness.LocalBroker (free ports, its state under the work folder;
never the broker at KAFKA_BOOTSTRAP), closed at the end. Afterwards the producer is stopped, the
consumer must catch up, and every partition file and birthday.json must agree with the topic as
tools/p7check.py recomputes it, and debug.py must have printed every message once. A program
that dies is counted and started again (the producer is not: it would recreate the topic), so a
long soak reports how often that happened instead of stopping at the first death.

tests/test_outages.py runs it with a few outages; `python -m tools.scripts.soak_outages` with
as many as you ask for.
"""

import ast
import contextlib
import json
import os
import signal
import time
from pathlib import Path

from tools import harness, p7check
from tools.harness import FILES

BIRTHDAY = "1990-10-02"
# How long the broker stays up (under load) and down, in seconds, drawn uniformly per outage.
UP_SEC = (2.0, 6.0)
DOWN_SEC = (0.2, 6.0)
CATCH_UP_SEC = 180
WAITING_WORDS = "waiting for the broker"
BACK_WORDS = "the broker answers again"


class Program(harness.Program):
    """A program of files/ (cwd and logs in the work folder), which may be started again after
    it died."""

    def __init__(self, workdir, name, args, env):
        self.deaths = []
        self.launch = (workdir, name, args, env)
        self._start()

    def _start(self):
        workdir, name, args, env = self.launch
        super().__init__(FILES / name, args, workdir, env=env, cwd=workdir)

    def restart(self):
        self._start()

    def note_death(self):
        """True (and remembered, with the last lines it wrote) if it has died."""
        if self.running():
            return False
        tail = " | ".join(self.stderr.strip().splitlines()[-3:])
        self.deaths.append(f"{self.name} exited {self.process.returncode}: {tail}")
        return True


def expected_birthdays(folder):
    return p7check.expected_birthdays(BIRTHDAY, p7check.partition_offsets(folder))


def birthday_problem(folder, expected):
    try:
        with open(folder / "birthday.json") as f:
            found = json.load(f)
    except FileNotFoundError:
        return "there is no birthday.json"
    except ValueError as err:
        return f"birthday.json is not valid JSON: {err}"
    if found != expected:
        wrong = sorted(year for year in set(found) | set(expected)
                       if found.get(year) != expected.get(year))
        return f"birthday.json differs from the topic for {wrong[:10]}"
    return None


def check_exact(folder):
    """Problems of the partition files and birthday.json against the topic (empty: exact).
    birthday.json is given time to take in the last readings the workers published."""
    problems = []
    for n in range(p7check.PARTITIONS):
        offset, found = p7check.check_partition_file(folder / f"partition-{n}.json", n)
        problems += [f"partition-{n}.json at offset {offset}: {p}" for p in found]
    expected = expected_birthdays(folder)
    try:
        p7check.wait_until(lambda: birthday_problem(folder, expected) is None, 60,
                           "birthday.json to agree with the topic")
    except AssertionError:
        problems.append(birthday_problem(folder, expected))
    return problems


def debug_rows(stdout):
    """{partition: [(date, degrees), ...]} of the dictionaries debug.py printed."""
    rows = {}
    for line in stdout.splitlines():
        row = ast.literal_eval(line)
        rows.setdefault(row["partition"], []).append((row["date"], row["degrees"]))
    return rows


def debug_missing(debug, topic_rows):
    """How many messages debug.py has yet to print, if what it printed per partition is an
    unbroken run of that partition's messages up to now (the first printed one may repeat, as
    the producer's duplicates do); None when it is not: a message skipped or printed twice."""
    missing = 0
    for n, printed in debug_rows(debug.stdout).items():
        topic = topic_rows[n]
        starts = [i for i, row in enumerate(topic) if row == printed[0]]
        runs = [i for i in starts if topic[i:i + len(printed)] == printed]
        if not runs:
            return None
        missing += len(topic) - runs[-1] - len(printed)
    return missing


def run_outages(workdir, outages, rng, up=UP_SEC, down=DOWN_SEC, say=print, broker=None,
                stop_signal=signal.SIGINT, minutes=None):
    """The scenario: `outages` short outages (fewer if `minutes` run out first), then a long
    last one during which the producer is stopped with `stop_signal`. Returns a dict of what
    happened (see the keys at the end). A `broker` given (a harness.LocalBroker) is used (it
    must be running) and left running; otherwise one of our own is started and closed."""
    workdir = Path(workdir)
    out_dir = workdir / "files"
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:
        if broker is None:
            broker = cleanup.enter_context(harness.LocalBroker(workdir / "broker"))
        cleanup.enter_context(harness.use_bootstrap(broker.bootstrap))  # for p7check
        env = dict(os.environ, KAFKA_BOOTSTRAP=broker.bootstrap, WEATHER_DELAY_SEC="0",
                   PYTHONUNBUFFERED="1")
        programs = []
        cleanup.callback(lambda: [program.kill() for program in programs])
        producer = Program(workdir, "producer.py", ["--seed", "7"], env)
        programs.append(producer)
        p7check.wait_until(lambda: "Topics:" in producer.stdout or not producer.running(), 90,
                           "the producer to create the topics")
        consumer = Program(workdir, "consumer.py",
                           ["0", "1", "2", "3", "--dir", out_dir, "--birthday", BIRTHDAY], env)
        debug = Program(workdir, "debug.py", [], env)
        programs += [consumer, debug]
        outage = 0
        while outage < outages and producer.running():
            if minutes and time.monotonic() - started > minutes * 60:
                say(f"{minutes} minutes are up: ending with the last outage")
                break
            outage += 1
            before = sum(p7check.partition_offsets(out_dir).values())
            p7check.wait_until(lambda: sum(p7check.partition_offsets(out_dir).values()) > before, 120,
                               "the consumer to make progress before the next outage")
            time.sleep(rng.uniform(*up))  # load between outages: part of the scenario
            broker.kill()
            time.sleep(rng.uniform(*down))  # the outage itself
            broker.start()
            for program in (consumer, debug):
                if program.note_death():
                    say(f"outage {outage}: {program.deaths[-1]}")
                    program.restart()
            if producer.note_death():
                say(f"outage {outage}: {producer.deaths[-1]}; stopping the soak")
                continue
            say(f"outage {outage}/{outages} done at {time.monotonic() - started:.0f} s, "
                f"{sum(p7check.end_offsets().values())} messages so far")

        # The last outage is a long one: the producer is stopped while the broker is away (it
        # must end within ~35 s, saying how many readings may be missing) and the consumers
        # wait all that time.
        before = sum(p7check.partition_offsets(out_dir).values())
        p7check.wait_until(lambda: sum(p7check.partition_offsets(out_dir).values()) > before
                           or not producer.running(), 120,
                           "the consumer to make progress before the last outage")
        broker.kill()
        producer.process.send_signal(stop_signal)  # a no-op if it died before
        stopping = time.monotonic()
        producer_status = producer.wait(timeout=120)
        producer_stop_sec = time.monotonic() - stopping
        broker.start()
        for program in (consumer, debug):
            program.note_death()
        say(f"last outage done at {time.monotonic() - started:.0f} s; the producer stopped "
            f"{producer_stop_sec:.1f} s after {stop_signal.name}")
        ends = p7check.end_offsets()
        say(f"{sum(ends.values())} messages; waiting for the consumer to catch up")
        p7check.wait_until(lambda: p7check.partition_offsets(out_dir) == ends or not consumer.running(),
                           CATCH_UP_SEC, "the consumer to catch up after the last outage")
        say("checking the files against the topic")
        problems = check_exact(out_dir)
        topic_rows = {n: [p7check.decode(record)[1:] for record in
                          p7check.read_partition(n, ends[n])] for n in ends}
        p7check.wait_until(lambda: debug_missing(debug, topic_rows) in (0, None), CATCH_UP_SEC,
                           "debug.py to print the last messages")
        say(f"checked at {time.monotonic() - started:.0f} s")
        if debug_missing(debug, topic_rows) is None:
            problems.append("debug.py skipped a message or printed one twice")
        birthday_years = len(expected_birthdays(out_dir)) - 1
        statuses = {"producer.py": producer_status, "consumer.py": consumer.stop(),
                    "debug.py": debug.stop()}
        return {
            "outages": outage + 1,
            "producer_stop_sec": round(producer_stop_sec, 1),
            "producer_said": (producer.stderr.strip().splitlines() or [""])[-1],
            "messages": sum(ends.values()),
            "birthday_years": birthday_years,
            "problems": problems,
            "deaths": [death for program in programs for death in program.deaths],
            "exit_codes": statuses,
            "waiting_lines": {p.name: p.stderr.count(WAITING_WORDS) for p in programs},
            "back_lines": {p.name: p.stderr.count(BACK_WORDS) for p in programs},
            "tracebacks": [p.name for p in programs if "Traceback" in p.stderr],
            "seconds": round(time.monotonic() - started),
        }
