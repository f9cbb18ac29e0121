#!/usr/bin/env python3
"""`make run`: the whole P7 pipeline in one terminal, with a live status line.

    python -m tools.scripts.run_pipeline [--delay 0.5] [--birthday 1997-10-02] [--dir files]
                                  [--duration SECONDS] [--log-dir .run-logs]
                                  [--dashboard-port 8544]

Starts files/producer.py (which recreates the `temperatures` topic), waits until the topic
exists, then starts files/consumer.py --reset (the assignment's two rounds, from fresh partition
files) and files/plot.py. Their output goes to log files so that the status line stays readable:
the newest simulated date counted, the messages produced, each partition's checkpoint offset and
lag, and when the plot was last redrawn. Ctrl-C or SIGTERM stops everything it started and exits
0; if a program dies on its own, its last stderr lines are shown, the others are stopped, exit 1.

The broker is KAFKA_BOOTSTRAP (default localhost:9092), as for the programs themselves.
"""

import argparse
import json
import math
import os
import shutil
import signal
import sys
import time
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from tools import harness
from tools.harness import FILES, ROOT
from tools.p7check import MONTH_NAMES, PARTITIONS, TOPIC, bootstrap

DEFAULT_LOG_DIR = ROOT / ".run-logs"
BROKER = bootstrap()
PNG_NAME = "yearly_trends.png"
DASHBOARD_PORT = 8544
TOPIC_TIMEOUT_SEC = 120
STOP_TIMEOUT_SEC = 30
KAFKA_TIMEOUT_MS = 2000
TICK_SEC = 0.2
TTY_STATUS_SEC = 1.0
LOG_STATUS_SEC = 5.0
STDERR_TAIL_LINES = 15

stop_requested = False


class ChildDied(Exception):
    """A program of the pipeline exited without being asked to."""


def request_stop(signum, frame):
    global stop_requested
    stop_requested = True


