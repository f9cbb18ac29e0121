"""Stands in for the weather.py the course hands out: only its interface is kept.

get_next_weather(delay_sec) yields (date, max temperature) for one place, a day at a time from
1990-01-01 on, forever, and sleeps delay_sec after each. About one reading in twenty is sent
twice, the way a producer's retry after a lost ack would send it. Nothing else is read: no
environment variable changes the pace.
"""

import datetime
import random
import time

# A rough normal high (Fahrenheit) for each month of a Wisconsin year.
NORMAL_HIGH = [26, 31, 43, 57, 69, 79, 83, 80, 72, 59, 44, 30]


def get_next_weather(delay_sec=0.1):
    day = datetime.date(1990, 1, 1)
    while True:
        degrees = round(random.gauss(NORMAL_HIGH[day.month - 1], 9), 4)
        yield day.isoformat(), degrees
        time.sleep(delay_sec)
        if random.random() < 0.05:
            yield day.isoformat(), degrees  # the same reading again
            time.sleep(delay_sec)
        day += datetime.timedelta(days=1)
