"""Running the project's programs as real processes, and the broker they talk to.

One process harness for the tests, autograde.py, the benchmarks and `make run`:
- Program: a python script as a process in a session of its own, stdout and stderr in log files.
  stop() sends SIGTERM to the program (it passes the stop on to the workers it forked) and waits;
  a program still there at the deadline is killed with its whole process group and
  ProgramTimeout is raised, the one timeout error. kill() is SIGKILL to the group at once.
  With an output_limit, each stream goes through a pipe that a pump thread drains into its log:
  the first half of the limit as it comes, then only the last half, after a line saying how
  many bytes were cut in between. The program is never stopped or slowed for what it prints,
  the log and the memory kept for a stream stay about the limit's size, and wait(), stop() and
  kill() give the pumps at most OUTPUT_DRAIN_TIMEOUT (a daemon the program left behind may hold
  a pipe open: its log then has the head, and the tail once that daemon is gone).
- DockerProgram: the same for `docker exec CONTAINER python3 /files/NAME`, remembering the pid
  inside so that signals reach it (the docker CLI does not pass them on to an exec'd process).
- Container: one `docker run` of the p7 image, for the grader hardened and without a network
  (its broker then reached through a tools/relay.py Relay); build_image() says why a build failed.
- LocalBroker and LocalCluster: a broker or a three-node cluster of our own (broker/launcher.py
  on free ports, in a temporary folder), to start, kill -9, stop and restart; closing one (the
  end of its `with` block, whatever happened in it) leaves no JVM and no folder behind.
- local_broker(): the broker at KAFKA_BOOTSTRAP as `make broker` runs it, reused or started
  (through LocalBroker) and then stopped.
- use_bootstrap(): KAFKA_BOOTSTRAP set for a block, for p7check and the launcher.
- topic_id() and wait_for_recreated_topic(): a recreated topic is told apart by its id.

Standard library only at import time (autograde.py imports it before it knows whether the
project's packages are there); kafka-python is imported where a function needs it.
"""

import atexit
import base64
import collections
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "files"
LAUNCHER = ROOT / "broker" / "launcher.py"

STOP_TIMEOUT = 45               # producer.py may wait 30 s for an absent broker's acks
PROGRAM_TIMEOUT = 60
BROKER_START_TIMEOUT = 600      # the first start may fetch Kafka from Maven Central
KILL_TIMEOUT = 30               # a JVM is gone this long after SIGKILL, however busy the machine
TOPIC_TIMEOUT = 60
DOCKER_TIMEOUT = 120            # one docker command other than build
BUILD_TIMEOUT = 1800            # a first build downloads a JRE, Maven, Kafka's jars, numpy...
BUILD_ERROR_LINES = 12
LOG_TAIL_LINES = 15
OUTPUT_CHUNK = 1024 * 1024      # one read of a program's output pipe
OUTPUT_DRAIN_TIMEOUT = 2        # after a program's exit, for the pumps to reach end of stream


class ProgramTimeout(Exception):
    """A program did not exit in time; it was killed with everything it started."""


class DockerError(Exception):
    """Docker could not do what we asked; the message says what and why, in a sentence or
    two followed by the lines that show it."""


def free_port():
    """A TCP port nothing listens on right now (in this network namespace)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_suffix():
    return uuid.uuid4().hex[:8]


def wait_until(condition, timeout, what, interval=0.1):
    """Poll `condition` until it returns something truthy; AssertionError naming `what` at the
    deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# ---------------------------------------------------------------- programs

