"""Independent checks of the pipeline against the real topic, shared by tests, autograde.py and
the benchmarks.

Nothing here imports from files/: the oracle recomputes every statistic straight from the
messages in Kafka, so a bug in consumer.py cannot hide in a shared helper.
"""

import datetime
import json
import math
import os
import re
import struct
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

# The oracle's rules are its own; waiting with a deadline is the tooling's one way.
from tools.harness import wait_until  # noqa: F401  (p7check.wait_until, for its users)

TOPIC = "temperatures"
PARTITIONS = 4
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"]
# The date rule (README, "How exactly-once works here"), restated here on purpose: a reading is
# valid with a real YYYY-MM-DD date of its key's month and a finite number of degrees. A date
# more than MAX_GAP_DAYS after the newest counted one (or the first of a partition) is decided
# by the next CONFIRMATIONS valid readings newer than that and not equal to it: counted if all
# are after it, skipped as soon as one falls between. A counted reading whose degrees would make
# its month and year's sum infinite adds nothing but moves that year's `end` to its date.
DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_GAP_DAYS = 400
CONFIRMATIONS = 2


def bootstrap():
    return os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")


def new_consumer():
    return KafkaConsumer(bootstrap_servers=bootstrap().split(","), group_id=None,
                         enable_auto_commit=False, client_id="p7-check")


def new_admin():
    return KafkaAdminClient(bootstrap_servers=bootstrap().split(","), client_id="p7-check")


def end_offsets(partitions=range(PARTITIONS), topic=TOPIC):
    consumer = new_consumer()
    try:
        if topic not in consumer.topics():
            return {n: 0 for n in partitions}  # being recreated: asking would block for 30 s
        tps = [TopicPartition(topic, n) for n in partitions]
        return {tp.partition: offset for tp, offset in consumer.end_offsets(tps).items()}
    finally:
        consumer.close()


def recreate_empty_topic(admin, timeout=60):
    """An empty `temperatures` topic with its 4 partitions, as producer.py makes it; returns
    once every partition answers (its end offset is 0)."""
    if TOPIC in admin.list_topics():
        admin.delete_topics([TOPIC])
        wait_until(lambda: TOPIC not in admin.list_topics(), timeout, f"{TOPIC} to be deleted")

    def create():
        try:
            admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])
            return True
        except TopicAlreadyExistsError:  # the old one may still be going away
            return False

    wait_until(create, timeout, f"{TOPIC} to be created")
    wait_until(lambda: end_offsets() == {n: 0 for n in range(PARTITIONS)}, timeout,
               f"the new {TOPIC} topic to have partition leaders")


def read_partition(partition, stop_offset, timeout=60, start=0):
    """Every record of one partition from offset `start` (default 0) up to (not including)
    stop_offset."""
    if stop_offset <= start:
        return []
    consumer = new_consumer()
    tp = TopicPartition(TOPIC, partition)
    records = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        deadline = time.monotonic() + timeout
        while not records or records[-1].offset < stop_offset - 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read partition {partition} from offset {start} "
                                     f"up to {stop_offset} within {timeout} s")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(r for r in batch if r.offset < stop_offset)
    finally:
        consumer.close()
    return records


def decode(record):
    """(key, date, degrees) of a record, parsing the protobuf wire format by hand so that the
    check does not even share the generated report_pb2 module."""
    fields = {}
    data = record.value
    if data is None:
        raise ValueError("the value is null")
    i = 0
    while i < len(data):
        tag, i = _varint(data, i)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == 2:
            length, i = _varint(data, i)
            fields[number] = data[i:i + length].decode("utf-8")
            i += length
        elif wire_type == 1:
            fields[number] = struct.unpack("<d", data[i:i + 8])[0]
            i += 8
        else:
            raise ValueError(f"unexpected wire type {wire_type}")
    return record.key.decode("utf-8"), fields.get(1, ""), fields.get(2, 0.0)


def _varint(data, i):
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, i
        shift += 7


def valid_reading(record):
    """(month, date, degrees) of a record that is a reading at all, else None."""
    try:
        month, date, degrees = decode(record)
    except (ValueError, UnicodeDecodeError, AttributeError, IndexError, struct.error):
        return None
    if month not in MONTH_NAMES or not isinstance(date, str) or not DATE_SHAPE.fullmatch(date):
        return None
    try:
        day = datetime.date(int(date[:4]), int(date[5:7]), int(date[8:]))
    except ValueError:
        return None
    if MONTH_NAMES[day.month - 1] != month or not isinstance(degrees, float) \
            or not math.isfinite(degrees):
        return None
    return month, date, degrees


class Undecided(Exception):
    """A far-ahead date before the stop offset that the topic cannot decide yet."""


