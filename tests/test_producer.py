"""Parts 1 and 2 against the session broker: producer.py and debug.py. The weather
generator and the Report schema alone: tests/unit/test_weather.py and
tests/unit/test_report_proto.py."""

import ast
import itertools
import shutil
import signal
import time

import kafka.errors
import pytest
from kafka import KafkaProducer
from kafka.admin import NewTopic

import weather  # files/weather.py (pytest.ini puts files/ on the path)
from helpers import (FILES, ROOT, assert_exact, assert_one_clean_sentence,
                     consume_until_caught_up, current_topic_id, days_counted, free_port,
                     fresh_topic, group_has_partitions, total_messages, wait_for_new_topic,
                     wait_until)
from tools import p7check

pytestmark = pytest.mark.broker


PROVIDED_WEATHER = ROOT / "tests" / "fixtures" / "provided_weather.py"


def take(iterator, count):
    return list(itertools.islice(iterator, count))


# ---------------------------------------------------------------- producer.py

def read_topic():
    offsets = p7check.end_offsets()
    return {n: [p7check.decode(r) for r in p7check.read_partition(n, offsets[n])]
            for n in offsets}


def test_producer_stream_is_keyed_ordered_and_has_duplicates(produce):
    produce(9000)  # more than 20 years
    admin = p7check.new_admin()
    try:
        (description,) = admin.describe_topics([p7check.TOPIC])
    finally:
        admin.close()
    assert len(description["partitions"]) == 4
    assert all(p["replica_nodes"] == [1] for p in description["partitions"])

    partitions = read_topic()
    month_home = {}
    total = duplicates = 0
    for number, messages in partitions.items():
        previous = ""
        for key, date, degrees in messages:
            total += 1
            assert key == p7check.MONTH_NAMES[int(date[5:7]) - 1], (key, date)
            assert month_home.setdefault(key, number) == number, f"{key} is in two partitions"
            assert isinstance(degrees, float)
            if date == previous:
                duplicates += 1
            else:
                assert date > previous, f"partition {number}: {date} after {previous}"
            previous = date
    assert len(month_home) == 12
    assert 0.035 < duplicates / (total - duplicates) < 0.065
    all_dates = {date for messages in partitions.values() for _, date, _ in messages}
    assert {"1992-02-29", "1996-02-29"} <= all_dates


def test_each_month_is_where_kafkas_default_partitioner_puts_its_key(produce):
    # producer.py names each message's partition itself: it must be the one a
    # plain KafkaProducer picks for the key, on a topic of the same 4 partitions.
    produce(500)  # more than a year: every month
    homes = {key: number for number, messages in read_topic().items() for key, _, _ in messages}
    scratch = f"p7-partitioner-check-{time.monotonic_ns()}"
    admin = p7check.new_admin()
    plain = KafkaProducer(bootstrap_servers=p7check.bootstrap().split(","))
    try:
        admin.create_topics([NewTopic(scratch, num_partitions=4, replication_factor=1)])
        chosen = {name: plain.send(scratch, key=name.encode(), value=b"").get(timeout=60).partition
                  for name in p7check.MONTH_NAMES}
    finally:
        plain.close()
        admin.delete_topics([scratch])
        admin.close()
    assert homes == chosen


@pytest.fixture
def producer_module(broker, monkeypatch):
    """files/producer.py in this process (KAFKA_BOOTSTRAP is set by now), its stop state put
    back after the test, on a fresh topic."""
    import producer
    for name in ("requests", "interrupts"):
        monkeypatch.setattr(producer.stop, name, getattr(producer.stop, name))
    fresh_topic()
    return producer


def test_the_producer_stops_cleanly_when_the_weather_ends(producer_module, capsys):
    # The generator ends with 9999-12-31 (8,010 years: too long to stream here). A feed that
    # ends takes the same way: the last reading delivered, a sentence, no error.
    producer = producer_module
    deliveries = producer.Deliveries()
    try:
        producer.produce(producer.make_producer(), iter([[("9999-12-31", 21.5)]]), deliveries)
    finally:
        producer.close_producer(deliveries)
    assert "no more readings" in capsys.readouterr().out
    assert deliveries.undelivered() == 0
    assert sum(p7check.end_offsets().values()) == 1