class Program:
    """A python script running as a real process, its output captured in log files.

    log_name: the log files' stem (default: unique per start, so restarts keep their logs).
    python: the interpreter that runs the script (default: this one, sys.executable).
    sandbox: a grader.sandbox.Sandbox to run it in (its uid, limits and environment: `env`
    is then only what is passed on besides its fixed part).
    output_limit: bytes of each stream kept in its log, its first and last half (see
    OutputPump); None: the log files are the program's stdout and stderr themselves."""

    def __init__(self, script, args=(), log_dir=".", env=None, cwd=None, log_name=None,
                 python=None, sandbox=None, output_limit=None):
        self._name_logs(Path(script).name, args, log_dir, log_name)
        self._launch([str(python or sys.executable), str(script), *self.args], env=env, cwd=cwd,
                     sandbox=sandbox, output_limit=output_limit)

    def _name_logs(self, name, args, log_dir, log_name=None):
        self.name = name
        self.args = [str(a) for a in args]
        stem = log_name or f"{Path(name).stem}-{time.monotonic_ns()}"
        self.stdout_path = Path(log_dir) / f"{stem}.out"
        self.stderr_path = Path(log_dir) / f"{stem}.err"
        self.process = None
        self._pumps = []            # with an output limit: the OutputPump of each stream
        self._drain_deadline = None

    def _launch(self, argv, env=None, cwd=None, sandbox=None, output_limit=None):
        # A session of its own: a terminal's Ctrl-C reaches only whoever started it, and a
        # kill can reach every process it forks (consumer.py's workers).
        kwargs = {"env": env, "start_new_session": True}
        if sandbox is not None:  # the same pid: the sandbox's bootstrap execs the program
            kwargs = sandbox.popen_kwargs(sandbox.environment(env, python=argv[0]))
            argv = sandbox.argv(argv)
        kwargs.update(stdin=subprocess.DEVNULL, cwd=cwd)
        if output_limit is None:
            with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
                self.process = subprocess.Popen(argv, stdout=out, stderr=err, **kwargs)
        else:
            self._launch_with_pumps(argv, output_limit, kwargs)

    def _launch_with_pumps(self, argv, output_limit, popen_kwargs):
        pumps = []
        try:
            for path in (self.stdout_path, self.stderr_path):
                pumps.append(OutputPump(path, output_limit))
            out, err = pumps
            self.process = subprocess.Popen(argv, stdout=out.write_fd, stderr=err.write_fd,
                                            **popen_kwargs)
        except BaseException:
            for pump in pumps:
                pump.abandon()
            raise
        for pump in pumps:
            # The child has its own copy: end of stream comes once it, and whatever it
            # started, have closed theirs; it never would while we held ours.
            pump.close_write_end()
            pump.start()
        self._pumps = pumps

    def _drain_output(self):
        """Once the program has exited: let the pumps copy what is left in the pipes into the
        logs, waiting OUTPUT_DRAIN_TIMEOUT at most over the program's whole life. A pipe held
        open by a process the program left behind keeps its pump running after that."""
        if self._drain_deadline is None:
            self._drain_deadline = time.monotonic() + OUTPUT_DRAIN_TIMEOUT
        for pump in self._pumps:
            pump.join(max(0.0, self._drain_deadline - time.monotonic()))

    def _logs_settled(self):
        """Called before a log is read: once the program has exited, its last words are in it."""
        if self._pumps and self.process.poll() is not None:
            self._drain_output()

    @property
    def pid(self):
        return self.process.pid

    @property
    def stdout(self):
        self._logs_settled()
        return _read(self.stdout_path)

    @property
    def stderr(self):
        self._logs_settled()
        return _read(self.stderr_path)

    def tail(self, lines=3, separator=" | "):
        """The last lines of stderr, for a one-line report."""
        text = separator.join(self.stderr.strip().splitlines()[-lines:])
        return text or "(nothing on stderr)"

    def describe(self):
        return " ".join([self.name] + self.args)

    def running(self):
        return self.process.poll() is None

    @property
    def returncode(self):
        return self.process.poll()

    def wait(self, timeout=PROGRAM_TIMEOUT):
        """The exit code; ProgramTimeout (after killing it) when it did not exit in time."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise ProgramTimeout(f"`{self.describe()}` did not exit within {timeout} s; "
                                 f"stderr ends: {self.tail()}") from None
        self._drain_output()
        return code

    def stop(self, signum=signal.SIGTERM, timeout=STOP_TIMEOUT):
        """Ask for a clean stop (SIGTERM, as `docker stop` or kill would) and return the exit
        code; ProgramTimeout when it ignored the request."""
        if self.running():
            self.signal(signum)
        return self.wait(timeout)

    def kill(self):
        """SIGKILL to the program and every process it started."""
        if self.process is None:
            return
        if self.running():
            self.signal(signal.SIGKILL)
        self._reap()

    def _reap(self):
        """Wait for the killed process (SIGKILL to it alone if it is still there), then for
        its output."""
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._drain_output()

    def signal(self, signum):
        try:
            if signum == signal.SIGKILL:
                os.killpg(self.process.pid, signum)
            else:
                self.process.send_signal(signum)
        except ProcessLookupError:
            pass


def _read(path):
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _output_pipe():
    """(read end, write end) of a pipe for a program's output, of OUTPUT_CHUNK bytes where
    Linux allows it (its default pipe-max-size): fewer wake-ups for a program that prints a
    lot. The system's default size otherwise."""
    read_end, write_end = os.pipe()
    with contextlib.suppress(ImportError, AttributeError, OSError):
        import fcntl
        fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, OUTPUT_CHUNK)
    return read_end, write_end


class OutputPump(threading.Thread):
    """A pipe for one output stream of a program (write_fd, for Popen), drained into its log
    file by this thread, keeping the first and last half of `limit` bytes.

    The first half is written through as it comes (a log read while the program runs shows
    it); after that only the last half is kept, in memory, and the rest is counted and
    dropped. At end of stream the log gets a line saying how many bytes were cut, if any were,
    and then the kept tail. The pipe is read as fast as it fills, in chunks of up to
    OUTPUT_CHUNK, so the program never waits on us; memory stays under half the limit plus
    one chunk. A log that cannot be written (a full disk) loses what follows, but the pipe is
    still drained. A daemon thread: one whose pipe a leftover process holds open must not keep
    the interpreter from exiting."""

    def __init__(self, log_path, limit):
        super().__init__(daemon=True, name=f"output-pump {Path(log_path).name}")
        self.half = limit // 2
        self.head_room = self.half
        self.head_ends_a_line = True
        self.tail = BoundedTail(self.half)
        self.log_failed = False
        self.log = open(log_path, "wb")  # noqa: SIM115  (closed at end of stream, or abandon())
        try:
            self.read_fd, self.write_fd = _output_pipe()
        except BaseException:
            self.log.close()
            raise

    def close_write_end(self):
        os.close(self.write_fd)

    def abandon(self):
        """Close everything of a pump that will not start (the program did not)."""
        os.close(self.write_fd)
        os.close(self.read_fd)
        self.log.close()

    def run(self):
        try:
            while chunk := self._read():
                if self.head_room:
                    chunk = self._write_head(chunk)
                if chunk:
                    self.tail.add(chunk)
            self._write_tail()
        finally:
            with contextlib.suppress(OSError):
                self.log.close()
            os.close(self.read_fd)

    def _read(self):
        try:
            return os.read(self.read_fd, OUTPUT_CHUNK)
        except OSError:
            return b""  # the pipe is broken: as good as its end

    def _write_head(self, chunk):
        """Write what of `chunk` still fits in the head; return the rest."""
        head, rest = chunk[:self.head_room], chunk[self.head_room:]
        self._write(head)
        self.head_room -= len(head)
        self.head_ends_a_line = head.endswith(b"\n")
        return rest

    def _write_tail(self):
        chunks = self.tail.take()
        if self.tail.dropped:  # the notice on a line of its own
            start = b"" if self.head_ends_a_line else b"\n"
            self._write(start + cut_notice(self.tail.dropped, self.half).encode() + b"\n")
        for chunk in chunks:
            self._write(chunk)

    def _write(self, data):
        """Into the log, flushed (it may be read at any time)."""
        if self.log_failed:
            return
        try:
            self.log.write(data)
            self.log.flush()
        except OSError:
            self.log_failed = True


