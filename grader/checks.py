"""The checks. Each takes the session, returns (passed, reason) or raises CheckFailed, and says
in its registration what it depends on and which versions of the assignment it belongs to (see
registry.py). What each may require is written in CONTRACT.md, item by item from each version:
nothing else."""

import ast
import datetime
import json
import math
import random
import subprocess
import sys
import time
from pathlib import Path

from tools import harness, p7check
from tools.harness import PROGRAM_TIMEOUT, DockerError
from tools.p7check import MONTH_NAMES, PARTITIONS, TOPIC

from tools.partition_files import ConcurrentReader, read_json, read_regular

from . import sandbox, svg_bars
from .evidence import (calls_to, counted, first_problems, folder_snapshot, is_png,
                       truncation_problem)
from .programs import require_running, wait_for
from .registry import SKIPPED, CheckFailed, check, require
from .session import CATCH_UP_TIMEOUT, FIRST_MESSAGES, TOPIC_TIMEOUT, run_over
from .submission import inside

# In the files folder (the Dockerfile is in the folder above it).
REQUIRED_PROGRAMS = ["producer.py", "debug.py", "consumer.py", "report.proto", "weather.py"]
FINAL_PROGRAMS = REQUIRED_PROGRAMS + ["plot.py"]
FINAL_PLOT = "month.svg"
PLOT_MONTHS = ("January", "February", "March")     # the final version's bars
# Kafka's default partitioner puts none of the three months in partition 3: the final plot
# must work with that file missing ("your code must work even if some of the JSON files do not
# exist").
NO_PLOT_MONTHS_PARTITION = 3
PARTITION_FILES = [f"partition-{n}.json" for n in range(PARTITIONS)]
# The assignment's code saves yearly_trends.png; one sentence of its text says yearly_trend.png.
PLOT_NAMES = ["yearly_trends.png", "yearly_trend.png"]
SAMPLE_YEARS = ["1990", "1991", "1992"]     # "at least 3 years starting from 1990"
NOT_PLOT_PROGRAMS = {"producer.py", "debug.py", "consumer.py", "weather.py"}

OWN_PARTITIONS_WATCH = 3    # seconds consumer.py 0 2 is watched after writing its two files
DEBUG_MIN_LINES = 50
DEBUG_TIMEOUT = 90          # starting, joining its group and being assigned, on a busy machine
DEBUG_GROUP_GRACE = 6       # seconds from debug.py's start that its group is looked for
SEEK_MESSAGES = 2000        # in the topic before check 11 picks the half-way offsets
SEEK_WRITE_WAIT = 30        # seconds for each file to move past its half-way offset
SEEK_STALL = 10             # a fresh consumer on a still topic: this long without progress
ROUND_TIMEOUT = 120         # round 1: 30 polls of up to 1 s each, and starting the processes
KILL_CYCLES = 4
MIN_CONCURRENT_READS = 2000
MIN_FILE_VERSIONS = 20
PLOT_TIMEOUT = 90           # the assignment's plot loop sleeps 5 s (its text says 30) a redraw
FINAL_PLOT_TIMEOUT = 60     # plot.py drawing month.svg once: importing pandas and matplotlib
PLOT_MESSAGES = 400         # a year and more of readings: every month has one
FINAL_CONSUMERS = (["0", "2"], ["1", "3"])
RUNNING_WATCH = 5           # seconds the final version's consumers are watched running on

RECREATE_HINT = ("producer.py must delete the temperatures topic if it exists and create it "
                 "again, so that a new run starts from an empty topic")


# ---------------------------------------------------------------- the submitted folder

@check(1, "files: programs and sample outputs", 5, needs_broker=False, versions=["draft"])
def required_files(s):
    # A file that links out of the submission is missing: nothing below reads a host file.
    missing = [f"files/{name}" for name in REQUIRED_PROGRAMS + PARTITION_FILES
               if not inside(s.files, s.files / name)]
    if not list(s.files.glob("*_pb2.py")):
        missing.append("files/report_pb2.py (report.proto built with grpc_tools.protoc)")
    plots = [s.files / name for name in PLOT_NAMES if inside(s.files, s.files / name)]
    if not plots:
        missing.append("files/yearly_trends.png")
    if s.submission is not None and not (s.submission / "Dockerfile").is_file():
        missing.append("Dockerfile (next to files/)")
    require(not missing, "missing: " + ", ".join(missing))
    problems = []
    for n in range(PARTITIONS):
        data = read_json(s.files / f"partition-{n}.json")
        if not isinstance(data, dict) or data.get("partition") != n \
                or not isinstance(data.get("offset"), int):
            problems.append(f"files/partition-{n}.json is not partition {n}'s summary (a JSON "
                            f'object with "partition": {n} and an integer "offset")')
    years = s.outputs.years(s.files)
    lacking = [year for year in SAMPLE_YEARS if year not in years]
    if lacking:
        problems.append(f"the partition files must hold at least 3 years from 1990; they lack "
                        f"{', '.join(lacking)}")
    if not is_png(plots[0]):
        problems.append(f"files/{plots[0].name} is not a PNG image")
    require(not problems, first_problems(problems))
    where = "" if s.submission is not None else " (a files folder on its own: no Dockerfile " \
                                                "looked for)"
    return True, f"sample outputs hold {len(years)} years{where}"


@check(1, "files: the final version's programs and month.svg", 5, needs_broker=False,
       versions=["final"])
