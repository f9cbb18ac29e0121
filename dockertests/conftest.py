"""The Docker path, as users take it: `make docker-test` (not part of `make test`, which needs no
engine; .ci/run runs both).

The image is built from the repository's Dockerfile as it is, with the README's own command, and
the README's Docker section is gone through on a temporary copy of files/; a container without
any mount goes through the programs the image carries itself. Host-side checks
(tools/p7check.py) reach the broker through the port the container publishes, so on a machine
whose engine runs in a network namespace of its own (../shared/docker/engine.sh) this runs
inside it: `nsenter --net=/run/netns/dk make docker-test`.
"""

import ast
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from grader.session import OUTPUT_PATTERNS
from tools import harness, p7check
from tools.harness import ROOT

IMAGE = "p7"                      # the README's tag: `docker build . -t p7`
README_PORT = 9092                # the README's `-p 9092:9092`
DASHBOARD_PORT = 8544             # and `-p 8544:8544`
TIMEOUT = 120
WEATHER_DELAY_SEC = "0.002"     # about 500 days a second: decades within a test
PRODUCER_PATTERN = "/files/produce[r].py"   # [r]: the shell that looks must not match itself
DEBUG_LINES = 20
# What the image's /files must hold: every program and what they import or read.
PROGRAMS = ("producer.py", "consumer.py", "debug.py", "plot.py", "weather.py", "report_pb2.py",
            "report.proto", "dashboard.py", "p7common.py", "birthday.py")
# What it must not: the programs' outputs (the committed samples among them) and what a run
# leaves next to them (locks, temporary and set-aside files, bytecode).
LEFTOVER_PATTERNS = OUTPUT_PATTERNS + ("*.lock", "*.stale-*")


def copy_of_files(folder):
    """The programs of files/ without their committed sample outputs, as a user's fresh
    checkout would have them once the outputs were deleted."""
    copy = folder / "files"
    shutil.copytree(ROOT / "files", copy, ignore=shutil.ignore_patterns(*OUTPUT_PATTERNS))
    return copy


@pytest.fixture(scope="session")
def programs_at_build():
    """{program: sha256} of files/ as the image's build takes it (`image` builds right after), so
    that an edit made while the tests run is not taken for a stale image."""
    return {name: hashlib.sha256((ROOT / "files" / name).read_bytes()).hexdigest()
            for name in PROGRAMS}


@pytest.fixture(scope="session")
def image(programs_at_build):
    """`docker build . -t p7`, once per run."""
    harness.build_image(ROOT, IMAGE)
    return IMAGE


@pytest.fixture(scope="session")
def user_container(image, tmp_path_factory):
    """`docker run -d -p 9092:9092 -p 8544:8544 -v COPY:/files --name=UNIQUE p7`, removed at
    the end."""
    folder = tmp_path_factory.mktemp("readme")
    container = harness.Container(f"p7-docker-test-{harness.unique_suffix()}", image,
                                  copy_of_files(folder), host_port=README_PORT,
                                  also_published=(DASHBOARD_PORT,))
    yield from running(container, README_PORT)


def running(container, port):
    """Run `container` until the generator is closed, its broker answering on localhost:PORT
    for p7check (KAFKA_BOOTSTRAP set meanwhile, put back after); removed at the end."""
    saved = os.environ.get("KAFKA_BOOTSTRAP")
    os.environ["KAFKA_BOOTSTRAP"] = f"localhost:{port}"  # p7check reads it
    try:
        container.run()
        wait_for_broker(container)
        yield container
    finally:
        container.remove()
        if saved is None:
            os.environ.pop("KAFKA_BOOTSTRAP", None)
        else:
            os.environ["KAFKA_BOOTSTRAP"] = saved


def start_producer_in_background(container):
    """`docker exec -d p7 python3 /files/producer.py`, fast; returns once it sent 2000."""
    run("docker", "exec", "-d", "-e", f"WEATHER_DELAY_SEC={WEATHER_DELAY_SEC}",
        container.name, "python3", "/files/producer.py")
    p7check.wait_until(lambda: sum(p7check.end_offsets().values()) >= 2000, TIMEOUT,
                       "2000 messages from the producer in the background")
    assert producer_running(container)


def wait_for_broker(container, timeout=120):
    def answers():
        container.require_running()  # a container that died says so at once, with its log
        return broker_answers()
    p7check.wait_until(answers, timeout, f"the broker in {container.name}", interval=1)


def broker_answers():
    try:
        admin = KafkaAdminClient(bootstrap_servers=p7check.bootstrap().split(","),
                                 bootstrap_timeout_ms=2000, client_id="p7-docker-test")
    except KafkaError:
        return False
    admin.close()
    return True


