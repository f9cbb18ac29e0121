"""autograde.py --batch against the real broker: it grades a class, one child grader per
submission, stops a submission that hangs and leaves nothing of it running; SIGTERM or Ctrl-C
while it grades stops it cleanly (no process left of the child, the student's programs or the
batch's temporary folders; the table of what was graded, the rest marked not graded; exit code
143 or 130), and stops the broker it started (chaos tier: a broker of its own); --keep keeps
each submission's grading folder under the results folder. The checks are the quick ones (1, 2
and 6, which runs `consumer.py 0 2`), so that each test takes seconds."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from helpers import ROOT, wait_until
from submissions import mutants
from tools import harness

pytestmark = pytest.mark.broker

AUTOGRADE = ROOT / "autograde.py"
PLAIN = mutants.PLAIN / "files"
GRADE_TIMEOUT = 600  # autograde has its own deadlines; this only keeps a broken one from hanging
SIX = "6. consumer.py 0 2: partitions 0 and 2, new files at offset 0"
ONE = "1. files: programs and sample outputs"  # the draft's, which the corpus's plain/ is

@pytest.fixture
def escape_dir():
    """A folder the submission's programs may write to (they run as the sandbox's uid, which
    cannot reach pytest's root-only folders): where the escaped worker leaves its pid."""
    folder = Path(tempfile.mkdtemp(prefix="p7-escaped-", dir="/tmp"))
    folder.chmod(0o777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


# An escaped worker: a consumer.py that hangs, with a child in a session of its own (out of
# the process group the grader kills) that records its pid and sleeps forever.
HANGING_CONSUMER = '''import os, sys, time
if os.fork() == 0:
    os.setsid()
    with open({pid_file!r}, "w") as f:
        f.write(str(os.getpid()))
    while True:
        time.sleep(1)
while True:
    time.sleep(1)
'''


def add_plain(klass, name):
    """A copy of the plain, correct submission (a folder holding files/ and its Dockerfile)."""
    shutil.copytree(mutants.PLAIN, klass / name, ignore=shutil.ignore_patterns("__pycache__"))


def add_hanging(klass, name, pid_file):
    """A files folder on its own whose consumer.py hangs, with an escaped worker."""
    folder = klass / name
    shutil.copytree(PLAIN, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "consumer.py").write_text(HANGING_CONSUMER.format(pid_file=str(pid_file)))


def batch_env(broker, tmp_path):
    """The batch's environment: the session broker, and a TMPDIR of the test's own, so that
    the batch's temporary folders (one per child) can be looked for afterwards."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return dict(os.environ, KAFKA_BOOTSTRAP=broker, TMPDIR=str(tmp)), tmp


def dead(pid):
    """Gone, or a zombie waiting for a parent to reap it (it runs nothing)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] == "Z"
    except OSError:
        return True


def processes_mentioning(path):
    """{pid: command line} of the living processes whose cwd is under `path` or whose command
    line names it (the pytest process aside)."""
    mark = str(path)
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid() or dead(entry):
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(mark) or mark in cmdline:
            found[int(entry)] = f"{cmdline} (cwd {cwd})"
    return found


def results_csv(klass):
    """{name: {column: cell}} of results.csv, with each check's column also under its number:
    the header names the checks as the batch's plan does, and a number's check may have
    another name in the other version of the assignment."""
    with open(klass / "autograde-results" / "results.csv") as f:
        rows = {row["name"]: row for row in csv.DictReader(f)}
    for row in rows.values():
        row.update({int(title.split(".")[0]): cell for title, cell in list(row.items())
                    if title[:1].isdigit()})
    return rows


