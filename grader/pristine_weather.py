"""The grader's weather.py: what a submission is graded with when its own weather.py ignores the
grader's pace (students are told not to edit the provided file, so this stands in for it).

    for date, degrees in weather.get_next_weather(delay_sec=0.1):
        ...  # "1990-01-01", 24.8731

The provided file's interface and nothing more: every day from 1990-01-01 on, in order,
forever; 5% of the time the previous date comes again (a producer's retry, as the assignment
says), with a reading of its own, so that counting it changes the statistics. It sleeps
delay_sec after each reading, unless AUTOGRADER_DELAY_OVERRIDE_VAL (the course graders'
variable) or WEATHER_DELAY_SEC sets the pace; the first of the two wins.
"""

import datetime
import math
import os
import random
import time

DUPLICATE_PROBABILITY = 0.05


def _delay(delay_sec):
    for name in ("AUTOGRADER_DELAY_OVERRIDE_VAL", "WEATHER_DELAY_SEC"):
        value = os.environ.get(name)
        if value:
            try:
                return max(0.0, float(value))
            except ValueError:
                pass
    return delay_sec


def get_next_weather(delay_sec=0.1):
    delay = _delay(delay_sec)
    day = datetime.date(1990, 1, 1)
    while True:
        season = math.cos(2 * math.pi * (day.timetuple().tm_yday - 200) / 365.25)
        degrees = round(54 + 28 * season + random.gauss(0, 7), 4)
        yield day.isoformat(), degrees
        time.sleep(delay)
        if random.random() < DUPLICATE_PROBABILITY:
            yield day.isoformat(), round(degrees + random.choice([-40, 40]), 4)
            time.sleep(delay)
        day += datetime.timedelta(days=1)
