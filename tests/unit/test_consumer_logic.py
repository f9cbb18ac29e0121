"""consumer.py's reading of messages and keeping of stats, in process: no Java, no broker.

The records are kafka-python's own ConsumerRecord values, as poll() returns them. The date rule
is checked against tools/p7check.py, the independent oracle, over random streams: the consumer
(fed in random batches, restarted from its own checkpoints) and the oracle must agree."""

import datetime
import json
import math
import random

import pytest
from kafka.consumer.fetcher import ConsumerRecord

import consumer  # files/consumer.py
import p7common  # files/p7common.py
from report_pb2 import Report
from tools import p7check

WHO = [0]


def record(offset, key, value, partition=0):
    return ConsumerRecord("temperatures", partition, -1, offset, 0, 0, key, value, [], None,
                          -1, -1, -1)


def reading(offset, date, degrees=50.0, month=None, partition=0):
    month = month or consumer.MONTHS[int(date[5:7]) - 1]
    value = Report(date=date, degrees=degrees).SerializeToString()
    return record(offset, month.encode(), value, partition)


# ---------------------------------------------------------------- parse_message

def test_a_report_keyed_by_its_month_parses():
    assert consumer.parse_message(reading(0, "1990-03-05", 41.25)) == ("March", "1990-03-05",
                                                                        41.25)


@pytest.mark.parametrize("key, value, complaint", [
    (b"Smarch", Report(date="1990-03-05", degrees=1.0).SerializeToString(), "not a month"),
    (None, Report(date="1990-03-05", degrees=1.0).SerializeToString(), "not a month"),
    (b"\xff", Report(date="1990-03-05", degrees=1.0).SerializeToString(), "not a month"),
    (b"March", b"\xff\xff not a protobuf", "not a Report"),
    (b"March", Report(date="1990-W10-1", degrees=1.0).SerializeToString(), "YYYY-MM-DD"),
    (b"March", Report(date="1990-02-30", degrees=1.0).SerializeToString(), "YYYY-MM-DD"),
    (b"March", Report(date="19900305", degrees=1.0).SerializeToString(), "YYYY-MM-DD"),
    (b"March", Report(date="", degrees=1.0).SerializeToString(), "YYYY-MM-DD"),
    (b"March", Report(date="1990-04-05", degrees=1.0).SerializeToString(), "does not belong"),
    (b"March", Report(date="1990-03-05", degrees=math.nan).SerializeToString(), "not a finite"),
    (b"March", Report(date="1990-03-05", degrees=math.inf).SerializeToString(), "not a finite"),
    (b"March", Report(date="1990-03-05", degrees=-math.inf).SerializeToString(), "not a finite"),
])
def test_what_is_not_a_reading_is_malformed(key, value, complaint):
    with pytest.raises(consumer.MalformedMessage, match=complaint):
        consumer.parse_message(record(0, key, value))


@pytest.mark.parametrize("degrees", [250.5, -250.25, 1e6, -1e308, 1e308, 0.0])
def test_any_finite_number_of_degrees_is_a_reading(degrees):
    assert consumer.parse_message(reading(0, "1990-07-05", degrees)) == ("July", "1990-07-05",
                                                                          degrees)


def test_a_null_value_is_malformed_or_empty_never_a_crash():
    # An empty Report has the empty date: malformed all the same.
    with pytest.raises(consumer.MalformedMessage):
        consumer.parse_message(record(0, b"March", None))


# ---------------------------------------------------------------- update_stats

def test_update_stats_keeps_count_sum_avg_start_end_per_month_and_year():
    data = consumer.fresh_partition(0)
    for date, degrees in (("1990-03-01", 10.0), ("1990-03-02", 20.0), ("1991-03-01", 5.0)):
        consumer.update_stats(data, "March", date, degrees)
    assert data["March"]["1990"] == {"count": 2, "sum": 30.0, "avg": 15.0,
                                     "start": "1990-03-01", "end": "1990-03-02"}
    assert data["March"]["1991"]["count"] == 1 and data["March"]["1991"]["avg"] == 5.0
    assert consumer.last_date(data) == "1991-03-01"
    assert p7common.partition_problem(data, 0) is None


