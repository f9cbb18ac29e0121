"""Daily max temperatures for a place loosely modelled on Dane County, Wisconsin.

    import weather
    for date, degrees in weather.get_next_weather(delay_sec=0.5):
        print(date, degrees)  # "1990-01-01" 27.1234

Every calendar day from 1990-01-01 on is produced once, in order (leap days included), up to
9999-12-31, the last date Python's calendar has: nearly 18 days of streaming at the
assignment's pace.
Like a producer whose acknowledgement got lost and who retried, the generator repeats the
previous date 5% of the time, with a value far enough off that counting it twice would show in
the averages.

Two environment variables override delay_sec, so that tests and graders can run the stream fast:
AUTOGRADER_DELAY_OVERRIDE_VAL (the name the course's graders set) and WEATHER_DELAY_SEC (this
project's). When both are set, AUTOGRADER_DELAY_OVERRIDE_VAL wins: a grader's pace must hold
whatever a shell or an image left in WEATHER_DELAY_SEC. Either one set to 0 runs at full speed.
"""

import calendar
import datetime
import math
import os
import random
import time

START_DATE = datetime.date(1990, 1, 1)
DUPLICATE_PROBABILITY = 0.05

# Seasonal cycle of the daily high in degrees Fahrenheit: about 26 in late January,
# about 82 in late July.
ANNUAL_MEAN_F = 54.0
SEASONAL_SWING_F = 28.0
COLDEST_DAY_OF_YEAR = 20
WARMING_F_PER_YEAR = 0.03

# Weather persists for a few days: today's anomaly keeps part of yesterday's.
ANOMALY_PERSISTENCE = 0.6
ANOMALY_NOISE_F = 7.0

# A duplicate is off by this much, so double counting it visibly shifts a month's average.
DUPLICATE_OFFSET_F = (40.0, 60.0)


# The normal high of a day is this seasonal part, by day of the year (1 to 366), plus the warming
# since START_DATE. The seasonal part is the same every year, so it is worked out once: per
# reading, date objects and their day of the year would cost more than all the rest of the
# weather together.
SEASONAL_F_BY_DAY_OF_YEAR = (None,) + tuple(
    ANNUAL_MEAN_F - SEASONAL_SWING_F * math.cos(2 * math.pi * (day_of_year - COLDEST_DAY_OF_YEAR)
                                                / 365.25)
    for day_of_year in range(1, 367))


def days_of(year):
    """"MM-DD" of every day of `year`, in order."""
    day = datetime.date(year, 1, 1)
    days = []
    while day.year == year:
        days.append(day.isoformat()[5:])
        day += datetime.timedelta(days=1)
    return tuple(days)


DAYS_BY_LEAP = {False: days_of(2001), True: days_of(2000)}  # by "is it a leap year"


def calendar_days(start=START_DATE):
    """(ISO date, day of the year, days since START_DATE) of every day from `start` to 9999-12-31,
    the last date Python's calendar has."""
    days_since_start = (start - START_DATE).days
    first_day_of_year = start.timetuple().tm_yday
    for year in range(start.year, datetime.MAXYEAR + 1):
        prefix = f"{year:04d}-"
        days = DAYS_BY_LEAP[calendar.isleap(year)]
        for day_of_year in range(first_day_of_year, len(days) + 1):
            yield prefix + days[day_of_year - 1], day_of_year, days_since_start
            days_since_start += 1
        first_day_of_year = 1


# The variables that override delay_sec, the one that wins first.
DELAY_VARIABLES = ("AUTOGRADER_DELAY_OVERRIDE_VAL", "WEATHER_DELAY_SEC")


def effective_delay(delay_sec):
    """The seconds between readings: delay_sec unless one of DELAY_VARIABLES is set (not blank).
    A value that is not a finite number of seconds, zero or more, raises ValueError naming it."""
    for name in DELAY_VARIABLES:
        override = os.environ.get(name, "")
        if override.strip():
            break
    else:
        return delay_sec
    try:
        delay = float(override)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, not {override!r}") from None
    if not 0 <= delay < math.inf:  # NaN fails too
        raise ValueError(f"{name} must be a number of seconds, zero or more, not {override!r}")
    return delay


def get_next_weather(delay_sec=0.5, seed=None):
    """An iterator of (date "YYYY-MM-DD", max degrees F with 4 decimals) up to 9999-12-31, 5% of
    dates twice. A bad delay variable raises ValueError here, not at the first reading."""
    return _readings(effective_delay(delay_sec), random.Random(seed))


def _readings(delay, rng):
    anomaly = 0.0
    for date, day_of_year, days_since_start in calendar_days():
        anomaly = ANOMALY_PERSISTENCE * anomaly + rng.gauss(0.0, ANOMALY_NOISE_F)
        normal = (SEASONAL_F_BY_DAY_OF_YEAR[day_of_year]
                  + WARMING_F_PER_YEAR * (days_since_start / 365.25))
        degrees = round(normal + anomaly, 4)
        yield date, degrees
        if delay:
            time.sleep(delay)
        if rng.random() < DUPLICATE_PROBABILITY:
            offset = rng.uniform(*DUPLICATE_OFFSET_F) * rng.choice((-1, 1))
            yield date, round(degrees + offset, 4)
            if delay:
                time.sleep(delay)