def logs(tmp_path):
    folder = tmp_path / "logs"
    folder.mkdir(exist_ok=True)
    return folder


def run(*command, timeout=900):
    return subprocess.run([str(c) for c in command], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)


def partition_offset(folder, n):
    return p7check.partition_offsets(folder, [n])[n]


def leftovers(names):
    """The names (paths inside /files) that are outputs or a run's leftovers."""
    return sorted(name for name in names
                  if any(fnmatch.fnmatch(part, pattern) for part in name.split("/")
                         for pattern in LEFTOVER_PATTERNS))


def read_back(container, name):
    """/files/NAME of the container as its programs see it, read with `docker exec cat` (the way
    to the files of a container without a mount); None while there is no such file."""
    done = subprocess.run(["docker", "exec", container.name, "cat", f"/files/{name}"],
                          capture_output=True, timeout=harness.DOCKER_TIMEOUT)
    if done.returncode != 0:
        container.require_running()  # a dead container is not a missing file
        return None
    return done.stdout


def offset_in(container, n):
    """partition-N.json's offset in the container's /files; -1 while it is missing or unreadable."""
    if container.files_dir is not None:
        return partition_offset(container.files_dir, n)
    try:
        return json.loads(read_back(container, f"partition-{n}.json"))["offset"]
    except (TypeError, ValueError, KeyError):
        return -1


def wait_caught_up(container, program, partitions, timeout=TIMEOUT):
    """Until every partition file has reached the topic's end as it was when we asked."""
    ends = p7check.end_offsets(partitions)
    # Without a mount every look is a docker exec per file: look less often.
    interval = 0.1 if container.files_dir is not None else 1
    p7check.wait_until(lambda: all(offset_in(container, n) >= ends[n] > 0 for n in partitions)
                       or not program.running(), timeout,
                       f"partition files {partitions} to reach {ends}", interval=interval)
    assert program.running(), program.stderr


def assert_exact(container, partitions):
    """Each partition file against the topic (p7check's oracle). A container without a mount has
    its files copied out with `docker exec cat` first; a missing file fails either way."""
    with tempfile.TemporaryDirectory() as scratch:
        for n in partitions:
            path = local_file(container, f"partition-{n}.json", scratch)
            offset, problems = p7check.check_partition_file(path, n)
            assert offset > 0 and not problems, f"partition-{n}.json at {offset}: {problems[:3]}"


def local_file(container, name, scratch):
    """A path on this machine holding the container's /files/NAME: the mounted folder's own
    file, or a copy read back into `scratch` (none there when the container has no such file)."""
    if container.files_dir is not None:
        return container.files_dir / name
    path = os.path.join(scratch, name)
    data = read_back(container, name)
    if data is not None:
        with open(path, "wb") as f:
            f.write(data)
    return path


def consume_0_2_until_caught_up(container, tmp_path):
    """`consumer.py 0 2` until its files reach the topic's end, then SIGTERM: exit 0."""
    consumer = container.program("consumer.py", ["0", "2"], logs(tmp_path))
    try:
        wait_caught_up(container, consumer, [0, 2])
        assert consumer.stop() == 0, consumer.stderr
    finally:
        consumer.kill()
    return consumer


def assert_debug_prints_new_messages(container, tmp_path):
    """`docker exec -it p7 python3 /files/debug.py` while the producer runs: dicts of messages
    newer than its start, each one in the topic."""
    before = p7check.end_offsets()
    debug = container.program("debug.py", [], logs(tmp_path))
    try:
        p7check.wait_until(lambda: debug.stdout.count("\n") >= DEBUG_LINES
                           or not debug.running(), TIMEOUT, f"{DEBUG_LINES} lines of debug.py")
        assert debug.stop() == 0, debug.stderr
    finally:
        debug.kill()
    printed = [ast.literal_eval(line) for line in debug.stdout.splitlines() if line.strip()]
    assert len(printed) >= DEBUG_LINES
    ends = p7check.end_offsets()
    in_topic = {}
    for n in range(p7check.PARTITIONS):
        for record in p7check.read_partition(n, ends[n]):
            in_topic[(n, *p7check.decode(record))] = record.offset
    for line in printed:
        assert list(line) == ["partition", "key", "date", "degrees"], line
        offset = in_topic.get((line["partition"], line["key"], line["date"], line["degrees"]))
        assert offset is not None, f"{line} is not in the topic"
        assert offset >= before[line["partition"]], f"{line} is older than debug.py"


def producer_running(container):
    script = (f'for p in /proc/[0-9]*; do grep -q "{PRODUCER_PATTERN}" $p/cmdline 2>/dev/null '
              '&& echo ${p#/proc/}; done; true')
    return container.exec("sh", "-c", script).split()
