"""The eleven checks. Each takes the session, returns (passed, reason) or raises CheckFailed,
and says in its registration what it depends on (see registry.py)."""

import ast
import datetime
import math
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import p7check
from tools.harness import PROGRAM_TIMEOUT
from tools.p7check import MONTH_NAMES, PARTITIONS, TOPIC

from .evidence import ConcurrentReader, calls_to, first_problems, folder_snapshot, is_png, \
    month_years, read_json
from .programs import require_running, stopped
from .registry import SKIPPED, CheckFailed, check, require
from .session import CATCH_UP_TIMEOUT, SESSION_SEED, TOPIC_TIMEOUT

BIRTHDAY_TOPIC = "birthday-temperatures"
FIRST_SEED = 1          # the producer that check 3 stops again
BIRTHDAY = "1990-03-15"

# In the files folder; the Dockerfile is in the folder above it.
REQUIRED_FILES = ["producer.py", "debug.py", "consumer.py", "plot.py", "report.proto",
                  "report_pb2.py", "weather.py"]
SAMPLE_OUTPUTS = [f"partition-{n}.json" for n in range(PARTITIONS)] + ["yearly_trends.png"]
MIN_SAMPLE_YEARS = 3

RESTART_MESSAGES = 1000     # what the first producer of check 3 sends before it is stopped
EXACT_MESSAGES = 4000       # about ten years: what check 7 compares at least
DEBUG_MIN_LINES = 50
KILL_CYCLES = 4
MIN_CONCURRENT_READS = 2000
MIN_FILE_VERSIONS = 20
MIN_BIRTHDAY_YEARS = 3


# ---------------------------------------------------------------- the submitted folder

@check(1, "required files present", 5, needs_broker=False)
def required_files(s):
    missing = [] if (s.submission / "Dockerfile").is_file() else ["Dockerfile"]
    missing += [f"files/{name}" for name in REQUIRED_FILES + SAMPLE_OUTPUTS
                if not (s.files / name).is_file()]
    require(not missing, "missing: " + ", ".join(missing))
    problems = []
    for n in range(PARTITIONS):
        data = read_json(s.files / f"partition-{n}.json")
        if not isinstance(data, dict) or data.get("partition") != n:
            problems.append(f"files/partition-{n}.json is not partition {n}'s JSON summary")
        elif not any(len(month_years(data, m)) >= MIN_SAMPLE_YEARS for m in MONTH_NAMES):
            problems.append(f"files/partition-{n}.json holds fewer than "
                            f"{MIN_SAMPLE_YEARS} years")
    if not is_png(s.files / "yearly_trends.png"):
        problems.append("files/yearly_trends.png is not a PNG image")
    require(not problems, first_problems(problems))
    return True, ""


@check(2, "report.proto compiles to report_pb2.py", 5, needs_broker=False)
def proto(s):
    with tempfile.TemporaryDirectory() as out:
        compiled = subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", f"-I{s.files}",
             f"--python_out={out}", str(s.files / "report.proto")],
            capture_output=True, text=True)
        require(compiled.returncode == 0, "report.proto does not compile: "
                + " | ".join(compiled.stderr.strip().splitlines()[-2:]))
        generated = (Path(out) / "report_pb2.py").read_bytes()
    require(generated == (s.files / "report_pb2.py").read_bytes(),
            "report_pb2.py differs from what grpc_tools.protoc makes of report.proto: "
            "rebuild it")
    fields = subprocess.run(  # -B: no __pycache__ in the graded folder
        [sys.executable, "-B", "-c", "import report_pb2; print([(f.name, f.type) for f in "
                               "report_pb2.Report.DESCRIPTOR.fields])"],
        cwd=s.files, capture_output=True, text=True)
    require(fields.returncode == 0, "report_pb2.py has no Report message: "
            + " | ".join(fields.stderr.strip().splitlines()[-1:]))
    # 9 is a string field, 1 a double.
    require(fields.stdout.strip() == "[('date', 9), ('degrees', 1)]",
            f"Report must have `string date = 1; double degrees = 2;`, it has "
            f"{fields.stdout.strip()} (name, type number)")
    return True, ""


# ---------------------------------------------------------------- the producer and the topic