def final_files(s):
    # A file that links out of the submission is missing: month.svg below is never a host file.
    missing = [f"files/{name}" for name in FINAL_PROGRAMS if not inside(s.files, s.files / name)]
    if not list(s.files.glob("*_pb2.py")):
        missing.append("files/report_pb2.py (report.proto built with grpc_tools.protoc)")
    if not inside(s.files, s.files / FINAL_PLOT):
        missing.append(f"files/{FINAL_PLOT} (plot.py's output, committed)")
    if s.submission is not None and not (s.submission / "Dockerfile").is_file():
        missing.append("Dockerfile (next to files/)")
    require(not missing, "missing: " + ", ".join(missing))
    try:
        bars = svg_bars.read_bars(read_regular(s.files / FINAL_PLOT)[1],
                                  name=f"files/{FINAL_PLOT}")
    except OSError as err:
        raise CheckFailed(f"files/{FINAL_PLOT} cannot be read: {err}") from None
    except svg_bars.SvgError as err:
        raise CheckFailed(str(err)) from None
    where = "" if s.submission is not None else " (a files folder on its own: no Dockerfile " \
                                                "looked for)"
    return True, f"{FINAL_PLOT} holds {len(bars.heights)} bars{where}"


PROTO_FIELDS = "import sys; sys.path.insert(0, sys.argv[1]); import {module} as m; " \
               "print(sorted((f.name, f.type) for f in m.Report.DESCRIPTOR.fields))"
# descriptor type numbers: 9 is a string, 1 a double.
WANTED_FIELDS = "[('date', 9), ('degrees', 1)]"


def report_fields(folder, module, python=sys.executable, container=None):
    """(whether it loads, its Report's sorted (name, type) or the error's last line) of
    `folder`/`module`.py, imported through session.run_over: in the sandbox, or in the
    container as nobody."""
    code = PROTO_FIELDS.format(module=module)
    try:
        done = run_over(code, Path(folder) / f"{module}.py", python, container)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"importing {module}.py took longer than 60 s") from None
    except DockerError as err:
        raise CheckFailed(str(err)) from None
    lines = (done.stdout if done.returncode == 0 else done.stderr).strip().splitlines()
    return done.returncode == 0, lines[-1] if lines else ""


def _in_container(container, argv, sources, timeout):
    """Container.run_as nobody over copies of `sources` ({name: bytes}); CheckFailed when it
    takes longer than `timeout` or the container is gone."""
    try:
        return container.run_as(harness.NOBODY, argv, timeout=timeout, sources=sources)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"`{' '.join(argv[:4])}` took longer than {timeout} s in the "
                          "container") from None
    except DockerError as err:
        raise CheckFailed(str(err)) from None


NO_PROTOC = "No module named grpc_tools"


def proto_in_container(s, container):
    """Check 2 in Docker modes: protoc and the field listings run in the submission's
    container, as nobody, never on this machine."""
    protos = {path.name: path.read_bytes() for path in sorted(s.files.glob("*.proto"))
              if inside(s.files, path)}
    out = "p7-protoc-out"
    # protoc writes into a folder of its own, whose report_pb2.py the listing then imports.
    compile_and_list = (
        "import os, subprocess, sys\n"
        f"os.mkdir({out!r})\n"
        "done = subprocess.run([sys.executable, '-m', 'grpc_tools.protoc', '-I.', "
        f"'--python_out={out}', 'report.proto'], capture_output=True, text=True)\n"
        "sys.stdout.write(done.stdout); sys.stderr.write(done.stderr)\n"
        "if done.returncode: sys.exit(100 + min(done.returncode, 100))\n"
        f"sys.argv[1:] = [{out!r}]\n"
        + "exec(" + repr(PROTO_FIELDS.format(module="report_pb2")) + ")\n")
    done = _in_container(container, ["python3", "-B", "-c", compile_and_list], protos, 120)
    if done.returncode >= 100 or NO_PROTOC in done.stderr:
        require(NO_PROTOC not in done.stderr,
                "the container has no grpc_tools (`python3 -m grpc_tools.protoc` fails there "
                "with No module named grpc_tools), so report.proto cannot be compiled in it")
        require(False, "report.proto does not compile: "
                + " | ".join(done.stderr.strip().splitlines()[-2:]))
    lines = (done.stdout if done.returncode == 0 else done.stderr).strip().splitlines()
    ok, fields = done.returncode == 0, lines[-1] if lines else ""
    generated = require_compiled_report(s, ok, fields)
    return generated, report_fields(s.files, generated[0].stem, container=container)


def require_compiled_report(s, ok, fields):
    """Require the compiled report.proto's Report to be the assignment's, and a *_pb2.py inside
    the submission; returns the *_pb2.py files."""
    require(ok, f"report.proto has no message Report ({fields})")
    require(fields == WANTED_FIELDS, "report.proto's Report must have `string date` and `double "
                                     f"degrees`; it has {fields} (name, type number)")
    generated = sorted(path for path in s.files.glob("*_pb2.py") if inside(s.files, path))
    require(generated, "there is no report_pb2.py: build it from report.proto with "
                       "grpc_tools.protoc")
    return generated