def counted_readings(records, stop_offset=None):
    """(month, date, degrees) of the records of one partition that count, among those before
    stop_offset (default: all); the records after it are read only to decide far-ahead dates.
    Raises Undecided for a far-ahead date before stop_offset that nothing decides yet."""
    valid = [(record.offset, reading) for record in records
             for reading in [valid_reading(record)] if reading]
    newest = ""
    for i, (offset, (month, date, degrees)) in enumerate(valid):
        if stop_offset is not None and offset >= stop_offset:
            return
        if date <= newest:
            continue
        if newest and date <= _days_after(newest, MAX_GAP_DAYS):
            newest = date
            yield month, date, degrees
            continue
        later = [d for _, (_, d, _) in valid[i + 1:] if d > newest and d != date]
        deciding = later[:CONFIRMATIONS]
        if any(d < date for d in deciding):
            continue
        if len(deciding) < CONFIRMATIONS:
            raise Undecided(f"offset {offset}: date {date} is not decided yet")
        newest = date
        yield month, date, degrees


def _days_after(date, days):
    try:
        return (datetime.date.fromisoformat(date) + datetime.timedelta(days=days)).isoformat()
    except OverflowError:
        return "9999-12-31"


def expected_stats(records, stop_offset=None):
    """What partition-N.json must say after the records before stop_offset, duplicates and
    far-ahead dates the records after them reject dropped."""
    stats = {}
    for month, date, degrees in counted_readings(records, stop_offset):
        year = stats.setdefault(month, {}).setdefault(
            date[:4], {"count": 0, "sum": 0.0, "start": date, "end": date})
        year["end"] = date
        if math.isinf(year["sum"] + degrees):
            continue
        year["count"] += 1
        year["sum"] += degrees
    for years in stats.values():
        for year in years.values():
            year["avg"] = year["sum"] / year["count"]
    return stats


def stats_mismatches(data, expected):
    """Human-readable differences between a partition file's months and the oracle's."""
    problems = []
    months = {k: v for k, v in data.items() if k not in ("partition", "offset")}
    if set(months) != set(expected):
        problems.append(f"months {sorted(months)} != expected {sorted(expected)}")
    for month, years in expected.items():
        got_years = months.get(month, {})
        if set(got_years) != set(years):
            problems.append(f"{month}: years {sorted(got_years)} != {sorted(years)}")
            continue
        for year, want in years.items():
            got = got_years[year]
            for key in ("count", "start", "end"):
                if got.get(key) != want[key]:
                    problems.append(f"{month} {year} {key}: {got.get(key)!r} != {want[key]!r}")
            for key in ("sum", "avg"):
                if not isinstance(got.get(key), (int, float)) or \
                        abs(got[key] - want[key]) > 1e-6 * max(1.0, abs(want[key])):
                    problems.append(f"{month} {year} {key}: {got.get(key)!r} != {want[key]!r}")
    return problems


def records_with_lookahead(partition, offset, timeout=60):
    """The records of one partition from 0 up to its end now (at least up to `offset`): the
    consumer decided far-ahead dates before `offset` with the records after them."""
    end = end_offsets([partition])[partition]
    return read_partition(partition, max(offset, end), timeout=timeout)


def partition_offsets(folder, partitions=range(PARTITIONS)):
    """{partition: checkpoint offset} of the partition files in `folder`; -1 for a file that is
    missing or unreadable (not written yet)."""
    offsets = {}
    for n in partitions:
        try:
            with open(os.path.join(folder, f"partition-{n}.json")) as f:
                offsets[n] = json.load(f)["offset"]
        except (OSError, ValueError, KeyError, TypeError):
            offsets[n] = -1
    return offsets


def missing_days(ends, first="1990-01-01"):
    """The days from `first` to the newest date in the topic (up to `ends`, offsets per
    partition) that no message of any partition carries: none when nothing was lost."""
    dates = set()
    for partition, end in ends.items():
        dates.update(decode(record)[1] for record in read_partition(partition, end))
    if not dates:
        return []
    day, last = datetime.date.fromisoformat(first), datetime.date.fromisoformat(max(dates))
    missing = []
    while day <= last:
        if day.isoformat() not in dates:
            missing.append(day.isoformat())
        day += datetime.timedelta(days=1)
    return missing


def check_partition_file(path, partition, timeout=60):
    """Compare one partition file with the topic; returns (offset, list of problems).
    `timeout`: for reading the partition (millions of records take longer than a minute)."""
    with open(path) as f:
        data = json.load(f)
    problems = []
    if data.get("partition") != partition:
        problems.append(f"partition key {data.get('partition')!r} != {partition}")
    offset = data.get("offset")
    if not isinstance(offset, int):
        return offset, problems + [f"offset {offset!r} is not an integer"]
    records = records_with_lookahead(partition, offset, timeout)
    try:
        expected = expected_stats(records, offset)
    except Undecided as err:
        return offset, problems + [f"the file's offset {offset} is past an undecided {err}"]
    return offset, problems + stats_mismatches(data, expected)


def expected_birthdays(birthday, partition_offsets):
    """What birthday.json must say when the partitions were counted up to these offsets."""
    expected = {"birthday": birthday}
    for partition, offset in partition_offsets.items():
        records = records_with_lookahead(partition, offset)
        for _, date, degrees in counted_readings(records, offset):
            if date[5:] == birthday[5:]:
                expected[date[:4]] = degrees
    return expected


def processes_mentioning(text):
    """Pids of the processes whose command line contains `text`."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if text in f.read().decode(errors="replace"):
                        pids.append(int(entry))
            except OSError:
                pass
    return pids
