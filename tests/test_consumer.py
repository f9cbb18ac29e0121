"""Part 3: consumer.py keeps exact statistics, exactly once, whatever instant it dies at."""

import itertools
import json
import random
import signal
import threading

import pytest
from kafka import KafkaProducer

import weather  # files/weather.py
from helpers import (assert_checkpoint_refused, assert_exact, assert_one_clean_sentence,
                     consume_until_caught_up, fresh_topic, kill_9_mid_run, load,
                     offsets_in, report_bytes, wait_until)
from tools import p7check

pytestmark = pytest.mark.broker


# ---------------------------------------------------------------- command line

@pytest.mark.parametrize("args, complaint", [
    (["x"], "not a number"),
    (["0", "0"], "given twice"),
    (["4"], "use 0-3"),
    (["-1"], "use 0-3"),
    (["0", "--iterations", "0"], "1 or more"),
    (["--iterations", "3"], "needs partition numbers"),
    (["0", "--birthday", "1997-13-02"], "not a date"),
])
def test_bad_arguments_are_usage_errors(run_program, args, complaint):
    consumer = run_program("consumer.py", *args)
    assert consumer.wait(timeout=30) == 2
    line = assert_one_clean_sentence(consumer.stderr)
    assert complaint in line


# ---------------------------------------------------------------- exact statistics

def test_new_files_start_at_offset_zero_and_only_requested_partitions(run_program, tmp_path):
    fresh_topic()
    consumer = run_program("consumer.py", "0", "2", "--iterations", "2", "--dir", tmp_path)
    assert consumer.wait(timeout=60) == 0, consumer.stderr
    assert sorted(p.name for p in tmp_path.glob("partition-*.json")) == \
        ["partition-0.json", "partition-2.json"]
    assert load(tmp_path / "partition-0.json") == {"partition": 0, "offset": 0}
    assert load(tmp_path / "partition-2.json") == {"partition": 2, "offset": 0}


def test_stats_equal_the_topic_recomputed(produce, run_program, tmp_path):
    produce(6000)
    consume_until_caught_up(run_program, tmp_path, [0, 2])
    assert sorted(p.name for p in tmp_path.glob("partition-*.json")) == \
        ["partition-0.json", "partition-2.json"]
    assert_exact(tmp_path, [0, 2])
    data = load(tmp_path / "partition-0.json")
    assert list(data)[:2] == ["partition", "offset"]
    some_year = next(iter(next(v for k, v in data.items() if k not in ("partition", "offset"))
                          .values()))
    assert set(some_year) == {"count", "sum", "avg", "start", "end"}

    # A restart on the same files reads nothing twice.
    before = {n: load(tmp_path / f"partition-{n}.json") for n in (0, 2)}
    consumer = run_program("consumer.py", "0", "2", "--iterations", "3", "--dir", tmp_path)
    assert consumer.wait(timeout=60) == 0
    assert {n: load(tmp_path / f"partition-{n}.json") for n in (0, 2)} == before


def test_the_two_rounds_hand_over_and_stop_cleanly(run_program, start_producer, tmp_path):
    producer = start_producer(11, delay=0.0005)
    consumer = run_program("consumer.py", "--dir", tmp_path)
    wait_until(lambda: "round 2" in consumer.stdout or not consumer.running(), 120, "round 2")
    assert consumer.running(), consumer.stderr
    round_one = offsets_in(tmp_path, range(4))
    assert all(offset > 0 for offset in round_one.values()), round_one
    wait_until(lambda: all(offsets_in(tmp_path, [n])[n] > round_one[n] for n in range(4)), 60,
               "round 2 to move every partition on")
    assert consumer.stop(signum=signal.SIGTERM) == 0, consumer.stderr
    assert consumer.stdout.count("exiting") == 4, consumer.stdout  # 2 workers x 2 rounds
    assert producer.stop() == 0
    assert_exact(tmp_path, range(4))


def test_kill_9_at_random_moments_loses_and_doubles_nothing(run_program, start_producer, tmp_path):
    producer = start_producer(5, delay=0.0003)
    parse_failures = []
    reads = [0]
    stop_reading = threading.Event()

    def read_files_constantly():
        while not stop_reading.is_set():
            for path in tmp_path.glob("partition-?.json"):
                try:
                    load(path)
                    reads[0] += 1
                except FileNotFoundError:
                    pass  # between a set-aside and the new file, or before the first one
                except json.JSONDecodeError as err:
                    parse_failures.append(f"{path.name}: {err}")

    reader = threading.Thread(target=read_files_constantly, daemon=True)
    reader.start()
    rng = random.Random(1234)
    try:
        for kill in range(6):
            kill_9_mid_run(run_program, tmp_path, rng)
            if kill == 2:
                # What a crash between writing the temporary file and renaming it leaves.
                (tmp_path / "partition-1.json.tmp").write_text('{"partition": 1, "offs')
        assert producer.stop() == 0
        consume_until_caught_up(run_program, tmp_path, [0, 1, 2, 3])
    finally:
        stop_reading.set()
        reader.join()
    assert not parse_failures, parse_failures[:3]
    assert reads[0] > 100, "the reader hardly ran"
    assert_exact(tmp_path, range(4))


