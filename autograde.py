#!/usr/bin/env python3
"""Grade a P7 submission against a real Kafka broker, proving exact correctness.

    .venv/bin/python autograde.py                  # native: the broker of broker/launcher.py
    .venv/bin/python autograde.py --docker         # the submission's image, `docker exec`
    .venv/bin/python autograde.py --json out.json  # also write the results as JSON
    .venv/bin/python autograde.py --files DIR      # grade another copy of files/

The programs never run in the graded folder itself: its sources are copied to a temporary folder
(the committed sample outputs stay untouched) and run there, natively as local processes or,
with --docker, inside a container that mounts the copy as /files. Every check compares what the
programs did with the topic itself (tools/p7check.py recomputes the statistics straight from the
messages), and every wait has a deadline. Exit status: 0 when every check passes, 1 when one
fails, 2 when grading is impossible here (no kafka-python, no Docker engine, no files folder).
"""

import argparse
import ast
import contextlib
import datetime
import json
import math
import os
import random
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
DEFAULT_FILES = ROOT / "files"

from tools import harness  # standard library only: imports before the check just below
from tools.harness import PROGRAM_TIMEOUT, STOP_TIMEOUT, DockerError, ProgramTimeout

try:
    from kafka import KafkaAdminClient, TopicPartition
    from kafka.admin import OffsetSpec
    from kafka.errors import KafkaError

    from tools import p7check
except ImportError as import_error:
    MISSING_DEPENDENCY = import_error.name or "kafka-python"
else:
    MISSING_DEPENDENCY = None

TOPIC = "temperatures"
BIRTHDAY_TOPIC = "birthday-temperatures"
PARTITIONS = 4
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")

# The weather runs about 400 days per second: decades of data within the grading session.
WEATHER_DELAY_SEC = "0.002"
FIRST_SEED = 1          # the producer that check 3 stops again
SESSION_SEED = 7        # the producer that feeds every later check
BIRTHDAY = "1990-03-15"

# The grader's own image tag and container name, never the user's `p7`: grading must not
# touch what the user runs. The broker port is a free one for the same reason.
DOCKER_NAME_PREFIX = "p7-autograde"
DOCKER_RUN_ATTEMPTS = 3     # a free port can be taken between choosing and publishing it

# In the files folder; the Dockerfile is in the folder above it.
REQUIRED_FILES = ["producer.py", "debug.py", "consumer.py", "plot.py", "report.proto",
                  "report_pb2.py", "weather.py"]
SAMPLE_OUTPUTS = [f"partition-{n}.json" for n in range(PARTITIONS)] + ["yearly_trends.png"]
MIN_SAMPLE_YEARS = 3
# Generated outputs are never copied into the grading folder: the programs must make them.
OUTPUT_PATTERNS = ("partition-*.json*", "birthday.json*", "yearly_trends.png*", "*.tmp",
                   "__pycache__", "*.pyc")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

RESTART_MESSAGES = 1000     # what the first producer of check 3 sends before it is stopped
EXACT_MESSAGES = 4000       # about ten years: what check 7 compares at least
DEBUG_MIN_LINES = 50
KILL_CYCLES = 4
MIN_CONCURRENT_READS = 2000
MIN_FILE_VERSIONS = 20
MIN_BIRTHDAY_YEARS = 3
SHOWN_PROBLEMS = 3

TOPIC_TIMEOUT = 60
CATCH_UP_TIMEOUT = 90

SKIPPED = None              # the `passed` value of a check that does not apply


class CheckFailed(Exception):
    """Raised inside a check: the check fails with this sentence as its reason."""


def require(condition, reason):
    if not condition:
        raise CheckFailed(reason)


