"""files/weather.py's pace: delay_sec, and the two variables that override it, in process."""

import itertools

import pytest

import weather  # files/weather.py

VARIABLES = ("AUTOGRADER_DELAY_OVERRIDE_VAL", "WEATHER_DELAY_SEC")


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
