"""p7common's owner locks (lock_files) between plain processes: no Kafka, no consumer.py.

What lock_files promises: `path`.lock, flock'ed, holds the owner's pid; a second owner is
refused in one sentence naming the running holder, having created and changed nothing; the
kernel drops a lock when its owner dies (kill -9 included), so the next owner takes it over; an
owner that exited while a child it forked still holds the lock is waited for, not refused; a
lock file that is no regular file, or a symbolic link, is refused and left as it is."""

import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

import p7common  # files/p7common.py
from tools.harness import FILES, wait_until

TIMEOUT = 30

# Takes the locks of the paths given as arguments, says "locked", then keeps them until its
# standard input closes. With --fork, a forked child keeps them and the holder exits at once
# (a consumer.py killed with -9 while its workers finish their batch).
HOLDER = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, sys.argv[1])
    import p7common
    fork = sys.argv[2] == "--fork"
    paths = sys.argv[3:]
    try:
        fds = p7common.lock_files(paths, "holder")
    except p7common.Refused as err:
        print(f"refused: {err}", flush=True)
        sys.exit(3)
    if fork and os.fork() != 0:
        print("locked", flush=True)
        os._exit(0)
    if not fork:
        print("locked", flush=True)
    sys.stdin.read()
""")


class Holder:
    """A plain process that takes the locks of `paths` (lock_files) and keeps them."""

    def __init__(self, paths, fork=False):
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(FILES), "--fork" if fork else "--no-fork",
             *map(str, paths)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def first_line(self):
        return self.process.stdout.readline().strip()

    def release(self):
        """Close its standard input (a forked child holding the lock shares it): it exits."""
        self.process.stdin.close()
        return self.process.wait(TIMEOUT)


@pytest.fixture
def holders():
    started = []

    def start(paths, fork=False):
        holder = Holder(paths, fork)
        started.append(holder)
        return holder
    yield start
    for holder in started:
        if holder.process.poll() is None:
            holder.process.kill()
        holder.process.wait(TIMEOUT)
        for stream in (holder.process.stdin, holder.process.stdout, holder.process.stderr):
            if not stream.closed:
                stream.close()


def pid_in(lock_path):
    return lock_path.read_text().strip()


def test_the_owner_writes_its_pid_and_a_second_owner_is_refused_naming_it(tmp_path, holders):
    path = tmp_path / "partition-0.json"
    first = holders([path])
    assert first.first_line() == "locked"
    assert pid_in(tmp_path / "partition-0.json.lock") == str(first.process.pid)
    second = holders([path])
    line = second.first_line()
    assert second.process.wait(TIMEOUT) == 3
    assert line == (f"refused: partition-0.json in {tmp_path} is kept by process "
                    f"{first.process.pid}, which is still running: stop that one first, or use "
                    "another --dir"), line
    assert pid_in(tmp_path / "partition-0.json.lock") == str(first.process.pid)
    assert first.release() == 0


def test_this_process_is_refused_too_and_creates_no_lock_file_then(tmp_path, holders):
    kept, free = tmp_path / "partition-1.json", tmp_path / "partition-2.json"
    first = holders([kept])
    assert first.first_line() == "locked"
    fds_before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(p7common.LockBusy, match=f"kept by process {first.process.pid}"):
        p7common.lock_files([str(free), str(kept)], "test")
    assert not (tmp_path / "partition-2.json.lock").exists()  # nothing created...
    assert set(os.listdir("/proc/self/fd")) <= fds_before     # ...and nothing left open
    assert first.release() == 0


def test_a_dead_owners_lock_is_taken_over(tmp_path, holders):
    path = tmp_path / "partition-3.json"
    first = holders([path])
    assert first.first_line() == "locked"
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(TIMEOUT)
    second = holders([path])
    assert second.first_line() == "locked"
    assert pid_in(tmp_path / "partition-3.json.lock") == str(second.process.pid)
    assert second.release() == 0


def test_a_lock_kept_by_the_child_of_an_exited_owner_is_waited_for(tmp_path, holders):
    path = tmp_path / "partition-0.json"
    first = holders([path], fork=True)
    assert first.first_line() == "locked"
    assert first.process.wait(TIMEOUT) == 0  # the holder exited; its forked child keeps it
    second = holders([path])
    said = wait_until(lambda: second.process.stderr.readline(), TIMEOUT,
                      "the second owner to say it waits")
    assert f"still kept by the workers of process {first.process.pid}, which has exited" in said
    assert second.process.poll() is None  # waiting, not refused
    first.process.stdin.close()  # the child's standard input: it exits, the lock is free
    assert second.first_line() == "locked"
    assert pid_in(tmp_path / "partition-0.json.lock") == str(second.process.pid)
    assert second.release() == 0


@pytest.mark.parametrize("make, kind", [
    (os.mkfifo, "is not a regular file but a FIFO"),
    (os.mkdir, "is not a regular file but a folder"),
    (lambda path: os.symlink("/dev/null", path), "is a symbolic link"),
])
def test_a_lock_file_that_is_no_regular_file_is_refused_and_left_alone(tmp_path, holders,
                                                                      make, kind):
    lock_path = tmp_path / "partition-0.json.lock"
    make(lock_path)
    before = os.lstat(lock_path)
    holder = holders([tmp_path / "partition-0.json"])
    line = holder.first_line()
    assert holder.process.wait(TIMEOUT) == 3
    assert line.startswith(f"refused: {lock_path} ") and kind in line, line
    assert "\n" not in line and line.endswith("it was left untouched: remove it"), line
    after = os.lstat(lock_path)
    assert (stat.S_IFMT(after.st_mode), after.st_ino) == (stat.S_IFMT(before.st_mode),
                                                         before.st_ino)
