"""producer.py's own logic, in process: the replication factor it accepts, how it words
Kafka's errors, and the order in which it would send unacknowledged readings again."""

import kafka.errors
import pytest
from kafka.future import Future

import producer


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


def test_unacknowledged_readings_go_out_again_oldest_first():
    deliveries = producer.Deliveries()
    futures = [Future() for _ in range(5)]
    readings = [(f"1990-01-0{day}", float(day)) for day in range(1, 6)]
    for future, reading in zip(futures, readings):
        deliveries.track(future, reading)
    futures[1].success("metadata")
    futures[3].success("metadata")
    assert deliveries.unacknowledged() == 3
    assert deliveries.take_pending() == [readings[0], readings[2], readings[4]]
    assert deliveries.unacknowledged() == 0 and deliveries.failure is None
