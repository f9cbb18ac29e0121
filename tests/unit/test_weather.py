"""files/weather.py in process: the stream (every day once from 1990-01-01 to Python's last
date, the duplicates, the seasons, the seed) and its pace (delay_sec, and the two variables that
override it)."""

import collections
import datetime
import functools
import itertools
import math
import random

import pytest

import weather  # files/weather.py

VARIABLES = ("AUTOGRADER_DELAY_OVERRIDE_VAL", "WEATHER_DELAY_SEC")


def take(iterator, count):
    return list(itertools.islice(iterator, count))


# ---------------------------------------------------------------- the stream

def test_every_day_once_in_order_from_1990_with_leap_days():
    readings = take(weather.get_next_weather(delay_sec=0, seed=1), 12000)
    dates = [date for date, _ in readings]
    distinct = list(dict.fromkeys(dates))
    assert distinct[0] == "1990-01-01"
    day = datetime.date(1990, 1, 1)
    for date in distinct:
        assert date == day.isoformat()
        day += datetime.timedelta(days=1)
    assert "1992-02-29" in distinct and "2000-02-29" in distinct
    for (date, _), (previous, _) in zip(readings[1:], readings):
        assert date >= previous, "dates must never go back"
    for _, degrees in readings:
        assert isinstance(degrees, float) and round(degrees, 4) == degrees


def test_about_five_percent_duplicates_that_would_corrupt_averages():
    readings = take(weather.get_next_weather(delay_sec=0, seed=2), 40000)
    duplicates = [(a, b) for a, b in zip(readings, readings[1:]) if a[0] == b[0]]
    ratio = len(duplicates) / (len(readings) - len(duplicates))
    assert 0.04 < ratio < 0.06, ratio
    assert all(abs(first[1] - second[1]) >= 40 for first, second in duplicates)


def test_the_seasons_look_like_dane_county():
    readings = take(weather.get_next_weather(delay_sec=0, seed=3), 20000)
    firsts = dict(reversed(readings))  # the first reading of each date
    def mean_of(month):
        values = [deg for date, deg in firsts.items() if date[5:7] == month]
        return sum(values) / len(values)
    assert 15 < mean_of("01") < 35
    assert 75 < mean_of("07") < 90


def test_the_calendar_is_pythons_own_from_1990_to_its_end():
    # weather.calendar_days counts days with strings and integers; datetime is the
    # oracle, every day of it. Each date equals datetime's, so the day of the year is fixed by
    # the dates: 1 on January 1, one more than the day before's otherwise (what
    # timetuple().tm_yday says, checked without its cost on 2.9 million days).
    day, one_day = weather.START_DATE, datetime.timedelta(days=1)
    previous_day_of_year = day.timetuple().tm_yday - 1
    for index, (date, day_of_year, days_since_start) in enumerate(weather.calendar_days()):
        assert date == day.isoformat() and days_since_start == index, (date, days_since_start)
        assert day_of_year == (1 if date.endswith("-01-01") else previous_day_of_year + 1), date
        previous_day_of_year = day_of_year
        if day == datetime.date.max:
            break
        day += one_day
    assert day == datetime.date.max and date == "9999-12-31"
    late = datetime.date(2000, 2, 28)
    assert [d for d, _, _ in weather.calendar_days(late)][:3] == [
        "2000-02-28", "2000-02-29", "2000-03-01"]


