"""tools/p7check.py's own decoding, in process: it must read what report_pb2 writes, and refuse
what is not a reading without crashing (the oracle keeps its own copy of the rules)."""

import math
import random

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from report_pb2 import Report  # files/report_pb2.py: only to write what the oracle reads
from tools import p7check


def record(key, value, offset=0):
    return ConsumerRecord("temperatures", 0, -1, offset, 0, 0, key, value, [], None, -1, -1, -1)


@pytest.mark.parametrize("seed", range(20))
def test_the_hand_decoder_reads_what_report_pb2_writes(seed):
    rng = random.Random(seed)
    date = f"{rng.randrange(1990, 2200)}-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d}"
    degrees = rng.uniform(-150, 150)
    value = Report(date=date, degrees=degrees).SerializeToString()
    assert p7check.decode(record(b"May", value)) == ("May", date, degrees)


@pytest.mark.parametrize("key, value", [
    (b"May", None),                                                       # a null value
    (b"May", b"\xff\xff\xff"),                                            # no protobuf
    (b"May", Report(date="1990-W20-1", degrees=1.0).SerializeToString()),  # an ISO week date
    (b"May", Report(date="1990-02-30", degrees=1.0).SerializeToString()),
    (b"May", Report(date="1990-06-01", degrees=1.0).SerializeToString()),  # another month
    (b"Smarch", Report(date="1990-05-01", degrees=1.0).SerializeToString()),
    (None, Report(date="1990-05-01", degrees=1.0).SerializeToString()),
    (b"May", Report(date="1990-05-01", degrees=math.nan).SerializeToString()),
    (b"May", Report(date="1990-05-01", degrees=math.inf).SerializeToString()),
])
def test_what_is_not_a_reading_is_no_reading(key, value):
    assert p7check.valid_reading(record(key, value)) is None


def test_counted_readings_drop_duplicates_and_a_rejected_poison():
    dates = ["1990-05-01", "1990-05-01", "2999-05-31", "1990-05-02", "1990-05-03",
             "1990-05-04", "2999-05-30", "1990-05-05"]
    records = [record(b"May", Report(date=d, degrees=1.0).SerializeToString(), offset=n)
               for n, d in enumerate(dates)]
    counted = [date for _, date, _ in p7check.counted_readings(records)]
    assert counted == ["1990-05-01", "1990-05-02", "1990-05-03", "1990-05-04", "1990-05-05"]
    with pytest.raises(p7check.Undecided):  # 05-01 waits for the next three dates
        list(p7check.counted_readings(records[:5], stop_offset=5))


def test_a_partitions_next_month_follows_its_last_day():
    months = p7check.partition_months(3)  # May, October, November
    assert months == {"May", "October", "November"}
    assert p7check.date_after("1990-05-31", months) == "1990-10-01"
    assert p7check.date_after("1990-11-30", months) == "1991-05-01"
    assert p7check.date_after("1992-02-28", {"February"}) == "1992-02-29"
    assert p7check.date_after("9999-12-31", months) == ""


@pytest.mark.parametrize("degrees", [250.5, -250.25, 1e6, 1e308])
def test_any_finite_number_of_degrees_is_a_reading(degrees):
    value = Report(date="1990-05-01", degrees=degrees).SerializeToString()
    assert p7check.valid_reading(record(b"May", value)) == ("May", "1990-05-01", degrees)


def test_a_reading_that_would_make_a_sum_infinite_adds_nothing_but_its_end():
    readings = [("1990-05-01", 1e308), ("1990-05-02", 1e308), ("1990-05-03", 2.0),
                ("1990-05-04", 3.0)]
    records = [record(b"May", Report(date=d, degrees=t).SerializeToString(), offset=n)
               for n, (d, t) in enumerate(readings)]
    may = p7check.expected_stats(records)["May"]["1990"]
    assert (may["count"], may["sum"], may["end"]) == (3, 1e308 + 2.0 + 3.0, "1990-05-04")
    assert p7check.expected_stats(records, 2)["May"]["1990"]["end"] == "1990-05-02"
