"""Daily max temperatures for a place loosely modelled on Dane County, Wisconsin.

    import weather
    for date, degrees in weather.get_next_weather(delay_sec=0.5):
        print(date, degrees)  # "1990-01-01" 27.1234

Every calendar day from 1990-01-01 on is produced once, in order (leap days included), up to
9999-12-31, the last date Python's calendar has: nearly 18 days of streaming at the
assignment's pace.
Like a producer whose acknowledgement got lost and who retried, the generator repeats the
previous date 5% of the time, with a value far enough off that counting it twice would show in
the averages. The environment variable WEATHER_DELAY_SEC overrides delay_sec, so tests and
graders can run the stream fast.
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
# reading, date objects and their day of the year cost more than all the rest of the weather
# together (issue #16, BENCHMARKS.md).
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


def effective_delay(delay_sec):
    override = os.environ.get("WEATHER_DELAY_SEC")
    if override is None or override.strip() == "":
        return delay_sec
    try:
        delay = float(override)
    except ValueError:
        raise ValueError("WEATHER_DELAY_SEC must be a number of seconds, "
                         f"not {override!r}") from None
    if delay < 0 or math.isnan(delay):
        raise ValueError(f"WEATHER_DELAY_SEC must be zero or more, not {override!r}")
    return delay


def get_next_weather(delay_sec=0.5, seed=None):
    """An iterator of (date "YYYY-MM-DD", max degrees F with 4 decimals) up to 9999-12-31, 5% of
    dates twice. A bad WEATHER_DELAY_SEC raises ValueError here, not at the first reading."""
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
