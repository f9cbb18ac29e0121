"""One producer measurement in a fresh process, so that no benchmark state weighs on it.

    python bench/producer_runner.py producer.py 40000
    python bench/producer_runner.py producer.py-list 40000
    python bench/producer_runner.py bare 40000 --in-flight 5
    python bench/producer_runner.py bare 40000 --partitioner

`producer.py`: files/producer.py's own make_producer(), then produce() fed by the live weather
generator (seeded) in producer.py's weather_chunks(), both at full speed, then flush().
`producer.py-list`: the same, but produce() is fed the readings generated beforehand (what the
generator costs). `bare` (the ceiling): a KafkaProducer with producer.py's full-speed settings
(acks=all, retries=10, idempotence, linger_ms) and the given
max_in_flight_requests_per_connection, sending the same messages built beforehand, each to its
month's partition as producer.py names it; with --partitioner, kafka-python's partitioner picks
it for every message instead, and linger_ms stays kafka-python's default (the client used
plainly). Every mode freezes the garbage collector's view of the imports, as producer.py's
main() does. The client is created (bootstrap) before the clock starts. Prints one JSON line:
{"seconds": wall, "cpu_seconds": user + system, "messages": N, "records_per_request": ...,
"request_latency_ms": ...} (the last two from kafka-python's metrics); the CPU time is the whole
process's, kafka-python's sender thread included.
"""

import argparse
import contextlib
import gc
import io
import itertools
import json
import os
import time

# Our generator never sleeps, whatever the caller's environment says.
os.environ["WEATHER_DELAY_SEC"] = "0"

from kafka import KafkaProducer

import producer as p7producer  # files/producer.py (on PYTHONPATH, set by bench.py)
import weather

SEED = 7


def cpu_now():
    times = os.times()
    return times.user + times.system


def first_readings(chunks, count):
    """producer.py's chunks of readings, up to the first `count` readings."""
    for chunk in chunks:
        if count <= 0:
            return
        yield chunk[:count]
        count -= len(chunk)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("producer.py", "producer.py-list", "bare"))
    parser.add_argument("messages", type=int)
    parser.add_argument("--in-flight", type=int, default=1)
    parser.add_argument("--partitioner", action="store_true")
    args = parser.parse_args()
    count = args.messages

    if args.mode.startswith("producer.py"):
        producer = p7producer.make_producer(full_speed=True)
        # producer.py's own source of readings at full speed (WEATHER_DELAY_SEC is 0 here).
        chunks = first_readings(p7producer.weather_chunks(SEED, full_speed=True), count)
        if args.mode == "producer.py-list":
            chunks = list(chunks)

        def send_all():
            with contextlib.redirect_stdout(io.StringIO()):
                p7producer.produce(producer, chunks, p7producer.Deliveries())
    else:
        # The plain client (--partitioner) also keeps kafka-python's default linger_ms.
        config = dict(p7producer.PRODUCER_CONFIG,
                      **({} if args.partitioner else p7producer.FULL_SPEED_CONFIG),
                      client_id="p7-bench-bare",
                      max_in_flight_requests_per_connection=args.in_flight)
        producer = KafkaProducer(bootstrap_servers=p7producer.BROKER.split(","), **config)
        # producer.py's own messages, made before the clock starts.
        readings = list(itertools.islice(weather.get_next_weather(0, seed=SEED), count))
        encoded = p7producer.encode(readings, p7producer.month_partitions(producer))
        if args.partitioner:
            encoded = [(key, value, None) for key, value, _ in encoded]

        def send_all():
            for key, value, partition in encoded:
                producer.send(p7producer.TOPIC, key=key, value=value, partition=partition)

    producer.partitions_for(p7producer.TOPIC)  # the metadata, before the clock starts
    gc.freeze()
    wall, cpu = time.monotonic(), cpu_now()
    send_all()
    producer.flush()
    wall, cpu = time.monotonic() - wall, cpu_now() - cpu
    metrics = producer.metrics().get("producer-metrics", {})
    producer.close()
    print(json.dumps({"seconds": wall, "cpu_seconds": cpu, "messages": count,
                      "records_per_request": metrics.get("records-per-request-avg"),
                      "request_latency_ms": metrics.get("request-latency-avg")}), flush=True)


if __name__ == "__main__":
    main()