# ---------------------------------------------------------------- partition_problem

def good_checkpoint():
    data = consumer.fresh_partition(1)
    consumer.update_stats(data, "May", "1990-05-01", 60.0)
    data["offset"] = 1
    return data


@pytest.mark.parametrize("change, complaint", [
    (lambda d: d.update(partition=2), "belongs to partition 2"),
    (lambda d: d.update(offset=-1), "no valid offset"),
    (lambda d: d.update(offset=True), "no valid offset"),
    (lambda d: d.update(offset="7"), "no valid offset"),
    (lambda d: d.update(Smarch={}), "unexpected key 'Smarch'"),
    (lambda d: d["May"]["1990"].pop("avg"), "incomplete May stats"),
    (lambda d: d["May"]["1990"].update(count="x"), "count 'x'"),
    (lambda d: d["May"]["1990"].update(sum=math.inf), "sum inf"),
    (lambda d: d["May"]["1990"].update(end=None), "end None"),
    (lambda d: d["May"]["1990"].update(end="2999-12-32"), "end '2999-12-32'"),
    (lambda d: d["May"]["1990"].update(start="1991-05-01"), "start '1991-05-01'"),
])
def test_partition_problem_names_what_is_wrong(change, complaint):
    data = good_checkpoint()
    assert p7common.partition_problem(data, 1) is None
    change(data)
    assert complaint in p7common.partition_problem(data, 1)


def test_a_checkpoint_that_is_no_object_is_refused():
    assert p7common.partition_problem([], 0) == "does not hold a JSON object"


# ---------------------------------------------------------------- apply_messages

def date_filter(partition, newest):
    return consumer.DateFilter(partition, newest, WHO, consumer.partition_months(partition, 4))


def apply(messages, data=None, newest=None, partition=0):
    """apply_messages on a partition (default 0: March, August, September)."""
    data = data or consumer.fresh_partition(partition)
    dates = date_filter(partition, consumer.last_date(data) if newest is None else newest)
    counted = []
    consumer.apply_messages(data, dates, messages, WHO,
                            lambda date, degrees: counted.append(date))
    return data, dates, counted


def test_duplicates_count_once_and_malformed_messages_are_logged(capsys):
    messages = [reading(0, "1990-01-01", 20.0), reading(1, "1990-01-02", 21.0),
                reading(2, "1990-01-02", 90.0),   # the generator's duplicate, 40+ off
                record(3, b"January", b"\xff garbage"),
                reading(4, "1990-01-03", 22.0), reading(5, "1990-01-04", 23.0)]
    data, dates, counted = apply(messages)
    assert counted == ["1990-01-01", "1990-01-02", "1990-01-03", "1990-01-04"]
    assert data["January"]["1990"]["sum"] == 86.0
    assert dates.checkpoint(6) == 6
    assert "partition 0 offset 3: skipped a malformed message" in capsys.readouterr().err


def test_a_far_future_date_is_held_back_then_skipped():
    messages = [reading(0, "1990-12-01"), reading(1, "2999-12-31"), reading(2, "1990-12-02"),
                reading(3, "1990-12-03")]
    data, dates, counted = apply(messages, newest="1990-11-30", partition=2)  # December's
    assert counted == ["1990-12-01", "1990-12-02", "1990-12-03"]
    assert dates.checkpoint(4) == 4


