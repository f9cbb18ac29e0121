"""A stand-in for the course's provided weather.py: the same interface and nothing more.

Daily max temperatures from 1990-01-01, forever. Now and then a producer's retry is imitated:
the previous date comes again, with an absurd reading, so that a consumer that counts it shows.
"""

import datetime
import math
import random
import time


def get_next_weather(delay_sec=0.1):
    day = datetime.date(1990, 1, 1)
    while True:
        season = math.sin(2 * math.pi * (day.timetuple().tm_yday - 110) / 365.25)
        degrees = round(48 + 30 * season + random.uniform(-12, 12), 4)
        yield day.isoformat(), degrees
        time.sleep(delay_sec)
        if random.random() < 0.05:
            yield day.isoformat(), random.choice([10000.0, 1000000.0])
            time.sleep(delay_sec)
        day += datetime.timedelta(days=1)
