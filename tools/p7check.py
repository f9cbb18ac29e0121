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
import stat
import struct
import time

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

# The oracle's rules are its own; waiting with a deadline is the tooling's one way.
from tools.harness import wait_until  # noqa: F401  (p7check.wait_until, for its users)

TOPIC = "temperatures"
PARTITIONS = 4
MONTH_NAMES = ["January", "February", "March", "April", "May", "June", "July", "August",
               "September", "October", "November", "December"]
# The date rule (README, "How exactly-once works here"), restated here on purpose: a reading is
# valid with a real YYYY-MM-DD date of its key's month and a finite number of degrees. In a
# partition the stream's next date is the day after the newest counted one, or after a month's
# last day the first day of the partition's next month (the months Kafka's default partitioner
# puts there). A reading of that date is counted and rejects whatever is held; a newer one of any
# other date is held. The first held reading that the next HOLD_LIMIT - 1 dates follow, in order
# among the held ones, is counted, the ones held before it skipped and the ones after it judged
# again; failing that, MAX_HELD distinct dates held count the first held one. A counted reading whose degrees would make its
# month and year's sum infinite adds nothing but moves that year's `end` to its date.
DATE_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
HOLD_LIMIT = 4
MAX_HELD = 8


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


_DOUBLE = struct.Struct("<d")
_WIRE_NAMES = {0: "varint", 1: "64-bit", 2: "length-delimited", 5: "32-bit"}


def decode(record, numbers=None):
    """(key, date, degrees) of a record: its key as text, and the `Report` protobuf of its
    value, parsed from the wire format by hand so that the check does not even share the
    generated report_pb2 module.

    The fields are told apart by their wire type, not their numbers: the length-delimited one
    (wire type 2) is the date, the 64-bit one (wire type 1, a double) the degrees, so a
    report.proto saying `double degrees = 1; string date = 2;` decodes as the assignment's
    `string date = 1; double degrees = 2;` does. A field of any other wire type, or two
    length-delimited (or two 64-bit) fields of different numbers, make it no such Report. With
    `numbers`, a dict like {"date": 2, "degrees": 1} (as the submission's own report_pb2 numbers
    them; other keys are ignored), the fields are read by those numbers instead, each of its own
    wire type, and well-formed fields of other numbers are skipped.

    An absent field reads as proto3's default, "" or 0.0 (proto3 leaves default values out of
    the wire); of a field written twice, the last value counts, as in protobuf's own parsers.
    ValueError, and no other exception, for anything undecodable: a null value, a missing key or
    one that is not UTF-8, a truncated varint or field, a wire type or field number that cannot
    be, a date that is not UTF-8, or `numbers` without the two field numbers."""
    by_type = numbers is None
    want_date, want_degrees = (None, None) if by_type else _field_numbers(numbers)
    key, data = record.key, record.value
    if key is None:
        raise ValueError("the record has no key")
    if data is None:
        raise ValueError("the value is null")
    if not isinstance(key, (bytes, bytearray)) or not isinstance(data, (bytes, bytearray)):
        raise ValueError("the key and the value must be bytes")
    try:
        key = key.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the key is not UTF-8") from None
    date, degrees = b"", 0.0
    date_number = degrees_number = None   # by wire type: the numbers they came with
    i, end = 0, len(data)
    while i < end:
        tag = data[i]
        if tag < 0x80:  # the usual one-byte tag, without a call
            i += 1
        else:
            tag, i = _varint(data, i)
        number, wire_type = tag >> 3, tag & 7
        if number == 0:
            raise ValueError("field number 0, which no protobuf has")
        if wire_type == 2:
            if i < end and data[i] < 0x80:
                length = data[i]
                i += 1
            else:
                length, i = _varint(data, i)
            if length > end - i:
                raise ValueError(f"field {number}: {length} bytes announced, {end - i} left")
            value = data[i:i + length]
            i += length
            if by_type:
                if date_number not in (None, number):
                    raise ValueError(f"fields {date_number} and {number} are both "
                                     "length-delimited: which is the date is unknown")
                date, date_number = value, number
            elif number == want_date:
                date = value
            elif number == want_degrees:
                raise ValueError(f"field {number} (degrees) is length-delimited, not 64-bit")
        elif wire_type == 1:
            if end - i < 8:
                raise ValueError(f"field {number}: a 64-bit value cut short")
            value = _DOUBLE.unpack_from(data, i)[0]
            i += 8
            if by_type:
                if degrees_number not in (None, number):
                    raise ValueError(f"fields {degrees_number} and {number} are both 64-bit: "
                                     "which is the degrees is unknown")
                degrees, degrees_number = value, number
            elif number == want_degrees:
                degrees = value
            elif number == want_date:
                raise ValueError(f"field {number} (date) is 64-bit, not length-delimited")
        elif wire_type in (0, 5):
            if by_type:
                raise ValueError(f"field {number} is {_WIRE_NAMES[wire_type]}: a Report holds "
                                 "only a string and a double")
            if number in (want_date, want_degrees):
                raise ValueError(f"field {number} ({'date' if number == want_date else 'degrees'}"
                                 f") is {_WIRE_NAMES[wire_type]}")
            if wire_type == 0:
                _, i = _varint(data, i)
            elif end - i < 4:
                raise ValueError(f"field {number}: a 32-bit value cut short")
            else:
                i += 4
        else:
            raise ValueError(f"field {number}: wire type {wire_type}, which proto3 never writes")
    try:
        return key, date.decode("utf-8"), degrees
    except UnicodeDecodeError:
        raise ValueError("the date is not UTF-8") from None


