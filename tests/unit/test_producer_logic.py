"""producer.py's bookkeeping of deliveries and its reading of the weather, in process: no Java,
no broker. The futures are kafka-python's own, completed as its sender thread completes them."""

import itertools
import time

from kafka.future import Future

import producer  # files/producer.py
import weather


def test_deliveries_count_what_the_broker_has_not_acknowledged_yet():
    deliveries = producer.Deliveries()
    futures = [Future() for _ in range(4)]
    for future in futures:
        deliveries.track(future)
    assert deliveries.unacknowledged() == 4
    futures[1].success("metadata")
    # Done behind one still waiting: counted a moment later, never too few.
    assert deliveries.unacknowledged() == 4
    futures[0].success("metadata")
    assert deliveries.unacknowledged() == 2
    futures[2].failure(TimeoutError("gave up after 10 retries"))
    assert deliveries.unacknowledged() == 1
    assert [str(err) for err in deliveries.failures] == ["gave up after 10 retries"]
    assert deliveries.undelivered() == 2  # the one still waiting and the one given up on
    futures[3].success("metadata")
    assert (deliveries.unacknowledged(), deliveries.undelivered()) == (0, 1)


def test_read_ahead_changes_nothing_in_the_readings(monkeypatch):
    monkeypatch.setenv("WEATHER_DELAY_SEC", "0")
    count = producer.READ_AHEAD * 2 + 7
    assert (list(itertools.islice(producer.weather_readings(3), count))
            == list(itertools.islice(weather.get_next_weather(0, seed=3), count)))


def test_at_a_pace_each_reading_comes_without_waiting_for_the_next_ones(monkeypatch):
    monkeypatch.setenv("WEATHER_DELAY_SEC", "0.05")
    readings = producer.weather_readings(3)
    start = time.monotonic()
    first, second = next(readings), next(readings)
    # Read ahead, the first two would take READ_AHEAD x 0.05 s = 50 s; one by one, 0.05 s.
    assert time.monotonic() - start < 2.0
    assert [first, second] == list(itertools.islice(weather.get_next_weather(0, seed=3), 2))
