"""producer.py's side of the weather generator, in process: no broker. What it takes for a
reading (as_reading), and how the readings reach the sending loop (weather_chunks and its
WeatherReader): in order, without a traceback for a generator that fails or yields something
else, and without waiting for one that blocks once a stop was requested. End to end, with a
drop-in weather.py and the topic read back: tests/test_producer.py."""

import collections
import datetime
import fractions
import itertools
import threading
import time

import pytest

import producer  # files/producer.py
import weather

Reading = collections.namedtuple("Reading", "date degrees")


@pytest.mark.parametrize("yielded, reading", [
    (("1990-01-01", 27.1234), ("1990-01-01", 27.1234)),
    (["2000-02-29", -3.5], ("2000-02-29", -3.5)),          # a list, a leap day
    (Reading("9999-12-31", 0.0), ("9999-12-31", 0.0)),
    (("1990-01-02", 10000), ("1990-01-02", 10000.0)),      # an int: the provided file's
    (("1990-01-03", fractions.Fraction(1, 4)), ("1990-01-03", 0.25)),
    ((datetime.date(1990, 3, 4), 5.5), ("1990-03-04", 5.5)),
    ((datetime.datetime(990, 3, 4, 12, 30), 5.5), ("0990-03-04", 5.5)),
])
def test_a_reading_is_a_calendar_date_and_a_finite_number(yielded, reading):
    taken = producer.as_reading(yielded)
    assert taken == reading and type(taken[1]) is float


