"""Part 2: print every new message of the `temperatures` topic as a dictionary.

    python3 debug.py
    docker exec -it p7 python3 /files/debug.py

Joins consumer group "debug" and lets the broker assign the partitions. It never seeks to the
beginning and commits no offsets, so each run shows only messages produced after it started.
On a healthy run its output, standard output and standard error alike, is nothing but one
dictionary per message, from the first line on (graders read the two merged). It speaks up on
standard error only when something is wrong: the broker lost or back again, a message skipped.
"""

import os
import sys

# Ctrl-C or SIGTERM while the imports below are still loading (a good 0.1 s) ends the program
# quietly with exit 0: nothing has started yet. os._exit, as an exception raised there can be
# swallowed ("Exception ignored in ..."). main() installs the handlers for the real work; a
# module that imports this one keeps its own.
try:
    import signal
    if __name__ == "__main__":
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(0))
        signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
except KeyboardInterrupt:
    sys.exit(0)

import argparse
import time

from google.protobuf.message import DecodeError
from kafka import KafkaConsumer
from kafka.errors import KafkaError, KafkaTimeoutError

from report_pb2 import Report

BROKER = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
TOPIC = "temperatures"
GROUP = "debug"
BOOTSTRAP_TIMEOUT_MS = 10_000
# kafka-python waits up to 30 s between attempts to reach a broker that went away (the Java
# client: 1 s), so a restarted broker would stay unused for up to half a minute.
RECONNECT_BACKOFF_MAX_MS = 1000
# While the broker is away (killed, restarting), polling is retried this often, forever.
RETRY_SEC = 1
# poll() rides out most outages silently; after this long without a message a bounded request
# for the end offsets tells an outage from a quiet topic.
PROBE_SEC = 5
PROBE_TIMEOUT_MS = 5000

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


def bootstrap_problem(servers):
    """Why `servers` (KAFKA_BOOTSTRAP) is not HOST:PORT[,HOST:PORT...], or None if it is one."""
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return (f"KAFKA_BOOTSTRAP={servers!r} must be HOST:PORT[,HOST:PORT...], "
                    "like localhost:9092")
    return None


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


def poll_through_outages(consumer, state):
    """consumer.poll(), retried while the broker is away; says once that we wait for it.
    `state` remembers across calls whether it is away and when it last answered."""
    try:
        batch = consumer.poll(timeout_ms=1000)
        assigned = list(consumer.assignment())
        if not batch and assigned and time.monotonic() - state["heard"] > PROBE_SEC:
            consumer.end_offsets(assigned, timeout_ms=PROBE_TIMEOUT_MS)
        elif not batch:
            return batch  # proves nothing either way
    except KafkaError as err:
        if not state["lost"]:
            print(f"debug: lost the Kafka broker at {BROKER} ({err}); waiting for the broker to "
                  "come back", file=sys.stderr, flush=True)
            state["lost"] = True
        time.sleep(RETRY_SEC)
        return {}
    if state["lost"]:
        print("debug: the broker answers again", file=sys.stderr, flush=True)
        state["lost"] = False
    state["heard"] = time.monotonic()
    return batch


def print_messages(consumer):
    state = {"lost": False, "heard": time.monotonic()}
    while True:
        batch = poll_through_outages(consumer, state)
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
    if bootstrap_problem(BROKER):
        parser.error(bootstrap_problem(BROKER))
    # SIGTERM (docker stop, kill) takes the same clean path as Ctrl-C, and Ctrl-C works even
    # when a shell started us in the background with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
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
    only cuts that short: never a traceback."""
    try:
        consumer.close()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    sys.exit(main())