def shown(path):
    """A path as the user would type it: relative when under the current folder."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def say(text):
    print(f"run_pipeline: {text}", flush=True)


# ---------------------------------------------------------------- the programs

def start_program(name, args, log_dir, env):
    """One program of files/, its stdout and stderr in LOG_DIR/NAME.out and .err."""
    return harness.Program(FILES / name, args, log_dir, env=env, cwd=ROOT,
                           log_name=Path(name).stem)


def died(program):
    tail = program.tail(STDERR_TAIL_LINES, separator="\n")
    where = shown(program.stderr_path)
    report = f"{program.name} exited unexpectedly (exit code {program.returncode})"
    if program.stderr.strip():
        return f"{report}; last lines of {where}:\n" + "\n".join(
            "    " + line for line in tail.splitlines())
    return f"{report}; {where} is empty"


def stop_children(children):
    """SIGTERM to each (exactly once: a second signal could cut a producer's flush), one
    deadline for all, then SIGKILL to what is left, consumer.py's workers included."""
    for program in harness.stop_all(children, STOP_TIMEOUT_SEC):
        say(f"{program.name} did not stop within {STOP_TIMEOUT_SEC} s; it was killed")


def check_alive(children):
    for child in children:
        if not child.running():
            raise ChildDied(died(child))


def current_topic_id():
    """The topic's id before the producer recreates it (None: none, or no broker yet)."""
    try:
        admin = KafkaAdminClient(bootstrap_servers=BROKER.split(","), client_id="p7-run-pipeline",
                                 bootstrap_timeout_ms=KAFKA_TIMEOUT_MS)
    except KafkaError:
        return None
    try:
        return harness.topic_id(admin, TOPIC)
    finally:
        admin.close()


def wait_for_topic(producer, children, old_topic_id):
    """Wait until the producer has recreated the topic (a new id, every partition led); False
    if a stop was requested meanwhile."""
    deadline = time.monotonic() + TOPIC_TIMEOUT_SEC
    admin = None
    try:
        while True:
            check_alive(children)
            if stop_requested:
                return False
            if time.monotonic() > deadline:
                raise ChildDied(f"producer.py did not create the topic within "
                                f"{TOPIC_TIMEOUT_SEC} s (is the broker at {BROKER} running?); "
                                f"see {shown(producer.stderr_path)}")
            try:
                admin = admin or KafkaAdminClient(bootstrap_servers=BROKER.split(","),
                                                  client_id="p7-run-pipeline",
                                                  bootstrap_timeout_ms=KAFKA_TIMEOUT_MS)
                harness.wait_for_recreated_topic(admin, TOPIC, old_topic_id, PARTITIONS,
                                                 timeout=TICK_SEC)
                return True
            except (KafkaError, AssertionError):
                pass  # not yet: look again, after the checks above
    finally:
        if admin is not None:
            admin.close()


# ---------------------------------------------------------------- the status line

def read_partition_files(folder):
    """{partition: dict} of the partition files that can be read right now."""
    files = {}
    for n in range(PARTITIONS):
        try:
            with open(folder / f"partition-{n}.json") as f:
                data = json.load(f)
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            files[n] = data
    return files


def newest_date(files):
    ends = [stats.get("end", "") for data in files.values() for month, years in data.items()
            if month in MONTH_NAMES and isinstance(years, dict)
            for stats in years.values() if isinstance(stats, dict)]
    return max((end for end in ends if isinstance(end, str)), default="")


class EndOffsets:
    """The topic's end offsets through one long-lived KafkaConsumer; None while unknown."""

    def __init__(self):
        self.consumer = None

    def get(self):
        try:
            if self.consumer is None:
                self.consumer = KafkaConsumer(bootstrap_servers=BROKER.split(","), group_id=None,
                                              enable_auto_commit=False,
                                              client_id="p7-run-pipeline-status",
                                              bootstrap_timeout_ms=KAFKA_TIMEOUT_MS)
            tps = [TopicPartition(TOPIC, n) for n in range(PARTITIONS)]
            # A short timeout: a broker that went away must not freeze the loop (and Ctrl-C).
            answer = self.consumer.end_offsets(tps, timeout_ms=KAFKA_TIMEOUT_MS)
            return {tp.partition: offset for tp, offset in answer.items()}
        except KafkaError:
            return None

    def close(self):
        if self.consumer is not None:
            self.consumer.close()


def status_line(folder, end_offsets, started_at):
    files = read_partition_files(folder)
    parts = [f"date {newest_date(files) or '-'}"]
    parts.append("produced " + (f"{sum(end_offsets.values())}" if end_offsets else "?"))
    offsets = []
    for n in range(PARTITIONS):
        offset = files.get(n, {}).get("offset")
        if not isinstance(offset, int):
            offsets.append(f"p{n} -")
        elif end_offsets and n in end_offsets:
            offsets.append(f"p{n} {offset} lag {end_offsets[n] - offset}")
        else:
            offsets.append(f"p{n} {offset}")
    parts.append("offsets " + ", ".join(offsets))
    try:
        mtime = (folder / PNG_NAME).stat().st_mtime
    except OSError:
        mtime = None
    if mtime is None or mtime < started_at:
        parts.append("plot not drawn yet")
    else:
        parts.append(f"plot {max(0, time.time() - mtime):.0f} s ago")
    return " | ".join(parts)


class StatusPrinter:
    """On a terminal one line redrawn in place about every second, otherwise a line every few
    seconds (a log or a pipe must not fill with carriage returns)."""

    def __init__(self, folder, started_at):
        self.folder = folder
        self.started_at = started_at
        self.tty = sys.stdout.isatty()
        self.every = TTY_STATUS_SEC if self.tty else LOG_STATUS_SEC
        self.next_at = time.monotonic()
        self.offsets = EndOffsets()
        self.drawn = False

    def tick(self):
        if time.monotonic() >= self.next_at:
            self.show()
            self.next_at = time.monotonic() + self.every

    def show(self):
        line = status_line(self.folder, self.offsets.get(), self.started_at)
        if self.tty:
            # Cut to the terminal's width: a wrapped line could not be redrawn in place.
            width = shutil.get_terminal_size().columns - 1
            sys.stdout.write("\r\x1b[K" + line[:width])
            self.drawn = True
        else:
            sys.stdout.write(line + "\n")
        sys.stdout.flush()

    def end_line(self):
        """Leave the redrawn line in place before anything else is printed."""
        if self.drawn:
            sys.stdout.write("\n")
            sys.stdout.flush()
            self.drawn = False

    def close(self):
        self.offsets.close()


# ---------------------------------------------------------------- main

def supervise(children, status, deadline):
    while not stop_requested:
        check_alive(children)
        if deadline is not None and time.monotonic() >= deadline:
            return "the --duration is over"
        status.tick()
        time.sleep(TICK_SEC)
    return "stop requested"


def run(args):
    folder = Path(args.dir).resolve()
    log_dir = Path(args.log_dir).resolve()
    log_dir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, WEATHER_DELAY_SEC=repr(args.delay), PYTHONUNBUFFERED="1")
    deadline = None if args.duration is None else time.monotonic() + args.duration
    started_at = time.time()

    consumer_args = ["--reset", "--dir", str(folder)]
    consumer_env = dict(env)
    consumer_env.pop("P7_BIRTHDAY", None)  # off means off, whatever the shell has set
    if args.birthday:
        consumer_args += ["--birthday", args.birthday]

    say(f"broker {BROKER}, one simulated day every {args.delay:g} s, files in "
        f"{shown(folder)}")
    say(f"logs of the programs: {shown(log_dir)}/ (producer, consumer, plot, dashboard "
        ".out/.err)")
    say("Ctrl-C stops everything")

    children = []
    status = StatusPrinter(folder, started_at)
    try:
        old_topic_id = current_topic_id()
        # The dashboard first: it shows the files (and the broker's state) from the start, and
        # a port already taken stops the pipeline before anything else has begun.
        children.append(start_program("dashboard.py", ["--dir", str(folder), "--port",
                                                       str(args.dashboard_port)], log_dir, env))
        say(f"dashboard: http://localhost:{args.dashboard_port}/")
        producer = start_program("producer.py", [], log_dir, env)
        children.append(producer)
        if wait_for_topic(producer, children, old_topic_id):
            say("topic ready; starting consumer.py --reset and plot.py")
            children.append(start_program("consumer.py", consumer_args, log_dir, consumer_env))
            children.append(start_program("plot.py", ["--dir", str(folder)], log_dir, env))
            why = supervise(children, status, deadline)
            status.show()  # the final numbers, whatever the terminal
        else:
            why = "stop requested"
        status.end_line()
        say(f"{why}; stopping {', '.join(child.name for child in children)}")
        stop_children(children)
        for child in children:
            if child.returncode != 0:
                say(f"note: {child.name} exited with code {child.returncode} when "
                    f"stopped; see {shown(child.stderr_path)}")
        say("stopped")
        return 0
    except ChildDied as err:
        status.end_line()
        print(f"run_pipeline: error: {err}", file=sys.stderr, flush=True)
        others = [child for child in children if child.running()]
        if others:
            say(f"stopping {', '.join(child.name for child in others)}")
        stop_children(others)
        return 1
    finally:
        # Whatever went wrong in here, nothing we started may outlive us.
        stop_children([child for child in children if child.running()])
        status.close()


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Run producer.py, consumer.py and plot.py together with a status line.")
    parser.add_argument("--delay", type=float, default=0.5, metavar="SECONDS",
                        help="seconds per simulated day (WEATHER_DELAY_SEC; default 0.5)")
    # nargs="?": `make run BIRTHDAY=` ends the command line with a bare --birthday, meaning off.
    parser.add_argument("--birthday", nargs="?", const="", default="", metavar="DATE",
                        help="passed on to consumer.py --birthday; empty: off")
    parser.add_argument("--dir", default=str(FILES),
                        help="folder of the partition files and of the plot (default: files/)")
    parser.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                        help="stop by itself after this long (default: run until Ctrl-C)")
    parser.add_argument("--dashboard-port", type=int, default=DASHBOARD_PORT, metavar="PORT",
                        help=f"port of files/dashboard.py (default {DASHBOARD_PORT})")
    parser.add_argument("--log-dir", default=str(DEFAULT_LOG_DIR),
                        help="folder for the programs' output (default: .run-logs/)")
    args = parser.parse_args(argv)
    if not (args.delay >= 0 and math.isfinite(args.delay)):
        parser.error("--delay must be zero or more seconds")
    if args.duration is not None and not (args.duration > 0 and math.isfinite(args.duration)):
        parser.error("--duration must be a number of seconds above 0")
    if not 0 < args.dashboard_port < 65536:
        parser.error("--dashboard-port must be between 1 and 65535")
    if not os.path.isdir(args.dir):
        parser.error(f"--dir {args.dir} is not a folder")
    args.birthday = args.birthday.strip()
    return args


def main(argv=None):
    args = parse_args(argv)
    # Installed before any child starts; SIGINT explicitly, since a shell that starts us in the
    # background ignores it otherwise.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