@check(2, "report.proto: Report with date and degrees", 5, needs_broker=False)
def proto(s):
    # Neither report.proto nor the report_pb2.py loaded below is a link out of the submission.
    require(inside(s.files, s.files / "report.proto"), "files/report.proto is missing")
    container = s.container_for_checks()   # Docker modes: the submission's container
    if container is not None:
        generated, (ok, found) = proto_in_container(s, container)
        return _judge_generated(generated, ok, found)
    python = s.python_for_checks()   # the course's grpcio-tools and protobuf, natively
    # protoc in the sandbox, over a copy of the submission's .proto files, writing there too.
    box = sandbox.current()
    with box.scratch(sorted(s.files.glob("*.proto"))) as out:
        compiled = box.run([str(python), "-m", "grpc_tools.protoc", f"-I{out}",
                            f"--python_out={out}", str(out / "report.proto")], cwd=out,
                           timeout=120, python=python)
        require(compiled.returncode == 0, "report.proto does not compile: "
                + " | ".join(compiled.stderr.strip().splitlines()[-2:]))
        ok, fields = report_fields(out, "report_pb2", python)
    generated = require_compiled_report(s, ok, fields)
    ok, found = report_fields(s.files, generated[0].stem, python)
    return _judge_generated(generated, ok, found)


def _judge_generated(generated, ok, found):
    """Check 2's verdict on the submission's own *_pb2.py, listed as (ok, found)."""
    if not ok and ("version" in found.lower() or "descriptors cannot" in found.lower()):
        return True, (f"{generated[0].name} was made by another protobuf version than this "
                      f"grader's ({found}); report.proto is right")
    require(ok, f"{generated[0].name} does not load: {found}")
    require(found == WANTED_FIELDS, f"{generated[0].name} is not built from this report.proto: "
                                    f"its Report has {found}; build it again")
    return True, ""


# ---------------------------------------------------------------- the producer and the topic

def producer_settings_problem(path):
    """None when some KafkaProducer(...) call asks for acks="all" and retries=10, else why not."""
    found = list(calls_to(path, "KafkaProducer"))
    if any(kw.get("acks") in ("all", -1, "-1") and kw.get("retries") == 10 for kw in found):
        return None
    seen = "; ".join(", ".join(f"{k}={v!r}" for k, v in kw.items()
                               if k in ("acks", "retries")) or "neither" for kw in found)
    return ('producer.py must create its KafkaProducer with acks="all" (acknowledged only once '
            "all in-sync replicas have the message) and retries=10; "
            + (f"found: {seen}" if found else "found no KafkaProducer(...) call"))


def recreated_or_not(s, program, old_id, before):
    """Wait until `program` either recreated the topic (True: a new id) or sent to the old one
    (False: no new id, more messages than `before`)."""
    def decided():
        topic_id = s.topic_id()
        if topic_id is not None and topic_id != old_id:
            return "recreated"
        if topic_id == old_id and (s.total_messages() or 0) > before:
            return "kept"
        return None
    return wait_for(decided, TOPIC_TIMEOUT, "producer.py to delete and recreate the topic",
                    program) == "recreated"


# Check 6 wants the empty topic before any producer runs. The second producer is the
# session's: it feeds every later check.
@check(3, "producer: topic recreated, 4 partitions, acks/retries", 15, after=[6])
def producer(s):
    problems = []
    settings = producer_settings_problem(s.copy / "producer.py")
    if settings:
        problems.append(settings)
    if s.topic_id() is None:
        s.recreate_empty_topic()  # a topic that exists before the first run, to be deleted
    for run in ("first", "second"):
        old_id, before = s.topic_id(), s.total_messages() or 0
        program = s.programs.start("producer.py")
        feeds_the_session = False
        try:
            if not recreated_or_not(s, program, old_id, before):
                problems.append(f"the {run} producer.py sent to the topic that was there "
                                f"before it (it kept {before} messages): {RECREATE_HINT}")
                break
            wait_for(lambda: (s.total_messages() or 0) >= FIRST_MESSAGES, TOPIC_TIMEOUT,
                     f"producer.py to send {FIRST_MESSAGES} messages", program)
            count, replicas = s.topic_layout()
            if count != PARTITIONS or set(replicas) != {1}:
                problems.append(f"{TOPIC} has {count} partitions with {replicas} replicas; "
                                f"producer.py must create it with {PARTITIONS} partitions "
                                "and 1 replica")
                break
            feeds_the_session = run == "second"
        finally:
            if not feeds_the_session:
                program.kill()  # never two producers at once, whatever failed
    if feeds_the_session:
        s.producer = program
    return not problems, first_problems(problems)


def month_of(date):
    return MONTH_NAMES[datetime.date.fromisoformat(date).month - 1]


# Last: by then the topic holds everything the session produced.
@check(4, "messages: month keys, Report values, from 1990-01-01", 10,
       after=[3, 5, 7, 8, 10, 11])