def test_a_genuine_jump_is_counted_once_the_stream_goes_on_after_it():
    data, dates, counted = apply([reading(0, "1990-05-01"), reading(1, "2005-05-01")],
                                 newest="1990-04-30", partition=3)  # May's
    assert counted == ["1990-05-01"] and dates.checkpoint(2) == 1  # 2005 is still undecided
    consumer.apply_messages(data, dates, [reading(2, "2005-05-02"), reading(3, "2005-05-03")],
                            WHO)
    assert "2005" not in data["May"] and dates.checkpoint(4) == 1
    consumer.apply_messages(data, dates, [reading(4, "2005-05-04")], WHO)
    assert data["May"]["2005"]["count"] == 4 and dates.checkpoint(5) == 5


def test_the_expected_date_rejects_everything_held(capsys):
    data, dates, counted = apply([reading(0, "1990-05-01"), reading(1, "1990-05-09"),
                                  reading(2, "1990-05-10"), reading(3, "1990-05-11"),
                                  reading(4, "1990-05-02")], newest="1990-04-30", partition=3)
    assert counted == ["1990-05-01", "1990-05-02"] and dates.checkpoint(5) == 5
    assert capsys.readouterr().err.count("the stream went on with 1990-05-02") == 3


def test_where_days_keep_going_missing_each_reading_waits_for_at_most_eight_dates():
    # Every other day: no three consecutive dates ever follow one, so MAX_HELD decides.
    dates = [f"1990-05-{day:02d}" for day in range(1, 31, 2)]
    data, dates_filter, counted = apply([reading(n, d) for n, d in enumerate(dates)],
                                        newest="1990-04-30", partition=3)  # May's
    assert counted == [dates[0]] + dates[1:len(dates) - consumer.MAX_HELD + 1]
    assert len(dates_filter.held) == consumer.MAX_HELD - 1


def test_a_month_change_is_the_fast_path():
    # Partition 3 carries May, October and November: after May 31 comes October 1.
    data, dates, counted = apply([reading(0, "1990-10-01"), reading(1, "1990-10-02")],
                                 newest="1990-05-31", partition=3)
    assert counted == ["1990-10-01", "1990-10-02"] and not dates.held


def test_hot_and_cold_readings_count_like_any_other():
    degrees = [80.0, 250.5, -250.25, 1e6, 75.5, 1e6, 79.0, 81.0]  # 07-06 twice: a duplicate
    dates = ["2000-07-01", "2000-07-02", "2000-07-03", "2000-07-04", "2000-07-05", "2000-07-05",
             "2000-07-06", "2000-07-07"]
    data, _, counted = apply([reading(n, d, t) for n, (d, t) in enumerate(zip(dates, degrees))])
    assert counted == sorted(set(dates))
    assert data["July"]["2000"]["count"] == 7
    assert data["July"]["2000"]["sum"] == sum(degrees) - 1e6  # the duplicate left out


def test_a_sum_that_would_be_infinite_is_refused_and_the_file_stays_strict_json(capsys):
    readings = [("2000-07-01", 1e308), ("2000-07-02", 1e308), ("2000-07-03", 50.0),
                ("2000-07-03", 9.0), ("2000-07-04", -1e308), ("2000-07-05", 2.0)]
    messages = [reading(offset, date, degrees, partition=1)  # July's partition
                for offset, (date, degrees) in enumerate(readings)]
    data, dates, counted = apply(messages, partition=1)
    assert counted == ["2000-07-01", "2000-07-03", "2000-07-04", "2000-07-05"]
    assert data["July"]["2000"] == {"count": 4, "sum": 1e308 + 50.0 - 1e308 + 2.0,
                                    "avg": (1e308 + 50.0 - 1e308 + 2.0) / 4,
                                    "start": "2000-07-01", "end": "2000-07-05"}
    err = capsys.readouterr().err
    assert err.count("would no longer be a finite number") == 1 and "2000-07-02" in err
    text = p7common.json_text(data)
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the file"))
    assert p7common.partition_problem(json.loads(text), 1) is None
    assert p7check.stats_mismatches(data, p7check.expected_stats(messages)) == []


