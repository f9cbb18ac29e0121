"""Shared fixtures: a real Kafka broker started through the project's launcher, and helpers to
run the programs in files/ as real processes against it.

The broker listens on localhost:9092 unless KAFKA_BOOTSTRAP names another port; the launcher
then keeps that broker's data in broker/.run-PORT, apart from the default one.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FILES = ROOT / "files"
LAUNCHER = ROOT / "broker" / "launcher.py"
sys.path.insert(0, str(ROOT / "tools"))

import p7check  # noqa: E402  (needs the path above)

wait_until = p7check.wait_until


def broker_port():
    return int(p7check.bootstrap().rsplit(":", 1)[1])


def launcher(*args, env=None, timeout=300):
    return subprocess.run([sys.executable, str(LAUNCHER), *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def broker():
    """A real broker through broker/launcher.py (which takes its port from KAFKA_BOOTSTRAP);
    stopped at the end only if we started it."""
    already_up = launcher("status").returncode == 0
    started = launcher("start")
    assert started.returncode == 0, started.stdout + started.stderr
    yield f"localhost:{broker_port()}"
    if not already_up:
        launcher("stop")


class Program:
    """One program of files/ running as a real process, its output captured in files."""

    def __init__(self, name, args, env, workdir):
        self.name = name
        self.stdout_path = workdir / f"{name}-{time.monotonic_ns()}.out"
        self.stderr_path = self.stdout_path.with_suffix(".err")
        with open(self.stdout_path, "w") as out, open(self.stderr_path, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, str(FILES / name), *map(str, args)],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=workdir)

    @property
    def stdout(self):
        return self.stdout_path.read_text()

    @property
    def stderr(self):
        return self.stderr_path.read_text()

    def running(self):
        return self.process.poll() is None

    def wait(self, timeout=60):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"{self.name} did not exit within {timeout} s:\n{self.stderr}")

    def stop(self, signum=signal.SIGTERM, timeout=60):
        """Ask for a clean stop and return the exit code."""
        if self.running():
            self.process.send_signal(signum)
        return self.wait(timeout)

    def kill(self):
        if self.running():
            self.process.kill()
        self.process.wait()


@pytest.fixture
def run_program(broker, tmp_path):
    """run_program("producer.py", "--seed", 1, delay=0) starts a program; all are killed at the
    end of the test. `delay` sets WEATHER_DELAY_SEC."""
    started = []

    def start(name, *args, delay=None, env=None):
        full_env = dict(os.environ, KAFKA_BOOTSTRAP=broker, PYTHONUNBUFFERED="1")
        if delay is not None:
            full_env["WEATHER_DELAY_SEC"] = str(delay)
        full_env.update(env or {})
        program = Program(name, args, full_env, tmp_path)
        started.append(program)
        return program

    yield start
    for program in started:
        program.kill()


def total_messages():
    return sum(p7check.end_offsets().values())


@pytest.fixture
def produce(run_program):
    """produce(n) recreates the topic and fills it with at least n messages from producer.py,
    then stops the producer cleanly. Returns the end offsets per partition."""

    def fill(count, delay=0, seed=7):
        producer = run_program("producer.py", "--seed", seed, delay=delay)
        wait_until(lambda: "Topics:" in producer.stdout or not producer.running(), 60,
                   "the producer to recreate the topic")
        assert producer.running(), producer.stderr
        wait_until(lambda: total_messages() >= count, 120, f"{count} messages in the topic")
        assert producer.stop() == 0, producer.stderr
        return p7check.end_offsets()

    return fill


def assert_one_clean_sentence(stderr):
    """Bad input is reported as one readable line: no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert lines, "nothing was reported on stderr"
    return lines[-1]


def assert_checkpoint_refused(run_program, folder, complaint, content):
    """consumer.py 1 refuses partition-1.json holding `content` in one sentence naming it and
    the complaint, and leaves it as it was."""
    path = folder / "partition-1.json"
    path.write_text(content)
    consumer = run_program("consumer.py", "1", "--dir", folder)
    assert consumer.wait(timeout=60) == 1
    line = assert_one_clean_sentence(consumer.stderr)
    assert complaint in line and str(path) in line
    assert path.read_text() == content
