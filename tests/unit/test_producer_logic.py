"""producer.py's own logic, in process: no Java, no broker. The futures are kafka-python's own
(a batch's FutureProduceResult and its records' FutureRecordMetadata), completed as its sender
thread completes them."""

import itertools
import time

import kafka.errors
import pytest
from kafka.producer.future import FutureProduceResult, FutureRecordMetadata
from kafka.structs import TopicPartition

import producer  # files/producer.py
import weather


def batch_of(deliveries, readings):
    """A batch of sends as kafka-python makes them: one future per record, all resolved by the
    batch's future, which is watched. Returns the batch's future."""
    batch = FutureProduceResult(TopicPartition("temperatures", 0))
    deliveries.watch(batch)
    deliveries.track([FutureRecordMetadata(batch, index, 0, None, 5, 20, -1)
                      for index in range(len(readings))], readings)
    return batch


def readings(first_day, count):
    return [(f"1990-01-{day:02d}", float(day)) for day in range(first_day, first_day + count)]


def test_deliveries_count_what_the_broker_has_not_acknowledged_yet():
    deliveries = producer.Deliveries()
    first, second = batch_of(deliveries, readings(1, 3)), batch_of(deliveries, readings(4, 2))
    assert deliveries.unacknowledged() == 5
    second.success((3, -1, None))
    # Done behind ones still waiting: counted a moment later, never too few.
    assert deliveries.unacknowledged() == 5 and deliveries.undelivered() == 3
    first.success((0, -1, None))
    assert deliveries.unacknowledged() == 0 and deliveries.undelivered() == 0


def test_the_first_failure_stops_the_sender_and_keeps_the_order_for_the_resend():
    deliveries = producer.Deliveries()
    stops = []
    deliveries.stop_sender = lambda: stops.append("stopped")
    sent = readings(1, 9)
    first, second, third = (batch_of(deliveries, sent[0:3]), batch_of(deliveries, sent[3:6]),
                            batch_of(deliveries, sent[6:9]))
    first.success((0, -1, None))
    # How kafka-python fails a batch: a result whose third part gives each record's error.
    second.success((-1, -1, lambda index: kafka.errors.NotEnoughReplicasError()))
    assert stops == ["stopped"]
    assert isinstance(deliveries.failure, kafka.errors.NotEnoughReplicasError)
    third.success((-1, -1, lambda index: kafka.errors.IllegalStateError("closed forcefully")))
    assert isinstance(deliveries.failure, kafka.errors.NotEnoughReplicasError)  # the first
    assert stops == ["stopped"]
    assert deliveries.undelivered() == 6
    assert deliveries.take_pending() == sent[3:9]
    assert deliveries.failure is None and deliveries.unacknowledged() == 0


@pytest.mark.parametrize("factor", ["1", "3", "100"])
def test_whole_numbers_of_copies_are_accepted(factor):
    assert producer.replication_problem(factor) is None


@pytest.mark.parametrize("factor", ["", "0", "three", "-1", "2.5", " 3", "101"])
def test_anything_else_is_one_sentence_naming_it(factor):
    problem = producer.replication_problem(factor)
    assert f"P7_REPLICATION_FACTOR={factor!r}" in problem and "\n" not in problem


def test_a_broker_error_is_named_and_explained():
    text = producer.describe(kafka.errors.NotEnoughReplicasError())
    assert text.startswith("NotEnoughReplicasError: ")
    assert "in-sync replicas" in text and "None" not in text


def test_a_client_error_keeps_its_message():
    error = kafka.errors.KafkaTimeoutError("Expiring 12 record(s) for temperatures-0")
    assert producer.describe(error) == ("KafkaTimeoutError: Expiring 12 record(s) for "
                                        "temperatures-0")


def test_the_chunks_hold_the_generators_readings_in_order(monkeypatch):
    monkeypatch.setenv("WEATHER_DELAY_SEC", "0")
    chunks = producer.weather_chunks(3, full_speed=True)
    first_chunks = [next(chunks) for _ in range(3)]
    assert [len(chunk) for chunk in first_chunks] == [producer.READ_AHEAD] * 3
    assert (list(itertools.chain.from_iterable(first_chunks))
            == list(itertools.islice(weather.get_next_weather(0, seed=3),
                                     producer.READ_AHEAD * 3)))


def test_at_a_pace_each_reading_comes_without_waiting_for_the_next_ones(monkeypatch):
    monkeypatch.setenv("WEATHER_DELAY_SEC", "0.05")
    chunks = producer.weather_chunks(3, full_speed=False)
    start = time.monotonic()
    first, second = next(chunks), next(chunks)
    # In chunks of READ_AHEAD, the first would take READ_AHEAD x 0.05 s = 50 s; one by one,
    # 0.05 s.
    assert time.monotonic() - start < 2.0
    assert first + second == list(itertools.islice(weather.get_next_weather(0, seed=3), 2))


def test_only_full_speed_lets_batches_gather_the_rest_is_the_same():
    assert producer.FULL_SPEED_CONFIG["linger_ms"] > 0
    assert set(producer.FULL_SPEED_CONFIG) == {"linger_ms"}
    assert "linger_ms" not in producer.PRODUCER_CONFIG  # kafka-python's 0 at a pace


def test_years_are_announced_once_each_in_order(capsys):
    chunk = [("1990-12-31", 1.0), ("1991-01-01", 2.0), ("1992-01-01", 3.0)]
    assert producer.announce_years(chunk, 0) == 1992
    assert producer.announce_years([("1992-01-02", 4.0)], 1992) == 1992
    # A resent chunk from years already announced announces nothing again.
    assert producer.announce_years(chunk[:1], 1992) == 1992
    assert producer.announce_years([], 1992) == 1992  # nothing pending to resend
    assert capsys.readouterr().out.split() == ["producing", "1990...", "producing", "1991...",
                                               "producing", "1992..."]
