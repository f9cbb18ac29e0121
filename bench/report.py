"""BENCHMARKS.md from one run's measured figures: bench/BENCHMARKS.template.md filled in.

The prose (what each section measures, and how) lives in the template, which holds no figure of
its own: every number in BENCHMARKS.md comes from the run through one of its ${placeholders}
(tests/unit/test_bench_report.py checks both). What earlier runs found is kept, dated, in
docs/performance-history.md. This module only turns the results into the placeholders' strings,
tables included.
"""

import statistics
import string
from pathlib import Path

from bench.dashboard_flood import section_values as dashboard_values
from bench.scale import scale_table

TEMPLATE = Path(__file__).resolve().parent / "BENCHMARKS.template.md"
RSS_MARKS = (0.25, 0.5, 0.75, 1.0)


def fmt_rate(value):
    return f"{value:,.0f}"


def fmt_ratio(value):
    return f"{value:.2f}"


def mib(kib):
    return f"{kib / 1024:.1f} MiB"


def met(ok):
    return "**met**" if ok else "**not met**"


def met_both(wall_ratio, cpu_ratio, target):
    if wall_ratio >= target and cpu_ratio >= target:
        return "**met**"
    if cpu_ratio >= target:
        return "**met** on CPU time, not on wall time"
    if wall_ratio >= target:
        return "**met** on wall time, not on CPU time"
    return "**not met**"