def test_old_dates_are_summed_up_in_one_line(capsys):
    apply([reading(n, f"1990-01-0{n + 1}") for n in range(3)], newest="1990-06-01")
    err = capsys.readouterr().err
    assert err.count("dated before the newest counted date") == 1 and "3 reading(s)" in err


MONTH_DAYS = 28


def random_stream(rng, length):
    """Mostly an advancing stream of one partition's months, with duplicates, far-future
    poisons, jumps ahead, malformed messages, old replays and degrees near the largest float,
    as offsets 0..length-1."""
    day = rng.randrange(0, 200)
    messages = []
    for offset in range(length):
        roll = rng.random()
        if roll < 0.05 and messages:
            messages.append(record(offset, b"March", b"\x01 garbage"))
            continue
        if roll < 0.10:
            date = f"{rng.choice([2999, 2500, 9999])}-03-{rng.randrange(1, MONTH_DAYS):02d}"
        elif roll < 0.13:
            day += rng.randrange(400, 4000)
            date = None
        elif roll < 0.18:
            date = None
            day = max(0, day - rng.randrange(1, 60))
        else:
            if rng.random() > 0.1:  # else: the same day again (a duplicate)
                day += 1
            date = None
        if date is None:
            year, month_day = 1990 + day // MONTH_DAYS, day % MONTH_DAYS + 1
            date = f"{year}-03-{month_day:02d}"
        huge = rng.random() < 0.08  # sums that would leave the finite numbers
        degrees = rng.choice([1e308, -1e308, 9e307]) if huge else round(rng.uniform(-20, 90), 4)
        messages.append(reading(offset, date, degrees))
    return messages


def consume_in_batches(rng, messages, partition=0):
    """consumer.py's loop without Kafka: random batches, saved after some of them (consumer.py
    skips checkpoints while it catches up), sometimes a restart from the file as last saved."""
    data = consumer.fresh_partition(partition)
    saved = p7common.json_text(data)
    dates = date_filter(partition, "")
    position = 0
    while position < len(messages):
        size = rng.randrange(1, 12)
        batch = messages[position:position + size]
        consumer.apply_messages(data, dates, batch, WHO)
        data["offset"] = dates.checkpoint(batch[-1].offset + 1)
        position += len(batch)
        if rng.random() < 0.6:
            saved = p7common.json_text(data)
        if rng.random() < 0.2:  # a kill: what survives is the file as last saved
            data = json.loads(saved)
            dates = date_filter(partition, consumer.last_date(data))
            position = data["offset"]
    return json.loads(saved if rng.random() < 0.5 else p7common.json_text(data))


@pytest.mark.parametrize("seed", range(150))
def test_the_consumer_and_the_oracle_agree_on_random_streams(seed, capsys):
    rng = random.Random(seed)
    messages = random_stream(rng, rng.randrange(20, 120))
    data = consume_in_batches(rng, messages)
    expected = p7check.expected_stats(messages, data["offset"])
    assert p7check.stats_mismatches(data, expected) == []


# ---------------------------------------------------------------- files and checkpoints

def test_partition_files_are_standard_json_with_a_line_per_month_and_year(tmp_path):
    data = consumer.fresh_partition(2)
    readings = [("January", "1990-01-01", 20.5), ("January", "1990-01-02", -3.25),
                ("January", "1991-01-01", 1 / 3), ("May", "1990-05-01", 61.0)]
    for month, date, degrees in readings:
        consumer.update_stats(data, month, date, degrees)
    data["offset"] = 4
    path = tmp_path / "partition-2.json"
    consumer.save_dict_to_json(data, str(path))
    text = path.read_text()
    assert json.loads(text) == data  # every float back exactly
    lines = text.splitlines()
    # {, partition, offset, January {, 1990, 1991, }, May {, 1990, }, }
    assert len(lines) == 11, text
    assert lines[4] == ('    "1990": {"count": 2, "sum": 17.25, "avg": 8.625, '
                        '"end": "1990-01-02", "start": "1990-01-01"},')
    assert consumer.load_partition(2, str(tmp_path)) == data