def datetime_weather(seed):
    """The generator written with date objects (the oracle for the faster one): the same
    formula, the same random draws in the same order."""
    rng, day, anomaly = random.Random(seed), weather.START_DATE, 0.0
    while True:
        anomaly = weather.ANOMALY_PERSISTENCE * anomaly + rng.gauss(0.0, weather.ANOMALY_NOISE_F)
        phase = 2 * math.pi * (day.timetuple().tm_yday - weather.COLDEST_DAY_OF_YEAR) / 365.25
        years = (day - weather.START_DATE).days / 365.25
        normal = (weather.ANNUAL_MEAN_F - weather.SEASONAL_SWING_F * math.cos(phase)
                  + weather.WARMING_F_PER_YEAR * years)
        degrees = round(normal + anomaly, 4)
        yield day.isoformat(), degrees
        if rng.random() < weather.DUPLICATE_PROBABILITY:
            offset = rng.uniform(*weather.DUPLICATE_OFFSET_F) * rng.choice((-1, 1))
            yield day.isoformat(), round(degrees + offset, 4)
        day += datetime.timedelta(days=1)


def test_the_weather_is_the_date_based_generators_reading_for_reading():
    for seed in (1, 2):
        count = 40_000  # a century
        assert (take(weather.get_next_weather(delay_sec=0, seed=seed), count)
                == take(datetime_weather(seed), count))


def test_the_weather_ends_with_the_calendar_instead_of_failing(monkeypatch):
    # 9999-12-31 is the last date Python has, 8,010 years after the first: the generator is
    # started in its last year (the calendar's start is its only input changed here).
    from_the_last_year = functools.partial(weather.calendar_days, datetime.date(9999, 1, 1))
    monkeypatch.setattr(weather, "calendar_days", from_the_last_year)
    last_two = collections.deque(weather.get_next_weather(delay_sec=0, seed=1), maxlen=2)
    assert last_two[-1][0] == "9999-12-31"
    assert last_two[0][0] in ("9999-12-30", "9999-12-31")


def test_a_seed_makes_the_weather_reproducible():
    first = take(weather.get_next_weather(delay_sec=0, seed=42), 500)
    assert first == take(weather.get_next_weather(delay_sec=0, seed=42), 500)
    assert first != take(weather.get_next_weather(delay_sec=0, seed=43), 500)


# ---------------------------------------------------------------- the pace


@pytest.fixture
def pauses(monkeypatch):
    """The seconds the generator sleeps, recorded instead of slept."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    slept = []
    monkeypatch.setattr(weather.time, "sleep", slept.append)
    return slept


def pace(delay_sec=0.5, readings=30):
    """The distinct pauses while the generator makes `readings` readings."""
    list(itertools.islice(weather.get_next_weather(delay_sec=delay_sec, seed=1), readings))


def test_without_a_variable_the_generator_sleeps_delay_sec(pauses):
    pace(0.25)
    assert len(pauses) >= 29 and set(pauses) == {0.25}


@pytest.mark.parametrize("name", VARIABLES)
def test_either_variable_alone_sets_the_pace(pauses, monkeypatch, name):
    monkeypatch.setenv(name, "0.001")
    pace(0.5)
    assert pauses and set(pauses) == {0.001}


@pytest.mark.parametrize("name", VARIABLES)
def test_zero_is_full_speed_without_a_single_sleep(pauses, monkeypatch, name):
    monkeypatch.setenv(name, "0")
    pace(0.5, readings=1000)
    assert pauses == []


def test_the_course_graders_variable_wins_when_both_are_set(pauses, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DELAY_OVERRIDE_VAL", "0.01")
    monkeypatch.setenv("WEATHER_DELAY_SEC", "0.2")
    pace(0.5)
    assert set(pauses) == {0.01}


def test_a_blank_variable_counts_as_unset(pauses, monkeypatch):
    monkeypatch.setenv("AUTOGRADER_DELAY_OVERRIDE_VAL", " ")
    monkeypatch.setenv("WEATHER_DELAY_SEC", "0.02")
    pace(0.5)
    assert set(pauses) == {0.02}


@pytest.mark.parametrize("name", VARIABLES)
@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", "0.5s"])
def test_a_bad_value_is_one_sentence_naming_the_variable(pauses, monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError) as raised:
        weather.get_next_weather(delay_sec=0.5)  # at once, not at the first reading
    message = str(raised.value)
    assert message.startswith(name) and repr(value) in message and "\n" not in message
