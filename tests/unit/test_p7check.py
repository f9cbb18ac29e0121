"""tools/p7check.py's own decoding, in process: it must read what report_pb2 writes, whatever
numbers report.proto gives the two fields, and refuse what is not a reading with ValueError and
nothing else (the oracle keeps its own copy of the rules)."""

import math
import random
import struct

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
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


# ---------------------------------------------------------------- field numbers and wire types

def report_class(date_number, degrees_number, extra=()):
    """A Report class numbered as a student's report.proto may number it, made by protobuf
    itself from a descriptor (no hand-written encoding): `extra` adds (name, number, type)."""
    field = descriptor_pb2.FieldDescriptorProto
    package = f"report_{date_number}_{degrees_number}_{len(extra)}"
    proto = descriptor_pb2.FileDescriptorProto(name=f"{package}.proto", package=package,
                                               syntax="proto3")
    message = proto.message_type.add(name="Report")
    for name, number, kind in (("date", date_number, field.TYPE_STRING),
                               ("degrees", degrees_number, field.TYPE_DOUBLE), *extra):
        message.field.add(name=name, number=number, type=kind, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.Report"))


SWAPPED = report_class(date_number=2, degrees_number=1)  # double degrees = 1; string date = 2;


@pytest.mark.parametrize("date_number, degrees_number", [(1, 2), (2, 1), (7, 3), (300, 20)])
def test_the_fields_are_read_by_wire_type_whatever_their_numbers(date_number, degrees_number):
    report = report_class(date_number, degrees_number)
    value = report(date="1990-05-17", degrees=-12.25).SerializeToString()
    assert p7check.decode(record(b"May", value)) == ("May", "1990-05-17", -12.25)
    assert p7check.valid_reading(record(b"May", value)) == ("May", "1990-05-17", -12.25)


def test_swapped_numbers_decode_in_either_order_on_the_wire():
    # Protobuf writes fields by number: degrees first here. Hand-ordered the other way too.
    value = SWAPPED(date="1991-10-03", degrees=55.5).SerializeToString()
    assert value[0] == 1 << 3 | 1  # field 1, 64-bit: the degrees come first
    date_first = b"\x12\x0a1991-10-03" + b"\x09" + struct.pack("<d", 55.5)
    for wire in (value, date_first):
        assert p7check.decode(record(b"October", wire)) == ("October", "1991-10-03", 55.5)


def test_explicit_numbers_read_those_fields_and_skip_the_others():
    kind = descriptor_pb2.FieldDescriptorProto
    extra = report_class(2, 1, extra=(("station", 3, kind.TYPE_INT32),
                                      ("city", 4, kind.TYPE_STRING),
                                      ("wind", 5, kind.TYPE_FLOAT)))
    value = extra(date="1990-01-09", degrees=30.5, station=-7, city="Madison",
                  wind=3.5).SerializeToString()
    numbers = {"date": 2, "degrees": 1, "station": 3}  # other names are ignored
    assert p7check.decode(record(b"January", value), numbers) == ("January", "1990-01-09", 30.5)
    assert p7check.valid_reading(record(b"January", value), numbers) == \
        ("January", "1990-01-09", 30.5)
    # Without the numbers two strings (and a varint) make it no Report that can be told apart.
    with pytest.raises(ValueError, match="length-delimited|varint"):
        p7check.decode(record(b"January", value))
    assert p7check.valid_reading(record(b"January", value)) is None


def test_explicit_numbers_that_do_not_fit_the_wire_are_refused():
    value = SWAPPED(date="1990-01-09", degrees=30.5).SerializeToString()
    with pytest.raises(ValueError, match="wire|64-bit|length-delimited"):
        p7check.decode(record(b"January", value), {"date": 1, "degrees": 2})
    # A field the numbers name but the message leaves out (proto3 writes no default values).
    value = Report(date="1990-01-09", degrees=0.0).SerializeToString()
    assert p7check.decode(record(b"January", value), {"date": 1, "degrees": 2}) == \
        ("January", "1990-01-09", 0.0)
    assert p7check.decode(record(b"January", value), {"date": 1, "degrees": 9}) == \
        ("January", "1990-01-09", 0.0)


@pytest.mark.parametrize("numbers", [{}, {"date": 1}, {"date": 1, "degrees": 1},
                                     {"date": "1", "degrees": 2}, {"date": 0, "degrees": 2},
                                     {"date": True, "degrees": 2}, [1, 2], "date"])
def test_numbers_without_two_field_numbers_are_a_value_error(numbers):
    value = Report(date="1990-01-09", degrees=1.0).SerializeToString()
    with pytest.raises(ValueError, match="numbers must map"):
        p7check.decode(record(b"January", value), numbers)


GOOD = Report(date="1990-05-01", degrees=71.5).SerializeToString()


UNDECODABLE = [
    (None, GOOD, "no key"),
    (b"\xffMay", GOOD, "key is not UTF-8"),
    (b"May", None, "null"),
    (b"May", b"\x0a\x80", "varint cut short"),                    # the date's length, cut
    (b"May", b"\x0a\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", "longer than 10"),
    (b"May", b"\x0a\x05ab", "5 bytes announced, 2 left"),       # a truncated date
    (b"May", b"\x11\x00\x00\x00", "64-bit value cut short"),    # truncated degrees
    (b"May", b"\x0b", "wire type 3"),                             # a group's start
    (b"May", b"\x0e", "wire type 6"),
    (b"May", b"\x02\x00", "field number 0"),
    (b"May", b"\x0a\x02\xff\xfe", "date is not UTF-8"),
    (b"May", b"\x18\x01", "varint"),                              # a Report has no int field
    (b"May", GOOD + b"\x1a\x01x", "both length-delimited"),       # a second string, field 3
]


@pytest.mark.parametrize("key, value, words", UNDECODABLE,
                         ids=[words for _, _, words in UNDECODABLE])
def test_what_cannot_be_decoded_is_a_value_error_that_says_why(key, value, words):
    with pytest.raises(ValueError, match=words) as raised:
        p7check.decode(record(key, value))
    assert type(raised.value) is ValueError  # not even UnicodeDecodeError, its subclass


def random_values(rng, good):
    """Byte strings that are not Reports, or barely: random bytes, every cut of a good value,
    the good value with random bytes changed, and random sequences of plausible fields."""
    for _ in range(300):
        yield rng.randbytes(rng.randrange(0, 40))
    for end in range(len(good)):
        yield good[:end]
    for _ in range(300):
        flipped = bytearray(good)
        for _ in range(rng.randrange(1, 4)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        yield bytes(flipped)
    for _ in range(300):
        value = b""
        for _ in range(rng.randrange(1, 5)):
            tag = rng.randrange(1, 6) << 3 | rng.choice([0, 1, 2, 5, rng.randrange(8)])
            value += bytes([tag]) + rng.randbytes(rng.randrange(0, 12))
        yield value


@pytest.mark.parametrize("numbers, report", [(None, Report), (None, SWAPPED),
                                             ({"date": 1, "degrees": 2}, Report),
                                             ({"date": 2, "degrees": 1}, SWAPPED)])
def test_garbage_is_a_value_error_and_nothing_else(numbers, report):
    rng = random.Random(544)  # seeded: a failure comes back
    good = report(date="1990-05-01", degrees=71.5).SerializeToString()
    decoded = refused = 0
    for value in random_values(rng, good):
        for key in (b"May", rng.randbytes(3)):
            try:
                month, date, degrees = p7check.decode(record(key, value), numbers)
            except ValueError:
                refused += 1
                continue
            except Exception as err:  # noqa: BLE001  (the point: name what escaped)
                pytest.fail(f"decode({key!r}, {value!r}, {numbers}) raised "
                            f"{err.__class__.__name__}: {err}")
            decoded += 1
            assert isinstance(month, str) and isinstance(date, str)
            assert isinstance(degrees, float)
            p7check.valid_reading(record(key, value), numbers)  # None or a reading, no crash
    assert decoded > 100 and refused > 100  # both ways were taken