def test_batch_grades_a_class_and_stops_what_hangs(broker, tmp_path, escape_dir):
    klass = tmp_path / "class"
    add_plain(klass, "alice")
    escaped = escape_dir / "escaped.pid"
    add_hanging(klass, "bob", escaped)
    (klass / "notes").mkdir()  # not a submission

    env, tmp = batch_env(broker, tmp_path)
    done = subprocess.run([sys.executable, str(AUTOGRADE), "--batch", str(klass), "--native",
                           "--only", "1,2,6", "--timeout", "25"], capture_output=True, text=True,
                          env=env, timeout=GRADE_TIMEOUT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "[1/2] alice ... 20/20" in output and "[2/2] bob ... 10/20" in output, output
    assert "skipped notes" in output, output

    results = klass / "autograde-results"
    rows = results_csv(klass)
    assert sorted(rows) == ["alice", "bob"]
    assert rows["alice"]["score"] == "20" and rows["bob"]["score"] == "10"
    assert rows["alice"][6] == "10" and rows["bob"][6] == "0"

    alice = json.loads((results / "alice.json").read_text())
    bob_result = json.loads((results / "bob.json").read_text())
    assert alice["score"] == 20 and alice["full_score"] == 20
    assert set(alice["tests"].values()) == {"PASS (5/5)", "PASS (10/10)"}
    # bob's grading was stopped in check 6: graded as far as it got.
    assert bob_result["tests"][SIX].startswith("NOT RUN (0/10): grading was stopped"), bob_result
    assert bob_result["tests"][ONE] == "PASS (5/5)"

    # Nothing bob started survives it, not even the worker that left its process group.
    pid = int(escaped.read_text())
    assert dead(pid), f"pid {pid} survived"
    # Without --keep nothing is kept: no grading folder, no temporary folder of the batch.
    assert not list(results.glob("*-logs")), sorted(results.iterdir())
    assert not list(tmp.iterdir()), sorted(tmp.iterdir())


def start_batch(klass, env, log, *args):
    """autograde.py --batch in a session of its own, as a shell starts a job: a Ctrl-C in its
    terminal is SIGINT to its process group (os.killpg), which its child graders are not in."""
    with open(log, "w") as out:
        return subprocess.Popen([sys.executable, str(AUTOGRADE), "--batch", str(klass),
                                 "--native", *args],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)


def stop_batch(batch, how):
    """SIGTERM to the batch (as kill does), or Ctrl-C (SIGINT to its process group); returns
    its exit code. SIGKILL to its group if it is still running after 120 s (the child's
    cleanup takes seconds, not its 60 s of grace)."""
    if how == "SIGTERM":
        batch.send_signal(signal.SIGTERM)
    else:
        os.killpg(batch.pid, signal.SIGINT)
    try:
        return batch.wait(timeout=120)
    finally:
        if batch.poll() is None:
            os.killpg(batch.pid, signal.SIGKILL)
            batch.wait()


# The exit codes the batch chose (grader/batch.py): 128 + the signal's number.
STOPS = [("SIGTERM", 143), ("Ctrl-C", 130)]


@pytest.mark.parametrize("how, exit_code", STOPS)
def test_a_signal_stops_the_batch_cleanly(broker, tmp_path, escape_dir, how, exit_code):
    klass = tmp_path / "class"
    add_plain(klass, "alice")
    escaped = escape_dir / "escaped.pid"
    add_hanging(klass, "bob", escaped)
    add_plain(klass, "carol")
    env, tmp = batch_env(broker, tmp_path)
    log = tmp_path / "batch.out"

    batch = start_batch(klass, env, log, "--only", "1,2,6", "--timeout", "300")
    try:
        # bob's grading has reached its hanging consumer.py (its escaped worker said so).
        wait_until(lambda: ("[2/3] bob" in log.read_text() and escaped.exists())
                   or batch.poll() is not None, 240, "the batch to grade bob's consumer.py")
        assert batch.poll() is None, log.read_text()
        grading = processes_mentioning(klass / "bob")  # bob's child grader
        assert grading, "no child grader of bob's submission was found running"
    finally:
        code = stop_batch(batch, how)
    output = log.read_text()

    signal_name = "SIGINT" if how == "Ctrl-C" else how
    assert code == exit_code, output
    assert "Traceback" not in output, output
    assert "[1/3] alice ... 20/20" in output, output
    assert f"[2/3] bob ... stopping ({signal_name}) ... not graded" in output, output
    assert "[3/3]" not in output, output  # carol was never started
    assert f"stopped by {signal_name}: 1 of 3 submissions graded" in output, output
    assert "not graded: bob, carol" in output, output

    # The table of what was graded, the others marked not graded.
    results = klass / "autograde-results"
    rows = results_csv(klass)
    assert sorted(rows) == ["alice", "bob", "carol"]
    assert rows["alice"]["score"] == "20" and rows["alice"][6] == "10"
    for name in ("bob", "carol"):
        assert rows[name]["score"] == "not graded", rows[name]
        assert rows[name][6] == "" and rows[name][1] == ""
    assert json.loads((results / "alice.json").read_text())["score"] == 20
    # No partial grade of bob's is left to look like one; his log says why.
    assert not (results / "bob.json").exists() and not (results / "carol.json").exists()
    assert f"not graded: the batch was stopped by {signal_name}" in \
        (results / "bob.log").read_text()

    # Nothing is left: the child grader, bob's programs (the escaped worker too), anything
    # running in the batch's temporary folders or naming the class; those folders are gone.
    pid = int(escaped.read_text())
    assert dead(pid), f"bob's escaped worker (pid {pid}) survived"
    for child in grading:
        assert dead(child), f"bob's child grader (pid {child}) survived"
    assert processes_mentioning(tmp_path) == {}
    assert not list(tmp.iterdir()), sorted(tmp.iterdir())


def test_keep_keeps_each_submissions_grading_folder(broker, tmp_path):
    klass = tmp_path / "class"
    add_plain(klass, "alice")
    shutil.copytree(PLAIN, klass / "bob", ignore=shutil.ignore_patterns("__pycache__"))
    env, tmp = batch_env(broker, tmp_path)

    done = subprocess.run([sys.executable, str(AUTOGRADE), "--batch", str(klass), "--native",
                           "--only", "1,2,6", "--keep"], capture_output=True, text=True, env=env,
                          timeout=GRADE_TIMEOUT)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "[1/2] alice ... 20/20" in output and "[2/2] bob ... 20/20" in output, output

    results = klass / "autograde-results"
    for name in ("alice", "bob"):
        kept = results / f"{name}-logs"
        # The copy the programs ran in, and the logs of check 6's `consumer.py 0 2`.
        assert (kept / "files" / "consumer.py").is_file(), sorted(kept.rglob("*"))
        consumer_logs = list((kept / "logs").glob("consumer*"))
        assert consumer_logs, sorted(kept.rglob("*"))
        assert f"kept the grading folder in {kept}" in (results / f"{name}.log").read_text()
    # The batch's temporary folders are gone all the same.
    assert not list(tmp.iterdir()), sorted(tmp.iterdir())


@pytest.mark.chaos  # a broker of its own, started by the batch
@pytest.mark.parametrize("how, exit_code", STOPS)
@pytest.mark.parametrize("moment", ["the broker's start", "grading"])
def test_a_stopped_batch_stops_the_broker_it_started(tmp_path, escape_dir, moment, how,
                                                    exit_code):
    klass = tmp_path / "class"
    add_plain(klass, "alice")
    escaped = escape_dir / "escaped.pid"
    add_hanging(klass, "bob", escaped)
    port = harness.free_port_run(2)  # the broker's port and its controller's
    state = tmp_path / "state"
    env, tmp = batch_env(f"localhost:{port}", tmp_path)
    env["P7_BROKER_STATE"] = str(state)  # the launcher's folder for it, not broker/.run-PORT
    log = tmp_path / "batch.out"

    batch = start_batch(klass, env, log, "--only", "1,2,6", "--timeout", "300")
    try:
        if moment == "grading":
            wait_until(lambda: escaped.exists() or batch.poll() is not None, 240,
                       "the batch to grade bob's consumer.py")
        else:  # the JVM is started (its pid on record) and does not answer yet
            wait_until(lambda: (state / "broker.pid").exists() or batch.poll() is not None,
                       120, "the launcher to start the broker")
        assert batch.poll() is None, log.read_text()
        jvm = int((state / "broker.pid").read_text())
    finally:
        code = stop_batch(batch, how)
    output = log.read_text()

    assert code == exit_code, output
    assert "Traceback" not in output, output
    graded = 1 if moment == "grading" else 0
    assert f"{graded} of 2 submissions graded" in output, output
    assert harness.launcher("status", env=env).returncode == 1, "the broker still answers"
    assert dead(jvm), f"the broker's JVM (pid {jvm}) survived"
    assert processes_mentioning(tmp_path) == {}
    assert not list(tmp.iterdir()), sorted(tmp.iterdir())
