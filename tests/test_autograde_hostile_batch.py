"""autograde.py --batch --native over a class where each case of the hostile corpus
(tests/submissions/hostile.py) sits between two correct submissions, and the corpus's slow case
(floods_output, 2 GiB printed by debug.py) graded alone. Chaos tier: the batch starts its
brokers (one per lane, --jobs 2), and takes minutes.

Whatever the hostile ones do, the batch grades every submission: each correct one gets full
marks, whichever lane grades it and whatever the submission graded before it on that lane's
broker and uid left running; each hostile one gets a verdict; the grader's files, the other
submissions' folders, the results of the others and a canary of root's stay as they were; and
when the batch is done no process of any sandbox uid it used, no process in its folders and no
broker it started is left. The same class, smaller, graded one at a time (--jobs 1) gives the
correct ones the same scores."""

import csv
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from grader import sandbox
from helpers import ROOT
from submissions import hostile
from tools import harness

pytestmark = pytest.mark.chaos

AUTOGRADE = ROOT / "autograde.py"
SLOT = 998                  # lane 1's sandbox slot (the batch claims the others' itself), apart
FLOOD_SLOT = 999            # from the other tests' (900-997)
BATCH_TIMEOUT = 1800        # a hung batch; autograde has its own deadlines
PER_SUBMISSION = "300"      # --timeout: floods_output's check 5 waits up to 90 s for debug.py
GRADER_TREES = [ROOT / "grader", ROOT / "tools", ROOT / "autograde.py"]
OUTPUT_LIMIT = 10 * 1024 * 1024     # grader/programs.py: bytes kept of each program stream
GRADER_MEMORY = 600 * 1024 * 1024   # the grader's own peak: far below 2 GiB of output
# The cases whose leftovers could reach the next submission on the same broker and uid: the
# class graded one at a time.
ONE_AT_A_TIME = ["setsid_daemon", "fork_bomb", "writes_others"]
ROOT_ONLY = pytest.mark.skipif(not sandbox.active(), reason="the hostile corpus is graded "
                               "natively only by a grader running as root (its sandbox uid)")