def cut_notice(cut_bytes, kept_each_end):
    """The line that stands in a capped log for the middle of the output."""
    return (f"[... {cut_bytes} bytes cut: the grader keeps the first and last "
            f"{_size_text(kept_each_end)} of a program's output ...]")


def _size_text(size):
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if size >= unit and size % unit == 0:
            return f"{size // unit} {name}"
    return f"{size} bytes"


class BoundedTail:
    """The last `size` bytes of a stream added chunk by chunk, and how many came before them
    (dropped). Whole chunks are dropped as soon as the newer ones hold `size` bytes, so what is
    kept stays under `size` plus one chunk; take() trims it to `size` exactly."""

    def __init__(self, size):
        self.size = size
        self.chunks = collections.deque()
        self.kept = 0
        self.dropped = 0

    def add(self, chunk):
        self.chunks.append(chunk)
        self.kept += len(chunk)
        while self.chunks and self.kept - len(self.chunks[0]) >= self.size:
            self._drop(len(self.chunks.popleft()))

    def take(self):
        """The kept bytes, at most `size`, as a list of chunks."""
        excess = self.kept - self.size
        if excess > 0:
            self.chunks[0] = self.chunks[0][excess:]
            self._drop(excess)
        return list(self.chunks)

    def _drop(self, count):
        self.kept -= count
        self.dropped += count


def stop_all(programs, timeout=STOP_TIMEOUT):
    """SIGTERM to each, one deadline for all, then SIGKILL to what is left. Returns the
    programs that had to be killed."""
    for program in programs:
        if program.running():
            program.signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    killed = []
    for program in programs:
        try:
            program.wait(max(0.0, deadline - time.monotonic()))
        except ProgramTimeout:
            killed.append(program)
    return killed


