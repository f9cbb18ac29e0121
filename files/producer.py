"""Part 1: stream the daily weather into the `temperatures` topic.

    python3 producer.py                         # natively
    docker exec -it p7 python3 /files/producer.py

(Re)creates `temperatures` with 4 partitions, then sends one protobuf Report per day, keyed by
the month's name, forever. Ctrl-C or SIGTERM flushes what is in flight and exits 0.
"""

import argparse
import os
import signal
import sys
import time

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

import weather
from report_pb2 import Report

BROKER = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
TOPIC = "temperatures"
PARTITIONS = 4
# Where consumer.py --birthday publishes that day's readings (assignment: "write to different
# Kafka topics"); recreated with the main topic so both start from 1990 together.
BIRTHDAY_TOPIC = "birthday-temperatures"
BIRTHDAY_PARTITIONS = 1
REPLICATION_FACTOR = 1
BOOTSTRAP_TIMEOUT_MS = 10_000
TOPIC_TIMEOUT_SEC = 60
FLUSH_TIMEOUT_SEC = 30
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


class ProducerError(Exception):
    """Something the user must fix; printed as one sentence."""


def connect_admin():
    try:
        return KafkaAdminClient(bootstrap_servers=[BROKER], client_id="p7-producer-admin",
                                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
    except KafkaTimeoutError:
        raise ProducerError(f"cannot reach the Kafka broker at {BROKER}: is it running? "
                            "(`make broker`, or the p7 container)") from None


def wait_for(condition, what, timeout=TOPIC_TIMEOUT_SEC):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ProducerError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def recreate_topic(admin, name, partitions):
    """Delete `name` if it exists, wait until it is really gone, create it anew."""
    if name in admin.list_topics():
        admin.delete_topics([name])
        print(f"Deleted topic {name}")
        # Deletion is asynchronous: creating too early fails with TopicAlreadyExists.
        wait_for(lambda: name not in admin.list_topics(), f"topic {name} to be deleted")
    else:
        print(f"Topic {name} did not exist yet")

    deadline = time.monotonic() + TOPIC_TIMEOUT_SEC
    while True:
        try:
            admin.create_topics([NewTopic(name=name, num_partitions=partitions,
                                          replication_factor=REPLICATION_FACTOR)])
            break
        except TopicAlreadyExistsError:
            if time.monotonic() > deadline:
                raise ProducerError(f"topic {name} still exists {TOPIC_TIMEOUT_SEC} s after "
                                    "its deletion") from None
            time.sleep(0.2)
    wait_for(lambda: topic_has_leaders(admin, name, partitions),
             f"all {partitions} partitions of {name} to have a leader")


def topic_has_leaders(admin, name, partitions):
    try:
        (description,) = admin.describe_topics([name])
    except KafkaError:
        return False
    leaders = [p["leader_id"] for p in description.get("partitions") or []]
    return description.get("error_code") == 0 and len(leaders) == partitions and min(leaders) >= 0


def make_producer():
    return KafkaProducer(
        bootstrap_servers=[BROKER],
        client_id="p7-producer",
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        # A send counts only once every in-sync replica has the message (no undercounting)...
        acks="all",
        # ...and a failed send is retried up to 10 times before the message is given up.
        retries=10,
        # A retry must not overtake the messages sent after it. If 03-05 failed, 03-06 went
        # through and 03-05 were then retried, the consumer would see 03-05 after 03-06 and its
        # "skip dates not after the last one" rule would drop a real reading. One request in
        # flight per connection keeps the order; idempotence lets the broker drop the copy a
        # retry makes when only the acknowledgement was lost.
        max_in_flight_requests_per_connection=1,
        enable_idempotence=True,
    )


def month_of(date):
    return MONTHS[int(date[5:7]) - 1]


def produce(producer, readings):
    """Send every (date, degrees) reading; stop at the first message Kafka gave up on."""
    failures = []

    def remember_failure(error):
        failures.append(error)

    year = None
    for date, degrees in readings:
        if failures:
            raise ProducerError(f"Kafka gave up on a message after 10 retries ({failures[0]}); "
                                "stopping so the stream does not silently lose readings")
        report = Report(date=date, degrees=degrees)
        future = producer.send(TOPIC, key=month_of(date).encode("utf-8"),
                               value=report.SerializeToString())
        future.add_errback(remember_failure)
        if date[:4] != year:
            year = date[:4]
            print(f"producing {year}...", flush=True)


def close_producer(producer):
    try:
        producer.flush(timeout=FLUSH_TIMEOUT_SEC)
    except KafkaError as err:
        print(f"producer: could not flush the last messages: {err}", file=sys.stderr)
    producer.close(timeout=FLUSH_TIMEOUT_SEC)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Send daily weather reports to Kafka forever.")
    parser.add_argument("--seed", type=int, default=None,
                        help="make the generated weather reproducible")
    args = parser.parse_args(argv)
    # SIGTERM (docker stop, kill) takes the same clean path as Ctrl-C, and Ctrl-C works even
    # when a shell started us in the background with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)

    producer = None
    try:
        readings = weather.get_next_weather(delay_sec=0.5, seed=args.seed)
        admin = connect_admin()
        try:
            recreate_topic(admin, TOPIC, PARTITIONS)
            recreate_topic(admin, BIRTHDAY_TOPIC, BIRTHDAY_PARTITIONS)
            print("Topics:", sorted(admin.list_topics()), flush=True)
        finally:
            admin.close()
        producer = make_producer()
        produce(producer, readings)
    except KeyboardInterrupt:
        pass
    except (ProducerError, ValueError) as err:
        print(f"producer: error: {err}", file=sys.stderr)
        return 1
    except KafkaError as err:
        print(f"producer: error: Kafka failed: {err}", file=sys.stderr)
        return 1
    finally:
        if producer is not None:
            close_producer(producer)
    print("producer: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