def _field_numbers(numbers):
    """(date's number, degrees' number) from decode's `numbers`; ValueError unless they are two
    different positive integers."""
    try:
        found = numbers["date"], numbers["degrees"]
    except (KeyError, TypeError, IndexError):
        raise ValueError(f"numbers must map 'date' and 'degrees' to field numbers, not "
                         f"{numbers!r}") from None
    if any(type(n) is not int or n < 1 for n in found) or found[0] == found[1]:
        raise ValueError("numbers must map 'date' and 'degrees' to two different positive "
                         f"field numbers, not {numbers!r}")
    return found


def _varint(data, i):
    """(value, index after it) of the base-128 varint at data[i]; ValueError when it is cut
    short or longer than the 10 bytes of a 64-bit value."""
    shift = value = 0
    for position in range(i, min(i + 10, len(data))):
        byte = data[position]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position + 1
        shift += 7
    if len(data) - i < 10:
        raise ValueError("a varint cut short")
    raise ValueError("a varint longer than 10 bytes")


def valid_reading(record, numbers=None):
    """(month, date, degrees) of a record that is a reading at all, else None. `numbers`: as
    decode() takes them."""
    try:
        month, date, degrees = decode(record, numbers)
    except ValueError:  # decode's one exception for what it cannot read
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
    """Readings before the stop offset that are still held: a file's offset never passes one."""


def partition_months(partition, partitions=PARTITIONS):
    """The months whose key Kafka's default partitioner puts in `partition` (every month when
    it puts none there)."""
    months = {name for name in MONTH_NAMES
              if (murmur2(name.encode()) & 0x7FFFFFFF) % partitions == partition}
    return months or set(MONTH_NAMES)


def date_after(date, months):
    """The date a partition of `months` carries after `date`; "" when none can follow."""
    day = datetime.date.fromisoformat(date)
    if day == datetime.date.max:
        return ""
    tomorrow = day + datetime.timedelta(days=1)
    if tomorrow.month == day.month:
        return tomorrow.isoformat()
    year, month = day.year, day.month
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        if MONTH_NAMES[month - 1] in months:
            return f"{year:04d}-{month:02d}-01" if year <= 9999 else ""


def counted_readings(records, stop_offset=None):
    """(month, date, degrees) of the records of one partition that count, among those before
    stop_offset (default: all). All the records are read: a reading before stop_offset may be
    decided by later ones, as the consumer decided it with what it had read. Raises Undecided
    when a reading before stop_offset is still held at the end."""
    months = partition_months(records[0].partition) if records else set()
    to_judge = [(record.offset, reading) for record in records
                for reading in [valid_reading(record)] if reading]
    newest, held = "", []
    while to_judge:
        offset, (month, date, degrees) = to_judge.pop(0)
        if date <= newest:
            continue
        if newest and date == date_after(newest, months):
            held, newest = [], date
            if stop_offset is None or offset < stop_offset:
                yield month, date, degrees
            continue
        held.append((offset, (month, date, degrees)))
        first = _start_of_run([reading[1] for _, reading in held], months)
        if first is None and len({reading[1] for _, reading in held}) >= MAX_HELD:
            first = 0
        if first is not None:
            # The ones held before it are skipped; the ones after it are judged again.
            (counted_offset, counted), later = held[first], held[first + 1:]
            held, newest = [], counted[1]
            if stop_offset is None or counted_offset < stop_offset:
                yield counted
            to_judge[:0] = later
    if held and stop_offset is not None and held[0][0] < stop_offset:
        raise Undecided(f"offset {held[0][0]}: date {held[0][1][1]} is still held back")


def _start_of_run(dates, months):
    """The index of the first date that the next HOLD_LIMIT - 1 dates of the partition follow,
    each somewhere after the one before it in `dates`; None if none is."""
    for start in range(len(dates)):
        run, position = [dates[start]], start
        while len(run) < HOLD_LIMIT:
            wanted = date_after(run[-1], months)
            later = [i for i in range(position + 1, len(dates)) if dates[i] == wanted]
            if not later:
                break
            run.append(wanted)
            position = later[0]
        if len(run) == HOLD_LIMIT:
            return start
    return None


def expected_stats(records, stop_offset=None):
    """What partition-N.json must say after the records before stop_offset: duplicates, older
    dates and the readings the date rule rejected dropped."""
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


def load_json(path):
    """A JSON file's content. Opened without blocking, and OSError unless it is a regular file:
    open() of a FIFO would wait for a writer for ever."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd) as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        return json.load(f)


def partition_offsets(folder, partitions=range(PARTITIONS)):
    """{partition: checkpoint offset} of the partition files in `folder`; -1 for a file that is
    missing or unreadable (not written yet)."""
    offsets = {}
    for n in partitions:
        try:
            offsets[n] = load_json(os.path.join(folder, f"partition-{n}.json"))["offset"]
        except (OSError, ValueError, KeyError, TypeError, RecursionError):
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
    data = load_json(path)
    problems = []
    if data.get("partition") != partition:
        problems.append(f"partition key {data.get('partition')!r} != {partition}")
    offset = data.get("offset")
    if not isinstance(offset, int):
        return offset, problems + [f"offset {offset!r} is not an integer"]
    end = end_offsets([partition])[partition]
    if offset > end:
        return offset, problems + [f"offset {offset} is beyond the partition's end ({end})"]
    records = read_partition(partition, end, timeout=timeout)  # the later ones decide too
    try:
        expected = expected_stats(records, offset)
    except Undecided as err:
        return offset, problems + [f"the file's offset {offset} is past a reading that the "
                                   f"date rule still holds back ({err})"]
    return offset, problems + stats_mismatches(data, expected)


def expected_birthdays(birthday, partition_offsets):
    """What birthday.json must say when the partitions were counted up to these offsets."""
    expected = {"birthday": birthday}
    for partition, offset in partition_offsets.items():
        records = read_partition(partition, end_offsets([partition])[partition])
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