def first_problems(problems):
    shown = "; ".join(str(p) for p in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return shown + (f" (and {more} more)" if more > 0 else "")


# ---------------------------------------------------------------- reading files while they change

class ConcurrentReader(threading.Thread):
    """json.load the partition files in a tight loop, like a dashboard, and remember any failure."""

    def __init__(self, folder):
        super().__init__(daemon=True, name="concurrent-reader")
        self.folder = folder
        self.halt = threading.Event()
        self.reads = 0
        self.failures = []
        self.failure_count = 0
        self.seen = set()
        self.versions = set()

    def fail(self, text):
        self.failure_count += 1
        if len(self.failures) < SHOWN_PROBLEMS:
            self.failures.append(text)

    def run(self):
        while not self.halt.is_set():
            for n in range(PARTITIONS):
                path = self.folder / f"partition-{n}.json"
                try:
                    with open(path) as f:
                        data = json.load(f)
                except FileNotFoundError:
                    if n in self.seen:
                        self.fail(f"{path.name} vanished while being replaced")
                    continue
                except (ValueError, UnicodeDecodeError) as err:
                    self.fail(f"{path.name} did not parse ({err})")
                    continue
                self.reads += 1
                self.seen.add(n)
                if isinstance(data, dict):
                    self.versions.add((n, data.get("offset")))

    def stop(self):
        self.halt.set()
        self.join(timeout=STOP_TIMEOUT)


# ---------------------------------------------------------------- small helpers

def is_png(path):
    try:
        return path.read_bytes()[:8] == PNG_SIGNATURE
    except OSError:
        return False


def read_json(path):
    """The parsed file, or None when it is missing or does not parse."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


def calls_to(tree, function_name):
    """Every call of `function_name(...)` or `module.function_name(...)` in a syntax tree."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == function_name:
                yield {k.arg: literal(k.value) for k in node.keywords if k.arg}


def folder_snapshot(folder):
    """{name: (size, mtime)} of a folder's files, Python's byte-code caches left out."""
    snapshot = {}
    for path in folder.iterdir():
        if path.name == "__pycache__" or path.suffix == ".pyc":
            continue
        stat = path.stat()
        snapshot[path.name] = (stat.st_size, stat.st_mtime_ns)
    return snapshot


def month_years(data, month):
    years = data.get(month) if isinstance(data, dict) else None
    return years if isinstance(years, dict) else {}


def decode_records(records):
    """[(offset, key, date, degrees)] of records; undecodable ones give key None."""
    decoded = []
    for record in records:
        try:
            key, date, degrees = p7check.decode(record)
        except (ValueError, UnicodeDecodeError, AttributeError, IndexError, struct.error):
            key, date, degrees = None, None, None
        decoded.append((record.offset, key, date, degrees))
    return decoded


# ---------------------------------------------------------------- the grader

class Grader:
    def __init__(self, files, docker=False, keep=False):
        self.files = files
        self.submission = files.parent
        self.docker = docker
        self.keep = keep
        self.work = Path(tempfile.mkdtemp(prefix="p7-autograde-"))
        self.copy = self.work / "files"
        self.logs = self.work / "logs"
        self.logs.mkdir()
        self.programs = []
        self.admin = None
        self.producer = None
        self.producer_error = None  # why the session's producer could not be (re)started
        self.consumers = []
        self.reader = None
        self.resources = contextlib.ExitStack()  # the broker we started, stopped at cleanup
        self.setup_error = None
        self.container = None
        self.image = None

    # ---------------------------------------------------------- environment

    def copy_files(self):
        shutil.copytree(self.files, self.copy, ignore=shutil.ignore_patterns(*OUTPUT_PATTERNS))

    def setup(self):
        """Copy the sources, bring up a broker; a failure here fails every broker check."""
        try:
            self.copy_files()
            if self.docker:
                self.start_container()
            else:
                self.start_native_broker()
            self.admin = self.connect_admin()
        except Exception as err:  # noqa: BLE001  (reported for every check that needed it)
            text = str(err) or err.__class__.__name__
            # The whole story once (a failed build's step and error lines, a dead container's
            # log); each check that needed the broker then repeats only its first line.
            print(f"\nsetup failed: {text}\n", file=sys.stderr, flush=True)
            first_line = text.splitlines()[0]
            self.setup_error = first_line + (" (the lines that show why are printed above the "
                                             "table)" if "\n" in text else "")

    def start_native_broker(self):
        bootstrap = p7check.bootstrap()
        host = bootstrap.rpartition(":")[0]
        if host not in ("localhost", "127.0.0.1"):
            return  # somebody else's broker: use it as it is
        print(f"broker: the launcher's broker on {bootstrap}", flush=True)
        self.resources.enter_context(harness.local_broker())

    def start_container(self):
        suffix = harness.unique_suffix()
        self.image = f"{DOCKER_NAME_PREFIX}:{suffix}"
        print(f"docker: building image {self.image} from {self.submission}", flush=True)
        harness.build_image(self.submission, self.image)
        for attempt in range(1, DOCKER_RUN_ATTEMPTS + 1):
            port = harness.free_port()
            container = harness.Container(f"{DOCKER_NAME_PREFIX}-{suffix}-{attempt}",
                                          self.image, self.copy, broker_port=port,
                                          host_port=port)
            try:
                self.container = container.run()
                break
            except DockerError as err:
                container.remove()
                if "already allocated" not in str(err) or attempt == DOCKER_RUN_ATTEMPTS:
                    raise
        os.environ["KAFKA_BOOTSTRAP"] = f"localhost:{port}"  # p7check reads it too
        print(f"docker: container {self.container.name}, broker published on "
              f"localhost:{port}", flush=True)

    def connect_admin(self):
        deadline = time.monotonic() + 120
        while True:
            if self.container is not None:
                self.container.require_running()  # a dead container is reported at once
            try:
                return KafkaAdminClient(bootstrap_servers=[p7check.bootstrap()],
                                        client_id="p7-autograde")
            except KafkaError as err:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no Kafka broker answers on {p7check.bootstrap()} "
                                       f"({err})") from None
                time.sleep(1)

    def cleanup(self):
        """Kill everything we started, whatever happened before."""
        if self.reader is not None:
            self.reader.stop()
        for program in self.programs:
            try:
                program.kill()
            except Exception as err:  # noqa: BLE001  (keep cleaning up the others)
                print(f"cleanup: could not kill {program.describe()}: {err}", file=sys.stderr)
        if self.admin is not None:
            self.admin.close()
        if self.container is not None:
            if self.keep:
                subprocess.run(["docker", "rm", "-f", self.container.name], capture_output=True)
            else:
                self.container.remove()
        if self.image is not None:
            subprocess.run(["docker", "rmi", self.image], capture_output=True)
        self.resources.close()
        if self.keep:
            print(f"kept the grading folder {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---------------------------------------------------------- programs

    def start(self, name, *args):
        if self.docker:
            program = self.container.program(name, args, self.logs,
                                             env={"WEATHER_DELAY_SEC": WEATHER_DELAY_SEC})
        else:
            env = dict(os.environ, KAFKA_BOOTSTRAP=p7check.bootstrap(), PYTHONUNBUFFERED="1",
                       WEATHER_DELAY_SEC=WEATHER_DELAY_SEC)
            program = harness.Program(self.copy / name, args, self.logs, env=env, cwd=self.copy)
        self.programs.append(program)
        return program

    def run_to_end(self, name, *args, timeout=PROGRAM_TIMEOUT):
        program = self.start(name, *args)
        try:
            return program, program.wait(timeout)
        except ProgramTimeout:
            raise CheckFailed(f"`{program.describe()}` did not finish within {timeout} s") \
                from None

    @staticmethod
    def stopped(program):
        """The exit code on SIGTERM, None when it ignored it (and was killed)."""
        try:
            return program.stop()
        except ProgramTimeout:
            return None

    def ensure_producer(self):
        """The session's producer, started again if an earlier check could not leave one.
        When that fails once, every later check that needs it fails at once, for that reason."""
        if self.producer is not None and self.producer.running():
            return
        require(self.producer_error is None, f"no producer: {self.producer_error}")
        self.producer = self.start("producer.py", "--seed", SESSION_SEED)
        try:
            p7check.wait_until(lambda: (self.total_messages() or 0) >= 100
                               or not self.producer.running(), TOPIC_TIMEOUT,
                               "producer.py to fill the topic")
            self.require_running(self.producer)
        except (AssertionError, CheckFailed) as err:
            self.producer.kill()
            self.producer_error = str(err)
            raise

    def stop_consumers(self):
        problems = []
        for consumer in self.consumers:
            if consumer.running():
                code = self.stopped(consumer)
                if code != 0:
                    problems.append(f"`{consumer.describe()}` exited with {code} on SIGTERM "
                                    f"({consumer.tail(1)})")
        self.consumers = []
        return problems

    def start_consumer(self, *args):
        consumer = self.start("consumer.py", *args)
        self.consumers.append(consumer)
        return consumer

    def require_running(self, *programs):
        for program in programs:
            require(program.running(), f"`{program.describe()}` exited with "
                                       f"{program.process.returncode}: {program.tail()}")

    # ---------------------------------------------------------- the topic

    def end_offsets(self, topic=TOPIC):
        """{partition: end offset}, or None while the topic does not exist (being recreated)."""
        try:
            described = self.admin.describe_topics([topic])
            numbers = [p["partition_index"] for p in described[0].get("partitions") or []]
            if described[0].get("error_code") or not numbers:
                return None
            offsets = self.admin.list_partition_offsets(
                {TopicPartition(topic, n): OffsetSpec.LATEST for n in numbers}, timeout_ms=2000)
        except KafkaError:
            return None
        return {tp.partition: found.offset for tp, found in offsets.items()}

    def total_messages(self):
        offsets = self.end_offsets()
        return None if offsets is None else sum(offsets.values())

    def require_end_offsets(self):
        return p7check.wait_until(self.end_offsets, TOPIC_TIMEOUT, f"the {TOPIC} topic")

    def topic_id(self, topic=TOPIC):
        """The topic's unique id (a recreated topic gets a new one), None while it is missing."""
        try:
            (described,) = self.admin.describe_topics([topic])
        except KafkaError:
            return None
        return None if described.get("error_code") else described.get("topic_id")

    def topic_layout(self, topic=TOPIC):
        """(partition count, [replica count per partition]) of a topic."""
        (described,) = self.admin.describe_topics([topic])
        partitions = described.get("partitions") or []
        return len(partitions), [len(p.get("replica_nodes") or []) for p in partitions]

    def recreate_empty_topic(self):
        p7check.recreate_empty_topic(self.admin, TOPIC_TIMEOUT)

    def read_topic(self, offsets=None):
        """{partition: [(offset, key, date, degrees)]} of the whole topic up to `offsets`."""
        offsets = offsets or self.require_end_offsets()
        return {n: decode_records(p7check.read_partition(n, end)) for n, end in offsets.items()}

    # ---------------------------------------------------------- partition files

    def partition_file(self, n):
        return self.copy / f"partition-{n}.json"

    def remove_outputs(self, *names):
        for pattern in names:
            for path in self.copy.glob(pattern):
                path.unlink()

    def file_offsets(self):
        offsets = {}
        for n in range(PARTITIONS):
            data = read_json(self.partition_file(n))
            offsets[n] = data.get("offset") if isinstance(data, dict) else None
        return offsets

    def caught_up(self, target):
        offsets = self.file_offsets()
        return all(isinstance(offsets[n], int) and offsets[n] >= target[n] for n in target)

    def wait_caught_up(self, target, consumers):
        def done():
            self.require_running(*consumers)
            return self.caught_up(target)

        try:
            p7check.wait_until(done, CATCH_UP_TIMEOUT, "the consumers to catch up")
        except AssertionError:
            raise CheckFailed(f"the partition files did not reach offsets {target} within "
                              f"{CATCH_UP_TIMEOUT} s (they say {self.file_offsets()})") from None

    def partition_file_problems(self):
        """({partition: offset checked}, every difference between the four files and the topic
        they were computed from)."""
        offsets, problems = {}, []
        for n in range(PARTITIONS):
            path = self.partition_file(n)
            try:
                offset, found = p7check.check_partition_file(path, n)
            except (OSError, ValueError) as err:
                problems.append(f"{path.name}: {err}")
                continue
            if not isinstance(offset, int) or offset <= 0:
                found = [f"offset {offset!r}: nothing counted"] + found
            offsets[n] = offset
            problems.extend(f"{path.name}: {problem}" for problem in found)
        return offsets, problems

    def january_years(self):
        return max((len(month_years(read_json(self.partition_file(n)), "January"))
                    for n in range(PARTITIONS)), default=0)

    # ---------------------------------------------------------- the checks

    def check_required_files(self):
        missing = [] if (self.submission / "Dockerfile").is_file() else ["Dockerfile"]
        missing += [f"files/{name}" for name in REQUIRED_FILES + SAMPLE_OUTPUTS
                    if not (self.files / name).is_file()]
        require(not missing, "missing: " + ", ".join(missing))
        problems = []
        for n in range(PARTITIONS):
            data = read_json(self.files / f"partition-{n}.json")
            if not isinstance(data, dict) or data.get("partition") != n:
                problems.append(f"files/partition-{n}.json is not partition {n}'s JSON summary")
            elif not any(len(month_years(data, m)) >= MIN_SAMPLE_YEARS for m in MONTHS):
                problems.append(f"files/partition-{n}.json holds fewer than "
                                f"{MIN_SAMPLE_YEARS} years")
        if not is_png(self.files / "yearly_trends.png"):
            problems.append("files/yearly_trends.png is not a PNG image")
        require(not problems, first_problems(problems))
        return True, ""

    def check_proto(self):
        with tempfile.TemporaryDirectory() as out:
            compiled = subprocess.run(
                [sys.executable, "-m", "grpc_tools.protoc", f"-I{self.files}",
                 f"--python_out={out}", str(self.files / "report.proto")],
                capture_output=True, text=True)
            require(compiled.returncode == 0, "report.proto does not compile: "
                    + " | ".join(compiled.stderr.strip().splitlines()[-2:]))
            generated = (Path(out) / "report_pb2.py").read_bytes()
        require(generated == (self.files / "report_pb2.py").read_bytes(),
                "report_pb2.py differs from what grpc_tools.protoc makes of report.proto: "
                "rebuild it")
        fields = subprocess.run(  # -B: no __pycache__ in the graded folder
            [sys.executable, "-B", "-c", "import report_pb2; print([(f.name, f.type) for f in "
                                   "report_pb2.Report.DESCRIPTOR.fields])"],
            cwd=self.files, capture_output=True, text=True)
        require(fields.returncode == 0, "report_pb2.py has no Report message: "
                + " | ".join(fields.stderr.strip().splitlines()[-1:]))
        # 9 is a string field, 1 a double.
        require(fields.stdout.strip() == "[('date', 9), ('degrees', 1)]",
                f"Report must have `string date = 1; double degrees = 2;`, it has "
                f"{fields.stdout.strip()} (name, type number)")
        return True, ""

    def check_producer(self):
        problems = []
        tree = ast.parse((self.copy / "producer.py").read_text())
        if not any(kw.get("acks") in ("all", -1, "-1") and kw.get("retries") == 10
                   for kw in calls_to(tree, "KafkaProducer")):
            problems.append('no KafkaProducer(...) call with acks="all" and retries=10')

        old_topic = self.topic_id()
        first = self.start("producer.py", "--seed", FIRST_SEED)
        try:
            p7check.wait_until(lambda: self.topic_id() not in (None, old_topic)
                               and (self.total_messages() or 0) >= RESTART_MESSAGES
                               or not first.running(), TOPIC_TIMEOUT, "")
            self.require_running(first)
            count, replicas = self.topic_layout()
            if count != PARTITIONS or set(replicas) != {1}:
                problems.append(f"{TOPIC} has {count} partitions with {replicas} replicas, not "
                                f"{PARTITIONS} with 1")
            code = self.stopped(first)
            if code != 0:
                problems.append(f"producer.py exited with {code} on SIGTERM ({first.tail(1)})")
        except AssertionError:
            raise CheckFailed(f"within {TOPIC_TIMEOUT} s producer.py neither recreated the "
                              f"existing {TOPIC} topic nor sent {RESTART_MESSAGES} messages to "
                              "a new one") from None
        finally:
            first.kill()  # never two producers at once, whatever failed
        before = self.total_messages() or 0

        # The restarted producer feeds every later check.
        self.producer = self.start("producer.py", "--seed", SESSION_SEED)
        lowest = []

        def dropped():
            total = self.total_messages()  # None while the topic is being recreated
            if total is not None and total < before:
                lowest.append(total)
            return lowest or not self.producer.running()

        try:
            p7check.wait_until(dropped, TOPIC_TIMEOUT, "")
        except AssertionError:
            pass
        self.require_running(self.producer)
        if not lowest:
            problems.append(f"a restarted producer.py kept the old {before} messages: it must "
                            f"delete and recreate {TOPIC}, so offsets restart at 0")
        p7check.wait_until(lambda: (self.total_messages() or 0) >= 100
                           or not self.producer.running(), TOPIC_TIMEOUT,
                           "the restarted producer.py to send messages")
        self.require_running(self.producer)
        count, replicas = self.topic_layout()
        if count != PARTITIONS:
            problems.append(f"the restarted producer.py made {count} partitions, not "
                            f"{PARTITIONS}")
        return not problems, first_problems(problems)

    def check_messages(self):
        self.ensure_producer()
        topic = self.read_topic()
        total = sum(len(records) for records in topic.values())
        require(total, f"{TOPIC} holds no messages")
        problems = []
        partitions_of = {}
        for n, records in topic.items():
            previous = ""
            for offset, key, date, degrees in records:
                where = f"partition {n} offset {offset}"
                if key is None:
                    problems.append(f"{where}: the value is not a Report protobuf")
                    continue
                try:
                    month = MONTHS[datetime.date.fromisoformat(date).month - 1]
                except ValueError:
                    problems.append(f"{where}: date {date!r} is not YYYY-MM-DD")
                    continue
                if key != month:
                    problems.append(f"{where}: key {key!r} but date {date}")
                if not math.isfinite(degrees):
                    problems.append(f"{where}: degrees {degrees!r}")
                if date < previous:
                    problems.append(f"{where}: {date} comes after {previous}")
                previous = date
                partitions_of.setdefault(key, set()).add(n)
        split = {m: sorted(ns) for m, ns in partitions_of.items() if len(ns) > 1}
        if split:
            problems.append(f"months spread over several partitions: {split}")
        if set(partitions_of) != set(MONTHS):
            problems.append(f"after years of data only these keys were seen: "
                            f"{sorted(partitions_of)}")
        require(not problems, first_problems(problems))
        return True, f"{total} messages checked"

    def check_debug(self):
        self.ensure_producer()
        before = self.require_end_offsets()
        debug = self.start("debug.py")
        problems = []
        try:
            try:
                p7check.wait_until(lambda: "assigned partitions" in debug.stderr
                                   or not debug.running(), PROGRAM_TIMEOUT, "")
            except AssertionError:
                raise CheckFailed(f"debug.py never said `assigned partitions` on stderr within "
                                  f"{PROGRAM_TIMEOUT} s") from None
            self.require_running(debug)
            p7check.wait_until(lambda: debug.stdout.count("\n") >= DEBUG_MIN_LINES
                               or not debug.running(), PROGRAM_TIMEOUT,
                               f"{DEBUG_MIN_LINES} lines from debug.py")
            self.require_running(debug)
            if not self.group_has_member("debug"):
                problems.append('debug.py is not a member of consumer group "debug"')
            code = self.stopped(debug)
            if code != 0:
                problems.append(f"debug.py exited with {code} on SIGTERM ({debug.tail(1)})")
        finally:
            debug.kill()

        printed = []
        for number, line in enumerate(debug.stdout.splitlines(), 1):
            if not line.strip():
                continue
            try:
                value = ast.literal_eval(line)
            except (ValueError, SyntaxError):
                value = None
            if not isinstance(value, dict) or \
                    list(value) != ["partition", "key", "date", "degrees"]:
                problems.append(f"line {number} is not a dict with keys partition, key, date, "
                                f"degrees: {line[:80]!r}")
                continue
            printed.append(value)
        require(not problems, first_problems(problems))

        offsets_of = {}  # (partition, key, date, degrees) -> offsets where the topic has it
        for n, records in self.read_topic().items():
            for offset, key, date, degrees in records:
                offsets_of.setdefault((n, key, date, degrees), []).append(offset)
        for value in printed:
            n = value["partition"]
            found = offsets_of.get((n, value["key"], value["date"], value["degrees"]))
            if not found:
                problems.append(f"{value} is not in the topic")
            elif max(found) < before.get(n, 0):
                problems.append(f"{value} (offset {max(found)}) was produced before debug.py "
                                f"started (partition {n} then ended at {before[n]})")
        require(not problems, first_problems(problems))
        return True, f"{len(printed)} lines, all of messages produced after debug.py started"

    def group_has_member(self, group):
        """Whether `group` has members now; falls back to the source when the broker won't say."""
        try:
            described = self.admin.describe_groups([group])
            return bool(described.get(group, {}).get("members"))
        except (KafkaError, AttributeError):
            tree = ast.parse((self.copy / "debug.py").read_text())
            return any(kw.get("group_id") == group for kw in calls_to(tree, "KafkaConsumer"))

    def check_consumer_partitions(self):
        require(self.producer is None, "this check needs the topic without a producer")
        self.recreate_empty_topic()
        self.remove_outputs("partition-*.json*")
        before = folder_snapshot(self.copy)
        consumer, code = self.run_to_end("consumer.py", "0", "2", "--iterations", "3")
        require(code == 0, f"`{consumer.describe()}` exited with {code}: {consumer.tail()}")
        after = folder_snapshot(self.copy)
        # A lock file (partition-N.json.lock) says who owns a partition; it is not an output.
        touched = sorted(name for name in after
                         if before.get(name) != after[name] and not name.endswith(".lock"))
        expected = ["partition-0.json", "partition-2.json"]
        require(touched == expected, f"consumer.py 0 2 touched {touched}, not {expected}")
        problems = []
        for n in (0, 2):
            data = read_json(self.partition_file(n))
            if data != {"partition": n, "offset": 0}:
                problems.append(f"partition-{n}.json of an empty topic is {data}, not "
                                f'{{"partition": {n}, "offset": 0}}')
        self.remove_outputs("partition-*.json*")
        return not problems, first_problems(problems)

    def check_exact_stats(self):
        self.ensure_producer()
        self.stop_consumers()
        self.remove_outputs("partition-*.json*")
        self.reader = ConcurrentReader(self.copy)   # check 9 reads while this consumer writes
        self.reader.start()
        consumer = self.start_consumer()            # the assignment's two rounds
        p7check.wait_until(lambda: all(self.partition_file(n).exists()
                                       for n in range(PARTITIONS)) or not consumer.running(),
                           PROGRAM_TIMEOUT, "consumer.py to write partition-0..3.json")
        self.require_running(consumer)
        p7check.wait_until(lambda: (self.total_messages() or 0) >= EXACT_MESSAGES,
                           CATCH_UP_TIMEOUT, f"{EXACT_MESSAGES} messages in the topic")
        self.wait_caught_up(self.require_end_offsets(), [consumer])
        offsets, problems = self.partition_file_problems()
        require(not problems, first_problems(problems))
        return True, f"all four files exact (offsets {offsets})"

    def check_crash_resume(self):
        self.ensure_producer()
        problems = self.stop_consumers()
        groups = ([0, 1], [2, 3])
        consumers = [self.start_consumer(*group) for group in groups]
        for cycle in range(KILL_CYCLES):
            victim = cycle % len(groups)
            group = groups[victim]
            base = self.file_offsets()

            def advanced():
                self.require_running(consumers[victim])
                now = self.file_offsets()
                return all(isinstance(now[n], int) and now[n] > (base[n] or 0) for n in group)

            p7check.wait_until(advanced, CATCH_UP_TIMEOUT,
                               f"consumer.py {group} to write newer offsets")
            time.sleep(random.uniform(0.05, 0.5))   # land the kill anywhere in a batch
            consumers[victim].kill()
            for n in group:
                if read_json(self.partition_file(n)) is None:
                    problems.append(f"partition-{n}.json does not parse after kill -9")
            consumers[victim] = self.start_consumer(*group)
        self.wait_caught_up(self.require_end_offsets(), consumers)
        offsets, found = self.partition_file_problems()
        problems += found + self.stop_consumers()
        require(not problems, first_problems(problems))
        return True, f"{KILL_CYCLES} kills and restarts, then all four files exact (offsets " \
                     f"{offsets})"

    def check_atomic_writes(self):
        reader = self.reader
        require(reader is not None, "no consumer ran (check 7 could not start one)")
        reader.stop()
        if reader.failures:
            return False, (f"{reader.failure_count} of {reader.reads + reader.failure_count} "
                           f"reads failed: {first_problems(reader.failures)}")
        require(reader.reads >= MIN_CONCURRENT_READS,
                f"only {reader.reads} reads could be made while the consumers ran")
        require(len(reader.versions) >= MIN_FILE_VERSIONS,
                f"only {len(reader.versions)} file versions were seen: the consumers barely "
                "wrote")
        return True, f"{reader.reads} reads of {len(reader.versions)} file versions, none failed"

    def check_plot(self):
        require((self.copy / "plot.py").is_file(), "files/plot.py is missing")
        png = self.copy / "yearly_trends.png"
        self.remove_outputs("yearly_trends.png*")
        if not any(consumer.running() for consumer in self.consumers):
            self.ensure_producer()
            self.start_consumer()
        p7check.wait_until(lambda: self.january_years() >= MIN_SAMPLE_YEARS, CATCH_UP_TIMEOUT,
                           f"{MIN_SAMPLE_YEARS} years of January in the partition files")
        pictures = []
        for attempt in range(2):
            if attempt:
                years = self.january_years()
                p7check.wait_until(lambda: self.january_years() >= years + 2, CATCH_UP_TIMEOUT,
                                   "more years of January in the partition files")
            plot, code = self.run_to_end("plot.py", "--once")
            require(code == 0, f"plot.py --once exited with {code}: {plot.tail()}")
            require(png.is_file(), "plot.py --once made no yearly_trends.png next to itself")
            require(is_png(png), "yearly_trends.png is not a PNG image")
            pictures.append(png.read_bytes())
        require(pictures[0] != pictures[1], "yearly_trends.png stayed the same while years of "
                                            "January data were added")
        return True, ""

    def check_birthday(self):
        helped, code = self.run_to_end("consumer.py", "--help")
        require(code == 0, f"consumer.py --help exited with {code}: {helped.tail()}")
        if "--birthday" not in helped.stdout:
            return SKIPPED, "consumer.py --help does not mention --birthday"
        self.ensure_producer()
        require(BIRTHDAY_TOPIC in self.admin.list_topics(),
                f"producer.py did not create the {BIRTHDAY_TOPIC} topic")
        problems = self.stop_consumers()
        self.remove_outputs("partition-*.json*", "birthday.json*")
        consumer = self.start_consumer("--birthday", BIRTHDAY)
        path = self.copy / "birthday.json"

        def birthday_years():
            self.require_running(consumer)
            data = read_json(path)
            years = [k for k in data if k != "birthday"] if isinstance(data, dict) else []
            return data if len(years) >= MIN_BIRTHDAY_YEARS else None

        data = p7check.wait_until(birthday_years, CATCH_UP_TIMEOUT,
                                  f"{MIN_BIRTHDAY_YEARS} years in birthday.json")
        problems += self.stop_consumers()

        month_day = BIRTHDAY[5:]
        expected = {}
        for records in self.read_topic().values():
            for offset, key, date, degrees in records:
                if date and date[5:] == month_day and date[:4] >= BIRTHDAY[:4]:
                    expected.setdefault(date[:4], degrees)  # the first one; later: duplicates
        if data.get("birthday") != BIRTHDAY:
            problems.append(f'"birthday" is {data.get("birthday")!r}, not {BIRTHDAY!r}')
        # The consumer started from offset 0, so no year up to the newest one may be missing.
        newest = max(year for year in data if year != "birthday")
        skipped = [year for year in sorted(expected) if year <= newest and year not in data]
        if skipped:
            problems.append(f"years missing before {newest}: {', '.join(skipped)}")
        for year, degrees in sorted(data.items()):
            if year == "birthday":
                continue
            want = expected.get(year)
            if want is None:
                problems.append(f"{year}: the topic has no {year}-{month_day}")
            elif not isinstance(degrees, (int, float)) or abs(degrees - want) > 1e-9:
                problems.append(f"{year}: {degrees!r} != {want!r} (the first reading of "
                                f"{year}-{month_day})")
        require(not problems, first_problems(problems))
        return True, f"{len(data) - 1} years equal the topic's first reading of each {month_day}"


# ---------------------------------------------------------------- the checks and their order

# number, what it proves, points, method, needs the broker
CHECKS = [
    (1, "required files present", 5, Grader.check_required_files, False),
    (2, "report.proto compiles to report_pb2.py", 5, Grader.check_proto, False),
    (3, "producer: 4 partitions, recreated, acks/retries", 15, Grader.check_producer, True),
    (4, "messages: keys, protobuf values, order", 10, Grader.check_messages, True),
    (5, "debug.py: group debug, new messages only", 10, Grader.check_debug, True),
    (6, "consumer.py 0 2: its files only, offset 0", 10, Grader.check_consumer_partitions,
     True),
    (7, "exact statistics", 15, Grader.check_exact_stats, True),
    (8, "crash (kill -9) and resume stay exact", 10, Grader.check_crash_resume, True),
    (9, "atomic writes under concurrent reads", 5, Grader.check_atomic_writes, True),
    (10, "plot.py draws and redraws yearly_trends.png", 5, Grader.check_plot, True),
    (11, "birthday.json matches the topic", 10, Grader.check_birthday, True),
]
# Check 6 needs the empty topic before any producer; check 3 leaves the session's producer
# running; 7 starts the consumer that 10 plots from and 9's reader watches through 8; 4 reads
# the whole topic last.
RUN_ORDER = [1, 2, 6, 3, 5, 7, 10, 8, 9, 11, 4]


def run_check(grader, number):
    _, name, points, method, needs_broker = next(c for c in CHECKS if c[0] == number)
    started = time.monotonic()
    print(f"[{number:2}] {name} ...", end=" ", flush=True)
    if needs_broker and grader.setup_error:
        passed, reason = False, f"no broker: {grader.setup_error}"
    else:
        try:
            passed, reason = method(grader)
        except CheckFailed as err:
            passed, reason = False, str(err)
        except (AssertionError, ProgramTimeout) as err:   # wait_until's deadlines
            passed, reason = False, str(err)
        except Exception as err:  # noqa: BLE001  (a crashing check fails alone)
            passed, reason = False, f"the check crashed: {err.__class__.__name__}: {err}"
    if passed is False and grader.container is not None and not grader.setup_error:
        try:
            grader.container.require_running()
        except DockerError as err:  # the likely reason: say it with the container's log
            reason = f"{reason}; {err}"
    status = "SKIPPED" if passed is SKIPPED else "PASS" if passed else "FAIL"
    print(f"{status} ({time.monotonic() - started:.1f} s)", flush=True)
    max_points = 0 if passed is SKIPPED else points
    return {"number": number, "check": f"{number}. {name}", "status": status,
            "passed": passed, "points": points if passed else 0, "max_points": max_points,
            "reason": reason}


def grade(grader):
    results = {}
    for number in RUN_ORDER:
        needs_broker = CHECKS[number - 1][4]
        if needs_broker and grader.admin is None and grader.setup_error is None:
            grader.setup()
        results[number] = run_check(grader, number)
    return [results[number] for number, *_ in CHECKS]


def print_table(results, elapsed):
    print()
    print(f"{'#':>2}  {'check':<50} {'result':<8} {'points':>7}")
    for result in results:
        print(f"{result['number']:>2}  {result['check'][len(str(result['number'])) + 2:]:<50} "
              f"{result['status']:<8} {result['points']:>3}/{result['max_points']:<3}")
        if result["status"] != "PASS" and result["reason"]:
            for line in textwrap.wrap(result["reason"], 88):
                print(f"      {line}")
    score = sum(r["points"] for r in results)
    total = sum(r["max_points"] for r in results)
    failed = [r["number"] for r in results if r["status"] == "FAIL"]
    verdict = "all checks pass" if not failed else f"failed: {', '.join(map(str, failed))}"
    print(f"\nscore: {score}/{total} ({verdict}; {elapsed:.0f} s)")


# ---------------------------------------------------------------- command line

def parse_args(argv):
    parser = argparse.ArgumentParser(description="Grade the P7 programs against a real Kafka "
                                                 "broker.")
    parser.add_argument("--docker", action="store_true",
                        help="build the submission's image (under a tag of its own) and run every "
                             "program in a container of it with `docker exec`")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--files", metavar="DIR", default=str(DEFAULT_FILES),
                        help="the files folder to grade (default: files/ next to autograde.py); "
                             "its parent holds the Dockerfile")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary grading folder (copies and program logs)")
    return parser.parse_args(argv)