def messages(s):
    s.ensure_producer()
    topic = s.read_topic()
    total = sum(len(records) for records in topic.values())
    require(total, f"{TOPIC} holds no messages")
    problems = []
    partitions_of = {}
    dates = set()
    back = []
    for n, records in topic.items():
        previous = ""
        for record in records:
            where = f"partition {n} offset {record.offset}"
            try:
                key, date, degrees = s.decode(record)
            except ValueError:
                problems.append(f"{where}: the value is not a Report protobuf (made with "
                                ".SerializeToString()) with a key")
                continue
            try:
                month = month_of(date)
            except (ValueError, TypeError):
                problems.append(f"{where}: date {date!r} is not YYYY-MM-DD")
                continue
            if key != month:
                problems.append(f"{where}: key {key!r} for date {date}: the key must be the "
                                f"month's name ({month!r})")
            if not isinstance(degrees, float) or not math.isfinite(degrees):
                problems.append(f"{where}: degrees {degrees!r} is not a number")
            if date < previous:
                back.append(where)  # a retried write landing late: said, not failed
            previous = max(previous, date)
            dates.add(date)
            partitions_of.setdefault(key, set()).add(n)
    split = {m: sorted(ns) for m, ns in partitions_of.items() if len(ns) > 1}
    if split:
        problems.append(f"months spread over several partitions: {split}")
    require(not problems, first_problems(problems))
    first, last = min(dates), max(dates)
    if first != "1990-01-01":
        problems.append(f"the first reading is of {first}, not 1990-01-01: producer.py must "
                        "send weather.py's readings from the first on")
    require(not problems, first_problems(problems))
    # Said, never failed: the assignment excuses a reading the producer failed to write
    # ("Unless the producer repeatedly fails to write a message"). Days up to a month before
    # the newest, when the partitions may still be being written.
    day = datetime.date(1990, 1, 1)
    settled = datetime.date.fromisoformat(last) - datetime.timedelta(days=31)
    skipped = []
    while day <= settled:
        if day.isoformat() not in dates:
            skipped.append(day.isoformat())
        day += datetime.timedelta(days=1)
    missing = f"; {len(skipped)} days are in no message (from {skipped[0]}: writes Kafka " \
              "did not take?)" if skipped else ""
    if back:
        missing += f"; {len(back)} dates come after a later one ({back[0]}: a retried write?)"
    return True, f"{total} messages, {first} to {last}{missing}"


# ---------------------------------------------------------------- debug.py

def printed_dicts(stdout):
    """(the dicts debug.py printed, one a line, how many other lines it printed)."""
    printed, other = [], 0
    for line in stdout.splitlines():
        try:
            value = ast.literal_eval(line.strip())
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            value = None
        if isinstance(value, dict):
            printed.append(value)
        elif line.strip():
            other += 1
    return printed, other


DEBUG_KEYS = {"partition", "key", "date", "degrees"}


@check(5, "debug.py: a dict per new message, subscribed", 10, after=[3])
def debug(s):
    """The text: "It could be in a consumer group named debug" (could: a group-less subscriber
    passes too, and the report says which it was); the dicts must be right."""
    s.ensure_producer()
    s.forget_group("debug")   # no committed offsets from an earlier run
    before = s.require_end_offsets()
    program = s.programs.start("debug.py")
    groups = {}
    started = time.monotonic()
    try:
        def printed_enough():
            if not groups:
                groups.update({g: ns for g, ns in s.groups_consuming().items() if ns})
            # A group member is looked for a while longer: joining takes a rebalance.
            return len(printed_dicts(program.stdout)[0]) >= DEBUG_MIN_LINES and (
                groups or time.monotonic() - started > DEBUG_GROUP_GRACE)
        try:
            wait_for(printed_enough, DEBUG_TIMEOUT, "", program)
        except CheckFailed:
            require_running(program)
    finally:
        program.kill()
    printed, other = printed_dicts(program.stdout)
    require(len(printed) >= DEBUG_MIN_LINES,
            f"debug.py printed {len(printed)} dicts within {DEBUG_TIMEOUT} s while the "
            f"producer ran (and {other} other lines): it must print a dict per message")

    problems = []
    wrong_keys = [value for value in printed if set(value) != DEBUG_KEYS]
    if wrong_keys:
        problems.append(f"{wrong_keys[0]} must have the keys partition, key, date and degrees")
    topic = s.read_topic()
    where = {}  # (partition, key, date) -> [(offset, degrees)]
    for n, records in topic.items():
        for record in records:
            try:
                key, date, degrees = s.decode(record)
            except ValueError:  # check 4 reports undecodable messages
                continue
            where.setdefault((n, key, date), []).append((record.offset, degrees))
    old = []
    for value in printed:
        if value in wrong_keys:
            continue
        found = [offset for offset, degrees in
                 where.get((value["partition"], value["key"], value["date"]), [])
                 if isinstance(value["degrees"], (int, float))
                 and abs(value["degrees"] - degrees) <= 1e-6 * max(1.0, abs(degrees))]
        if not found:
            problems.append(f"{value} is no message of the topic")
        elif max(found) < before.get(value["partition"], 0):
            old.append(value)
    if old:
        problems.append(f"{len(old)} printed messages were in the topic before debug.py "
                        f"started (e.g. {old[0]}): it must not seek to the beginning")
    require(not problems, first_problems(problems))
    group = f"in consumer group {', '.join(sorted(groups))}" if groups else \
        "in no consumer group (a subscriber without group_id: allowed, the text says it " \
        "could be in one)"
    return True, f"{len(printed)} dicts, all of new messages; {group}"


# ---------------------------------------------------------------- consumer.py

REREAD_FOR = 3.0            # seconds a partition file that does not parse is read again


def settled_json(path):
    """A partition file as JSON. One caught half written (by a writer that is not atomic) is
    read again for a few seconds: that fault is check 9's, never a statistics check's too."""
    deadline = time.monotonic() + REREAD_FOR
    while True:
        data = read_json(path)
        if data is not None or not path.exists() or time.monotonic() > deadline:
            return data
        time.sleep(0.05)


