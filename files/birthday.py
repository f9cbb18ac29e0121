"""consumer.py --birthday: every counted reading of one day of the year, kept in birthday.json.

The stats workers publish each counted reading of that day ("YEAR,DEGREES") to the topic
birthday-temperatures (BirthdayPublisher), acknowledged before their checkpoint moves past it;
one more process follows that topic in group "birthday" and keeps birthday.json = {"birthday":
DATE, YEAR: degrees, ...} (follow_birthdays), committing its offsets after each atomic save. A
replay rewrites the same years with the same values, so the file is exact either way.
"""

import datetime
import math
import os
import sys
import time

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError, KafkaTimeoutError

import p7common
from p7common import (BIRTHDAY_TOPIC, BOOTSTRAP_TIMEOUT_MS, BROKER, RECONNECT_BACKOFF_MAX_MS,
                      RETRY_SEC, BrokerWait, LockBusy, MalformedMessage, Refused, stop)

BIRTHDAY_GROUP = "birthday"
BIRTHDAY_FILE = "birthday.json"
POLL_TIMEOUT_MS = 1000
DRAIN_TIMEOUT_SEC = 10
ACK_WAIT_SEC = 5
CLOSE_TIMEOUT_SEC = 3

BIRTHDAY_PRODUCER_CONFIG = {  # the stats workers' publisher of birthday readings
    "client_id": "p7-birthday-publisher",
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    # producer.py's settings, for the same reasons: nothing unacknowledged is considered sent,
    # and retries never reorder.
    "acks": "all",
    "retries": 10,
    "max_in_flight_requests_per_connection": 1,
    "enable_idempotence": True,
}
BIRTHDAY_CONSUMER_CONFIG = {  # the subscriber that keeps birthday.json
    "client_id": "p7-birthday-subscriber",
    "group_id": BIRTHDAY_GROUP,
    "enable_auto_commit": False,  # committed after each atomic write of birthday.json
    "auto_offset_reset": "earliest",
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
}


def date_problem(date):
    """Why --birthday `date` is no YYYY-MM-DD date, or None (also for no birthday at all)."""
    if date is None:
        return None
    try:
        datetime.date.fromisoformat(date)
        if len(date) == 10:
            return None
    except ValueError:
        pass
    return f"birthday {date!r} is not a date like 1997-10-02"


def say(text):
    print(f"consumer ['birthday']: {text}", file=sys.stderr, flush=True)


class BirthdayPublisher:
    """Produces "YEAR,DEGREES" to birthday-temperatures for each counted birthday reading."""

    def __init__(self, birthday):
        self.month_day = birthday[5:]
        self.pending = []
        self.producer = KafkaProducer(bootstrap_servers=BROKER.split(","),
                                      **BIRTHDAY_PRODUCER_CONFIG)

    def counted(self, date, degrees):
        # A 29 February birthday only matches in leap years, as it should.
        if date[5:] == self.month_day:
            self.publish(f"{date[:4]},{degrees!r}".encode("utf-8"))

    def publish(self, value):
        self.pending.append((self.producer.send(BIRTHDAY_TOPIC, value=value), value))

    def flush(self, outage):
        """Wait until every reading is acknowledged, sending again those Kafka gave up on (an
        outage longer than its delivery timeout). False when a stop came first: then the
        checkpoint must not move past them (the next run publishes them again)."""
        while self.pending:
            try:
                self.producer.flush(timeout=ACK_WAIT_SEC)
            except KafkaTimeoutError as err:
                if stop:
                    return False
                outage.failed(err)  # acknowledgements take milliseconds when all is well
                continue
            failed = [(future, value) for future, value in self.pending if future.failed()]
            self.pending.clear()
            if failed:
                outage.failed(failed[0][0].exception)
                for _, value in failed:
                    self.publish(value)
        return True

    def close(self):
        if self.pending:
            # Stopped during an outage. kafka-python's close() would flush again and raise, and
            # so would its __del__: drop them first (their checkpoint stayed before them).
            self.producer._sender.force_close()
        self.producer.close(timeout=CLOSE_TIMEOUT_SEC)


def keep_birthdays(out_dir, who):
    """The lock of birthday.json, or None when another consumer.py keeps it: two of them share a
    folder legitimately (consumer.py 0 1 and 2 3); the second one's workers still publish."""
    try:
        return p7common.lock_files([os.path.join(out_dir, BIRTHDAY_FILE)], "consumer")
    except LockBusy as err:
        print(f"consumer {who}: {err}: this run keeps no birthday.json (its workers still "
              "publish the birthday readings, which that process takes in)",
              file=sys.stderr, flush=True)
        return None