@pytest.mark.parametrize("yielded, why", [
    (("abcd-01-zz", 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    (("1990-02-30", 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    (("1990-02-29", 5.0), "whose date is not a YYYY-MM-DD calendar date"),  # no leap year
    (("1990-1-1", 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    (("19900101", 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    (("1990-W01-1", 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    ((" 1990-01-1", 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    (("0000-01-01", 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    ((19900101, 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    ((None, 5.0), "whose date is not a YYYY-MM-DD calendar date"),
    (("1990-01-01", True), "whose degrees are not a number"),
    (("1990-01-01", "5.0"), "whose degrees are not a number"),
    (("1990-01-01", None), "whose degrees are not a number"),
    (("1990-01-01", 5j), "whose degrees are not a number"),
    (("1990-01-01", float("nan")), "whose degrees are not a finite number"),
    (("1990-01-01", float("-inf")), "whose degrees are not a finite number"),
    (("1990-01-01", 10 ** 400), "whose degrees are not a finite number"),
    (("1990-01-01",), "which is not a (YYYY-MM-DD date, degrees) pair"),
    (("1990-01-01", 5.0, 6.0), "which is not a (YYYY-MM-DD date, degrees) pair"),
    ("1990-01-01", "which is not a (YYYY-MM-DD date, degrees) pair"),
    ("ab", "which is not a (YYYY-MM-DD date, degrees) pair"),  # two characters: no pair
    ({"1990-01-01": 5.0}, "which is not a (YYYY-MM-DD date, degrees) pair"),
    (None, "which is not a (YYYY-MM-DD date, degrees) pair"),
])
def test_anything_else_is_one_sentence_naming_weather_and_what_it_yielded(yielded, why):
    with pytest.raises(producer.ProducerError) as refused:
        producer.as_reading(yielded)
    sentence = str(refused.value)
    assert sentence.startswith(f"weather.py yielded {producer.shown(yielded)}, {why}; ")
    assert "\n" not in sentence


def test_a_huge_yield_is_shown_cut_short():
    with pytest.raises(producer.ProducerError) as refused:
        producer.as_reading(("x" * 10_000, 1.0))
    assert len(str(refused.value)) < 200


def test_every_reading_of_this_projects_generator_is_one():
    for reading in itertools.islice(weather.get_next_weather(0, seed=4), 20_000):
        assert producer.as_reading(reading) == reading


# ---------------------------------------------------------------- the reader

@pytest.fixture
def stop_flag(monkeypatch):
    """producer.stop as it was, put back after the test; returns it."""
    for name in ("requests", "interrupts"):
        monkeypatch.setattr(producer.stop, name, getattr(producer.stop, name))
    return producer.stop


def drop_in(monkeypatch, make):
    """weather.get_next_weather replaced by `make` (delay_sec only, as the course's file)."""
    monkeypatch.delattr(weather, "effective_delay")
    monkeypatch.setattr(weather, "get_next_weather", make)


def in_time(function, timeout=30):
    """function()'s result (or exception), AssertionError if it has not returned in `timeout`
    seconds: a reader that waits for ever fails the test instead of hanging it."""
    outcome = []

    def run():
        try:
            outcome.append((function(), None))
        except BaseException as err:  # noqa: BLE001 (handed over as it is)
            outcome.append((None, err))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert outcome, f"no answer within {timeout} s"
    result, error = outcome[0]
    if error is not None:
        raise error
    return result


def all_chunks(chunks):
    """Every chunk up to the end, and how it ended: None, or the exception."""
    def take():
        taken = []
        try:
            for chunk in chunks:
                taken.append(chunk)
        except Exception as err:  # noqa: BLE001 (what is raised is what is checked)
            return taken, err
        return taken, None

    return in_time(take)


def good(count, first_day=1):
    return [(f"1990-01-{day:02d}", float(day)) for day in range(first_day, first_day + count)]


@pytest.mark.parametrize("chunk_size", [1, 3, 1000])
def test_the_readings_come_in_chunks_in_order_up_to_the_generators_end(chunk_size):
    taken, end = all_chunks(producer.WeatherReader(iter(good(7)), chunk_size))
    assert end is None
    assert [len(chunk) for chunk in taken] == ([chunk_size] * (7 // chunk_size)
                                               + ([7 % chunk_size] if 7 % chunk_size else []))
    assert list(itertools.chain.from_iterable(taken)) == good(7)


@pytest.mark.parametrize("chunk_size", [1, 1000])
def test_an_exception_in_the_generator_comes_after_the_readings_before_it(chunk_size):
    def failing():
        yield from good(3)
        raise RuntimeError("the sensor\nis offline")

    taken, end = all_chunks(producer.WeatherReader(failing(), chunk_size))
    assert list(itertools.chain.from_iterable(taken)) == good(3)
    assert isinstance(end, producer.ProducerError)
    assert str(end).startswith("weather.py raised RuntimeError: the sensor is offline; ")


@pytest.mark.parametrize("chunk_size", [1, 1000])
def test_a_bad_reading_comes_after_the_ones_before_it_and_is_never_handed_on(chunk_size):
    readings = good(3) + [("abcd-01-zz", 5.0)] + good(2, first_day=5)
    taken, end = all_chunks(producer.WeatherReader(iter(readings), chunk_size))
    assert list(itertools.chain.from_iterable(taken)) == good(3)
    assert str(end).startswith("weather.py yielded ('abcd-01-zz', 5.0), whose date is not ")


def test_an_exception_without_a_message_is_named():
    def failing():
        raise KeyError
        yield

    _taken, end = all_chunks(producer.WeatherReader(failing(), 1))
    assert str(end) == "weather.py raised KeyError; stopped there: the readings before it were sent"


def test_a_long_message_is_cut_short():
    def failing():
        raise ValueError("x" * 10_000)
        yield

    _taken, end = all_chunks(producer.WeatherReader(failing(), 1))
    assert len(str(end)) < producer.SHOWN_MESSAGE_CHARS + 100


@pytest.mark.parametrize("exit_request", [KeyboardInterrupt, SystemExit])
def test_a_generator_that_asks_to_exit_is_heard_as_it_is(exit_request):
    def exiting():
        yield from good(1)
        raise exit_request

    chunks = producer.WeatherReader(exiting(), 1)
    assert in_time(lambda: next(chunks)) == good(1)
    with pytest.raises(exit_request):
        in_time(lambda: next(chunks))


def test_nothing_is_read_ahead_of_what_was_asked_for():
    pulled = []

    def counted():
        for reading in good(9):
            pulled.append(reading)
            yield reading

    chunks = producer.WeatherReader(counted(), 2)
    assert in_time(lambda: next(chunks)) == good(2)
    assert pulled == good(2)  # the thread answered: it is done with that request
    assert in_time(lambda: next(chunks)) == good(2, first_day=3)
    assert pulled == good(4)


def test_a_stop_ends_the_wait_for_a_generator_that_blocks(stop_flag):
    # The generator sleeps for an hour (and would swallow any exception): once a stop is
    # requested, the next chunk is an empty one, on which produce() returns.
    asleep = threading.Event()

    def blocking():
        yield from good(2)
        while True:
            try:
                asleep.set()
                time.sleep(3600)
            except BaseException:  # noqa: BLE001 (a generator that catches everything)
                pass

    chunks = producer.WeatherReader(blocking(), 1)
    assert in_time(lambda: [next(chunks), next(chunks)]) == [good(1), good(1, first_day=2)]
    answer = []
    waiting = threading.Thread(target=lambda: answer.append(next(chunks)), daemon=True)
    waiting.start()
    assert asleep.wait(30)
    stop_flag.request()
    waiting.join(10)  # within STOP_CHECK_SEC, unless it waited for the generator
    assert answer == [[]]
    assert in_time(lambda: next(chunks)) == []  # and so on, without asking the generator again


def test_the_chunks_of_a_drop_in_weather_are_single_readings(monkeypatch):
    drop_in(monkeypatch, lambda delay_sec=0.5: iter(good(3)))
    assert not producer.at_full_speed()
    taken, end = all_chunks(producer.weather_chunks(None, full_speed=producer.at_full_speed()))
    assert taken == [[reading] for reading in good(3)] and end is None


def test_a_generator_that_fails_at_once_is_one_sentence(monkeypatch):
    def get_next_weather(delay_sec=0.5):
        raise OSError("no station file")

    drop_in(monkeypatch, get_next_weather)
    with pytest.raises(producer.ProducerError, match="^weather.py raised OSError: no station "
                                                     "file; nothing was sent$"):
        producer.weather_chunks(None, full_speed=False)


def test_a_get_next_weather_that_gives_nothing_to_iterate_is_one_sentence(monkeypatch):
    drop_in(monkeypatch, lambda delay_sec=0.5: None)
    with pytest.raises(producer.ProducerError, match="returned None, which gives no readings"):
        producer.weather_chunks(None, full_speed=False)


def test_a_bad_delay_variable_is_one_sentence_naming_it(monkeypatch):
    monkeypatch.setenv("WEATHER_DELAY_SEC", "fast")
    with pytest.raises(producer.ProducerError, match="^weather.py raised ValueError: "
                                                     "WEATHER_DELAY_SEC must be a number"):
        producer.at_full_speed()
