"""Fixtures: a real Kafka broker started through the project's launcher, and the programs of
files/ run as real processes against it (tools/harness.py). Shared helpers: tests/helpers.py.

The broker listens on localhost:9092 unless KAFKA_BOOTSTRAP names another port; the launcher
then keeps that broker's data in broker/.run-PORT, apart from the default one. `make test` runs
the tests in two processes (pytest-xdist): each has a broker of its own, the second one
WORKER_PORT_STEP ports above the first, since every test may recreate the topic.
"""

import os

import pytest

from helpers import FILES, current_topic_id, total_messages, wait_for_new_topic, wait_until
from tools import harness, p7check

WORKER_PORT_STEP = 200


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ... under xdist
    if worker != "gw0":
        port = int(p7check.bootstrap().rsplit(":", 1)[1]) + WORKER_PORT_STEP * int(worker[2:])
        os.environ["KAFKA_BOOTSTRAP"] = f"localhost:{port}"  # the launcher and p7check read it


@pytest.fixture(scope="session")
def broker():
    """A real broker through broker/launcher.py (which takes its port from KAFKA_BOOTSTRAP);
    stopped at the end only if we started it."""
    with harness.local_broker() as bootstrap:
        yield bootstrap


@pytest.fixture
def run_program(broker, tmp_path):
    """run_program("producer.py", "--seed", 1, delay=0) starts a program of files/ (cwd and logs
    in the test's tmp_path); all are killed at the end of the test. `delay` sets
    WEATHER_DELAY_SEC; `folder` runs the program from another folder than files/. Neither of
    the speed-up variables is passed on from the tests' own environment."""
    started = []

    def start(name, *args, delay=None, env=None, folder=FILES):
        full_env = dict(os.environ, KAFKA_BOOTSTRAP=broker, PYTHONUNBUFFERED="1")
        for variable in ("WEATHER_DELAY_SEC", "AUTOGRADER_DELAY_OVERRIDE_VAL"):
            full_env.pop(variable, None)
        if delay is not None:
            full_env["WEATHER_DELAY_SEC"] = str(delay)
        full_env.update(env or {})
        program = harness.Program(folder / name, args, tmp_path, env=full_env, cwd=tmp_path)
        started.append(program)
        return program

    yield start
    for program in started:
        program.kill()


@pytest.fixture
def start_producer(run_program):
    """start_producer(seed=7, delay=0) starts producer.py and returns it once it has recreated
    the topic (a new topic id with a leader for every partition)."""

    def start(seed=None, delay=0):
        old_topic = current_topic_id()
        seed_args = () if seed is None else ("--seed", seed)
        producer = run_program("producer.py", *seed_args, delay=delay)
        wait_for_new_topic(producer, old_topic)
        return producer

    return start


@pytest.fixture
def produce(start_producer):
    """produce(n) recreates the topic and fills it with at least n messages from producer.py,
    then stops the producer cleanly. Returns the end offsets per partition."""

    def fill(count, delay=0, seed=7):
        producer = start_producer(seed, delay)
        wait_until(lambda: total_messages() >= count, 120, f"{count} messages in the topic")
        assert producer.stop() == 0, producer.stderr
        return p7check.end_offsets()

    return fill
