"""Independent checks of the pipeline against the real topic, shared by tests, autograde.py and
the benchmarks.

Nothing here imports from files/: the oracle recomputes every statistic straight from the
messages in Kafka, so a bug in consumer.py cannot hide in a shared helper.
"""

import json
import math
import os
import struct
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError

TOPIC = "temperatures"
PARTITIONS = 4
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"]


def bootstrap():
    return os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")


def wait_until(condition, timeout, what, interval=0.1):
    """Poll `condition` until it returns something truthy; fail with `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def new_consumer():
    return KafkaConsumer(bootstrap_servers=[bootstrap()], group_id=None,
                         enable_auto_commit=False, client_id="p7-check")


def new_admin():
    return KafkaAdminClient(bootstrap_servers=[bootstrap()], client_id="p7-check")


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


def read_partition(partition, stop_offset, timeout=60):
    """Every record of one partition from offset 0 up to (not including) stop_offset."""
    if stop_offset == 0:
        return []
    consumer = new_consumer()
    tp = TopicPartition(TOPIC, partition)
    records = []
    try:
        consumer.assign([tp])
        consumer.seek(tp, 0)
        deadline = time.monotonic() + timeout
        while not records or records[-1].offset < stop_offset - 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"could not read partition {partition} up to {stop_offset}")
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


def counted_readings(records):
    """(month, date, degrees) of the records of one partition that count: well-formed, and
    dated after every reading counted before them (so a producer's duplicate is dropped)."""
    newest = ""
    for record in records:
        try:
            month, date, degrees = decode(record)
        except (ValueError, UnicodeDecodeError, AttributeError, IndexError):
            continue
        if month not in MONTH_NAMES or len(date) != 10 or not math.isfinite(degrees):
            continue
        if MONTH_NAMES[int(date[5:7]) - 1] != month:
            continue
        if date <= newest:
            continue
        newest = date
        yield month, date, degrees


def expected_stats(records):
    """What partition-N.json must say after exactly these records, duplicates dropped."""
    stats = {}
    for month, date, degrees in counted_readings(records):
        year = stats.setdefault(month, {}).setdefault(
            date[:4], {"count": 0, "sum": 0.0, "start": date, "end": date})
        year["count"] += 1
        year["sum"] += degrees
        year["end"] = date
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


def check_partition_file(path, partition):
    """Compare one partition file with the topic; returns (offset, list of problems)."""
    with open(path) as f:
        data = json.load(f)
    problems = []
    if data.get("partition") != partition:
        problems.append(f"partition key {data.get('partition')!r} != {partition}")
    offset = data.get("offset")
    if not isinstance(offset, int):
        return offset, problems + [f"offset {offset!r} is not an integer"]
    records = read_partition(partition, offset)
    return offset, problems + stats_mismatches(data, expected_stats(records))


def expected_birthdays(birthday, partition_offsets):
    """What birthday.json must say when the partitions were counted up to these offsets."""
    expected = {"birthday": birthday}
    for partition, offset in partition_offsets.items():
        for _, date, degrees in counted_readings(read_partition(partition, offset)):
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