def test_after_a_failure_the_unacknowledged_readings_go_first_and_none_is_skipped(
        producer_module, capsys):
    # Kafka gives up on a batch between two chunks: the rest of the stream waits while the
    # readings it did not acknowledge go out again first, then the chunks not sent yet.
    producer = producer_module
    readings = take(weather.get_next_weather(0, seed=5), 3000)
    deliveries = producer.Deliveries()

    def chunks():
        yield readings[:1000]
        # What kafka-python's sender thread calls when Kafka gives up on a batch.
        deliveries.fail(kafka.errors.NotEnoughReplicasError())
        yield readings[1000:2000]
        yield readings[2000:]

    try:
        producer.produce_until_stopped(chunks(), deliveries, full_speed=True)
    finally:
        producer.close_producer(deliveries)
    assert "sending the" in capsys.readouterr().err  # the failure was taken for one
    assert deliveries.undelivered() == 0
    # consumer.py's rule: in each partition, a reading counts only if its date is after the
    # last one counted. Every date must count, with its first (real) reading.
    counted = {}
    for messages in read_topic().values():
        last = ""
        for _key, date, degrees in messages:
            if date > last:
                counted[date], last = degrees, date
    expected = {}
    for date, degrees in readings:
        expected.setdefault(date, degrees)
    assert counted == expected


def test_a_producer_restart_recreates_the_topic_from_offset_zero(produce):
    first = produce(2000)
    assert sum(first.values()) >= 2000
    # Paced: at full speed the messages sent while the fixture notices 200 and stops the
    # producer could outnumber the first run's on a busy machine (seen at a load of 12).
    second = produce(200, delay=0.005)
    assert sum(second.values()) < sum(first.values()), "offsets did not restart"
    first_messages = read_topic()
    firsts = [messages[0][1] for messages in first_messages.values() if messages]
    assert min(firsts) == "1990-01-01"


def test_sigterm_flushes_and_exits_zero(run_program, start_producer):
    producer = start_producer(delay=0.001)
    wait_until(lambda: total_messages() > 100, 60, "some messages")
    assert producer.stop() == 0, producer.stderr
    assert "Traceback" not in producer.stderr
    assert "producer: stopped" in producer.stdout


def test_no_broker_is_one_sentence_from_every_program(run_program, tmp_path):
    # Side by side: each waits its 10 s for a broker that is not there.
    nowhere = {"KAFKA_BOOTSTRAP": f"localhost:{free_port()}"}
    programs = [run_program(name, *args, env=nowhere)
                for name, args in (("producer.py", ()), ("debug.py", ()),
                                   ("consumer.py", ("0", "--dir", tmp_path)))]
    for program in programs:
        assert program.wait(timeout=60) == 1, program.name
        assert "cannot reach the Kafka broker" in assert_one_clean_sentence(program.stderr)


@pytest.mark.parametrize("variable", ["WEATHER_DELAY_SEC", "AUTOGRADER_DELAY_OVERRIDE_VAL"])
def test_producer_with_a_bad_delay_says_so(run_program, variable):
    producer = run_program("producer.py", env={variable: "fast"})
    assert producer.wait(timeout=60) == 1
    assert variable in assert_one_clean_sentence(producer.stderr)


def test_the_course_graders_variable_alone_speeds_the_producer_up(run_program):
    # The course's graders set only AUTOGRADER_DELAY_OVERRIDE_VAL; at the assignment's 0.5 s a
    # day, 10 s would bring 20 readings.
    old_topic = current_topic_id()
    producer = run_program("producer.py", env={"AUTOGRADER_DELAY_OVERRIDE_VAL": "0.001"})
    wait_for_new_topic(producer, old_topic)
    wait_until(lambda: total_messages() >= 1000, 10,
               "1,000 readings within 10 s of the topic's creation")
    assert producer.stop() == 0, producer.stderr


# ---------------------------------------------------------------- the provided weather.py

def programs_with_provided_weather(tmp_path):
    """producer.py, p7common.py and report_pb2.py beside tests/fixtures/provided_weather.py as
    weather.py: a generator that has nothing but the course's provided file's interface."""
    folder = tmp_path / "course-weather"
    folder.mkdir()
    for name in ("producer.py", "p7common.py", "report_pb2.py"):
        shutil.copy(FILES / name, folder)
    shutil.copy(PROVIDED_WEATHER, folder / "weather.py")
    return folder


@pytest.mark.parametrize("env, messages", [
    ({"AUTOGRADER_DELAY_OVERRIDE_VAL": "0.001"}, 1500),  # the course's later weather.py
    ({}, 8),                                             # one that reads no variable: 0.5 s
])
def test_the_producer_needs_only_the_provided_weather_interface(run_program, tmp_path, env,
                                                               messages):
    folder = programs_with_provided_weather(tmp_path)
    old_topic = current_topic_id()
    producer = run_program("producer.py", env=env, folder=folder)
    wait_for_new_topic(producer, old_topic)
    wait_until(lambda: total_messages() >= messages or not producer.running(), 120,
               f"{messages} messages from the producer")
    assert producer.stop() == 0, producer.stderr
    assert "Traceback" not in producer.stderr, producer.stderr
    out = tmp_path / "out"
    out.mkdir()
    consume_until_caught_up(run_program, out, [0, 1, 2, 3])
    assert_exact(out, range(4))
    total, days = days_counted(out)
    assert total == days, "a day counted twice, or one missing"


