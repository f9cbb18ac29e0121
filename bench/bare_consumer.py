"""The catch-up ceiling: a bare kafka-python loop that only fetches and parses the Reports.

    python bench/bare_consumer.py --ends 0:9000,1:6000 [--config '{"max_poll_records": 500}']

Reads the given partitions from offset 0 up to the given end offsets, parses every value with
files/report_pb2 (and decodes the key, as consumer.py does), keeps no statistics and writes no
file. Like consumer.py it freezes the garbage collector's view of what the imports made
(gc.freeze). It prints one JSON line of time.monotonic() stamps (CLOCK_MONOTONIC, comparable with the
parent's) so that bench.py can split start-up from steady fetching:

    {"imported": ..., "connected": ..., "first_record": ..., "done": ..., "records": N,
     "peak_kib": VmHWM, "cpu_seconds": user + system CPU time up to "done",
     "crc32c": "crc32c package" or "python" (how kafka-python checked the records' CRCs)}

Run as its own process on purpose: python start-up, the kafka import and the bootstrap are part
of what consumer.py pays too.
"""

import argparse
import gc
import json
import os
import time

from kafka import KafkaConsumer, TopicPartition
from kafka.record import util as kafka_record_util

from report_pb2 import Report
from tools.p7check import TOPIC


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ends", required=True, help="PARTITION:END_OFFSET,...")
    parser.add_argument("--config", default="{}", help="extra KafkaConsumer keyword arguments")
    args = parser.parse_args()
    # What consumer.py's main() does to the interpreter (its objects so far out of the garbage
    # collector's passes), so that the ratio is the price of consumer.py's own work only.
    gc.freeze()
    imported = time.monotonic()
    ends = {}
    for item in args.ends.split(","):
        partition, end = item.split(":")
        ends[TopicPartition(TOPIC, int(partition))] = int(end)

    consumer = KafkaConsumer(bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP",
                                                              "localhost:9092").split(","),
                             client_id="p7-bench-ceiling", group_id=None,
                             enable_auto_commit=False, **json.loads(args.config))
    consumer.topics()  # the bootstrap and the metadata, as consumer.py fetches them first
    consumer.assign(list(ends))
    for tp in ends:
        consumer.seek(tp, 0)
    connected = time.monotonic()
    first_record = None
    records = 0
    remaining = {tp for tp, end in ends.items() if end > 0}
    degrees = 0.0
    while remaining:
        for tp, messages in consumer.poll(timeout_ms=1000).items():
            if first_record is None:
                first_record = time.monotonic()
            for message in messages:
                message.key.decode("utf-8")
                degrees += Report.FromString(message.value).degrees
            records += len(messages)
            if messages and messages[-1].offset >= ends[tp] - 1:
                remaining.discard(tp)
    done = time.monotonic()
    cpu = os.times()
    consumer.close()
    print(json.dumps({"imported": imported, "connected": connected,
                      "first_record": first_record or done, "done": done, "records": records,
                      "crc32c": ("python" if kafka_record_util.crc32c_c is None
                                 else "crc32c package"),
                      "checksum": degrees, "peak_kib": peak_kib(),
                      "cpu_seconds": cpu.user + cpu.system}), flush=True)


def peak_kib():
    """This process's VmHWM: the fetch-and-parse loop's own peak memory."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


if __name__ == "__main__":
    main()