def file_problems(s, n, start=0):
    """(offset, problems, (readings counted, readings expected)) of partition-n.json against
    the topic's messages from offset `start` up to the file's offset, through p7check's rule.
    Where the file's sums are those of degrees cut to whole numbers, a problem says so."""
    path = s.outputs.path(n)
    data = settled_json(path)
    if not isinstance(data, dict):
        return None, [f"{path.name} is missing or is not JSON"], None
    problems = []
    if data.get("partition") != n:
        problems.append(f'{path.name}: "partition" is {data.get("partition")!r}, not {n}')
    offset = data.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool):
        return offset, problems + [f'{path.name}: "offset" {offset!r} is not an integer'], None
    end = s.require_end_offsets()
    if offset > end[n]:
        return offset, problems + [f"{path.name}: offset {offset} is past the end of partition "
                                   f"{n} ({end[n]})"], None
    records = [r for r in s.read_topic(end)[n] if r.offset >= start]
    try:
        expected = p7check.expected_stats(records, offset)
    except p7check.Undecided as err:
        return offset, problems + [f"{path.name}: offset {offset} is past an undecided {err}"], \
            None
    mismatches = p7check.stats_mismatches(data, expected)
    truncated = mismatches and truncation_problem(data, list(p7check.counted_readings(records,
                                                                                      offset)))
    if truncated:
        mismatches = [truncated] + mismatches
    problems += [f"{path.name}: {problem}" for problem in mismatches]
    return offset, problems, (counted(data), counted(expected))


def sought_elsewhere(s, n, starts):
    """The other partition whose start offset partition-n.json's statistics were counted from,
    when one explains them exactly (every partition sought to one file's offset), else None."""
    data = settled_json(s.outputs.path(n))
    offset = data.get("offset") if isinstance(data, dict) else None
    if not isinstance(offset, int):
        return None
    records = s.read_topic(s.require_end_offsets())[n]
    for other, start in starts.items():
        if other == n or start == starts[n]:
            continue
        try:
            expected = p7check.expected_stats([r for r in records if r.offset >= start], offset)
        except p7check.Undecided:
            continue
        if not p7check.stats_mismatches(data, expected):
            return other
    return None


def files_problems(s, partitions=range(PARTITIONS), starts=None):
    """({partition: offset}, problems, readings counted too many (+) or too few (-))."""
    offsets, problems, surplus = {}, [], 0
    for n in partitions:
        offset, found, counts = file_problems(s, n, (starts or {}).get(n, 0))
        offsets[n] = offset
        problems += found
        if found and counts:
            surplus += counts[0] - counts[1]
    return offsets, problems, surplus


def count_hint(surplus, too_many, too_few):
    if surplus > 0:
        return f" The files count {surplus} readings more than the topic holds before their " \
               f"offsets: {too_many}"
    if surplus < 0:
        return f" The files count {-surplus} readings fewer than the topic holds before " \
               f"their offsets: {too_few}"
    return ""


DUPLICATE_HINT = ("a reading whose date is not after the last date counted (the `end`) is a "
                  "duplicate and must be skipped.")
MISSED_HINT = ("every message up to the saved offset must be counted: seek to the offset in "
               "partition-N.json (0 for a new file) and save the offset of the same batch "
               "whose statistics the file holds.")


def went_back_hint(s):
    """What the concurrent reader saw of offsets going back, as a sentence ("" if nothing)."""
    reader = s.reader
    if reader is None or not reader.went_back:
        return ""
    n, (before, after) = next(iter(sorted(reader.went_back.items())))
    return (f" partition-{n}.json's offset went back from {before} to {after}: a consumer "
            "that starts again must resume from the offset in the file, with its statistics.")


def require_exact(s, what, partitions=range(PARTITIONS)):
    offsets, problems, surplus = files_problems(s, partitions)
    require(not problems, f"{what}: {first_problems(problems)}."
            + count_hint(surplus, DUPLICATE_HINT, MISSED_HINT) + went_back_hint(s))
    return offsets


def drain_and_require_exact(s, what, keep_going):
    """Pause the producer, let the consumers reach the topic's end (however slowly, while they
    progress), and require the four files exact there. Returns the files' offsets."""
    with s.producer_paused() as target:
        s.wait_caught_up(target, keep_going=keep_going)
        return require_exact(s, what)


@check(6, "consumer.py 0 2: partitions 0 and 2, new files at offset 0", 10)
def consumer_partitions(s):
    require(s.producer is None, "this check needs the topic without a producer")
    s.recreate_empty_topic()
    s.outputs.remove("partition-*.json*")
    before = folder_snapshot(s.copy)
    consumer = s.programs.start_consumer("0", "2")
    own = [s.outputs.path(0), s.outputs.path(2)]
    try:
        wait_for(lambda: all(read_json(path) is not None for path in own), PROGRAM_TIMEOUT,
                 "consumer.py 0 2 to write partition-0.json and partition-2.json", consumer)
        # Whatever else it would touch, it touches in its first moments (it has nothing to
        # read): watched for a few seconds.
        time.sleep(OWN_PARTITIONS_WATCH)
    finally:
        s.programs.kill_consumers()
    after = folder_snapshot(s.copy)
    # Only the four partition files count: a program's own files (.tmp, locks) are its affair.
    touched = sorted(name for name in after if before.get(name) != after[name]
                     and name in PARTITION_FILES)
    expected = ["partition-0.json", "partition-2.json"]
    require(touched == expected, f"consumer.py 0 2 wrote {touched}: it must keep the files of "
                                 "partitions 0 and 2, and only those")
    problems = []
    for n in (0, 2):
        data = read_json(s.outputs.path(n))
        if data != {"partition": n, "offset": 0}:
            problems.append(f"a new partition-{n}.json of an empty topic is {data}, not "
                            f'{{"partition": {n}, "offset": 0}}')
    s.outputs.remove("partition-*.json*")
    return not problems, first_problems(problems)