def first_producer_problems(s):
    """Start a producer, let it recreate the topic and send messages, stop it with SIGTERM."""
    problems = []
    old_topic = s.topic_id()
    first = s.programs.start("producer.py", "--seed", FIRST_SEED)
    try:
        p7check.wait_until(lambda: s.topic_id() not in (None, old_topic)
                           and (s.total_messages() or 0) >= RESTART_MESSAGES
                           or not first.running(), TOPIC_TIMEOUT, "")
        require_running(first)
        count, replicas = s.topic_layout()
        if count != PARTITIONS or set(replicas) != {1}:
            problems.append(f"{TOPIC} has {count} partitions with {replicas} replicas, not "
                            f"{PARTITIONS} with 1")
        code = stopped(first)
        if code != 0:
            problems.append(f"producer.py exited with {code} on SIGTERM ({first.tail(1)})")
    except AssertionError:
        raise CheckFailed(f"within {TOPIC_TIMEOUT} s producer.py neither recreated the "
                          f"existing {TOPIC} topic nor sent {RESTART_MESSAGES} messages to "
                          "a new one") from None
    finally:
        first.kill()  # never two producers at once, whatever failed
    return problems


def restarted_producer_problems(s):
    """Start the session's producer over the first one's messages: it must start afresh."""
    problems = []
    before = s.total_messages() or 0
    s.producer = s.programs.start("producer.py", "--seed", SESSION_SEED)
    lowest = []

    def dropped():
        total = s.total_messages()  # None while the topic is being recreated
        if total is not None and total < before:
            lowest.append(total)
        return lowest or not s.producer.running()

    try:
        p7check.wait_until(dropped, TOPIC_TIMEOUT, "")
    except AssertionError:
        pass
    require_running(s.producer)
    if not lowest:
        problems.append(f"a restarted producer.py kept the old {before} messages: it must "
                        f"delete and recreate {TOPIC}, so offsets restart at 0")
    p7check.wait_until(lambda: (s.total_messages() or 0) >= 100
                       or not s.producer.running(), TOPIC_TIMEOUT,
                       "the restarted producer.py to send messages")
    require_running(s.producer)
    count, replicas = s.topic_layout()
    if count != PARTITIONS:
        problems.append(f"the restarted producer.py made {count} partitions, not "
                        f"{PARTITIONS}")
    return problems


# Check 6 wants the empty topic before any producer runs. The restarted producer is the
# session's: it feeds every later check.
@check(3, "producer: 4 partitions, recreated, acks/retries", 15, after=[6])
def producer(s):
    problems = []
    if not any(kw.get("acks") in ("all", -1, "-1") and kw.get("retries") == 10
               for kw in calls_to(s.copy / "producer.py", "KafkaProducer")):
        problems.append('no KafkaProducer(...) call with acks="all" and retries=10')
    problems += first_producer_problems(s)
    problems += restarted_producer_problems(s)
    return not problems, first_problems(problems)


# Last: by then the topic holds everything the session produced.
@check(4, "messages: keys, protobuf values, order", 10, after=[3, 5, 7, 8, 10, 11])
def messages(s):
    s.ensure_producer()
    topic = s.read_topic()
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
                month = MONTH_NAMES[datetime.date.fromisoformat(date).month - 1]
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
    if set(partitions_of) != set(MONTH_NAMES):
        problems.append(f"after years of data only these keys were seen: "
                        f"{sorted(partitions_of)}")
    require(not problems, first_problems(problems))
    return True, f"{total} messages checked"


# ---------------------------------------------------------------- debug.py

def printed_dicts(stdout, problems):
    """The dicts debug.py printed, one per line; a line that is not one goes to `problems`."""
    printed = []
    for number, line in enumerate(stdout.splitlines(), 1):
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
    return printed


