"""The Docker path, as users take it: `make docker-test` (not part of `make test`, which needs no
engine; .ci/run runs both).

The image is built from the repository's Dockerfile as it is, with the README's own command, and
the README's Docker section is gone through on a temporary copy of files/. Host-side checks
(tools/p7check.py) reach the broker through the port the container publishes, so on a machine
whose engine runs in a network namespace of its own (../shared/docker/engine.sh) this runs
inside it: `nsenter --net=/run/netns/dk make docker-test`.
"""

import os
import shutil
import subprocess

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
PRODUCER_PATTERN = "/files/produce[r].py"   # [r]: the shell that looks must not match itself


def copy_of_files(folder):
    """The programs of files/ without their committed sample outputs, as a user's fresh
    checkout would have them once the outputs were deleted."""
    copy = folder / "files"
    shutil.copytree(ROOT / "files", copy, ignore=shutil.ignore_patterns(*OUTPUT_PATTERNS))
    return copy


@pytest.fixture(scope="session")
def image():
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
    os.environ["KAFKA_BOOTSTRAP"] = f"localhost:{README_PORT}"  # p7check reads it
    try:
        container.run()
        wait_for_broker(container)
        yield container
    finally:
        container.remove()


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


def wait_caught_up(container, program, partitions, timeout=TIMEOUT):
    """Until every partition file has reached the topic's end as it was when we asked."""
    ends = p7check.end_offsets(partitions)
    p7check.wait_until(lambda: all(partition_offset(container.files_dir, n) >= ends[n] > 0
                                   for n in partitions) or not program.running(), timeout,
                       f"partition files {partitions} to reach {ends}")
    assert program.running(), program.stderr


def assert_exact(container, partitions):
    for n in partitions:
        offset, problems = p7check.check_partition_file(container.files_dir
                                                        / f"partition-{n}.json", n)
        assert offset > 0 and not problems, f"partition-{n}.json at {offset}: {problems[:3]}"


def producer_running(container):
    script = (f'for p in /proc/[0-9]*; do grep -q "{PRODUCER_PATTERN}" $p/cmdline 2>/dev/null '
              '&& echo ${p#/proc/}; done; true')
    return container.exec("sh", "-c", script).split()
