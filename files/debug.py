"""Part 2: print every new message of the `temperatures` topic as a dictionary.

    python3 debug.py
    docker exec -it p7 python3 /files/debug.py

Joins consumer group "debug" and lets the broker assign the partitions. It never seeks to the
beginning and commits no offsets, so each run shows only messages produced after it started.
"""

import argparse
import os
import signal
import sys

from google.protobuf.message import DecodeError
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError, KafkaTimeoutError

from report_pb2 import Report

BROKER = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
TOPIC = "temperatures"
GROUP = "debug"
BOOTSTRAP_TIMEOUT_MS = 10_000


class AnnounceAssignment(ConsumerRebalanceListener):
    """Tell the user (on stderr, so stdout stays one dict per line) when messages can flow."""

    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        numbers = sorted(tp.partition for tp in assigned)
        if not numbers:
            return  # the topic is being recreated: the real assignment follows
        print(f"debug: assigned partitions {numbers} of {TOPIC}", file=sys.stderr, flush=True)


def message_to_dict(message):
    report = Report.FromString(message.value)
    return {"partition": message.partition, "key": message.key.decode("utf-8"),
            "date": report.date, "degrees": report.degrees}


def make_consumer():
    try:
        consumer = KafkaConsumer(
            bootstrap_servers=[BROKER],
            group_id=GROUP,
            # No committed offsets, so every start begins at the end of each partition:
            # "new messages only", and never a replay from the beginning.
            enable_auto_commit=False,
            auto_offset_reset="latest",
            bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        )
    except KafkaTimeoutError:
        raise SystemExit(f"debug: error: cannot reach the Kafka broker at {BROKER}: is it "
                         "running? (`make broker`, or the p7 container)") from None
    consumer.subscribe([TOPIC], listener=AnnounceAssignment())
    return consumer


def print_messages(consumer):
    while True:
        batch = consumer.poll(timeout_ms=1000)
        for messages in batch.values():
            for message in messages:
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
    # SIGTERM (docker stop, kill) takes the same clean path as Ctrl-C, and Ctrl-C works even
    # when a shell started us in the background with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    consumer = None
    try:
        consumer = make_consumer()
        print(f"debug: waiting for new messages on {TOPIC} (group {GROUP})", file=sys.stderr,
              flush=True)
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
            consumer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
