"""Section 6 of bench.py: how catch-up time and memory grow with the backlog.

The backlog grows from one simulated century to thirty (the calendar ends in 9999; thirty
centuries already take several minutes to load and catch up on this machine). The weather warms
by 0.03 F a year, so past about 2,800 years some summer highs pass 200 F: consumer.py counts
them like any other reading. The topic is recreated once and extended from one size to the next with the seeded weather, up to
1 January of 1990 + the size's years exactly; for each size the bare fetch-and-parse loop and
consumer.py 0 1 2 3 catch up on the whole topic from empty files, and the oracle checks
consumer.py's files (exactly once).

The partition files grow with the years (a line per month and year: 3,000 years make files of
a megabyte), so what a checkpoint costs grows with the backlog, and so does the memory that
holds the stats. The backlog is sent by a loader in this process, not by producer.py (section 2
measures that): the same messages, but batched for speed, so that thirty centuries (1.2 million
messages) take a minute or two rather than several.
"""

import time

from kafka import KafkaProducer

import producer as p7producer  # files/producer.py
import weather
from report_pb2 import Report

YEARS = {"full": (100, 1_000, 3_000), "quick": (100, 300)}
# producer.py's guarantees (acks=all, idempotence, so in order even with 5 requests in flight),
# in far bigger batches.
LOADER_CONFIG = dict(p7producer.PRODUCER_CONFIG, client_id="p7-bench-loader", linger_ms=50,
                     batch_size=1 << 20, max_in_flight_requests_per_connection=5)
MONTH_KEYS = {f"{n:02d}": name.encode("utf-8") for n, name in enumerate(p7producer.MONTHS, 1)}


class Loader:
    """Extends the topic with the seeded weather, from where the last extension stopped."""

    def __init__(self, bootstrap, seed):
        self.producer = KafkaProducer(bootstrap_servers=bootstrap.split(","), **LOADER_CONFIG)
        self.readings = weather.get_next_weather(0, seed=seed)
        self.next_reading = next(self.readings)
        self.sent = 0

    def extend_to(self, year):
        """Send every reading dated before `year`-01-01; returns the seconds it took."""
        start = time.monotonic()
        stop = f"{year:04d}-01-01"
        date, degrees = self.next_reading
        send = self.producer.send
        while date < stop:
            send(p7producer.TOPIC, key=MONTH_KEYS[date[5:7]],
                 value=Report(date=date, degrees=degrees).SerializeToString())
            self.sent += 1
            date, degrees = self.next_reading = next(self.readings)
        self.producer.flush()
        return time.monotonic() - start

    def close(self):
        self.producer.close()


def bench_scale(workdir, sizes, core):
    """`core`: bench.py's module (its recreate_topic, Offsets, run_consumers, run_ceiling...)."""
    core.say(f"6. scale: {', '.join(f'{y // 100:g}' for y in sizes)} centuries")
    core.recreate_topic()
    loader = Loader(core.BOOTSTRAP, core.SEED)
    offsets = core.Offsets()
    settings = core.consumer_fetch_settings()
    rows = []
    try:
        for years in sizes:
            load_seconds = loader.extend_to(1990 + years)
            ends = offsets.ends()
            if sum(ends.values()) != loader.sent:
                raise core.BenchError(f"scale: the topic holds {sum(ends.values())} messages, "
                                      f"{loader.sent} were sent")
            core.say(f"   {years // 100:g} centuries: {loader.sent:,} messages "
                     f"(loaded in {load_seconds:.0f} s)")
            # A century takes a second; thirty a minute or so: give the biggest ample time.
            timeout = max(600, loader.sent / 2_000)
            ceiling = core.run_ceiling(workdir, core.ONE_WORKER, ends,
                                       f"ceiling, {years} years", settings)
            run = core.run_consumers(workdir, core.ONE_WORKER, ends,
                                     f"consumer.py 0 1 2 3, {years} years", timeout=timeout)
            core.say(f"   consumer.py {run['seconds']:.1f} s ({run['cpu_seconds']:.1f} s CPU, "
                     f"peak {run['peak_kib'][0] / 1024:.0f} MiB), bare loop "
                     f"{ceiling['seconds']:.1f} s; files checked")
            rows.append({"years": years, "messages": loader.sent, "ends": ends,
                         "consumer": run, "ceiling": ceiling,
                         "file_kib": max(run["file_bytes"].values()) / 1024})
    finally:
        offsets.close()
        loader.close()
    return rows


def scale_table(rows):
    """The Markdown table of section 6."""
    lines = ["| Centuries | Messages | Largest file | consumer.py | Messages/s | CPU time | "
             "Per 1,000 messages (CPU) | Peak RSS | Bare loop | Bare loop peak | Ratio (wall) |",
             "|---" * 11 + "|"]
    for row in rows:
        run, ceiling = row["consumer"], row["ceiling"]
        lines.append(
            f"| {row['years'] / 100:g} | {row['messages']:,} | {fmt_size(row['file_kib'])} | "
            f"{run['seconds']:.1f} s | {run['rate']:,.0f} | {run['cpu_seconds']:.1f} s | "
            f"{run['cpu_seconds'] / row['messages'] * 1e6:.1f} ms | "
            f"{run['peak_kib'][0] / 1024:.0f} MiB | {ceiling['seconds']:.1f} s | "
            f"{ceiling['peak_kib'][0] / 1024:.0f} MiB | "
            f"{ceiling['seconds'] / run['seconds']:.2f} |")
    return "\n".join(lines)


def fmt_size(kib):
    return f"{kib / 1024:.1f} MB" if kib >= 1024 else f"{kib:.0f} kB"