def test_the_provided_weather_has_no_seed_to_give(run_program, tmp_path):
    old_topic = current_topic_id()
    producer = run_program("producer.py", "--seed", "3",
                           folder=programs_with_provided_weather(tmp_path))
    assert producer.wait(timeout=60) == 1
    assert "leave out --seed" in assert_one_clean_sentence(producer.stderr)
    assert current_topic_id() == old_topic  # refused before it touched the topic


# ---------------------------------------------------------------- a drop-in weather.py

# A weather.py as a course's own could be: get_next_weather(delay_sec=...) and nothing else.
# It yields GOOD_READINGS (1990-01-01 to 01-05, fast: it honours the course graders' variable),
# then does what `then` says.
STAND_IN_WEATHER = """
import os
import time

GOOD_READINGS = {good!r}


def get_next_weather(delay_sec=0.5):
    delay_sec = float(os.environ.get("AUTOGRADER_DELAY_OVERRIDE_VAL", delay_sec))
    for reading in GOOD_READINGS:
        yield reading
        time.sleep(delay_sec)
{then}
"""
GOOD_READINGS = [(f"1990-01-{day:02d}", 20.5 + day) for day in range(1, 6)]
BLOCK_IN_SLEEP = "    time.sleep(3600)"
# A blocking read that also swallows whatever is raised in it, Ctrl-C included.
BLOCK_STUBBORNLY = """    read_end, _write_end = os.pipe()
    while True:
        try:
            os.read(read_end, 1)
        except BaseException:
            pass"""
# What comes after a bad reading must never be sent either.
AND_MORE = """
    yield "1990-01-07", 1.0
    time.sleep(3600)"""


def run_with_stand_in_weather(run_program, tmp_path, then):
    """producer.py (as the course's files would hold it) with STAND_IN_WEATHER as weather.py,
    once it has recreated the topic."""
    folder = tmp_path / "drop-in-weather"
    folder.mkdir()
    for name in ("producer.py", "p7common.py", "report_pb2.py"):
        shutil.copy(FILES / name, folder)
    (folder / "weather.py").write_text(STAND_IN_WEATHER.format(good=GOOD_READINGS, then=then))
    old_topic = current_topic_id()
    producer = run_program("producer.py", env={"AUTOGRADER_DELAY_OVERRIDE_VAL": "0.01"},
                           folder=folder)
    wait_for_new_topic(producer, old_topic)
    return producer


def readings_in_topic():
    return sorted((date, degrees) for messages in read_topic().values()
                  for _key, date, degrees in messages)


@pytest.mark.parametrize("signum, then", [(signal.SIGINT, BLOCK_IN_SLEEP),
                                          (signal.SIGTERM, BLOCK_STUBBORNLY)],
                         ids=["SIGINT-sleep", "SIGTERM-stubborn-read"])
def test_a_stop_ends_the_producer_while_weather_blocks(run_program, tmp_path, signum, then):
    # The generator blocks in next() for an hour after five readings; Ctrl-C and SIGTERM must
    # not wait for it. The aim is 2 s from the signal to the exit; the deadline here is
    # generous, for a loaded machine: a producer that waits for the generator never exits.
    producer = run_with_stand_in_weather(run_program, tmp_path, then)
    wait_until(lambda: total_messages() >= len(GOOD_READINGS) or not producer.running(), 60,
               "the stand-in's readings in the topic")
    producer.signal(signum)
    signalled = time.monotonic()
    wait_until(lambda: not producer.running(), 10, "the producer to exit after the signal")
    assert time.monotonic() - signalled < 10
    assert producer.wait() == 0, producer.stderr
    assert "Traceback" not in producer.stderr, producer.stderr
    assert "producer: stopped" in producer.stdout
    assert readings_in_topic() == GOOD_READINGS


@pytest.mark.parametrize("bad, shown, complaint", [
    ("'abcd-01-zz', 5.0", "('abcd-01-zz', 5.0)", "date is not a YYYY-MM-DD calendar date"),
    ("'1990-01-06', float('nan')", "('1990-01-06', nan)", "degrees are not a finite number"),
    ("'1990-01-06'", "'1990-01-06'", "not a (YYYY-MM-DD date, degrees) pair"),
])
def test_a_bad_reading_is_never_sent_and_stops_the_producer_after_the_ones_before(
        run_program, tmp_path, bad, shown, complaint):
    producer = run_with_stand_in_weather(run_program, tmp_path, f"    yield {bad}{AND_MORE}")
    assert producer.wait(timeout=60) == 1
    sentence = assert_one_clean_sentence(producer.stderr)
    assert f"weather.py yielded {shown}" in sentence and complaint in sentence, sentence
    assert readings_in_topic() == GOOD_READINGS