class DockerProgram(Program):
    """`docker exec CONTAINER python3 /files/NAME ...`, its pid kept in the container;
    output_limit as for Program (applied to what the docker client relays)."""

    def __init__(self, container, name, args, log_dir, env=None, user=None, output_limit=None):
        self._name_logs(name, args, log_dir)
        self.container = container
        # user: `docker exec --user` (the grader's "65534:65534", nobody); None: the image's
        # user (root in the p7 image). kill() and signal() exec their `kill` as the image's user.
        self.user = user
        self.pid_file = f"/tmp/{Path(log_dir).name}-{self.stdout_path.stem}.pid"
        env_args = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        user_args = [] if user is None else ["--user", user]
        self._launch(["docker", "exec", *user_args, *env_args, "-e", "PYTHONUNBUFFERED=1",
                      container.name,
                      "sh", "-c", f'echo $$ > {self.pid_file}; exec python3 "$@"', "sh",
                      f"/files/{name}", *self.args], output_limit=output_limit)

    def kill(self):
        """SIGKILL to the program and its workers inside the container, whether or not its
        `docker exec` client still runs (a client gone, or killed after a wait, leaves the
        program running in the container otherwise), and wait until it is gone there."""
        if self.process is None:
            return
        # Only the process the pid file names, and only while it still runs this program; gone
        # once its /proc entry is (or is a zombie), waited for up to 10 s.
        script = (f"pid=$(cat {self.pid_file} 2>/dev/null); [ -n \"$pid\" ] || exit 0; "
                  f"grep -q {shlex.quote(self.name)} /proc/$pid/cmdline 2>/dev/null || exit 0; "
                  "for c in $(cat /proc/$pid/task/*/children 2>/dev/null); do kill -9 $c; done; "
                  "kill -9 $pid; for i in $(seq 100); do "
                  "grep -qs '^State:[[:space:]]*[^Z]' /proc/$pid/status || exit 0; "
                  "sleep 0.1; done")
        try:
            subprocess.run(["docker", "exec", self.container.name, "sh", "-c", script],
                           capture_output=True, timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass  # the client is killed by _reap() all the same
        self._reap()

    def signal(self, signum):
        pid = f"$(cat {self.pid_file})"
        if signum == signal.SIGKILL:
            # The forked workers first (they would outlive their parent), then the program.
            script = (f"for c in $(cat /proc/{pid}/task/*/children 2>/dev/null); do "
                      f"kill -9 $c; done; kill -9 {pid}")
        else:
            script = f"kill -{int(signum)} {pid}"
        subprocess.run(["docker", "exec", self.container.name, "sh", "-c", script],
                       capture_output=True, timeout=STOP_TIMEOUT)


# ---------------------------------------------------------------- the broker and the topic

def launcher(*args, env=None, timeout=BROKER_START_TIMEOUT):
    """broker/launcher.py with these arguments (it takes its port from KAFKA_BOOTSTRAP)."""
    return subprocess.run([sys.executable, str(LAUNCHER), *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=timeout)


class BrokerError(RuntimeError):
    """broker/launcher.py could not start or stop a broker, or a node to kill was not running;
    the message says which, with the launcher's own words."""


def free_port_run(count):
    """The first of `count` consecutive free ports (a cluster's client and controller ports)."""
    for _attempt in range(50):
        first = free_port()
        ports = range(first, first + count)
        if ports[-1] < 65536 and all(_port_is_free(port) for port in ports):
            return first
    raise RuntimeError(f"found no {count} consecutive free ports")


def _port_is_free(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@contextlib.contextmanager
def use_bootstrap(bootstrap):
    """KAFKA_BOOTSTRAP=`bootstrap` in this process's environment for the block (p7check and the
    launcher read it there); the previous value, or its absence, comes back afterwards."""
    saved = os.environ.get("KAFKA_BOOTSTRAP")
    os.environ["KAFKA_BOOTSTRAP"] = bootstrap
    try:
        yield bootstrap
    finally:
        if saved is None:
            os.environ.pop("KAFKA_BOOTSTRAP", None)
        else:
            os.environ["KAFKA_BOOTSTRAP"] = saved


def _state(folder):
    """broker/launcher.py's view of one node's folder: its pid file, judged by the command line
    of the process it names (a stale pid file names no broker)."""
    from broker.launcher import State
    return State(folder)


class _LocalKafka:
    """What LocalBroker and LocalCluster share: their state folder, kill -9 of a node, and a
    cleanup that leaves no JVM behind.

    state_dir None: a new temporary folder, removed by close(). close() runs at the end of a
    `with` block whatever happened in it, and at interpreter exit for an instance never closed.
    """

    node_ids = (1,)
    prefix = "p7-kafka-"

    def __init__(self, state_dir=None, env=None):
        self._temporary = state_dir is None
        self.state_dir = Path(tempfile.mkdtemp(prefix=self.prefix) if state_dir is None
                              else state_dir)
        self.env = dict(os.environ if env is None else env)
        self._started_pids = set()  # (node id, pid): every JVM a start left running
        atexit.register(self.close)

    def node_dir(self, node_id):
        raise NotImplementedError

    def pid(self, node_id=1):
        """The pid of the node's JVM, None when it does not run."""
        return _state(self.node_dir(node_id)).pid()

    def _remember_pids(self):
        for node_id in self.node_ids:
            pid = self.pid(node_id)
            if pid is not None:
                self._started_pids.add((node_id, pid))

    def kill(self, node_id=None):
        """kill -9 of node `node_id` (None: of every node that runs), returning once it is gone;
        BrokerError when none of them was running."""
        wanted = self.node_ids if node_id is None else (node_id,)
        victims = [(n, pid) for n in wanted if (pid := self.pid(n)) is not None]
        if not victims:
            where = f"of the Kafka in {self.state_dir}"
            raise BrokerError(f"no node {where} is running" if node_id is None
                              else f"node {node_id} {where} is not running")
        for n, pid in victims:
            _kill_group(pid)
        for n, pid in victims:
            # A dying process shows no command line before it has exited: gone means a zombie
            # or no process at all.
            wait_until(lambda: self.pid(n) is None and not _still_running(pid), KILL_TIMEOUT,
                       f"the killed Kafka node {n} (pid {pid}) to be gone")

    def restart(self, timeout=BROKER_START_TIMEOUT):
        """A clean stop, then a start: the same ports, folders and data."""
        self.stop()
        return self.start(timeout)

    def close(self):
        """Stop whatever runs from our folders, kill -9 whatever is still left of what we
        started, remove the temporary folder. Safe to call more than once."""
        atexit.unregister(self.close)
        try:
            if any(self.pid(n) is not None for n in self.node_ids):
                self.stop()
        except (BrokerError, subprocess.TimeoutExpired):
            pass  # what is left is killed below
        finally:
            leftovers = self._started_pids | {(n, pid) for n in self.node_ids
                                              if (pid := self.pid(n)) is not None}
            for node_id, pid in leftovers:
                if _state(self.node_dir(node_id)).is_our_broker(pid):
                    _kill_group(pid)
                    wait_until(lambda: not _state(self.node_dir(node_id)).is_our_broker(pid),
                               KILL_TIMEOUT, f"Kafka node {node_id} (pid {pid}) to be gone")
            self._started_pids.clear()
            if self._temporary:
                shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info):
        self.close()


def _still_running(pid):
    """Whether `pid` is a process that has not exited (a zombie has)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _kill_group(pid):
    """SIGKILL to a JVM the launcher started (the leader of a session of its own) and to
    anything it started."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class LocalBroker(_LocalKafka):
    """broker/launcher.py's single broker, apart from the user's: on free ports unless given,
    its data, logs and pid file in `state_dir`. start() returns once it answers (the launcher
    reuses it when it already runs); kill() is kill -9; a start after a kill brings it back with
    its data on the same ports. As a context manager: started on entry, closed on exit."""

    prefix = "p7-broker-"

    def __init__(self, state_dir=None, port=None, controller_port=None, env=None):
        if port is None:
            port = free_port_run(2)
            controller_port = controller_port or port + 1
        self.port = port
        self.controller_port = controller_port  # None: the launcher's default, port + 1
        self.bootstrap = f"localhost:{port}"
        super().__init__(state_dir, env)

    def node_dir(self, node_id=1):
        return self.state_dir

    def launcher(self, command, *args, env=None, timeout=BROKER_START_TIMEOUT):
        """broker/launcher.py COMMAND on this broker's folder (for start and status: on its
        ports too), whatever the outcome; the launcher's own tests look at that."""
        ports = []
        if command in ("start", "status"):
            ports = ["--port", self.port]
        if command == "start" and self.controller_port is not None:
            ports += ["--controller-port", self.controller_port]
        return launcher("--state-dir", self.state_dir, command, *ports, *args,
                        env=self.env if env is None else env, timeout=timeout)

    def start(self, timeout=BROKER_START_TIMEOUT):
        try:
            started = self.launcher("start", timeout=timeout)
        finally:
            self._remember_pids()
        if started.returncode != 0:
            raise BrokerError(f"broker/launcher.py could not start the broker on "
                              f"{self.bootstrap}: {(started.stderr or started.stdout).strip()}")
        return started.stdout

    def stop(self):
        stopped = self.launcher("stop")
        if stopped.returncode != 0:
            raise BrokerError(f"broker/launcher.py could not stop the broker on {self.bootstrap}: "
                              f"{(stopped.stderr or stopped.stdout).strip()}")


class LocalCluster(_LocalKafka):
    """broker/launcher.py's three-node cluster, apart from the user's: on free ports unless
    given (three client ports, then the three controller ports the launcher takes after them),
    node N's folder `state_dir`/node-N. start() is `make cluster`, as a user does: it starts
    whichever nodes are not running (so it also brings back a killed one, with its data) and
    returns once all three answer. kill(N) is kill -9 of node N. As a context manager: started
    on entry, closed on exit."""

    node_ids = (1, 2, 3)
    prefix = "p7-cluster-"

    def __init__(self, state_dir=None, ports=None, env=None):
        if ports is None:
            first = free_port_run(6)
            ports = [first, first + 1, first + 2]
        self.ports = list(ports)
        self.bootstrap = ",".join(f"localhost:{port}" for port in self.ports)
        super().__init__(state_dir, env)

    def node_dir(self, node_id):
        return self.state_dir / f"node-{node_id}"

    def start(self, timeout=BROKER_START_TIMEOUT):
        try:
            started = subprocess.run(
                ["make", "-s", "cluster", f"CLUSTER_PORTS={','.join(map(str, self.ports))}",
                 f"CLUSTER_DIR={self.state_dir}", f"PYTHON={sys.executable}"],
                cwd=ROOT, capture_output=True, text=True, env=self.env, timeout=timeout)
        finally:
            self._remember_pids()
        if started.returncode != 0:
            raise BrokerError("make cluster could not start the cluster at "
                              f"{self.bootstrap}: {(started.stderr or started.stdout).strip()}")
        return started.stdout

    def stop(self):
        stopped = launcher("--state-dir", self.state_dir, "cluster-stop", env=self.env)
        if stopped.returncode != 0:
            raise BrokerError(f"broker/launcher.py could not stop the cluster at "
                              f"{self.bootstrap}: {(stopped.stderr or stopped.stdout).strip()}")


@contextlib.contextmanager
def local_broker():
    """The broker for KAFKA_BOOTSTRAP as `make broker` runs it (the launcher's own port and
    folder for it): reused, and left running, when one already answers there; else started and
    stopped at the end, also when the block fails. Yields the bootstrap."""
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
    if launcher("status").returncode == 0:
        yield bootstrap
        return
    from broker import launcher as launcher_module
    try:
        defaults = launcher_module.parse_args(["start"])  # the port and folder `start` takes
    except launcher_module.LauncherError as err:  # a KAFKA_BOOTSTRAP it cannot serve
        raise BrokerError(str(err)) from None
    with LocalBroker(defaults.state_dir, defaults.port, defaults.controller_port):
        yield bootstrap


def topic_id(admin, topic):
    """The topic's id (a recreated topic gets a new one); None while it does not exist."""
    from kafka.errors import KafkaError
    try:
        (described,) = admin.describe_topics([topic])
    except KafkaError:
        return None
    if described.get("error_code"):
        return None
    return described.get("topic_id")


def partition_states(admin, topic):
    """{partition: (leader, replicas, in-sync replicas)} of `topic`; {} while the cluster
    cannot say (a node just died, the topic is being recreated)."""
    from kafka.errors import KafkaError
    try:
        (described,) = admin.describe_topics([topic])
    except KafkaError:
        return {}
    return {p["partition_index"]: (p["leader_id"], p["replica_nodes"], p["isr_nodes"])
            for p in described.get("partitions") or []}


def wait_for_recreated_topic(admin, topic, previous_id, partitions, timeout=TOPIC_TIMEOUT,
                             still_going=lambda: True):
    """Wait until `topic` exists under an id other than `previous_id` (None: any) with a leader
    for each of its `partitions`; returns the new id. `still_going()` false (the program that
    recreates it died) ends the wait early with AssertionError."""
    from kafka.errors import KafkaError

    def recreated():
        if not still_going():
            raise AssertionError(f"gave up waiting for {topic}: its producer stopped")
        new_id = topic_id(admin, topic)
        if new_id is None or new_id == previous_id:
            return None
        try:
            (described,) = admin.describe_topics([topic])
        except KafkaError:
            return None
        leaders = [p.get("leader_id", -1) for p in described.get("partitions") or []]
        return new_id if len(leaders) == partitions and min(leaders) >= 0 else None

    return wait_until(recreated, timeout, f"{topic} to be recreated", interval=0.1)


# ---------------------------------------------------------------- docker

def docker(*args, timeout=DOCKER_TIMEOUT):
    """Run one docker command; DockerError with its own words when it fails."""
    try:
        done = subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=timeout)
    except FileNotFoundError:
        raise DockerError("the docker command is not installed") from None
    except subprocess.TimeoutExpired:
        raise DockerError(f"`docker {' '.join(args)}` did not finish within {timeout} s") from None
    if done.returncode != 0:
        raise DockerError(f"`docker {' '.join(args)}` failed: "
                          + (done.stderr or done.stdout).strip())
    return done.stdout.strip()


def engine_answers():
    try:
        docker("info", timeout=60)
    except DockerError:
        return False
    return True


def build_image(context, tag, build_args=None):
    """`docker build CONTEXT -t TAG`, with `--build-arg NAME=VALUE` for each of build_args (a
    dict); a failed build raises DockerError naming the failing step and its error lines.
    --force-rm: a failed step leaves no stopped container behind."""
    arg_options = [option for name, value in (build_args or {}).items()
                   for option in ("--build-arg", f"{name}={value}")]
    try:
        done = subprocess.run(["docker", "build", "--force-rm", *arg_options, "-t", tag,
                               str(context)], capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise DockerError(f"docker build did not finish within {BUILD_TIMEOUT} s") from None
    if done.returncode != 0:
        # stdout first: the steps and their output; then stderr: the builder's own error.
        raise DockerError("docker build failed: " + build_failure(done.stdout + "\n"
                                                                  + done.stderr))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_LEGACY_STEP = re.compile(r"^Step \d+/\d+ : ")
_LEGACY_NOISE = re.compile(r"^( ---> |Removing intermediate container|\s*$)")


def build_failure(output):
    """The failing step and its last error lines, from the output of either builder.

    The legacy builder prints `Step N/M : INSTRUCTION`, the step's output, then `The command
    ... returned a non-zero code: N`; BuildKit prints a block between `------` lines that starts
    with ` > [stage N/M] INSTRUCTION:` and ends with `ERROR: failed to solve: ...`. Colours and
    the CLI's notice that the legacy builder is deprecated are left out."""
    lines = _ANSI.sub("", output).splitlines()
    notice = next((i for i, line in enumerate(lines) if line.startswith("DEPRECATED:")), None)
    if notice is not None:  # the notice's lines are indented; it ends at the first line that isn't
        end = next((i for i in range(notice + 1, len(lines))
                    if not lines[i].startswith(" ")), len(lines))
        del lines[notice:end]
    buildkit = [i for i, line in enumerate(lines) if line.startswith(" > [")]
    if buildkit:
        start = buildkit[-1]
        block = [line for line in lines[start + 1:] if line.strip() != "------"]
        end = next((i for i, line in enumerate(block) if line.startswith("Dockerfile:")),
                   len(block))
        errors = block[:end][-BUILD_ERROR_LINES:]
        final = [line for line in lines if line.startswith("ERROR:")][-1:]
        return "\n".join([f"step {lines[start][3:].rstrip(':')}", *errors, *final])
    steps = [i for i, line in enumerate(lines) if _LEGACY_STEP.match(line)]
    if steps:
        start = steps[-1]
        step_output = [line for line in lines[start + 1:] if not _LEGACY_NOISE.match(line)]
        return "\n".join([lines[start].replace(" : ", ": ", 1), *step_output[-BUILD_ERROR_LINES:]])
    meaningful = [line for line in lines if not _LEGACY_NOISE.match(line)]
    return "\n".join(meaningful[-BUILD_ERROR_LINES:]) or "(docker printed nothing)"


# `docker exec --user` of the grader's scripts and the student's programs in its containers.
NOBODY_ID = 65534
NOBODY = f"{NOBODY_ID}:{NOBODY_ID}"

# The grader's containers (Container(hardened=True)): no privilege gained by exec (setuid
# binaries), a bounded number of processes and memory (the broker's JVM takes its 512 MB heap and
# some more; the programs share the rest), and only the capabilities the broker as root and
# `docker exec --user` need: KILL (root's kill of the programs of another uid), CHOWN,
# DAC_OVERRIDE, FOWNER (root writing in folders and files it does not own), SETUID and SETGID
# (exec switching to the user). --init: an init of Docker's as PID 1 reaps whatever the programs
# orphan, so that a fork bomb's processes never linger as zombies that keep the container from
# being removed.
HARDENED_RUN_FLAGS = ["--init", "--security-opt", "no-new-privileges", "--pids-limit", "1024",
                      "--memory", "4g", "--cap-drop", "ALL", "--cap-add", "KILL",
                      "--cap-add", "CHOWN", "--cap-add", "DAC_OVERRIDE", "--cap-add", "FOWNER",
                      "--cap-add", "SETUID", "--cap-add", "SETGID"]

# Container(read_only=True), for an image whose broker keeps its state where P7_BROKER_STATE
# says (this project's Dockerfile, the course environment's): its root is read-only (the
# image's Python, packages, JRE and Kafka stay as built, whatever runs in it); besides the files folder (the bind mount) only two tmpfs mounts are writable,
# both in the container's memory and so within --memory: /tmp (1777, exec allowed: Kafka's
# snappy and zstd codecs load native libraries they unpack there, and fail on a noexec /tmp; the
# programs may execute what they write to /files anyway) and the broker's state (root's alone,
# 0700: the programs, run as nobody, cannot touch the topic's files behind the broker's back),
# named by P7_BROKER_STATE whatever the image says. The only variables from the grader are the
# -e options given here and in run(): `docker run` passes on nothing of this process's
# environment.
BROKER_STATE = "/var/lib/p7-kafka"
READ_ONLY_ROOT_FLAGS = ["--read-only",
                        "--tmpfs", "/tmp:rw,exec,nosuid,nodev,size=512m,mode=1777",
                        "--tmpfs", f"{BROKER_STATE}:rw,noexec,nosuid,nodev,size=2g,mode=0700",
                        "-e", f"P7_BROKER_STATE={BROKER_STATE}"]

# Container(networked=False): no network but the container's own loopback, where its broker and
# programs meet; nothing in it reaches this machine, another container or anything beyond.
# This machine reaches the broker through dial_broker (a tools/relay.py Relay's far end), never
# through a published port. The hostname resolves to the loopback: Java looks it up, and with no
# network there is no DNS to ask.
ISOLATED_HOSTNAME = "p7-isolated"
NO_NETWORK_FLAGS = ["--network", "none", "--hostname", ISOLATED_HOSTNAME,
                    "--add-host", f"{ISOLATED_HOSTNAME}:127.0.0.1"]

# Container.run_as with sources: stdin's {name: base64} written into a fresh folder, argv run
# there (os.execvp: its exit code and output are argv's own).
UNPACK_AND_RUN = (
    "import base64, json, os, sys, tempfile\n"
    "folder = tempfile.mkdtemp(prefix='p7-grader-')\n"
    "for name, data in json.load(sys.stdin).items():\n"
    "    with open(os.path.join(folder, os.path.basename(name)), 'wb') as out:\n"
    "        out.write(base64.b64decode(data))\n"
    "os.chdir(folder)\n"
    "sys.stdin.close()\n"
    "os.execvp(sys.argv[1], sys.argv[1:])\n")


def _memory_peak_files(pid, full_id, cgroup_root="/sys/fs/cgroup"):
    """Where a container's peak memory may be read, most likely first: under the memory cgroup
    that its first process (`pid`, 0 once it stopped) is in, whatever parent the engine gives
    its containers (the path must name the container's id: a pid reused by another process
    does not count), then where Docker's cgroupfs and systemd drivers put it by default."""
    found = []
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines() if pid > 0 else ():
            _hierarchy, controllers, path = line.split(":", 2)
            if full_id not in path:
                continue
            if "memory" in controllers.split(","):
                found.append(f"{cgroup_root}/memory{path}/memory.max_usage_in_bytes")
            elif controllers == "":
                found += [f"{cgroup_root}{path}/memory.peak",
                          f"{cgroup_root}/unified{path}/memory.peak"]
    return found + [f"{cgroup_root}/memory/docker/{full_id}/memory.max_usage_in_bytes",
                    f"{cgroup_root}/system.slice/docker-{full_id}.scope/memory.peak",
                    f"{cgroup_root}/docker/{full_id}/memory.peak"]


class Container:
    """One container of the p7 image, with the files folder mounted as /files.

    files_dir None: no mount; the programs run from the image's own /files and write their
    outputs there (read them back with exec). broker_port: the port the broker inside listens on
    and advertises (it follows KAFKA_BOOTSTRAP, as the programs do); host_port publishes it on
    the host; also_published: more ports published as themselves (the dashboard's).
    hardened: the grader's limits (HARDENED_RUN_FLAGS); read_only: a read-only root
    (READ_ONLY_ROOT_FLAGS), for an image whose broker keeps its state where P7_BROKER_STATE
    says (a student's own image may write anywhere: its container layer is thrown away with
    it). networked False: no
    network at all (NO_NETWORK_FLAGS), so nothing can be published; the broker is reached
    through a relay whose far ends dial_broker opens."""

    def __init__(self, name, image, files_dir, broker_port=9092, host_port=None,
                 also_published=(), hardened=False, read_only=False, networked=True):
        if not networked and (host_port is not None or also_published):
            raise ValueError("a container without a network publishes no port")
        self.name = name
        self.image = image
        self.files_dir = files_dir
        self.broker_port = broker_port
        self.host_port = host_port
        self.also_published = also_published
        self.hardened = hardened
        self.read_only = read_only
        self.networked = networked

    def run(self):
        mount = [] if self.files_dir is None else ["-v", f"{self.files_dir}:/files"]
        args = ["run", "-d", *mount, f"--name={self.name}"]
        if self.hardened:
            args += HARDENED_RUN_FLAGS
        if self.read_only:
            args += READ_ONLY_ROOT_FLAGS
        if not self.networked:
            args += NO_NETWORK_FLAGS
        if self.host_port is not None:
            args += ["-p", f"{self.host_port}:{self.broker_port}"]
        for port in self.also_published:
            args += ["-p", f"{port}:{port}"]
        if self.broker_port != 9092:
            args += ["-e", f"KAFKA_BOOTSTRAP=localhost:{self.broker_port}"]
        docker(*args, self.image)
        return self

    def state(self):
        """(running, exit code) as docker inspect reports them; (False, None) when gone."""
        try:
            text = docker("inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", self.name)
        except DockerError:
            return False, None
        running, code = text.split()
        return running == "true", int(code)

    def logs_tail(self, lines=LOG_TAIL_LINES):
        done = subprocess.run(["docker", "logs", "--tail", str(lines), self.name],
                              capture_output=True, text=True, timeout=DOCKER_TIMEOUT)
        return (done.stdout + done.stderr).strip() or "(the container logged nothing)"

    def require_running(self):
        running, code = self.state()
        if not running:
            raise DockerError(f"container {self.name} is not running (exit code {code}); the "
                              f"last lines of `docker logs {self.name}`:\n{self.logs_tail()}")

    def exec(self, *command, timeout=DOCKER_TIMEOUT):
        return docker("exec", self.name, *command, timeout=timeout)

    def dial_broker(self):
        """A far end for a tools/relay.py Relay: one connection to the broker's port on the
        container's loopback, carried by `docker exec -i` of relay.STDIO_PUMP. It runs as root:
        the programs, which run as nobody, can neither signal nor trace it."""
        from tools import relay
        return relay.ProcessEnd(["docker", "exec", "-i", "--user", "0:0", self.name, "python3",
                                 "-I", "-S", "-c", relay.STDIO_PUMP, str(self.broker_port)])

    def peak_memory(self):
        """The most memory the container has used at once so far, in bytes, as its memory
        cgroup counts it (processes, page cache and tmpfs: what --memory limits): cgroup v1's
        memory.max_usage_in_bytes or v2's memory.peak. None when that cannot be read here: the
        container is not running (its cgroup goes when it stops), the engine runs on another
        machine or in a VM, or the kernel has no peak to give."""
        try:
            pid, full_id = docker("inspect", "-f", "{{.State.Pid}} {{.Id}}", self.name).split()
        except (DockerError, ValueError):
            return None
        for path in _memory_peak_files(int(pid), full_id):
            try:
                return int(Path(path).read_text().strip())
            except (OSError, ValueError):
                continue
        return None

    def program(self, name, args, log_dir, env=None, user=None, output_limit=None):
        return DockerProgram(self, name, args, log_dir, env, user=user, output_limit=output_limit)

    def run_as(self, user, argv, timeout, workdir=None, env=None, sources=None):
        """`docker exec --user USER` of `argv` (in `workdir`, with `env`): the finished
        subprocess.CompletedProcess (text). `sources` ({name: bytes}): argv runs instead in a
        fresh folder of the container's /tmp holding those files (written there as USER, the
        bytes sent on stdin), its working directory. On a timeout every process of USER in the
        container is killed (`kill -9 -1` as USER), then subprocess.TimeoutExpired is raised;
        DockerError when the container does not run."""
        options = ["--user", user] + (["-w", workdir] if workdir else [])
        options += [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
        stdin = None
        if sources is not None:
            options.append("-i")
            argv = ["python3", "-B", "-c", UNPACK_AND_RUN, *argv]
            stdin = json.dumps({name: base64.b64encode(data).decode()
                                for name, data in sources.items()})
        try:
            done = subprocess.run(["docker", "exec", *options, self.name, *argv], input=stdin,
                                  capture_output=True, text=True, timeout=timeout,
                                  stdin=None if stdin is not None else subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            subprocess.run(["docker", "exec", "--user", user, self.name, "sh", "-c",
                            "kill -9 -1"], capture_output=True, timeout=DOCKER_TIMEOUT)
            raise
        if done.returncode != 0 and not self.state()[0]:
            self.require_running()
        return done

    def stop(self):
        docker("stop", self.name, timeout=DOCKER_TIMEOUT + 60)

    def start(self):
        docker("start", self.name)

    def remove(self):
        """Remove the container, whatever its state; files it wrote into /files as root go
        first, while it can still remove them."""
        if self.state()[0]:
            subprocess.run(["docker", "exec", self.name, "sh", "-c",
                            "rm -rf /files/* /files/.[!.]*"], capture_output=True,
                           timeout=DOCKER_TIMEOUT)
        # A removal can fail while the container's processes are dying (a fork bomb's zombies):
        # asked again until it is gone.
        deadline = time.monotonic() + DOCKER_TIMEOUT
        while True:
            removed = subprocess.run(["docker", "rm", "-f", self.name], capture_output=True,
                                     text=True, timeout=DOCKER_TIMEOUT)
            if removed.returncode == 0 or "No such container" in removed.stderr \
                    or time.monotonic() > deadline:
                return
            time.sleep(1)
