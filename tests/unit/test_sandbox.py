"""grader/sandbox.py with real processes and no broker: as root, what a sandboxed program can
no longer do (signal the grader, write its files, see its environment, fork without end,
outlive the sweep, write a file without end); as any user, the scrubbed environment and the
session of its own.

The tests use a slot of their own (TEST_SLOT, one a pytest-xdist worker, and the next one for a
bystander), so that their sweeps can never reach the programs of a grader running on this
machine at the same time (slot 0 up), of the hostile grader tests (994-999) or of another worker's
tests. tests/unit/test_sandbox_cgroup.py tests the slot's cgroups."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader import sandbox
from tools.harness import ROOT, wait_until

WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
TEST_SLOT = 904 + 2 * (WORKER % 12)         # 904-927
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="only root can run a program as "
                                                         "another uid, so there is no sandbox "
                                                         "uid to test")
COURSE_PYTHON = ROOT / ".venv-course" / "bin" / "python"


def make_box(folder, **limits):
    folder.mkdir()
    return sandbox.Sandbox(folder, slot_number=TEST_SLOT,
                           limits=dict(sandbox.LIMITS, **limits) if limits else None)


@pytest.fixture
def box(tmp_path):
    made = make_box(tmp_path / "box")
    yield made
    made.close()


def run(box, code, timeout=30, env=None):
    """`code` as a python program in `box`; its stdout's last line as JSON."""
    done = box.run([sys.executable, "-c", textwrap.dedent(code)], cwd=box.tmp, timeout=timeout,
                   env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_program_sees_only_the_scrubbed_environment_and_a_session_of_its_own(
        box, monkeypatch):
    monkeypatch.setenv("P7_GRADER_SECRET", "marker")
    seen = run(box, """
        import json, os, tempfile
        for folder in (os.environ["HOME"], tempfile.gettempdir()):
            with open(os.path.join(folder, "written"), "w") as f:
                f.write("ok")
        print(json.dumps({"env": dict(os.environ), "session": os.getsid(0) == os.getpid()}))
    """, env={"KAFKA_BOOTSTRAP": "localhost:1"})
    env = seen["env"]
    assert "P7_GRADER_SECRET" not in env
    assert set(env) == {"PATH", "LANG", "HOME", "TMPDIR", "MPLBACKEND", "MPLCONFIGDIR",
                        "KAFKA_BOOTSTRAP"}, env
    assert env["HOME"] == str(box.home) and env["TMPDIR"] == str(box.tmp)
    assert (box.home / "written").read_text() == "ok" == (box.tmp / "written").read_text()
    assert seen["session"], "the program did not run in a session of its own"


@ROOT_ONLY
def test_the_program_runs_as_the_sandbox_uid_without_groups(box):
    seen = run(box, """
        import json, os
        print(json.dumps([os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]))
    """)
    uid = sandbox.slot_id(TEST_SLOT)
    assert seen == [uid, uid, uid, uid, []]


@ROOT_ONLY
def test_the_program_cannot_signal_root_processes(box):
    bystander = subprocess.Popen(["sleep", "60"])  # a process of root's, like the grader
    try:
        seen = run(box, f"""
            import json, os, signal
            outcomes = []
            for pid, signum in (({bystander.pid}, signal.SIGKILL), (os.getppid(), 0)):
                try:
                    os.kill(pid, signum)
                    outcomes.append("sent")
                except PermissionError:
                    outcomes.append("PermissionError")
            print(json.dumps(outcomes))
        """)
        assert seen == ["PermissionError", "PermissionError"]
        assert bystander.poll() is None, "the sandboxed program killed a process of root's"
    finally:
        bystander.kill()
        bystander.wait()


@ROOT_ONLY
def test_the_program_cannot_change_a_root_file_next_to_it(box):
    # In the sandbox's folder, where it may create files of its own (the sticky bit keeps it
    # from removing or renaming the others).
    canary = box.folder / "canary"
    canary.write_text("the grader's")
    os.chmod(canary, 0o644)
    seen = run(box, f"""
        import json, os
        outcomes = []
        for attempt in (lambda: open({str(canary)!r}, "a").write("x"),
                        lambda: os.unlink({str(canary)!r}),
                        lambda: os.rename({str(canary)!r}, {str(canary)!r} + ".moved")):
            try:
                attempt()
                outcomes.append("done")
            except PermissionError:
                outcomes.append("PermissionError")
        open({str(box.folder / "own")!r}, "w").write("mine")
        print(json.dumps(outcomes))
    """)
    assert seen == ["PermissionError"] * 3
    assert canary.read_text() == "the grader's"
    assert (box.folder / "own").stat().st_uid == box.uid


@ROOT_ONLY
def test_a_fork_bomb_stops_at_the_process_limit(tmp_path):
    box = make_box(tmp_path / "box", RLIMIT_NPROC=20)
    try:
        seen = run(box, """
            import json, os, time
            forked, error = 0, None
            try:
                while forked < 500:
                    if os.fork() == 0:
                        os.closerange(0, 3)  # the test reads our stdout to its end
                        time.sleep(120)
                        os._exit(0)
                    forked += 1
            except OSError as err:
                error = err.errno
            print(json.dumps([forked, error]))
        """)
        forked, error = seen
        assert error is not None and forked < 20, seen
    finally:
        assert box.close() == []
    assert sandbox.processes_of(box.uid) == []


@ROOT_ONLY
def test_the_sweep_kills_a_daemon_that_left_its_session_and_folder(box):
    run(box, """
        import json, os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.chdir("/")
                os.closerange(0, 3)
                time.sleep(600)
            os._exit(0)
        os.wait()
        print(json.dumps("forked"))
    """)
    (daemon,) = wait_until(lambda: sandbox.processes_of(box.uid), 10, "the daemon")
    assert os.readlink(f"/proc/{daemon}/cwd") == "/"
    assert os.getsid(daemon) != os.getsid(0)
    assert sandbox.sweep(box.uid) == []
    assert sandbox.processes_of(box.uid) == []


def test_a_file_cannot_grow_past_the_size_limit(tmp_path):
    box = make_box(tmp_path / "box", RLIMIT_FSIZE=1024 * 1024)
    target = box.tmp / "big"
    try:
        seen = run(box, f"""
            import errno, json
            try:
                with open({str(target)!r}, "wb") as f:
                    for _ in range(4):
                        f.write(b"x" * 1024 * 1024)
                print(json.dumps("written"))
            except OSError as err:
                print(json.dumps(errno.errorcode[err.errno]))
        """)
    finally:
        box.close()
    assert seen == "EFBIG"
    assert target.stat().st_size <= 1024 * 1024


@pytest.mark.skipif(not COURSE_PYTHON.exists(), reason="the course venv is not built here "
                                                       "(make venv builds it on first use)")
def test_the_course_packages_work_under_the_limits(box):
    # RLIMIT_AS bounds each process's address space: the course's packages must fit in it.
    done = box.run([str(COURSE_PYTHON), "-c", textwrap.dedent("""
        import pandas, matplotlib.pyplot as plt, kafka
        frame = pandas.DataFrame({"x": range(1000)})
        plt.bar(frame.index[:10], frame.x[:10])
        plt.savefig("plot.svg")
        print(int(frame.x.sum()))
    """)], cwd=box.tmp, timeout=120, python=COURSE_PYTHON)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "499500"
    assert (box.tmp / "plot.svg").stat().st_size > 0


def test_a_bad_slot_is_refused_in_one_sentence(monkeypatch):
    monkeypatch.setenv(sandbox.SLOT_VARIABLE, "two")
    with pytest.raises(sandbox.SandboxError, match="whole number"):
        sandbox.slot()


@ROOT_ONLY
def test_the_sweep_leaves_other_uids_alone(box):
    bystander = subprocess.Popen(["sleep", "60"], user=sandbox.slot_id(TEST_SLOT + 1),
                                 group=sandbox.slot_id(TEST_SLOT + 1), extra_groups=[])
    try:
        wait_until(lambda: Path(f"/proc/{bystander.pid}/status").exists(), 5, "sleep")
        assert box.sweep() == []
        assert bystander.poll() is None, "the sweep killed a process of another uid"
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()