@check(5, "debug.py: group debug, new messages only", 10, after=[3])
def debug(s):
    s.ensure_producer()
    before = s.require_end_offsets()
    program = s.programs.start("debug.py")
    problems = []
    try:
        try:
            p7check.wait_until(lambda: "assigned partitions" in program.stderr
                               or not program.running(), PROGRAM_TIMEOUT, "")
        except AssertionError:
            raise CheckFailed(f"debug.py never said `assigned partitions` on stderr within "
                              f"{PROGRAM_TIMEOUT} s") from None
        require_running(program)
        p7check.wait_until(lambda: program.stdout.count("\n") >= DEBUG_MIN_LINES
                           or not program.running(), PROGRAM_TIMEOUT,
                           f"{DEBUG_MIN_LINES} lines from debug.py")
        require_running(program)
        if not s.group_has_member("debug"):
            problems.append('debug.py is not a member of consumer group "debug"')
        code = stopped(program)
        if code != 0:
            problems.append(f"debug.py exited with {code} on SIGTERM ({program.tail(1)})")
    finally:
        program.kill()

    printed = printed_dicts(program.stdout, problems)
    require(not problems, first_problems(problems))

    offsets_of = {}  # (partition, key, date, degrees) -> offsets where the topic has it
    for n, records in s.read_topic().items():
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


# ---------------------------------------------------------------- consumer.py

@check(6, "consumer.py 0 2: its files only, offset 0", 10)
def consumer_partitions(s):
    require(s.producer is None, "this check needs the topic without a producer")
    s.recreate_empty_topic()
    s.outputs.remove("partition-*.json*")
    before = folder_snapshot(s.copy)
    consumer, code = s.programs.run_to_end("consumer.py", "0", "2", "--iterations", "3")
    require(code == 0, f"`{consumer.describe()}` exited with {code}: {consumer.tail()}")
    after = folder_snapshot(s.copy)
    # A lock file (partition-N.json.lock) says who owns a partition; it is not an output.
    touched = sorted(name for name in after
                     if before.get(name) != after[name] and not name.endswith(".lock"))
    expected = ["partition-0.json", "partition-2.json"]
    require(touched == expected, f"consumer.py 0 2 touched {touched}, not {expected}")
    problems = []
    for n in (0, 2):
        data = read_json(s.outputs.path(n))
        if data != {"partition": n, "offset": 0}:
            problems.append(f"partition-{n}.json of an empty topic is {data}, not "
                            f'{{"partition": {n}, "offset": 0}}')
    s.outputs.remove("partition-*.json*")
    return not problems, first_problems(problems)


@check(7, "exact statistics", 15, after=[3, 5])
def exact_stats(s):
    s.ensure_producer()
    s.programs.stop_consumers()
    s.outputs.remove("partition-*.json*")
    s.reader = ConcurrentReader(s.copy)       # check 9 judges it
    s.reader.start()
    consumer = s.programs.start_consumer()    # the assignment's two rounds
    p7check.wait_until(lambda: all(s.outputs.path(n).exists() for n in range(PARTITIONS))
                       or not consumer.running(),
                       PROGRAM_TIMEOUT, "consumer.py to write partition-0..3.json")
    require_running(consumer)
    p7check.wait_until(lambda: (s.total_messages() or 0) >= EXACT_MESSAGES,
                       CATCH_UP_TIMEOUT, f"{EXACT_MESSAGES} messages in the topic")
    s.wait_caught_up(s.require_end_offsets(), [consumer])
    offsets, problems = s.outputs.problems()
    require(not problems, first_problems(problems))
    return True, f"all four files exact (offsets {offsets})"


# After 10, which plots from check 7's consumer that this check stops.
@check(8, "crash (kill -9) and resume stay exact", 10, after=[7, 10])
def crash_resume(s):
    s.ensure_producer()
    problems = s.programs.stop_consumers()
    groups = ([0, 1], [2, 3])
    consumers = [s.programs.start_consumer(*group) for group in groups]
    for cycle in range(KILL_CYCLES):
        victim = cycle % len(groups)
        group = groups[victim]
        base = s.outputs.offsets()

        def advanced():
            require_running(consumers[victim])
            now = s.outputs.offsets()
            return all(isinstance(now[n], int) and now[n] > (base[n] or 0) for n in group)

        p7check.wait_until(advanced, CATCH_UP_TIMEOUT,
                           f"consumer.py {group} to write newer offsets")
        time.sleep(random.uniform(0.05, 0.5))   # land the kill anywhere in a batch
        consumers[victim].kill()
        for n in group:
            if read_json(s.outputs.path(n)) is None:
                problems.append(f"partition-{n}.json does not parse after kill -9")
        consumers[victim] = s.programs.start_consumer(*group)
    s.wait_caught_up(s.require_end_offsets(), consumers)
    offsets, found = s.outputs.problems()
    problems += found + s.programs.stop_consumers()
    require(not problems, first_problems(problems))
    return True, f"{KILL_CYCLES} kills and restarts, then all four files exact (offsets " \
                 f"{offsets})"