def load_birthdays(path, birthday):
    """birthday.json as a dict; a file kept for another birthday is moved aside."""
    if not os.path.exists(path):
        return {"birthday": birthday}
    try:
        data = p7common.read_json(path)
    except Refused as err:
        raise Refused(f"{path} {err}; it was left untouched: fix it, or delete it to rebuild it "
                      "from the topic") from None
    if not isinstance(data, dict):
        raise Refused(f"{path} does not hold a JSON object; it was left untouched")
    if data.get("birthday") != birthday:
        moved = p7common.set_aside(path)
        say(f"{path} was kept for birthday {data.get('birthday')!r}: moved it to {moved} and "
            f"starting one for {birthday}")
        return {"birthday": birthday}
    return data


def parse_birthday_reading(message):
    """(year, degrees) from a "YEAR,DEGREES" message, or MalformedMessage."""
    try:
        year, degrees = message.value.decode("utf-8").split(",")
        degrees = float(degrees)
    except (AttributeError, UnicodeDecodeError, ValueError):
        raise MalformedMessage(f"value {message.value!r} is not YEAR,DEGREES") from None
    if len(year) != 4 or not year.isdigit() or not math.isfinite(degrees):
        raise MalformedMessage(f"value {message.value!r} is not YEAR,DEGREES")
    return year, degrees


class RebuildWhenEmpty(ConsumerRebalanceListener):
    """Group offsets say what birthday.json has seen, unless the file was deleted or set aside
    since: then the whole (small) topic is read again to rebuild it."""

    def __init__(self, consumer, data):
        self.consumer = consumer
        self.data = data

    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        if assigned and set(self.data) == {"birthday"}:
            self.consumer.seek_to_beginning(*assigned)


def caught_up(consumer):
    assigned = consumer.assignment()
    if not assigned:
        return False
    try:
        ends = consumer.end_offsets(list(assigned), timeout_ms=RETRY_SEC * 1000)
    except KafkaError:
        return False  # the broker is away: the drain deadline ends the wait
    return all(consumer.position(tp) >= ends[tp] for tp in assigned)


def follow_birthdays(birthday, out_dir):
    """Keep birthday.json = {"birthday": ..., YEAR: degrees} from the birthday topic, until a
    stop: then what the stats workers published just before they stopped is taken in too."""
    path = os.path.join(out_dir, BIRTHDAY_FILE)
    data = load_birthdays(path, birthday)
    consumer = KafkaConsumer(bootstrap_servers=BROKER.split(","), **BIRTHDAY_CONSUMER_CONFIG)
    try:
        if p7common.wait_for_topic(consumer, say, BIRTHDAY_TOPIC) is None:
            return
        consumer.subscribe([BIRTHDAY_TOPIC], listener=RebuildWhenEmpty(consumer, data))
        drain_deadline = None
        outage = BrokerWait(say)
        while True:
            if stop and drain_deadline is None:
                drain_deadline = time.monotonic() + DRAIN_TIMEOUT_SEC
            try:
                batch = consumer.poll(timeout_ms=200 if drain_deadline else POLL_TIMEOUT_MS)
            except KafkaError as err:
                if drain_deadline:
                    break  # stopping, and nothing more can come from a broker that is away
                outage.failed(err)
                continue
            if batch:
                outage.answered()
                take_in(batch, data)
                save_and_commit(consumer, data, path, outage)
            elif not drain_deadline:
                outage.probe_if_quiet(consumer)
            elif caught_up(consumer) or time.monotonic() > drain_deadline:
                break
    finally:
        consumer.close()


def take_in(batch, data):
    for messages in batch.values():
        for message in messages:
            try:
                year, degrees = parse_birthday_reading(message)
            except MalformedMessage as err:
                say(f"offset {message.offset}: skipped a malformed message: {err}")
                continue
            data[year] = degrees


def save_and_commit(consumer, data, path, outage):
    # "birthday" first, then the years in order.
    p7common.save_dict_to_json(dict(sorted(data.items(),
                                           key=lambda kv: (kv[0] != "birthday", kv[0]))), path)
    try:
        consumer.commit()
    except KafkaError as err:
        # The file is saved: an offset committed later only replays years it has.
        outage.failed(err)