@pytest.mark.parametrize("error", ["RuntimeError('sensor offline')",
                                   "ValueError('could not parse the station file')"])
def test_an_exception_in_weather_is_one_sentence_after_the_readings_before_it(
        run_program, tmp_path, error):
    producer = run_with_stand_in_weather(run_program, tmp_path, f"    raise {error}{AND_MORE}")
    assert producer.wait(timeout=60) == 1
    sentence = assert_one_clean_sentence(producer.stderr)
    name, message = error.rstrip("')").split("('")
    assert f"weather.py raised {name}: {message}" in sentence, sentence
    assert readings_in_topic() == GOOD_READINGS


def test_a_weather_that_ends_is_sent_in_full_and_exits_zero(run_program, tmp_path):
    producer = run_with_stand_in_weather(run_program, tmp_path, "")
    assert producer.wait(timeout=60) == 0, producer.stderr
    assert "no more readings" in producer.stdout
    assert producer.stderr.strip() == ""
    assert readings_in_topic() == GOOD_READINGS


# ---------------------------------------------------------------- debug.py

def test_a_second_ctrl_c_only_hurries_debug(run_program, start_producer):
    # Ctrl-C twice in a row (or `timeout -s INT`, which signals twice): the second one came
    # while debug.py was leaving its group and printed a traceback.
    producer = start_producer(delay=0.01)
    for _ in range(2):
        debug = run_program("debug.py")
        # Its first message: this very process has its partitions (the group may still list a
        # member that the second Ctrl-C of the round before cut off from leaving).
        wait_until(lambda: debug.stdout.strip(), 60, "debug.py to print a message")
        debug.signal(signal.SIGINT)
        time.sleep(0.01)  # the second Ctrl-C, just after the first
        debug.signal(signal.SIGINT)
        # 0, or killed by the second signal once Python had put its handlers back at exit.
        assert debug.wait(30) in (0, -signal.SIGINT), debug.stderr
        assert "Traceback" not in debug.stderr, debug.stderr
    assert producer.stop() == 0


def test_a_healthy_debug_run_prints_nothing_but_dicts_from_the_first_line(run_program,
                                                                         start_producer):
    # Started before the producer recreates the topic, as in a second terminal: the course's
    # grader reads standard output and standard error merged, and wants a dict on every line.
    debug = run_program("debug.py")
    wait_until(group_has_partitions, 60, "debug.py to get its partitions")
    producer = start_producer(delay=0.002)
    wait_until(lambda: debug.stdout.count("\n") >= 200, 60, "200 lines from debug.py")
    assert producer.stop() == 0
    assert debug.stop(signum=2) == 0, debug.stderr
    merged = (debug.stdout + debug.stderr).splitlines()
    not_dicts = [line for line in merged if not line.startswith("{'partition': ")
                 or set(ast.literal_eval(line)) != {"partition", "key", "date", "degrees"}]
    assert not not_dicts, not_dicts[:5]


def test_debug_prints_only_new_messages_as_dicts(run_program, start_producer):
    producer = start_producer(delay=0.002)
    wait_until(lambda: total_messages() > 300, 60, "messages before debug starts")
    before = p7check.end_offsets()
    debug = run_program("debug.py")
    wait_until(group_has_partitions, 60,
               "debug.py to get its partitions")
    wait_until(lambda: debug.stdout.count("\n") >= 300, 60, "300 lines from debug.py")
    assert producer.stop() == 0
    assert debug.stop(signum=2) == 0, debug.stderr  # Ctrl-C
    assert "Traceback" not in debug.stderr

    lines = [ast.literal_eval(line) for line in debug.stdout.splitlines()]
    assert all(list(line) == ["partition", "key", "date", "degrees"] for line in lines)
    ends = p7check.end_offsets()
    for number in range(4):
        printed = [(d["key"], d["date"], d["degrees"]) for d in lines if d["partition"] == number]
        topic = [p7check.decode(r) for r in p7check.read_partition(number, ends[number])]
        # What debug printed is a contiguous run of the partition that starts no earlier than
        # where the partition ended when debug.py started: nothing older, nothing skipped.
        starts = [i for i in range(before[number], len(topic) - len(printed) + 1)
                  if topic[i:i + len(printed)] == printed]
        assert starts, f"partition {number}: debug output is not the newest messages in order"
