"""Daily max temperatures for a place loosely modelled on Dane County, Wisconsin.

    import weather
    for date, degrees in weather.get_next_weather(delay_sec=0.5):
        print(date, degrees)  # "1990-01-01" 27.1234

Every calendar day from 1990-01-01 on is produced once, in order, forever (leap days included).
Like a producer whose acknowledgement got lost and who retried, the generator repeats the
previous date 5% of the time, with a value far enough off that counting it twice would show in
the averages. The environment variable WEATHER_DELAY_SEC overrides delay_sec, so tests and
graders can run the stream fast.
"""

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


def seasonal_normal(day):
    """The expected max temperature on a date, before day-to-day weather."""
    phase = 2 * math.pi * (day.timetuple().tm_yday - COLDEST_DAY_OF_YEAR) / 365.25
    years = (day - START_DATE).days / 365.25
    return ANNUAL_MEAN_F - SEASONAL_SWING_F * math.cos(phase) + WARMING_F_PER_YEAR * years


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
    """An endless iterator of (date "YYYY-MM-DD", max degrees F with 4 decimals), 5% of dates
    twice. A bad WEATHER_DELAY_SEC raises ValueError here, not at the first reading."""
    return _readings(effective_delay(delay_sec), random.Random(seed))


def _readings(delay, rng):
    day = START_DATE
    anomaly = 0.0
    while True:
        anomaly = ANOMALY_PERSISTENCE * anomaly + rng.gauss(0.0, ANOMALY_NOISE_F)
        degrees = round(seasonal_normal(day) + anomaly, 4)
        date = day.isoformat()
        yield date, degrees
        if delay:
            time.sleep(delay)
        if rng.random() < DUPLICATE_PROBABILITY:
            offset = rng.uniform(*DUPLICATE_OFFSET_F) * rng.choice((-1, 1))
            yield date, round(degrees + offset, 4)
            if delay:
                time.sleep(delay)
        day += datetime.timedelta(days=1)