def test_a_flat_dict_gets_a_line_per_key():
    text = p7common.json_text({"birthday": "1997-10-02", "1990": 51.5, "1991": -2.0})
    assert text == '{\n  "birthday": "1997-10-02",\n  "1990": 51.5,\n  "1991": -2.0\n}\n'


@pytest.fixture
def clock(monkeypatch):
    """consumer.py's time.monotonic(), moved on by hand."""
    now = [1000.0]
    monkeypatch.setattr(consumer.time, "monotonic", lambda: now[0])
    return now


def saved_offset(folder, n):
    path = folder / f"partition-{n}.json"
    return json.loads(path.read_text())["offset"] if path.exists() else None


def partition(folder, n):
    return consumer.Partition(n, consumer.fresh_partition(n), str(folder), WHO,
                              consumer.partition_months(n, 4))


def batch_to(offset):
    """A batch whose last message has `offset` - 1: advance() moves the offset to `offset`."""
    return [record(offset - 1, b"March", b"")]


def test_partitions_wait_while_behind_and_save_at_once_when_caught_up(tmp_path, clock):
    partitions = {n: partition(tmp_path, n) for n in (0, 1)}
    partitions[0].advance(batch_to(10), at_end=False)
    partitions[1].advance(batch_to(5), at_end=True)
    for p in partitions.values():
        p.save_if_due()
    assert (saved_offset(tmp_path, 0), saved_offset(tmp_path, 1)) == (None, 5)
    clock[0] += consumer.CHECKPOINT_EVERY_SEC
    partitions[0].save_if_due()
    assert saved_offset(tmp_path, 0) == 10
    partitions[0].advance(batch_to(20), at_end=False)
    partitions[0].save_if_due()
    assert saved_offset(tmp_path, 0) == 10  # saved a moment ago
    partitions[0].save_if_due(now=True)  # stopping
    assert saved_offset(tmp_path, 0) == 20


def test_a_file_that_is_slow_to_write_is_saved_less_often(tmp_path, clock, monkeypatch):
    p = partition(tmp_path, 0)
    save = consumer.save_dict_to_json

    def slow_save(data, path):
        save(data, path)
        clock[0] += 0.25
    monkeypatch.setattr(consumer, "save_dict_to_json", slow_save)
    clock[0] += consumer.CHECKPOINT_EVERY_SEC
    for offset in (1, 2, 3):
        p.advance(batch_to(offset), at_end=False)
        p.save_if_due()
        clock[0] += consumer.CHECKPOINT_EVERY_SEC
    # Saved at 1; then due only 20 x 0.25 s later, not a second later.
    assert saved_offset(tmp_path, 0) == 1
    clock[0] += consumer.SAVE_COST_FACTOR * 0.25
    p.save_if_due()
    assert saved_offset(tmp_path, 0) == 3


def test_a_partition_whose_changes_are_dropped_is_not_saved_when_stopping(tmp_path, clock):
    p = partition(tmp_path, 0)
    p.advance(batch_to(7), at_end=False)
    p.unsaved = False  # its stats ran ahead of its offset (consume(): publisher stopped)
    p.save_if_due(now=True)
    assert saved_offset(tmp_path, 0) is None


def test_a_partition_with_nothing_new_is_not_saved(tmp_path, clock):
    p = partition(tmp_path, 0)
    clock[0] += consumer.CHECKPOINT_EVERY_SEC
    p.save_if_due(now=True)
    assert saved_offset(tmp_path, 0) is None


# ---------------------------------------------------------------- the date rule's promise

FOREIGN = 4242.4242  # the degrees of an injected reading: a sum that holds one shows it

