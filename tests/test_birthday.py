"""The consumer as a producer: birthday-temperatures and birthday.json, exactly once."""

import random

import pytest

from helpers import (assert_birthdays_exact, caught_up, consume_until_caught_up, kill_9_mid_run,
                     load, wait_until)
from tools import p7check

pytestmark = pytest.mark.broker


def birthday_messages():
    return p7check.end_offsets([0], topic="birthday-temperatures")[0]


def test_birthday_json_has_every_year_of_that_day(produce, run_program, tmp_path):
    produce(7000)  # about 18 years
    consume_until_caught_up(run_program, tmp_path, [0, 1, 2, 3], "--birthday", "1997-10-02")
    expected = assert_birthdays_exact(tmp_path, "1997-10-02")
    assert len(expected) > 15
    assert list(load(tmp_path / "birthday.json"))[0] == "birthday"


def test_a_leap_day_birthday_only_matches_leap_years(produce, run_program, tmp_path):
    produce(7000)
    consumer = run_program("consumer.py", "0", "1", "2", "3", "--dir", tmp_path,
                           env={"P7_BIRTHDAY": "2000-02-29"})  # the environment variable
    wait_until(lambda: caught_up(tmp_path, range(4)), 120, "catch-up")
    assert consumer.stop() == 0, consumer.stderr
    expected = assert_birthdays_exact(tmp_path, "2000-02-29")
    years = sorted(int(y) for y in expected if y != "birthday")
    assert years and all(y % 4 == 0 for y in years), years


def test_without_a_birthday_nothing_of_it_runs(produce, run_program, tmp_path):
    produce(2000)
    consume_until_caught_up(run_program, tmp_path, [0, 1, 2, 3])
    assert not (tmp_path / "birthday.json").exists()
    assert birthday_messages() == 0


def test_kill_9_between_publish_and_checkpoint_is_harmless(run_program, start_producer, tmp_path):
    birthday = "1990-01-07"  # a day of every year, in a partition that fills fast
    producer = start_producer(9, delay=0.0003)
    rng = random.Random(99)
    for _ in range(5):
        kill_9_mid_run(run_program, tmp_path, rng, "--birthday", birthday)
        # Its birthday subscriber follows it (parent-death signal) before the next start.
        wait_until(lambda: not p7check.processes_mentioning(str(tmp_path)), 30,
                   "the birthday subscriber to follow its parent")
    assert producer.stop() == 0
    consume_until_caught_up(run_program, tmp_path, [0, 1, 2, 3], "--birthday", birthday)
    expected = assert_birthdays_exact(tmp_path, birthday)
    # Republished readings are in the topic more than once, and birthday.json doesn't mind.
    assert birthday_messages() >= len(expected) - 1
