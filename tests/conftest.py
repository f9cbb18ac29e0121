"""Fixtures: a real Kafka broker started through the project's launcher, and the programs of
files/ run as real processes against it (tools/harness.py). Shared helpers: tests/helpers.py.

The broker listens on localhost:9092 unless KAFKA_BOOTSTRAP names another port; the launcher
then keeps that broker's data in broker/.run-PORT, apart from the default one. `make test` runs
the tests in several processes (pytest-xdist): each has a broker of its own, worker gwN's
N * WORKER_PORT_STEP ports above the first, since every test may recreate the topic.

Every test has a tier (pytest.ini registers the markers); a module that breaks these rules fails
to collect, naming each test and its fault:
- unit: every test in tests/unit, marked here; none of them may ask for the session broker
  (the `broker` fixture, directly or through run_program, start_producer or produce).
- broker: the session broker at most. Outside tests/unit a tier must be written down (a
  `pytestmark` at the file's top, or a marker on the test): a new test that starts a broker of
  its own would otherwise land in `make test` unseen.
- chaos: brokers or clusters of its own, started, killed or fetched, and the long series of
  kills and stops that a one-off test of the same rule in the broker tier stands for in make
  test. chaos wins over broker, so a file marked broker may hold a chaos test marked on its own.
"""

import os
from pathlib import Path

import pytest

from helpers import (FILES, current_topic_id, free_port, http_get, total_messages,
                     wait_for_new_topic, wait_until)
from tools import harness, p7check

WORKER_PORT_STEP = 200
TIERS = ("unit", "broker", "chaos")
UNIT_FOLDER = Path(__file__).parent / "unit"


def pytest_configure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, ... under xdist
    if worker != "gw0":
        port = int(p7check.bootstrap().rsplit(":", 1)[1]) + WORKER_PORT_STEP * int(worker[2:])
        os.environ["KAFKA_BOOTSTRAP"] = f"localhost:{port}"  # the launcher and p7check read it


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """A module (or class) whose tests break the tier rules fails to collect, naming each test
    and its fault; the unit marker is given here, before -m selects by it."""
    report = yield
    if report.passed:
        items = [item for item in report.result if isinstance(item, pytest.Item)]
        problems = [problem for item in items for problem in tier_problems(item)]
        if problems:
            report.outcome = "failed"
            report.longrepr = "tests without a valid tier:\n  " + "\n  ".join(problems)
            report.result = []
    return report


def tier_problems(item):
    tiers = [name for name in TIERS if item.get_closest_marker(name)]
    if UNIT_FOLDER in item.path.parents:
        item.add_marker(pytest.mark.unit)
        if "broker" in item.fixturenames:
            yield (f"{item.nodeid}: a unit test asks for the session broker (the broker "
                   "fixture, or run_program, start_producer or produce)")
        others = [name for name in tiers if name != "unit"]
        if others:
            yield f"{item.nodeid}: marked {', '.join(others)}, but tests/unit holds unit tests only"
    elif "unit" in tiers:
        yield f"{item.nodeid}: marked unit outside tests/unit: move it there"
    elif not tiers:
        yield (f"{item.nodeid}: no tier: mark it broker or chaos (pytestmark at the file's top, "
               "or on the test), or move it to tests/unit")


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


@pytest.fixture
def dashboard_alone(tmp_path):
    """start(folder) runs files/dashboard.py on `folder` without a broker (it is told of one
    that nobody answers at): (program, port). Killed at the end of the test. For the unit tier
    (tests/unit/test_dashboard_server.py) and the browser's test of negative averages."""
    started = []

    def start(folder):
        port = free_port()
        env = dict(os.environ, KAFKA_BOOTSTRAP=f"localhost:{free_port()}", PYTHONUNBUFFERED="1")
        program = harness.Program(FILES / "dashboard.py", ["--port", port, "--dir", folder],
                                  tmp_path, env=env)
        started.append(program)
        wait_until(lambda: "serving http" in program.stdout or not program.running(), 30,
                   "the dashboard to listen")
        assert program.running(), program.stderr
        # Its worker threads start before it accepts a connection: once a page is answered
        # they all run, so a test may count the dashboard's threads from here on.
        assert http_get(f"http://localhost:{port}/")[0] == 200
        return program, port

    yield start
    for program in started:
        program.kill()