def start_watched_consumers(s, *groups):
    """consumer.py with each of `groups` (lists of arguments) on fresh files, the producer
    running, and check 9's concurrent reader watching the files from now on."""
    s.ensure_producer()
    s.programs.kill_consumers()
    s.outputs.remove("partition-*.json*")
    s.reader = ConcurrentReader(s.copy)
    s.reader.start()
    return [s.programs.start_consumer(*group) for group in groups]


@check(7, "consumer.py: two rounds, exact statistics", 15, after=[3, 5], versions=["draft"])
def exact_stats(s):
    (consumer,) = start_watched_consumers(s, [])    # no arguments: the assignment's two rounds
    watch = s.programs.watch_workers(consumer)
    watch.start()
    try:
        wait_for(watch.rounds, ROUND_TIMEOUT, "", consumer)
    except CheckFailed:
        require_running(consumer)
        kind, count = watch.description()
        raise CheckFailed(f"consumer.py (no arguments) ran {count} worker {kind} and none of "
                          f"them stopped within {ROUND_TIMEOUT} s: round 1's consumers must "
                          "stop after 30 iterations, then round 2's start") from None
    finally:
        watch.stop()
    wait_for(lambda: all(s.outputs.path(n).exists() for n in range(PARTITIONS)),
             PROGRAM_TIMEOUT, "consumer.py to write partition-0..3.json", consumer)
    offsets = drain_and_require_exact(s, "after round 1 and round 2",
                                      keep_going=lambda: require_running(consumer))
    return True, f"round 1 then round 2, all four files exact (offsets {offsets})"


@check(7, "consumer.py 0 2 and 1 3: exact statistics, running until killed", 15,
       after=[3, 5], versions=["final"])
def final_exact_stats(s):
    consumers = start_watched_consumers(s, *FINAL_CONSUMERS)
    names = " and ".join(f"`consumer.py {' '.join(group)}`" for group in FINAL_CONSUMERS)

    def still_running():
        for consumer in consumers:
            if not consumer.running():
                require_running(consumer)  # its last words, or the environment's fault
        return None

    wait_for(lambda: all(s.outputs.path(n).exists() for n in range(PARTITIONS)),
             PROGRAM_TIMEOUT, "the consumers to write partition-0..3.json", *consumers)
    try:
        offsets = drain_and_require_exact(s, f"with {names} running", still_running)
        # The producer goes on again: consumers that stop after so many polls (the draft's
        # round 1) run out of them at once, and are seen to exit within the watch.
        watch_until = time.monotonic() + RUNNING_WATCH
        while time.monotonic() < watch_until:
            still_running()
            time.sleep(0.1)
    except CheckFailed as err:
        stopped = [c for c in consumers if not c.running()]
        if stopped:
            raise CheckFailed(f"{err} The assignment's programs run until killed: "
                              f"`{stopped[0].describe()}` exited by itself.") from None
        raise
    return True, f"{names} ran until killed; all four files exact (offsets {offsets})"


def require_consumers_running(consumers, groups, s):
    """A consumer that exited by itself is started again (programs run until killed; a
    consumer.py given partitions may run round 1 only)."""
    for i, consumer in enumerate(consumers):
        if not consumer.running():
            require(consumer.returncode == 0, f"`{consumer.describe()}` exited with "
                                              f"{consumer.returncode}: {consumer.tail()}")
            consumers[i] = s.programs.start_consumer(*groups[i])


# In the draft after 10, which plots from consumers this check stops; in the final version 10
# writes the files itself, after 9's reader is done (so after this check).
@check(8, "kill -9 and restart stay exact", 10, after=[7, 10], versions=["draft"])
@check(8, "kill -9 and restart stay exact", 10, after=[7], versions=["final"])
def crash_resume(s):
    s.ensure_producer()
    s.programs.kill_consumers()
    groups = (["0", "1"], ["2", "3"])
    consumers = [s.programs.start_consumer(*group) for group in groups]
    for cycle in range(KILL_CYCLES):
        victim = cycle % len(groups)
        group = [int(n) for n in groups[victim]]
        base = s.outputs.offsets()

        def advanced():
            require_consumers_running(consumers, groups, s)
            now = s.outputs.offsets()
            return all(isinstance(now[n], int) and now[n] > (base[n] or 0) for n in group)

        wait_for(advanced, CATCH_UP_TIMEOUT, f"consumer.py {' '.join(groups[victim])} to "
                                             "write newer offsets")
        time.sleep(random.uniform(0.05, 0.5))   # land the kill anywhere in a batch
        consumers[victim].kill()
        offsets, problems, surplus = files_problems(s, group)
        require(not problems, f"right after kill -9 of `consumer.py {' '.join(groups[victim])}`:"
                f" {first_problems(problems)}."
                + count_hint(surplus, DUPLICATE_HINT,
                             "a consumer can die at any moment, so each write of partition-N."
                             "json must hold the offset together with the statistics of every "
                             "message before it (one atomic write per batch, after counting it)")
                + went_back_hint(s))
        consumers[victim] = s.programs.start_consumer(*groups[victim])
    offsets = drain_and_require_exact(
        s, f"after {KILL_CYCLES} kills and restarts",
        keep_going=lambda: require_consumers_running(consumers, groups, s))
    return True, f"{KILL_CYCLES} kills and restarts, exact at each kill and after (offsets " \
                 f"{offsets})"


