"""The submission's programs as the grader runs them: local processes in the grading folder,
or `docker exec` in the container, through tools/harness.py either way.

The assignment's programs run forever, until killed: the grader never asks one to stop by
itself and judges no exit code on a signal; it kills what it started (the whole process group,
so consumer.py's workers go too).

Each program starts as `docker exec` starts it in the course's container: with the folder that
holds files/ as its working directory (`/` there), so `files/partition-0.json`,
`./files/partition-0.json` and `/files/partition-0.json` all name the grading copy; natively
with the course image's packages (grader/course_env.py), not the grader's.

Whatever a program prints, the grader keeps OUTPUT_LIMIT bytes of each of its streams (their
first and last half, tools/harness.py's OutputPump) and never stops the program for printing:
neither the disk nor the grader's memory fill up, and the head is in the log while it runs."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools import harness, p7check

from . import sandbox
from .course_env import environment_problem
from .registry import CheckFailed, EnvironmentProblem
from .submission import delay_environment

WATCH_INTERVAL = 0.02       # how often the worker watch looks at consumer.py's processes
# Bytes kept of each output stream of a program. Its output is evidence, not the grade: the
# first and last 5 MiB show what it did. A debug.py printing 2 GiB must fill neither the disk
# nor the grader's memory, nor be stopped for it: it writes into a pipe (no RLIMIT_FSIZE
# there) and only this much reaches its log.
OUTPUT_LIMIT = 10 * 1024 * 1024


class Programs:
    """Everything one grading session starts; kill_all() ends what is left of it."""

    def __init__(self, folder, logs):
        self.folder = folder
        self.logs = logs
        self.container = None       # set once the container runs (--docker, --image)
        self.python = sys.executable  # natively: the course environment's (Session sets it)
        self.sandbox = None         # natively: the session's grader.sandbox.Sandbox
        self.started = []
        self.consumers = []         # the consumer.py processes that later checks kill

    def start(self, name, *args):
        if self.container is not None:
            # As nobody, never as the container's root; HOME a folder it can write (matplotlib's
            # cache): nobody's own, /nonexistent, is none.
            program = self.container.program(name, args, self.logs,
                                             env={**delay_environment(), "HOME": "/tmp"},
                                             user=harness.NOBODY, output_limit=OUTPUT_LIMIT)
        else:
            # Only what the grader passes on purpose: the sandbox adds its fixed part
            # (grader/sandbox.py), never the grader's own environment.
            env = dict(KAFKA_BOOTSTRAP=p7check.bootstrap(), PYTHONUNBUFFERED="1",
                       **delay_environment())
            program = harness.Program(self.folder / name, args, self.logs, env=env,
                                      cwd=self.folder.parent, python=self.python,
                                      sandbox=self.sandbox or sandbox.current(),
                                      output_limit=OUTPUT_LIMIT)
        self.started.append(program)
        return program

    def start_consumer(self, *args):
        consumer = self.start("consumer.py", *args)
        self.consumers.append(consumer)
        return consumer

    def kill_consumers(self):
        for consumer in self.consumers:
            consumer.kill()
        self.consumers = []

    def kill_all(self):
        for program in self.started:
            try:
                program.kill()
            except Exception as err:  # noqa: BLE001  (keep cleaning up the others)
                print(f"cleanup: could not kill {program.describe()}: {err}", file=sys.stderr)

    def watch_workers(self, program):
        return WorkerWatch(program, self.container)


def require_running(*programs):
    """CheckFailed naming the program and its last words when one has exited;
    EnvironmentProblem when what killed it is a package the course's image has."""
    for program in programs:
        if not program.running():
            found = environment_problem(program.stderr)
            if found:
                raise EnvironmentProblem(f"`{program.describe()}` exited with "
                                         f"{program.returncode}: {found}")
            raise CheckFailed(f"`{program.describe()}` exited with {program.returncode}: "
                              f"{program.tail()}")


