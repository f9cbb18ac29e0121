#!/usr/bin/env python3
"""Grading a class: `autograde.py --batch --native` over a class of correct final-version
submissions, once one at a time (--jobs 1) and once two at a time (--jobs 2). Run by `make
bench` after the cluster's section; it writes its own section of BENCHMARKS.md (replacing an
earlier one).

    PYTHONPATH=files .venv/bin/python -m bench.grading [--submissions 10] [--only 1,2,6]

The class is tests/submissions/final and its correct variants (tests/submissions/
final_variants.py), taken in turn until there are --submissions of them. Both runs grade every
check unless --only says otherwise, with the class broker on free ports of its own (the batch
starts and stops it, and the second lane's). The two runs must give the same scores: a
difference is printed and makes the exit code 1. Each submission's memory is what its report
says (the `memory:` line: the peak of its programs together, and of its grader).
"""

import argparse
import csv
import datetime
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.sections import replace_section
from tests.submissions import final_variants
from tools import harness

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Grading a class"
JOBS = (1, 2)
MEMORY_LINE = re.compile(r"^memory: the programs peaked at ([\d.]+) MiB together.*?grader at "
                         r"([\d.]+) MiB", re.MULTILINE | re.DOTALL)


def say(text):
    print(f"[grading] {text}", file=sys.stderr, flush=True)


def make_class(folder, count):
    """`count` correct submissions in `folder`: final/ and its correct variants in turn."""
    makers = [None] + [name for name, variant in final_variants.VARIANTS.items()
                       if variant.correct]
    for index in range(count):
        maker = makers[index % len(makers)]
        destination = folder / f"student{index:02d}-{maker or 'final'}"
        if maker is None:
            shutil.copytree(final_variants.FINAL, destination,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            final_variants.make(maker, destination)
    return folder


def grade(klass, jobs, only):
    """(seconds, {name: score}, {name: (programs MiB, grader MiB)}) of one batch run."""
    first = harness.free_port_run(2)
    env = dict(os.environ, KAFKA_BOOTSTRAP=f"localhost:{first}")
    command = [sys.executable, str(ROOT / "autograde.py"), "--batch", str(klass), "--native",
               "--jobs", str(jobs)] + (["--only", only] if only else [])
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    seconds = time.monotonic() - started
    say(f"--jobs {jobs}: 1-minute load average {load_before:.1f} at the start, "
        f"{os.getloadavg()[0]:.1f} at the end")
    if done.returncode != 0:
        raise SystemExit(f"the batch with --jobs {jobs} failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout)[-2000:]}")
    results = klass / "autograde-results"
    with open(results / "results.csv") as f:
        scores = {row["name"]: row["score"] for row in csv.DictReader(f)}
    memory = {}
    for name in scores:
        found = MEMORY_LINE.search((results / f"{name}.log").read_text(errors="replace"))
        if found:
            memory[name] = (float(found[1]), float(found[2]))
    return seconds, scores, memory


def render(runs, count, only, started):
    lines = [SECTION, "",
             f"Written by `bench/grading.py` on {started:%Y-%m-%d %H:%M} UTC: `autograde.py "
             f"--batch --native` over {count} correct final-version submissions "
             f"({'checks ' + only if only else 'every check'}), on this machine's "
             f"{os.cpu_count()} CPUs. Measurements, not tests.", "",
             "| --jobs | class time | per submission | scores |",
             "|---|---|---|---|"]
    for jobs, (seconds, scores, _memory) in runs.items():
        lines.append(f"| {jobs} | {seconds:.0f} s | {seconds / count:.0f} s | "
                     f"{', '.join(sorted(set(scores.values())))} |")
    memory = [value for _s, _scores, found in runs.values() for value in found.values()]
    if memory:
        programs = sorted(value[0] for value in memory)
        graders = sorted(value[1] for value in memory)
        lines += ["", f"Memory per submission (over both runs): its programs together peaked "
                      f"at {programs[len(programs) // 2]:.0f} MiB (median; at most "
                      f"{programs[-1]:.0f} MiB), its grader at {graders[len(graders) // 2]:.0f}"
                      f" MiB (median; at most {graders[-1]:.0f} MiB). The brokers are apart: "
                      "one JVM a lane."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time autograde.py --batch with --jobs 1 "
                                                 "and 2 over a class of correct submissions.")
    parser.add_argument("--submissions", type=int, default=10)
    parser.add_argument("--only", default=None, help="the checks to grade (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = {}
    with tempfile.TemporaryDirectory(prefix="p7-bench-grading-") as workdir:
        klass = make_class(Path(workdir) / "class", args.submissions)
        for jobs in JOBS:
            say(f"grading {args.submissions} submissions with --jobs {jobs}")
            runs[jobs] = grade(klass, jobs, args.only)
            say(f"--jobs {jobs}: {runs[jobs][0]:.0f} s")
    text = render(runs, args.submissions, args.only, started)
    replace_section(args.out, SECTION, text)
    print(text)
    differ = {name for name, score in runs[1][1].items() if runs[2][1].get(name) != score}
    if differ:
        print(f"the scores differ with --jobs 2 for {', '.join(sorted(differ))}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
