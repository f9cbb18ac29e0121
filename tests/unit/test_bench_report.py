"""bench/report.py fills bench/BENCHMARKS.template.md from one run's results: every placeholder
gets a value, and the template's own prose carries no figure of its own, so that a `make bench`
never republishes numbers an earlier run measured (those belong in docs/performance-history.md).

The results are synthetic, shaped as bench/bench.py's main() assembles them. No broker.
"""

import argparse
import re
import string

import pytest

from bench import dashboard_flood
from bench.report import RSS_MARKS, TEMPLATE, render

PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
CODE_SPAN = re.compile(r"`[^`\n]*`")
# Section numbers are the one kind of number the prose may hold: "## 4. Memory", the Summary's
# "| 4. Memory, ..." rows and "section 4" name the section a figure comes from.
SECTION_NUMBER = re.compile(r"^(?:## |\| )\d\. |\bsections? \d(?: and \d)?\b", re.MULTILINE)
# A digit that starts a number standing alone; digits inside a name (crc32c, p99, VmHWM's
# neighbours, report_pb2) are part of the name.
STANDALONE_NUMBER = re.compile(r"(?<![\w.$])\d[\d,.]*")
PARTITIONS = 4


def consumer_run(label, seconds, cpu, workers=1):
    """One run_consumers() result."""
    messages = 40_000
    return {"label": label, "messages": messages, "seconds": seconds, "startup": 0.4,
            "first_progress": 0.6, "rate": messages / seconds,
            "fetch_rate": messages / (seconds - 0.4), "cpu_seconds": cpu,
            "cpu_rate": messages / cpu, "peak_kib": [45_000 + 100 * n for n in range(workers)],
            "rss_marks": {mark: 44_000 + 200 * i for i, mark in enumerate(RSS_MARKS)},
            "rss_samples": [(0.25, 0.1, 40_000)],
            "file_bytes": {n: 40_000 + n for n in range(PARTITIONS)}, "verified": True}


def ceiling_run(label, seconds, cpu, workers=1):
    """One run_ceiling() result."""
    messages = 40_000
    return {"label": label, "messages": messages, "seconds": seconds, "startup": 0.45,
            "rate": messages / seconds, "fetch_rate": messages / (seconds - 0.45),
            "cpu_seconds": cpu, "cpu_rate": messages / cpu,
            "peak_kib": [42_000 + 100 * n for n in range(workers)]}


def catchup_runs(rounds):
    labels = {"ceiling_one": "ceiling, 1 process", "one": "consumer.py 0 1 2 3",
              "one_defaults": "consumer.py 0 1 2 3, kafka-python's default fetch settings",
              "ceiling_two": "ceiling, 2 processes", "two": "consumer.py 0 1 + consumer.py 2 3",
              "ceiling_one_nocrc": "ceiling, 1 process, no crc32c",
              "one_nocrc": "consumer.py 0 1 2 3, no crc32c"}
    runs = {}
    for key, label in labels.items():
        make, workers = (ceiling_run if key.startswith("ceiling") else consumer_run,
                         2 if key.endswith("two") else 1)
        runs[key] = [make(label, 0.8 + 0.01 * i + 0.05 * len(key) / 10, 0.7 + 0.01 * i,
                          workers) for i in range(rounds)]
    return runs


def producer_results(count, rounds):
    keys = ("producer_py", "producer_py_list", "bare_1", "bare_5", "bare_partitioner")
    runs = {key: [(0.8 + 0.02 * k + 0.01 * i, 0.9 + 0.02 * k, 1379.0) for i in range(rounds)]
            for k, key in enumerate(keys)}
    return {"count": count, "runs": runs, "generator_seconds": 0.04,
            "rates": {key: count / values[0][0] for key, values in runs.items()},
            "cpu_rates": {key: count / values[0][1] for key, values in runs.items()},
            "per_request": {key: values[0][2] for key, values in runs.items()},
            "ratios": {key: (0.85, 0.86) for key in keys}, "vs_plain": (1.27, 1.26)}


def scale_row(years):
    messages = years * 384
    return {"years": years, "messages": messages,
            "ends": {n: messages // PARTITIONS for n in range(PARTITIONS)},
            "consumer": consumer_run(f"consumer.py 0 1 2 3, {years} years", years / 100, 0.7),
            "ceiling": ceiling_run(f"ceiling, {years} years", years / 110, 0.6),
            "file_kib": years * 0.47}


def dashboard_results():
    clients = {count: {"requests": 1000 + count, "seconds": 5.0, "rate": 200.0 + count / 10,
                       "p50": 0.002 * count, "p99": 0.004 * count, "max": 0.005 * count,
                       "cpu_ms": 0.4} for count in (1, 100, 1000)}
    return {"clients": clients, "seconds": 5.0, "body_bytes": 144_000, "threads_before": 8,
            "threads": 8, "years": 100, "load": (3.0, 2.0, 1.0)}


def results(rounds=3, other_brokers=0, load=0.2):
    """A whole run's results, keyed as bench.bench.main() keys them."""
    return {
        "date": "2026-12-02 04:00 UTC",
        "seconds": 900.0,
        "machine": {"nproc": 2, "usable_cpus": 2, "cpu": "a CPU", "memory": "23.5 GiB",
                    "kernel": "6.1", "python": "3.11.7", "kafka_python": "3.0.12",
                    "protobuf": "7.36.2 (upb backend)", "kafka": "4.1.1",
                    "java": 'openjdk version "17"'},
        "load": {"start": (load, load, load), "end": (load, load, load),
                 "other_brokers": other_brokers},
        "backlog": {"years": 100, "target": 38_352,
                    "ends": {0: 10_109, 1: 6_507, 2: 13_349, 3: 10_035}, "total": 40_000,
                    "exact_century": 38_361, "last_date": "2094-04-07", "covered_years": 104.3,
                    "seconds": 2.0},
        "catchup": {"runs": catchup_runs(rounds), "settings": {"max_poll_records": 5000},
                    "defaults": {"max_poll_records": 500, "fetch_max_bytes": 52428800,
                                 "max_partition_fetch_bytes": 1048576, "fetch_min_bytes": 1,
                                 "fetch_max_wait_ms": 500}},
        "producer": producer_results(40_000, rounds),
        "freshness": {"count": 200, "p50": 0.044, "p99": 1.04, "max": 1.05, "ack_p50": 0.026,
                      "ack_p99": 0.054, "peak_kib": 39_000},
        "e2e": {"years": 100, "total": 40_000, "seconds": 1.9, "produced_seconds": 1.88,
                "lag_seconds": 0.01, "first_file": 0.49, "rate": 21_000.0,
                "last_date": "2094-04-07"},
        "scale": [scale_row(years) for years in (100, 1_000, 3_000)],
        "dashboard": dashboard_results(),
    }


def settings():
    """bench.bench.report_settings()'s keys (bench.bench itself sets environment variables at
    import, so the unit tests do not import it)."""
    return {"bootstrap": "localhost:9092", "seed": 7, "consumer_target": 0.9,
            "producer_target": 0.8, "fresh_target": 1.0, "duplicate_factor": 1.05,
            "partitions": PARTITIONS, "pace": 0.5, "poll_sec": 0.005, "e2e_target": 38_352}


def args(quick=False, note=""):
    return argparse.Namespace(quick=quick, note=note)


@pytest.mark.parametrize("how", [
    {"results": {}, "args": {}},
    {"results": {"rounds": 1, "other_brokers": 2, "load": 9.5},
     "args": {"quick": True, "note": "A test run."}},
], ids=["full", "quick-on-a-shared-machine"])
def test_render_fills_every_placeholder(how):
    report = render(results(**how["results"]), args(**how["args"]), settings())
    assert "${" not in report, re.findall(r"\$\{\w+\}", report)
    assert report.startswith("# Benchmarks\n")
    for heading in ("## Summary", "## 1. Consumer catch-up", "## 7. Dashboard under a flood",
                    "## Method"):
        assert f"\n{heading}" in report


def test_the_template_names_only_values_render_provides():
    """substitute() would raise on the first missing one; this names them all."""
    names = set(PLACEHOLDER.findall(TEMPLATE.read_text()))
    report = render(results(), args(), settings())
    assert names, "the template has no placeholders"
    # Each placeholder's name must not survive into the report as text either.
    assert not {name for name in names if "${" + name + "}" in report}


def test_the_dashboard_section_renders_alone():
    """`python -m bench.dashboard_flood` fills section 7 with its own values only."""
    section = dashboard_flood.template_section()
    values = dashboard_flood.section_values(dashboard_results(), "2026-12-02 04:00 UTC")
    assert "${" not in string.Template(section).substitute(values)


def hard_coded_numbers(text):
    """The numbers in the template's prose: outside placeholders, code spans (commands, settings'
    names, file names) and the section numbers."""
    prose = SECTION_NUMBER.sub("", CODE_SPAN.sub("", PLACEHOLDER.sub("", text)))
    return [(line, match.group()) for line in prose.splitlines()
            for match in STANDALONE_NUMBER.finditer(line)]


def test_the_template_holds_no_figure_of_its_own():
    found = hard_coded_numbers(TEMPLATE.read_text())
    assert not found, ("bench/BENCHMARKS.template.md holds numbers outside its placeholders (a "
                       "run's figures go in placeholders, history in "
                       f"docs/performance-history.md): {[number for _, number in found]}")


@pytest.mark.parametrize("pasted", [
    "consumer.py caught up at 0.94x the bare loop.",
    "A century's file is 47 kB.",
    "| 3. Freshness | p99 1039 ms |",
    "gave 1,681 days missing",
])
def test_the_figure_check_catches_a_pasted_figure(pasted):
    assert hard_coded_numbers(pasted)


@pytest.mark.parametrize("allowed", [
    "## 4. Memory", "| 1. Catch-up, one process | ${one_rate} msg/s |",
    "the `crc32c` package and crc32c rows", "p50 ${fresh_p50_ms} ms, p99 ${fresh_p99_ms} ms",
    "dated before `${end_year}-01-01`", "The backlog of sections 1 and 4", "(section 3)",
])
def test_the_figure_check_allows_names_and_section_numbers(allowed):
    assert not hard_coded_numbers(allowed)