@pytest.fixture
def base():
    """A folder of root's (0755) for the class, the batch's TMPDIR and brokers, and the test's
    outside folder: the sandbox's uids may look in, as at an instructor's, but write nowhere."""
    folder = Path(tempfile.mkdtemp(prefix="p7-hostile-batch-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class Watch(threading.Thread):
    """Every process seen while the batch runs whose working folder or command line names
    `base`: its uid, and whether it is a JVM (a broker the batch started)."""

    def __init__(self, base):
        super().__init__(daemon=True, name="hostile-batch-watch")
        self.mark = str(base)
        self.halt = threading.Event()
        self.uids = set()
        self.jvms = set()

    def run(self):
        while not self.halt.is_set():
            for pid, (uid, cmdline) in mentioning(self.mark).items():
                self.uids.add(uid)
                if "java" in cmdline.split(" ", 1)[0]:
                    self.jvms.add(pid)
            self.halt.wait(0.2)

    def stop(self):
        self.halt.set()
        self.join(timeout=30)


def mentioning(mark):
    """{pid: (uid, command line)} of the live processes whose cwd is under `mark` or whose
    command line names it, this one aside."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
            if re.search(r"^State:\s*[ZX]", status, re.MULTILINE):
                continue
            uid = int(re.search(r"^Uid:\s*(\d+)", status, re.MULTILINE).group(1))
            cwd = os.readlink(f"/proc/{entry}/cwd")
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace")
        except (OSError, AttributeError):
            continue
        if cwd.startswith(mark) or mark in cmdline:
            found[int(entry)] = (uid, cmdline)
    return found


def java_pids():
    """The pids of the running JVMs (a zombie waiting to be reaped has stopped)."""
    found = set()
    for entry in os.listdir("/proc"):
        try:
            if not entry.isdigit():
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            if stat.rpartition(")")[2].split()[0] not in "ZX" \
                    and Path(f"/proc/{entry}/comm").read_text().strip() == "java":
                found.add(int(entry))
        except (OSError, IndexError):
            pass
    return found


def results_csv(klass):
    with open(klass / "autograde-results" / "results.csv") as f:
        return {row["name"]: row for row in csv.DictReader(f)}


def grade_class(base, cases, jobs, label):
    """The class of `cases` (each between two correct submissions) graded by one batch with
    --jobs `jobs` on brokers of its own; everything the test asserts on it, and what it
    returns: ({submission: its case or None}, {submission: results.csv row}, {submission: its
    JSON}, the batch's output, the sandbox uids seen)."""
    klass = base / f"class-{label}"
    outside = hostile.Outside(base / f"outside-{label}")
    victims = [klass / "00-correct" / "files" / "producer.py",
               klass / "autograde-results" / "results.csv",
               klass / "autograde-results" / "00-correct.json"]
    names = hostile.make_class(klass, cases, outside=outside, victims=victims, scope=[base])
    class_before = hostile.tree_digests(klass, skip={"autograde-results"})
    tmp = base / f"tmp-{label}"
    tmp.mkdir()
    port = harness.free_port_run(2)
    env = dict(os.environ, KAFKA_BOOTSTRAP=f"localhost:{port}", TMPDIR=str(tmp),
               P7_BROKER_STATE=str(base / f"state-{label}"),
               **{sandbox.SLOT_VARIABLE: str(SLOT), hostile.SECRET_VARIABLE: "the grader's"})
    saved = hostile.save_grader_files()
    watch = Watch(base)
    watch.start()
    started = time.monotonic()
    try:
        done = subprocess.run([sys.executable, str(AUTOGRADE), "--batch", str(klass), "--native",
                               "--jobs", str(jobs), "--version", "final", "--only",
                               hostile.BATCH_ONLY, "--timeout", PER_SUBMISSION],
                              capture_output=True, text=True, env=env, timeout=BATCH_TIMEOUT,
                              check=False)
    finally:
        watch.stop()
        restored = hostile.restore_grader_files(saved)
    seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    print(f"--jobs {jobs}: {len(names)} submissions in {seconds:.0f} s")

    # The grader's own files, the class's folders, the results of the others, the canary.
    assert not restored, f"the grader's {restored} were changed (put back from before)"
    marked = hostile.marked_files(*GRADER_TREES)
    assert not marked, f"a submission wrote into {marked}"
    assert hostile.tree_digests(klass, skip={"autograde-results"}) == class_before, \
        "a submission's folder changed"
    assert outside.canary_untouched() == []
    assert not hostile.marked_files(klass), "a submission appended to a file of the class"

    # Nothing left: no process of a sandbox uid the batch used (lane 1's slot and whatever
    # uid its programs were seen running as), none in its folders, no broker it started.
    uids = {sandbox.slot_id(SLOT)} | {uid for uid in watch.uids
                                      if sandbox.BASE_ID <= uid <= sandbox.BASE_ID
                                      + sandbox.MAX_SLOT}
    assert len(uids) >= min(jobs, 2), f"the lanes' uids were not seen: {sorted(watch.uids)}"
    left = {uid: sandbox.processes_of(uid) for uid in uids}
    assert not any(left.values()), f"processes of the sandbox's uids outlived the batch: {left}"
    assert mentioning(str(base)) == {}, mentioning(str(base))
    assert watch.jvms, "no broker of the batch was seen: the test proves nothing of them"
    assert not (watch.jvms & java_pids()), f"brokers {watch.jvms & java_pids()} survived"
    assert harness.launcher("status", env=env).returncode == 1, "lane 1's broker still answers"

    # Every submission graded, in the table; the correct ones with full marks.
    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    rows = results_csv(klass)
    assert sorted(rows) == sorted(names), (sorted(rows), output[-3000:])
    full = sum(check.points for check in planned_checks())
    results = {}
    for name, case in names.items():
        path = klass / "autograde-results" / f"{name}.json"
        assert path.exists(), f"{name} has no verdict: {output[-3000:]}"
        results[name] = json.loads(path.read_text())
        assert isinstance(results[name]["score"], int), results[name]
        if case is not None:
            print(f"  {name}: {results[name]['score']}/{results[name]['full_score']}",
                  {title.split(".")[0]: outcome[:90] for title, outcome
                   in results[name]["tests"].items() if not outcome.startswith("PASS")})
        assert rows[name]["score"] == str(results[name]["score"]), (rows[name], results[name])
    lost = {name: {title: outcome for title, outcome in results[name]["tests"].items()
                   if not outcome.startswith("PASS")}
            for name, case in names.items() if case is None and results[name]["score"] != full}
    assert not lost, f"correct submissions lost points: {lost}\n{output[-2500:]}"

    # Each attack ran (its proof is there), as a sandbox uid, and came to nothing.
    plan = {int(n) for n in hostile.BATCH_ONLY.split(",")}
    for name, case in names.items():
        if case is None:
            continue
        problems = hostile.proof_problems(case, lambda what, name=name: outside.proofs(name, what),
                                          uids, plan, denied="PermissionError")
        assert problems == [], problems
        if case == "symlinks":
            refusals = hostile.link_refusals(results[name]["notes"])
            assert all(len(notes) == 1 for notes in refusals.values()), refusals
    return names, rows, results, output, uids


def planned_checks():
    importlib.import_module("grader.checks")  # registers the checks
    from grader.registry import plan
    return plan([int(n) for n in hostile.BATCH_ONLY.split(",")], version="final")


@ROOT_ONLY
def test_a_class_with_the_hostile_corpus_between_correct_submissions(base):
    names, rows, _, _, _ = grade_class(base, hostile.CLASS_CASES, 2, "jobs2")
    correct = {rows[name]["score"] for name, case in names.items() if case is None}
    # The same class, smaller, one at a time: the same scores for the correct ones.
    names1, rows1, _, _, _ = grade_class(base, ONE_AT_A_TIME, 1, "jobs1")
    correct1 = {rows1[name]["score"] for name, case in names1.items() if case is None}
    assert correct1 == correct, (correct1, correct)


@ROOT_ONLY
def test_2_gib_of_output_is_capped_and_graded(broker, base, tmp_path, monkeypatch):
    """debug.py prints 2 GiB as fast as it can, then does its work: the grader keeps the first
    and last 5 MiB of it (a notice of the cut between), never stops it, stays small itself,
    and grades it as the correct submission."""
    monkeypatch.setenv(sandbox.SLOT_VARIABLE, str(FLOOD_SLOT))
    outside = hostile.Outside(base / "outside")  # its drop folder: reachable by the uid
    files = hostile.make("floods_output", tmp_path / "submission", outside=outside)
    report = tmp_path / "results.json"
    env = dict(os.environ, KAFKA_BOOTSTRAP=broker)
    grader = subprocess.Popen([sys.executable, str(AUTOGRADE), "--json", str(report), "--files",
                               str(files), "--version", "final", "--only", "5", "--keep"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env=env)
    peak = [0]
    watcher = threading.Thread(target=watch_memory, args=(grader, peak), daemon=True)
    watcher.start()
    output, _ = grader.communicate(timeout=600)
    watcher.join(timeout=10)
    kept = re.findall(r"^kept the grading folder (.+)$", output, re.MULTILINE)
    try:
        assert grader.returncode == 0, output[-3000:]
        results = json.loads(report.read_text())
        assert results["score"] == 10, results["tests"]
        assert hostile.proof_problems("floods_output", lambda what: outside.proofs(
            "floods_output", what), sandbox.slot_id(FLOOD_SLOT), {5}) == []
        assert sandbox.processes_of(sandbox.slot_id(FLOOD_SLOT)) == []
        assert peak[0] < GRADER_MEMORY, f"the grader grew to {peak[0] / 2**20:.0f} MiB"
        assert kept, output[-2000:]
        (log,) = [path for path in (Path(kept[0].strip()) / "logs").glob("debug*.out")]
        size = log.stat().st_size
        assert OUTPUT_LIMIT <= size <= OUTPUT_LIMIT + 1024, size
        text = log.read_bytes()
        assert b"bytes cut" in text, text[OUTPUT_LIMIT // 2: OUTPUT_LIMIT // 2 + 300]
        assert text.startswith(b"flood flood"), text[:100]
        assert b"'partition'" in text[-4096:], text[-300:]  # its work, after the flood
    finally:
        for folder in kept:
            shutil.rmtree(folder.strip(), ignore_errors=True)


def watch_memory(process, peak):
    """The grader's peak resident memory (VmHWM) while it runs, into peak[0]."""
    while process.poll() is None:
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
            kib = int(re.search(r"^VmHWM:\s*(\d+)", status, re.MULTILINE).group(1))
            peak[0] = max(peak[0], kib * 1024)
        except (OSError, AttributeError):
            pass
        time.sleep(0.2)