# The reader of check 7 watches until here: through check 8's kills when that runs too.
@check(9, "atomic writes under concurrent reads", 5, needs=[7], after=[8])
def atomic_writes(s):
    reader = s.reader
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


# ---------------------------------------------------------------- plot.py

# After 7: it plots what check 7's consumer keeps writing (else it starts a consumer itself).
@check(10, "plot.py draws and redraws yearly_trends.png", 5, after=[7])
def plot(s):
    require((s.copy / "plot.py").is_file(), "files/plot.py is missing")
    png = s.copy / "yearly_trends.png"
    s.outputs.remove("yearly_trends.png*")
    if not any(consumer.running() for consumer in s.programs.consumers):
        s.ensure_producer()
        s.programs.start_consumer()
    p7check.wait_until(lambda: s.outputs.january_years() >= MIN_SAMPLE_YEARS, CATCH_UP_TIMEOUT,
                       f"{MIN_SAMPLE_YEARS} years of January in the partition files")
    pictures = []
    for attempt in range(2):
        if attempt:
            years = s.outputs.january_years()
            p7check.wait_until(lambda: s.outputs.january_years() >= years + 2, CATCH_UP_TIMEOUT,
                               "more years of January in the partition files")
        program, code = s.programs.run_to_end("plot.py", "--once")
        require(code == 0, f"plot.py --once exited with {code}: {program.tail()}")
        require(png.is_file(), "plot.py --once made no yearly_trends.png next to itself")
        require(is_png(png), "yearly_trends.png is not a PNG image")
        pictures.append(png.read_bytes())
    require(pictures[0] != pictures[1], "yearly_trends.png stayed the same while years of "
                                        "January data were added")
    return True, ""


# ---------------------------------------------------------------- the birthday feature

def expected_birthdays(s):
    """{year: the first reading of BIRTHDAY's month and day in that year} of the topic; later
    readings of the same date are duplicates."""
    month_day = BIRTHDAY[5:]
    expected = {}
    for records in s.read_topic().values():
        for offset, key, date, degrees in records:
            if date and date[5:] == month_day and date[:4] >= BIRTHDAY[:4]:
                expected.setdefault(date[:4], degrees)
    return expected


def birthday_problems(data, expected):
    """How birthday.json's `data` differs from the topic's `expected` readings."""
    problems = []
    month_day = BIRTHDAY[5:]
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
    return problems


# After 9: it deletes the partition files that check 9's reader watches.
@check(11, "birthday.json matches the topic", 10, after=[9])
def birthday(s):
    helped, code = s.programs.run_to_end("consumer.py", "--help")
    require(code == 0, f"consumer.py --help exited with {code}: {helped.tail()}")
    if "--birthday" not in helped.stdout:
        return SKIPPED, "consumer.py --help does not mention --birthday"
    s.ensure_producer()
    require(BIRTHDAY_TOPIC in s.admin.list_topics(),
            f"producer.py did not create the {BIRTHDAY_TOPIC} topic")
    problems = s.programs.stop_consumers()
    s.outputs.remove("partition-*.json*", "birthday.json*")
    consumer = s.programs.start_consumer("--birthday", BIRTHDAY)
    path = s.copy / "birthday.json"

    def birthday_years():
        require_running(consumer)
        data = read_json(path)
        years = [k for k in data if k != "birthday"] if isinstance(data, dict) else []
        return data if len(years) >= MIN_BIRTHDAY_YEARS else None

    data = p7check.wait_until(birthday_years, CATCH_UP_TIMEOUT,
                              f"{MIN_BIRTHDAY_YEARS} years in birthday.json")
    problems += s.programs.stop_consumers()

    problems += birthday_problems(data, expected_birthdays(s))
    require(not problems, first_problems(problems))
    return True, f"{len(data) - 1} years equal the topic's first reading of each {BIRTHDAY[5:]}"