# The reader of check 7 watches until here: through check 8's kills when that runs too.
@check(9, "atomic writes under concurrent reads", 5, needs=[7], after=[8])
def atomic_writes(s):
    reader = s.reader
    require(reader is not None, "no consumer ran (check 7 could not start one)")
    reader.stop()
    if reader.failures:
        if reader.renamed_unfinished:
            advice = ("the file was replaced by a rename before it was completely written: "
                      "os.rename the .tmp file after the `with` block that writes it (once it "
                      "is closed), not inside it")
        else:
            advice = ("write the new version to partition-N.json.tmp, then os.rename it to "
                      "partition-N.json")
        return False, (f"{reader.failure_count} of {reader.reads + reader.failure_count} "
                       f"reads failed: {first_problems(reader.failures)}: {advice}")
    require(reader.reads >= MIN_CONCURRENT_READS,
            f"only {reader.reads} reads could be made while the consumers ran")
    require(len(reader.versions) >= MIN_FILE_VERSIONS,
            f"only {len(reader.versions)} file versions were seen: the consumers barely "
            "wrote")
    return True, f"{reader.reads} reads of {len(reader.versions)} file versions, none failed"


# ---------------------------------------------------------------- plot.py

def plot_program(folder):
    """plot.py, or the one other program that saves a figure (the assignment names none)."""
    if (folder / "plot.py").is_file():
        return "plot.py"
    found = [path.name for path in sorted(folder.glob("*.py"))
             if path.name not in NOT_PLOT_PROGRAMS and not path.name.endswith("_pb2.py")
             and "savefig" in path.read_text(errors="replace")]
    return found[0] if len(found) == 1 else None


PNG_END = b"IEND\xaeB`\x82"    # the last chunk of every PNG: the picture is whole


def picture(folder):
    """(name, bytes) of the plot in `folder` once it is a whole PNG; (None, None) before."""
    for name in PLOT_NAMES:
        try:
            data = read_regular(folder / name)[1]
        except OSError:
            continue
        if data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(PNG_END):
            return name, data
    return None, None


# After 7: it plots what check 7's consumers keep writing (else it starts consumers itself).
@check(10, "plot: yearly_trends.png drawn and redrawn", 5, after=[7], versions=["draft"])
def plot(s):
    name = plot_program(s.copy)
    require(name, "found no plotting program: plot.py (or one other .py file that calls "
                  "savefig)")
    s.ensure_producer()
    if not any(consumer.running() for consumer in s.programs.consumers):
        s.programs.start_consumer(*map(str, range(PARTITIONS)))
    wait_for(lambda: s.outputs.january_years() >= len(SAMPLE_YEARS), CATCH_UP_TIMEOUT,
             f"{len(SAMPLE_YEARS)} years of January in the partition files")
    s.outputs.remove("yearly_trends.png*", "yearly_trend.png*")
    program = s.programs.start(name)
    try:
        try:
            png_name, first = wait_for(lambda: picture(s.copy)[1] and picture(s.copy),
                                       PLOT_TIMEOUT, "", program)
        except CheckFailed:
            require_running(program)
            raise CheckFailed(f"{name} made no yearly_trends.png (a PNG image) in the files "
                              f"folder within {PLOT_TIMEOUT} s") from None
        years = s.outputs.january_years()
        try:
            wait_for(lambda: picture(s.copy)[1] not in (None, first), PLOT_TIMEOUT, "", program)
        except CheckFailed:
            require_running(program)
            raise CheckFailed(f"{png_name} was not redrawn within {PLOT_TIMEOUT} s while the "
                              f"partition files went from {years} to "
                              f"{s.outputs.january_years()} years of January") from None
    finally:
        program.kill()
    return True, f"{name} drew {png_name} and redrew it"


def write_exact_files(s, ends):
    """partition-N.json as an exact consumer would have written them at the topic's `ends`
    (p7check's statistics); returns {month: (latest year, its avg)} of the plot's months."""
    topic = s.read_topic(ends)
    latest = {}
    s.outputs.remove("partition-*.json*")
    for n, end in ends.items():
        stats = p7check.expected_stats(topic[n])
        s.outputs.write(n, json.dumps({"partition": n, "offset": end, **stats}))
        for month in PLOT_MONTHS:
            if stats.get(month):
                year = max(stats[month])
                latest[month] = (year, stats[month][year]["avg"])
    return latest


def draw_month_svg(s, name, expected, when):
    """Run the plot program once and require month.svg with the `expected` bars."""
    svg = s.copy / FINAL_PLOT
    svg.unlink(missing_ok=True)
    program = s.programs.start(name)

    def drawn():
        if not program.running():
            return True
        try:
            return svg_bars.read_bars(read_regular(svg)[1]) is not None
        except (OSError, svg_bars.SvgError):
            return False
    try:
        wait_for(drawn, FINAL_PLOT_TIMEOUT, f"{name} to write {FINAL_PLOT}")
        exited = not program.running()
    finally:
        program.kill()
    if not svg.exists():
        if exited and program.returncode != 0:
            try:
                require_running(program)    # its last words, or the environment's fault
            except CheckFailed as err:
                raise type(err)(f"{when}, {err}") from None
        raise CheckFailed(f"{when}, {name} wrote no files/{FINAL_PLOT}")
    try:
        bars = svg_bars.read_bars(read_regular(svg)[1], name=f"files/{FINAL_PLOT}")
    except OSError as err:
        raise CheckFailed(f"{when}: files/{FINAL_PLOT} is no regular file ({err})") from None
    except svg_bars.SvgError as err:
        raise CheckFailed(f"{when}: {err}") from None
    wrong = svg_bars.match_values(bars, [avg for _, avg in expected.values()])
    require(not wrong, f"{when}: {wrong}")
    return bars


@check(10, "plot.py: month.svg of the latest January, February and March", 5, after=[9],
       versions=["final"])