def raise_system_exit(signum, frame):
    raise SystemExit(128 + signum)


def use_the_project_venv():
    """`python3 autograde.py`, as the assignment says, runs with whatever python3 is first on
    PATH: without the project's packages, hand over to the .venv that `make venv` made."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if venv_python.exists() and not os.environ.get("P7_AUTOGRADE_IN_VENV"):
        os.environ["P7_AUTOGRADE_IN_VENV"] = "1"
        os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()),
                                    *sys.argv[1:]])


def main(argv=None):
    args = parse_args(argv)
    if MISSING_DEPENDENCY:
        use_the_project_venv()
        print(f"autograde.py needs kafka-python, protobuf and grpcio-tools, but {sys.executable} "
              f"cannot import {MISSING_DEPENDENCY}: run `make venv` and use "
              "`.venv/bin/python autograde.py`.", file=sys.stderr)
        return 2
    files = Path(args.files).resolve()
    if not files.is_dir():
        print(f"autograde.py: {files} is not a folder: pass the submission's files folder with "
              "--files.", file=sys.stderr)
        return 2
    if args.docker and not harness.engine_answers():
        print("autograde.py: no Docker engine answers (`docker info` fails): start Docker, or "
              "grade natively without --docker.", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, raise_system_exit)  # a stopped grader still cleans up
    started = time.monotonic()
    grader = Grader(files, docker=args.docker, keep=args.keep)
    where = "docker" if args.docker else f"native, Kafka at {p7check.bootstrap()}"
    print(f"grading {files} ({where})", flush=True)
    try:
        results = grade(grader)
    except KeyboardInterrupt:
        print("\nautograde.py: interrupted; stopped every program it started.", file=sys.stderr)
        return 130
    finally:
        grader.cleanup()
    print_table(results, time.monotonic() - started)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["status"] != "FAIL" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
