"""--batch DIR: a class of submissions, one after another.

Each submission is graded by a autograde.py of its own (a child process), so that whatever one
does cannot reach the next: the child has a temporary folder of its own (TMPDIR), which every
program it starts runs in, and a run id that names its containers. A child still grading after
the time limit gets SIGTERM (it stops its programs and writes what it has), then SIGKILL; after
it, any process still running in its folder is killed with its process group and any container
or image of its run id is removed. The child writes its JSON after every check, so a submission
stopped halfway is graded as far as it got; the checks it did not reach get no points.

Results go to DIR/autograde-results/: NAME.json (the course grader's shape), NAME.log (the
child's output) and results.csv (a row per submission: name, score, each check's points).
"""

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools import harness, p7check

RESULTS_DIR = "autograde-results"
DEFAULT_TIMEOUT = 900
STOP_GRACE = 60             # what the child gets to clean up after SIGTERM


def submissions(folder):
    """[(name, files folder)] of the submissions in `folder`, and [(name, why skipped)]."""
    found, skipped = [], []
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith(".") or child.name == RESULTS_DIR:
            continue
        if (child / "files").is_dir():
            found.append((child.name, child / "files"))
        elif any(child.glob("*.py")):
            found.append((child.name, child))
        else:
            skipped.append((child.name, "no files/ folder and no programs in it"))
    return found, skipped


def child_command(files, json_path, args):
    command = [sys.executable, str(harness.ROOT / "autograde.py"), "--files", str(files),
               "--json", str(json_path)]
    if args.image is not None:
        command += ["--image", args.image]
    elif args.docker:
        command.append("--docker")
    if args.only:
        command += ["--only", ",".join(map(str, args.only))]
    return command


def grade_one(name, files, out, args, timeout):
    """Grade one submission in a child autograde.py; returns (the results JSON or None, seconds,
    what stopped it or "")."""
    json_path, log_path = out / f"{name}.json", out / f"{name}.log"
    json_path.unlink(missing_ok=True)
    own_tmp = Path(tempfile.mkdtemp(prefix=f"p7-batch-{harness.unique_suffix()}-"))
    run_id = harness.unique_suffix()
    env = dict(os.environ, TMPDIR=str(own_tmp), P7_AUTOGRADE_RUN_ID=run_id)
    started = time.monotonic()
    stopped = ""
    with open(log_path, "w") as log:
        child = subprocess.Popen(child_command(files, json_path, args), stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                 start_new_session=True)
        try:
            child.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            stopped = f"grading was stopped after {timeout:.0f} s"
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait()
        except BaseException:
            child.send_signal(signal.SIGTERM)   # Ctrl-C on the batch: this child cleans up too
            child.wait(timeout=STOP_GRACE)
            raise
        finally:
            sweep(own_tmp, run_id)
    seconds = time.monotonic() - started
    try:
        results = json.loads(json_path.read_text())
    except (OSError, ValueError):
        results = None
    if results is None and not stopped:
        stopped = f"the grader stopped with exit code {child.returncode} (see {log_path.name})"
    return results, seconds, stopped


def sweep(folder, run_id):
    """Kill what still runs in `folder` (cwd or command line), with its process group; remove
    the containers and images named with `run_id`."""
    mark = str(folder)
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(mark) or mark in cmdline:
            pid = int(entry)
            try:
                if os.getpgid(pid) != os.getpgid(0):  # never the batch's own group
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
    if shutil.which("docker"):
        for listing, remove in ((["ps", "-aq", "--filter", f"name=p7-autograde-{run_id}-"],
                                 ["rm", "-f"]),
                                (["images", "-q", f"p7-autograde:{run_id}"], ["rmi", "-f"])):
            found = subprocess.run(["docker", *listing], capture_output=True, text=True)
            ids = found.stdout.split() if found.returncode == 0 else []
            if ids:
                subprocess.run(["docker", *remove, *ids], capture_output=True)
    shutil.rmtree(folder, ignore_errors=True)


def row(name, results, checks, stopped):
    """(score, {check title: points}, {check title: outcome}) of one submission."""
    by_title = {c["check"]: c for c in (results or {}).get("checks", [])}
    points, outcomes = {}, {}
    for check in checks:
        found = by_title.get(check.title)
        points[check.title] = found["points"] if found else 0
        if found:
            outcomes[check.title] = (results["tests"].get(check.title)
                                     or f"{found['status']}")
        else:
            outcomes[check.title] = f"NOT RUN (0/{check.points}): " + (
                stopped or "the grader did not get to it")
    return sum(points.values()), points, outcomes


def grade_class(folder, args, checks):
    folder = folder.resolve()
    if not folder.is_dir():
        print(f"autograde.py: {folder} is not a folder: --batch takes the folder that holds "
              "the submissions.", file=sys.stderr)
        return 2
    found, skipped = submissions(folder)
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    if not found:
        print(f"autograde.py: {folder} holds no submission (a folder with files/ in it, or a "
              "files folder).", file=sys.stderr)
        return 2
    out = folder / RESULTS_DIR
    out.mkdir(exist_ok=True)
    timeout = args.timeout or DEFAULT_TIMEOUT
    full = sum(check.points for check in checks)
    started = time.monotonic()
    with contextlib.ExitStack() as broker:
        if not (args.docker or args.image is not None) and any(c.needs_broker for c in checks):
            # One broker for the class rather than one start and stop per submission.
            host = p7check.bootstrap().split(",")[0].rpartition(":")[0]
            if host in ("localhost", "127.0.0.1"):
                broker.enter_context(harness.local_broker())
        rows = grade_all(found, out, args, timeout, checks, full)
    write_csv(out / "results.csv", rows, checks)
    print_summary(rows, checks)
    print(f"\n{len(rows)} submissions in {time.monotonic() - started:.0f} s; results in {out} "
          "(results.csv, NAME.json, NAME.log)")
    return 0


def grade_all(found, out, args, timeout, checks, full):
    rows = []
    for index, (name, files) in enumerate(found, 1):
        print(f"[{index}/{len(found)}] {name} ...", end=" ", flush=True)
        results, seconds, stopped = grade_one(name, files, out, args, timeout)
        score, points, outcomes = row(name, results, checks, stopped)
        (out / f"{name}.json").write_text(json.dumps(
            {"score": score, "full_score": full, "tests": outcomes,
             "notes": (results or {}).get("notes", []) + ([stopped] if stopped else []),
             "checks": (results or {}).get("checks", [])}, indent=2) + "\n")
        print(f"{score}/{full} ({seconds:.0f} s){'; ' + stopped if stopped else ''}",
              flush=True)
        rows.append((name, score, points, seconds, stopped))
    return rows


def write_csv(path, rows, checks):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "score"] + [check.title for check in checks])
        for name, score, points, _, _ in rows:
            writer.writerow([name, score] + [points[check.title] for check in checks])


def print_summary(rows, checks):
    width = max(len("submission"), *(len(name) for name, *_ in rows))
    print(f"\n{'submission':<{width}}  score  " + " ".join(f"{c.number:>3}" for c in checks)
          + "  seconds")
    for name, score, points, seconds, stopped in rows:
        print(f"{name:<{width}}  {score:>5}  "
              + " ".join(f"{points[c.title]:>3}" for c in checks)
              + f"  {seconds:>7.0f}" + ("  (stopped)" if stopped else ""))