def test_a_century_of_hot_summers_from_the_year_4800_is_counted_completely(run_program,
                                                                           tmp_path):
    # The generator warms the climate year after year: by 4800 July's highs are past 200 F.
    readings = list(itertools.takewhile(
        lambda reading: reading[0] < "4900-01-01",
        itertools.dropwhile(lambda reading: reading[0] < "4800-01-01",
                            weather.get_next_weather(0, seed=11))))  # duplicates included
    assert max(degrees for _, degrees in readings) > 200
    fresh_topic()
    producer = KafkaProducer(bootstrap_servers=p7check.bootstrap(), acks="all", linger_ms=20)
    try:
        for date, degrees in readings:
            producer.send(p7check.TOPIC, key=p7check.MONTH_NAMES[int(date[5:7]) - 1].encode(),
                          value=report_bytes(date, degrees))
        producer.flush()
    finally:
        producer.close()
    consumer = consume_until_caught_up(run_program, tmp_path, [0, 1, 2, 3])
    assert "malformed" not in consumer.stderr and "finite" not in consumer.stderr, \
        consumer.stderr[-2000:]
    assert_exact(tmp_path, range(4))
    counted = sum(stats["count"] for n in range(4)
                  for month, years in load(tmp_path / f"partition-{n}.json").items()
                  if month not in ("partition", "offset") for stats in years.values())
    assert counted == len({date for date, _ in readings})  # every day once, nothing refused


# ---------------------------------------------------------------- bad input

def send_raw(messages):
    producer = KafkaProducer(bootstrap_servers=p7check.bootstrap(), acks="all")
    try:
        for key, value in messages:
            producer.send(p7check.TOPIC, key=key, value=value, partition=1)
        producer.flush()
    finally:
        producer.close()


def test_malformed_messages_are_logged_and_skipped(run_program, tmp_path):
    fresh_topic()
    send_raw([
        (b"January", report_bytes("1990-01-01", 20.0)),
        (b"January", b"\xff\xff not a protobuf"),           # offset 1
        (b"Smarch", report_bytes("1990-01-02", 21.0)),      # offset 2: not a month
        (b"January", report_bytes("1990-02-02", 22.0)),     # offset 3: key and date disagree
        (None, report_bytes("1990-01-02", 23.0)),           # offset 4: no key
        (b"January", report_bytes("1990-01-02", 25.0)),
        (b"January", report_bytes("1990-01-02", 99.0)),     # duplicate
        (b"January", report_bytes("1990-01-03", 27.0)),
        (b"January", report_bytes("1990-01-04", 29.0)),
    ])
    consumer = consume_until_caught_up(run_program, tmp_path, [1])
    for offset in (1, 2, 3, 4):
        assert f"offset {offset}: skipped a malformed message" in consumer.stderr
    assert "Traceback" not in consumer.stderr
    data = load(tmp_path / "partition-1.json")
    assert data["offset"] == 9
    january = data["January"]["1990"]
    assert (january["count"], january["start"], january["end"]) == (4, "1990-01-01", "1990-01-04")
    assert january["sum"] == pytest.approx(101.0) and january["avg"] == pytest.approx(25.25)
    assert_exact(tmp_path, [1])


@pytest.mark.parametrize("content, complaint", [
    ("{not json", "is not valid JSON"),
    ('{"partition": 3, "offset": 10}', "belongs to partition 3"),
    ('{"partition": 1, "offset": -5}', "no valid offset"),
    ('{"partition": 1, "offset": 0, "Brumaire": {}}', "unexpected key"),
])
def test_a_bad_checkpoint_is_refused_and_left_untouched(run_program, tmp_path, content,
                                                       complaint):
    fresh_topic()
    assert_checkpoint_refused(run_program, tmp_path, complaint, content)


def test_an_offset_beyond_the_end_is_set_aside_and_counted_afresh(produce, run_program,
                                                                  tmp_path):
    produce(1500)
    stale = {"partition": 2, "offset": 10 ** 9, "May": {"1990": {
        "count": 1, "sum": 1.0, "avg": 1.0, "start": "1990-05-01", "end": "1990-05-01"}}}
    (tmp_path / "partition-2.json").write_text(json.dumps(stale))
    consumer = consume_until_caught_up(run_program, tmp_path, [2])
    assert "topic was recreated" in consumer.stderr
    moved = list(tmp_path.glob("partition-2.json.stale-*"))
    assert len(moved) == 1 and load(moved[0]) == stale
    assert_exact(tmp_path, [2])


def test_a_missing_topic_is_waited_for(run_program, tmp_path):
    admin = p7check.new_admin()
    try:
        if p7check.TOPIC in admin.list_topics():
            admin.delete_topics([p7check.TOPIC])
            wait_until(lambda: p7check.TOPIC not in admin.list_topics(), 60, "topic deletion")
    finally:
        admin.close()
    consumer = run_program("consumer.py", "3", "--dir", tmp_path)
    wait_until(lambda: "does not exist yet" in consumer.stderr, 60, "the waiting message")
    assert consumer.running()
    producer = run_program("producer.py", delay=0.001)
    wait_until(lambda: offsets_in(tmp_path, [3])[3] > 0, 90, "partition 3 to be counted")
    assert producer.stop() == 0
    assert consumer.stop() == 0, consumer.stderr
    assert "Traceback" not in consumer.stderr
    assert_exact(tmp_path, [3])


def test_reset_starts_the_files_over(produce, run_program, tmp_path):
    produce(1000)
    (tmp_path / "partition-0.json").write_text('{"partition": 0, "offset": 5}')
    (tmp_path / "partition-0.json.tmp").write_text("half")
    consume_until_caught_up(run_program, tmp_path, [0], "--reset")
    assert not (tmp_path / "partition-0.json.tmp").exists()
    assert_exact(tmp_path, [0])
    assert load(tmp_path / "partition-0.json")["offset"] == p7check.end_offsets([0])[0]