def final_plot(s):
    """plot.py run once on partition files the grader writes (exact, from the topic), then again
    with partition-3.json missing (it holds none of the three months)."""
    name = plot_program(s.copy)
    require(name, "found no plotting program: plot.py (or one other .py file that calls "
                  "savefig)")
    s.programs.kill_consumers()
    if s.reader is not None:
        s.reader.stop()       # the files are replaced from outside below
    s.ensure_producer()
    wait_for(lambda: (s.total_messages() or 0) >= PLOT_MESSAGES, CATCH_UP_TIMEOUT,
             f"{PLOT_MESSAGES} messages in the topic (January to March at least)", s.producer)
    with s.producer_paused() as ends:
        expected = write_exact_files(s, ends)
    shown = ", ".join(f"{month} {year}: {avg:.2f}" for month, (year, avg) in expected.items())
    draw_month_svg(s, name, expected, "with all four partition files")
    s.outputs.path(NO_PLOT_MONTHS_PARTITION).unlink()
    draw_month_svg(s, name, expected,
                   f"with partition-{NO_PLOT_MONTHS_PARTITION}.json missing")
    s.outputs.remove("partition-*.json*")
    return True, f"{name} drew the latest {shown}, also with a partition file missing"


# ---------------------------------------------------------------- resuming from a checkpoint

MISSED_AFTER_SEEK_HINT = (" The files miss messages after the saved offsets: after loading "
                          "partition-N.json, the consumer must seek to its offset (without a "
                          "seek it starts at the end of the partition).")


@check(11, "consumer.py seeks to the offset in partition-N.json", 10, after=[8, 9, 10])
def seeks(s):
    s.ensure_producer()
    s.programs.kill_consumers()
    if s.reader is not None:
        s.reader.stop()       # the files are replaced from outside below
    wait_for(lambda: (s.total_messages() or 0) >= SEEK_MESSAGES, CATCH_UP_TIMEOUT,
             f"{SEEK_MESSAGES} messages in the topic", s.producer)
    ends = s.require_end_offsets()
    # Half way: a consumer that reads from 0 counts the first half, one that starts at the end
    # misses the second; the file's form is the one a new file starts with.
    starts = {n: end // 2 for n, end in ends.items()}
    s.outputs.remove("partition-*.json*")
    for n, start in starts.items():
        s.outputs.write(n, f'{{"partition": {n}, "offset": {start}}}')
    group = [str(n) for n in range(PARTITIONS)]
    consumers = [s.programs.start_consumer(*group)]

    def keep_going():
        require_consumers_running(consumers, [group], s)

    # With the producer still running, a consumer that never seeks (and so starts at the end)
    # has new messages to count and writes every file too; then the topic's end is held still.
    # A file that does not move within SEEK_WRITE_WAIT is left to the drain to judge.
    deadline = time.monotonic() + SEEK_WRITE_WAIT
    while time.monotonic() < deadline:
        keep_going()
        offsets = s.outputs.offsets()
        if all(offsets[n] != start for n, start in starts.items()):
            break
        time.sleep(0.1)
    stalled = ""
    with s.producer_paused() as target:
        try:
            s.wait_caught_up(target, keep_going=keep_going, stall=SEEK_STALL)
        except CheckFailed as err:
            if not all(consumer.running() for consumer in consumers):
                raise
            stalled = f"{err}. "    # judged below by what the files hold
        finally:
            s.programs.kill_consumers()
        offsets, problems, surplus = files_problems(s, starts=starts)
        elsewhere = {n: other for n in range(PARTITIONS) if problems
                     for other in [sought_elsewhere(s, n, starts)] if other is not None}
    if elsewhere:
        n, other = next(iter(elsewhere.items()))
        hint = (f" partition {n} was read from offset {starts[other]}, the offset in "
                f"partition-{other}.json: seek each partition to the offset in its own file.")
    elif problems and surplus > 0 and not files_problems(s)[1]:
        hint = (" The files hold the messages before the saved offsets too: after loading "
                "partition-N.json, the consumer must seek to its offset.")
    elif problems and surplus < 0:
        hint = MISSED_AFTER_SEEK_HINT
    else:
        hint = count_hint(surplus, DUPLICATE_HINT, MISSED_HINT)
    if stalled and not problems:
        problems = ["the files are exact up to their offsets, but those stop short of the "
                    "topic's end"]
        hint = MISSED_AFTER_SEEK_HINT
    require(not problems, f"started from partition-N.json files saying offsets {starts}: "
            f"{stalled}{first_problems(problems)}.{hint}")
    return True, f"resumed at offsets {starts}, exact up to {offsets}"


# ---------------------------------------------------------------- the birthday feature

@check(12, "birthday (a TODO in the draft): not graded", 0, needs_broker=False, after=[4],
       versions=["draft"])
def birthday(s):
    found = []
    data = read_json(s.files / "birthday.json")
    if data is None:
        found.append("no files/birthday.json")
    else:
        found.append(f"files/birthday.json ({type(data).__name__} of {len(data)} entries)"
                     if isinstance(data, (dict, list)) else "files/birthday.json")
    if s.admin is not None:
        made = sorted(name for name, topic_id in s.topic_ids().items()
                      if name != TOPIC and s.topics_before.get(name) != topic_id)
        found.append(f"topics the programs made besides {TOPIC}: {', '.join(made)}" if made
                     else f"no topic made besides {TOPIC}")
    return SKIPPED, ("the draft leaves the birthday part a TODO, so it is not graded; looked "
                     "for files/birthday.json and a second topic: " + "; ".join(found))