def wait_for(condition, timeout, what, *programs):
    """p7check.wait_until, failing at once (with its last words) when one of `programs` exits."""
    def check():
        require_running(*programs)
        return condition()
    try:
        return p7check.wait_until(check, timeout, what)
    except AssertionError as err:
        raise CheckFailed(str(err)) from None


# ---------------------------------------------------------------- consumer.py's workers

# Prints the pid of every process under consumer.py ("p PID") and the ids of consumer.py's own
# threads but its main one ("t TID"), then "-" after each look. The pid file is written by the
# program's own `docker exec`, which may start after this one: it is waited for (up to 60 s),
# since an empty pid would make the walk look at /proc itself.
WALK_SCRIPT = r"""
walk() {
  for t in /proc/$1/task/*; do
    tid=${t##*/}
    [ "$1" = "$top" ] && [ "$tid" != "$top" ] && echo "t $tid"
    for c in $(cat $t/children 2>/dev/null); do echo "p $c"; walk $c; done
  done
}
for i in $(seq 600); do [ -s PIDFILE ] && break; sleep 0.1; done
top=$(cat PIDFILE 2>/dev/null)
[ -n "$top" ] || exit 0
while [ -d /proc/$top ]; do walk $top; echo -; sleep INTERVAL; done
"""


class WorkerWatch(threading.Thread):
    """Which processes (or, without any, which threads) consumer.py runs its consumers in, seen
    every WATCH_INTERVAL: rounds() says whether one set of workers ended and another started
    after it, as round 1 ending and round 2 starting do."""

    def __init__(self, program, container=None):
        super().__init__(daemon=True, name="worker-watch")
        self.program = program
        self.container = container
        self.halt = threading.Event()
        self.snapshots = []         # [(frozenset of pids, frozenset of thread ids)]

    def run(self):
        if self.container is None:
            while not self.halt.is_set() and self.program.running():
                self.snapshots.append(native_workers(self.program.pid))
                time.sleep(WATCH_INTERVAL)
            return
        script = WALK_SCRIPT.replace("PIDFILE", self.program.pid_file).replace(
            "INTERVAL", str(WATCH_INTERVAL))
        watcher = subprocess.Popen(["docker", "exec", self.container.name, "sh", "-c", script],
                                   stdout=subprocess.PIPE, text=True)
        pids, tids = set(), set()
        try:
            for line in watcher.stdout:
                if self.halt.is_set():
                    break
                kind, _, number = line.strip().partition(" ")
                if kind == "-":
                    self.snapshots.append((frozenset(pids), frozenset(tids)))
                    pids, tids = set(), set()
                elif kind == "p":
                    pids.add(number)
                elif kind == "t":
                    tids.add(number)
        finally:
            watcher.kill()
            watcher.wait()

    def stop(self):
        self.halt.set()
        self.join(timeout=10)

    def workers(self):
        """[set of worker ids per look]: the processes under consumer.py, or its threads when
        it never started a process."""
        use_processes = any(pids for pids, _ in self.snapshots)
        return [pids if use_processes else tids for pids, tids in self.snapshots]

    def rounds(self):
        """True once a worker seen earlier has ended and a worker not seen before has started
        after that: the first round's consumers stopped and the next round's took over."""
        seen, ended = set(), False
        for workers in self.workers():
            if seen - workers:
                ended = True
            if ended and workers - seen:
                return True
            seen |= workers
        return False

    def description(self):
        kind = "processes" if any(pids for pids, _ in self.snapshots) else "threads"
        return kind, len(set().union(*self.workers())) if self.snapshots else 0


def native_workers(pid):
    """(pids of every process under `pid`, ids of `pid`'s threads but its main one)."""
    pids, tids = set(), set()
    pending = [pid]
    while pending:
        current = pending.pop()
        for task in _listdir(f"/proc/{current}/task"):
            if current == pid and int(task) != pid:
                tids.add(task)
            try:
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
            except OSError:
                continue
            pids.update(children)
            pending.extend(int(child) for child in children)
    return frozenset(pids), frozenset(tids)


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []

