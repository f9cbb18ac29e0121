"""Part 2: print every new message of the `temperatures` topic as a dictionary.

    python3 debug.py
    docker exec -it p7 python3 /files/debug.py

Joins consumer group "debug" and lets the broker assign the partitions. It never seeks to the
beginning and commits no offsets, so each run shows only messages produced after it started.
On a healthy run its output, standard output and standard error alike, is nothing but one
dictionary per message, from the first line on (graders read the two merged). It speaks up on
standard error only when something is wrong: the broker lost or back again, a message skipped.
"""

try:
    import p7common  # first: importing it installs the early Ctrl-C guard (see there)
except KeyboardInterrupt:  # a Ctrl-C before even that: nothing has started yet
    raise SystemExit(0) from None

import argparse
import math
import os
import sys

from google.protobuf.message import DecodeError
from kafka import KafkaConsumer
from kafka.errors import KafkaError, KafkaTimeoutError

from p7common import (BOOTSTRAP_TIMEOUT_MS, BROKER, RECONNECT_BACKOFF_MAX_MS, TOPIC,
                      BrokerWait, stop)
from report_pb2 import Report

GROUP = "debug"

# The KafkaConsumer's settings, as data.
CONSUMER_CONFIG = {
    "group_id": GROUP,
    # No committed offsets, so every start begins at the end of each partition: "new messages
    # only", and never a replay from the beginning.
    "enable_auto_commit": False,
    "auto_offset_reset": "latest",
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
}


def message_to_dict(message):
    report = Report.FromString(message.value)
    return {"partition": message.partition, "key": message.key.decode("utf-8"),
            "date": report.date, "degrees": report.degrees}


def make_consumer():
    try:
        consumer = KafkaConsumer(bootstrap_servers=BROKER.split(","), **CONSUMER_CONFIG)
    except KafkaTimeoutError:
        raise SystemExit(f"debug: error: cannot reach the Kafka broker at {BROKER}: is it "
                         "running? (`make broker`, or the p7 container)") from None
    consumer.subscribe([TOPIC])
    return consumer


def say(text):
    print(f"debug: {text}", file=sys.stderr, flush=True)


def print_messages(consumer):
    outage = BrokerWait(say)
    while True:
        batch = outage.poll(consumer, timeout_ms=1000)  # {} while the broker is away
        for messages in batch.values():
            for message in messages:
                if message.value is None:
                    # A tombstone or a hand-made message: nothing to decode (as consumer.py).
                    print(f"debug: partition {message.partition} offset {message.offset}: "
                          "null value, skipped", file=sys.stderr, flush=True)
                    continue
                try:
                    line = message_to_dict(message)
                except (DecodeError, UnicodeDecodeError, AttributeError):
                    print(f"debug: partition {message.partition} offset {message.offset}: "
                          "not a Report message, skipped", file=sys.stderr, flush=True)
                    continue
                print(line, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Print new temperatures messages as dicts.")
    parser.parse_args(argv)
    if p7common.bootstrap_problem(BROKER):
        parser.error(p7common.bootstrap_problem(BROKER))
    # Every Ctrl-C or SIGTERM raises KeyboardInterrupt: it ends the wait in poll(), and a second
    # one cuts the group leave in close_consumer short.
    stop.install(interrupts=math.inf)
    consumer = None
    try:
        consumer = make_consumer()
        print_messages(consumer)
    except KeyboardInterrupt:
        pass
    except KafkaError as err:
        print(f"debug: error: Kafka failed: {err}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `debug.py | head` closed the pipe: nothing left to print to.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        if consumer is not None:
            close_consumer(consumer)
    return 0


def close_consumer(consumer):
    """Leave the group and close; a second Ctrl-C meanwhile (or `timeout`, which signals twice)
    only cuts that short: never a traceback. From then on a signal raises nothing: the program
    is leaving, and one raised in the interpreter's own clean-up would print a traceback."""
    try:
        consumer.close()
    except KeyboardInterrupt:
        pass
    finally:
        stop.interrupts = 0


if __name__ == "__main__":
    sys.exit(main())