def median_run(runs):
    """The run with the median wall time (the figures shown stay those of one real run)."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return ordered[(len(ordered) - 1) // 2]


def paired_ratios(runs, ceilings):
    """(wall, CPU) ratios of runs to their ceilings: each round's pair compared (the two ran
    seconds apart, under much the same load from elsewhere), then the median over the rounds.
    Above 1 means faster, or cheaper in CPU, than the ceiling."""
    wall = statistics.median(c["seconds"] / r["seconds"] for r, c in zip(runs, ceilings))
    cpu = statistics.median(c["cpu_seconds"] / r["cpu_seconds"] for r, c in zip(runs, ceilings))
    return wall, cpu


def rss_is_flat(run):
    """RSS at the last mark within 10% (and 8 MiB) of RSS at the first one."""
    marks = [v for v in run["rss_marks"].values() if v]
    return len(marks) >= 2 and marks[-1] - marks[0] <= max(0.1 * marks[0], 8 * 1024)


def conditions(results, args):
    """The paragraphs about how far the figures can be trusted, or nothing."""
    load, m = results["load"], results["machine"]
    text = ""
    if args.quick:
        text += ("**Quick run** (`--quick`): small sizes, for development only. Run "
                 "`make bench` for the real figures.\n\n")
    if load["other_brokers"] > 0 or load["start"][0] > 0.5 or args.note:
        text += ("**Measured on a shared machine.** " + (args.note + " " if args.note else "")
                 + f"During the run {load['other_brokers']} other Kafka broker(s) ran on this "
                 f"machine and the 1-minute load average was {load['start'][0]:.1f} at the "
                 f"start and {load['end'][0]:.1f} at the end, on {m['nproc']} CPUs: the "
                 "wall-clock figures are noisy and low. Each ratio compares runs interleaved in "
                 "the same invocation, and the CPU-time ratios (CPU seconds the measured "
                 "process itself used) are the least sensitive to the sharing.\n\n")
    return text


def catchup_rows(c):
    rows = []
    for key, ceiling_key in (("ceiling_one", None), ("one", "ceiling_one"),
                             ("one_defaults", "ceiling_one"), ("ceiling_two", None),
                             ("two", "ceiling_two"), ("ceiling_one_nocrc", None),
                             ("one_nocrc", "ceiling_one_nocrc")):
        run = median_run(c[key])
        if ceiling_key:
            wall_ratio, cpu_ratio = paired_ratios(c[key], c[ceiling_key])
            ratios = f"{fmt_ratio(wall_ratio)} | {fmt_ratio(cpu_ratio)}"
        else:
            ratios = "(ceiling) | (ceiling)"
        rows.append(f"| {run['label']} | {run['seconds']:.2f} s | {fmt_rate(run['rate'])} | "
                    f"{run['startup']:.2f} s | {fmt_rate(run['fetch_rate'])} | "
                    f"{statistics.median(r['cpu_seconds'] for r in c[key]):.2f} s | "
                    f"{ratios} |")
    return "\n".join(rows)


def producer_rows(p):
    rows = []
    for key, name, setting in (
            ("producer_py", "producer.py", "acks=all, retries=10, idempotence, max in flight 1, "
             "linger 50 ms (full speed)"),
            ("producer_py_list", "producer.py, readings generated beforehand", "the same"),
            ("bare_1", "bare KafkaProducer (the ceiling)", "the same"),
            ("bare_5", "bare KafkaProducer", "the same but max in flight 5"),
            ("bare_partitioner", "bare KafkaProducer, kafka-python's partitioner per message",
             "the same but linger 0 (kafka-python's default)")):
        rows.append(f"| {name} | {setting} | {fmt_rate(p['rates'][key])} | "
                    f"{1000 / p['cpu_rates'][key] * 1000:.1f} ms | "
                    f"{p['per_request'][key]:.0f} | {fmt_ratio(p['ratios'][key][0])} / "
                    f"{fmt_ratio(p['ratios'][key][1])} |")
    return "\n".join(rows)


def memory_table(one, years):
    header = ("| Years consumed | " + " | ".join(f"{mark * years:g}" for mark in RSS_MARKS)
              + " | Peak (VmHWM) |")
    rule = "|---" * (len(RSS_MARKS) + 2) + "|"
    values = ("| RSS | " + " | ".join(mib(one["rss_marks"][mark]) if one["rss_marks"].get(mark)
                                      else "-" for mark in RSS_MARKS)
              + f" | {mib(one['peak_kib'][0])} |")
    return "\n".join([header, rule, values])


def render(results, args, settings):
    """The report. `settings`: bench.py's constants the text names (seed, targets, pace...)."""
    m, b, cu = results["machine"], results["backlog"], results["catchup"]
    p, f, e = results["producer"], results["freshness"], results["e2e"]
    c = cu["runs"]
    one, two = median_run(c["one"]), median_run(c["two"])
    c1, c2 = median_run(c["ceiling_one"]), median_run(c["ceiling_two"])
    r1, cpu1 = paired_ratios(c["one"], c["ceiling_one"])
    r2, cpu2 = paired_ratios(c["two"], c["ceiling_two"])
    rp, rp_cpu = p["ratios"]["producer_py"]
    target, producer_target = settings["consumer_target"], settings["producer_target"]
    r1_nocrc, cpu1_nocrc = paired_ratios(c["one_nocrc"], c["ceiling_one_nocrc"])
    # What the crc32c package is worth: each run against its pure-Python-CRC twin of the round.
    crc_ceiling, crc_ceiling_cpu = paired_ratios(c["ceiling_one_nocrc"], c["ceiling_one"])
    crc_one, crc_one_cpu = paired_ratios(c["one_nocrc"], c["one"])
    biggest = results["scale"][-1]
    years = b["years"]
    per_message_us = {key: 1e6 / rate for key, rate in p["cpu_rates"].items()}
    in_flight_gain, in_flight_cpu = p["ratios"]["bare_5"]
    vs_plain = p["vs_plain"]  # producer.py against the plain client
    wall_gain, cpu_gain = paired_ratios(c["one"], c["one_defaults"])
    values = {
        "command": "bench/bench.py" + (" --quick" if args.quick else ""),
        "date": results["date"], "bootstrap": settings["bootstrap"],
        "run_seconds": f"{results['seconds']:.0f}",
        "conditions": conditions(results, args),
        **{key: m[key] for key in ("nproc", "usable_cpus", "cpu", "memory", "kernel", "python",
                                   "kafka_python", "protobuf", "kafka", "java")},
        "one_rate": fmt_rate(one["rate"]), "c1_rate": fmt_rate(c1["rate"]),
        "two_rate": fmt_rate(two["rate"]), "c2_rate": fmt_rate(c2["rate"]),
        "r1": fmt_ratio(r1), "cpu1": fmt_ratio(cpu1), "met1": met_both(r1, cpu1, target),
        "r2": fmt_ratio(r2), "cpu2": fmt_ratio(cpu2), "met2": met_both(r2, cpu2, target),
        "target": target, "producer_target": producer_target,
        "nocrc_one_rate": fmt_rate(median_run(c["one_nocrc"])["rate"]),
        "nocrc_c1_rate": fmt_rate(median_run(c["ceiling_one_nocrc"])["rate"]),
        "r1_nocrc": fmt_ratio(r1_nocrc), "cpu1_nocrc": fmt_ratio(cpu1_nocrc),
        "crc_ceiling": fmt_ratio(1 / crc_ceiling), "crc_ceiling_cpu": fmt_ratio(1 / crc_ceiling_cpu),
        "crc_one": fmt_ratio(1 / crc_one), "crc_one_cpu": fmt_ratio(1 / crc_one_cpu),
        "scale_table": scale_table(results["scale"]),
        "scale_centuries": ", ".join(f"{row['years'] / 100:g}" for row in results["scale"]),
        "biggest_centuries": f"{biggest['years'] / 100:g}",
        "biggest_seconds": f"{biggest['consumer']['seconds']:.1f}",
        "biggest_peak": mib(biggest["consumer"]["peak_kib"][0]),
        "producer_rate": fmt_rate(p["rates"]["producer_py"]),
        "bare_rate": fmt_rate(p["rates"]["bare_1"]),
        "rp": fmt_ratio(rp), "rp_cpu": fmt_ratio(rp_cpu),
        "met_producer": met_both(rp, rp_cpu, producer_target),
        "fresh_count": f["count"], "fresh_p50_ms": f"{f['p50'] * 1000:.0f}",
        "fresh_p99_ms": f"{f['p99'] * 1000:.0f}", "fresh_target": f"{settings['fresh_target']:g}",
        "met_fresh": met(f["p99"] < settings["fresh_target"]),
        "years": years, "one_peak": mib(one["peak_kib"][0]), "c1_peak": mib(c1["peak_kib"][0]),
        "met_memory": met(rss_is_flat(one)),
        "e2e_years": e["years"], "e2e_seconds": f"{e['seconds']:.1f}",
        "seed": settings["seed"], "backlog_target": f"{b['target']:,}",
        "duplicate_factor": settings["duplicate_factor"], "backlog_total": f"{b['total']:,}",
        "partition_counts": ", ".join(f"{n}: {b['ends'][n]:,}" for n in sorted(b["ends"])),
        "backlog_last_date": b["last_date"], "covered_years": f"{b['covered_years']:.1f}",
        "exact_century": f"{b['exact_century']:,}", "end_year": 1990 + years,
        "backlog_seconds": f"{b['seconds']:.1f}",
        "rounds": len(c["one"]),
        "settings": ", ".join(f"`{k}={v}`" for k, v in cu["settings"].items())
        or "kafka-python's defaults",
        "catchup_rows": catchup_rows(c),
        "startup_share": f"{one['startup'] / one['seconds']:.0%}",
        "first_progress": f"{one['first_progress']:.2f}",
        "defaults": ", ".join(f"`{k}={v}`" for k, v in cu["defaults"].items()
                              if cu["settings"].get(k, v) != v) or "(none differ)",
        "catchup_rounds": "\n".join(
            f"- {c[key][0]['label']}: " + ", ".join(
                f"{r['seconds']:.2f} ({r['cpu_seconds']:.2f})" for r in c[key])
            for key in ("ceiling_one", "one", "one_defaults", "ceiling_two", "two",
                        "ceiling_one_nocrc", "one_nocrc")),
        "producer_count": f"{p['count']:,}", "partitions": settings["partitions"],
        "producer_rounds": len(p["runs"]["producer_py"]),
        "producer_rows": producer_rows(p),
        "generator_us": f"{p['generator_seconds'] / p['count'] * 1e6:.1f}",
        "live_us": f"{per_message_us['producer_py'] - per_message_us['producer_py_list']:.1f}",
        "loop_us": f"{per_message_us['producer_py_list'] - per_message_us['bare_1']:.1f}",
        "in_flight_gain": fmt_ratio(in_flight_gain), "in_flight_cpu": fmt_ratio(in_flight_cpu),
        "vs_plain": fmt_ratio(vs_plain[0]), "vs_plain_cpu": fmt_ratio(vs_plain[1]),
        "in_flight_verdict": (
            "So it costs next to nothing here: on one local broker an acknowledgement comes "
            "back quickly next to the time Python takes to fill the next batch."
            if in_flight_gain < 1.1 else
            "That is what one request at a time costs here: the next batch waits for the "
            "previous acknowledgement."),
        "producer_rounds_detail": "; ".join(
            f"{k}: " + ", ".join(fmt_rate(p["count"] / r[0]) for r in v)
            for k, v in p["runs"].items()),
        "pace": settings["pace"], "poll_ms": f"{settings['poll_sec'] * 1000:g}",
        "fresh_p50_ms_1": f"{f['p50'] * 1000:.1f}", "fresh_p99_ms_1": f"{f['p99'] * 1000:.1f}",
        "fresh_max_ms": f"{f['max'] * 1000:.1f}", "ack_p50_ms": f"{f['ack_p50'] * 1000:.1f}",
        "ack_p99_ms": f"{f['ack_p99'] * 1000:.1f}",
        "memory_table": memory_table(one, years),
        "two_peaks": " and ".join(mib(k) for k in two["peak_kib"] if k),
        "fresh_peak": mib(f["peak_kib"]),
        "e2e_target": f"{settings['e2e_target']:,}", "e2e_total": f"{e['total']:,}",
        "e2e_last_date": e["last_date"], "e2e_produced": f"{e['produced_seconds']:.2f}",
        "e2e_seconds_2": f"{e['seconds']:.2f}", "e2e_rate": fmt_rate(e["rate"]),
        "e2e_lag": f"{e['lag_seconds']:.2f}", "e2e_first_file": f"{e['first_file']:.2f}",
        "default_cpu": f"{statistics.median(r['cpu_seconds'] for r in c['one_defaults']):.2f}",
        "tuned_cpu": f"{statistics.median(r['cpu_seconds'] for r in c['one']):.2f}",
        "default_wall": f"{median_run(c['one_defaults'])['seconds']:.2f}",
        "tuned_wall": f"{one['seconds']:.2f}",
        "cpu_factor": f"{1 / cpu_gain:.2f}", "wall_factor": f"{1 / wall_gain:.2f}",
        **dashboard_values(results["dashboard"], results["date"]),
    }
    return string.Template(TEMPLATE.read_text()).substitute(values)