def real_stream(rng, partition, length):
    """The dates a partition carries from the first day of one of its months on, one after
    the other, 5% of them twice (the generator's duplicates)."""
    months = sorted(p7check.partition_months(partition), key=consumer.MONTHS.index)
    date = f"{rng.randrange(1990, 2100)}-{consumer.MONTHS.index(rng.choice(months)) + 1:02d}-01"
    dates = []
    while len(dates) < length:
        dates.append(date)
        if rng.random() < 0.05:
            dates.append(date)
        date = p7check.date_after(date, months)
    return dates


def foreign_date(rng, real, position, months):
    """A date for a reading injected before real[position], as an attacker or a broken producer
    would send it: far ahead, a little ahead, a real date to come, behind, a month's first or
    last day, anything. Never one it cannot be told from: the date the stream carries next at
    that position, or one the stream would have carried just before its very first date."""
    seen = real[:position]
    newest = max(seen, default="")
    coming = [date for date in real[position:] if date > newest]
    day = datetime.date.fromisoformat(rng.choice(real))
    while True:
        kind = rng.randrange(6)
        if kind == 0:
            candidate = f"{rng.choice([2999, 5000, 9999])}-{rng.randrange(1, 13):02d}-01"
        elif kind == 1:
            candidate = (day + datetime.timedelta(days=rng.randrange(-400, 400))).isoformat()
        elif kind == 2 and coming:
            candidate = rng.choice(coming[:12])
        elif kind == 3 and seen:
            candidate = rng.choice(seen)
        elif kind == 4:
            candidate = f"{day.year + rng.randrange(-1, 2)}-{rng.randrange(1, 13):02d}-01"
        else:
            candidate = (day.replace(day=1) - datetime.timedelta(days=1)).isoformat()
        if candidate not in coming[:1] and "0000" < candidate[:4] \
                and p7check.date_after(candidate, months) != real[0]:
            return candidate


@pytest.mark.parametrize("seed", range(400))
def test_up_to_three_foreign_readings_cost_no_real_reading_and_count_nowhere(seed, capsys):
    rng = random.Random(seed)
    partition = rng.randrange(4)
    months = p7check.partition_months(partition)
    real = real_stream(rng, partition, rng.randrange(8, 60))
    # Foreign readings anywhere before the last HOLD_LIMIT real ones (those decide the last
    # of them), adjacent ones too; the batches and restarts of consume_in_batches straddle them.
    positions = sorted(rng.randrange(len(real) - consumer.HOLD_LIMIT + 1)
                       for _ in range(rng.randrange(4)))
    stream, real_offsets = [], set()
    for index, date in enumerate(real + [None]):
        for _ in range(positions.count(index)):
            stream.append((foreign_date(rng, real, index, months), FOREIGN))
        if date is not None:
            real_offsets.add(len(stream))
            stream.append((date, rng.uniform(-30.0, 100.0)))
    messages = [reading(offset, date, degrees, partition=partition)
                for offset, (date, degrees) in enumerate(stream)]

    data = consume_in_batches(rng, messages, partition)
    # A last restart from the file as saved, to the end of the stream.
    dates = date_filter(partition, consumer.last_date(data))
    consumer.apply_messages(data, dates, messages[data["offset"]:], WHO)
    data["offset"] = dates.checkpoint(len(messages))
    assert data["offset"] == len(messages), "readings are still held back"
    # Each real date once, with its first reading; nothing foreign.
    expected, seen = {}, set()
    for offset in sorted(real_offsets):
        date, degrees = stream[offset]
        if date not in seen:
            seen.add(date)
            year = expected.setdefault(consumer.MONTHS[int(date[5:7]) - 1], {}).setdefault(
                date[:4], {"count": 0, "sum": 0.0, "start": date})
            year["count"] += 1
            year["sum"] += degrees
            year["avg"] = year["sum"] / year["count"]
            year["end"] = date
    assert p7check.stats_mismatches(data, expected) == []
    # The oracle's own copy of the rule says the same.
    assert p7check.stats_mismatches(data, p7check.expected_stats(messages)) == []
