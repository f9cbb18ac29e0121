"""The image on its own: `docker run -d --name=p7 p7` without any mount, as the course's grader
starts it, then `docker exec p7 python3 /files/...` with the programs the image carries. What they
write stays inside the container and is read back with `docker exec cat`.

The tests run in file order and share one container, each building on what the one before left.
Its broker listens on a free port, published as itself (KAFKA_BOOTSTRAP moves it, as
autograde.py --docker does), so that the host-side checks reach it whatever else publishes 9092.
"""

import shutil
import tempfile

import matplotlib.image
import pytest

from tools import harness, p7check
from conftest import (LEFTOVER_PATTERNS, PROGRAMS, ROOT, TIMEOUT,
                      assert_debug_prints_new_messages, assert_exact,
                      consume_0_2_until_caught_up, leftovers, local_file, logs, read_back, run,
                      running, start_producer_in_background)



@pytest.fixture(scope="module")
def bare_container(image):
    """`docker run -d -p PORT:PORT -e KAFKA_BOOTSTRAP=localhost:PORT --name=UNIQUE p7`: no -v."""
    port = harness.free_port()
    container = harness.Container(f"p7-no-mount-test-{harness.unique_suffix()}", image, None,
                                  broker_port=port, host_port=port)
    yield from running(container, port)


def files_in(*docker_command):
    """The files under /files (paths inside it), as `find` sees them when run with
    `docker DOCKER_COMMAND` (a run of an image or an exec in a container)."""
    found = run("docker", *docker_command, "find", "/files", "-type", "f", "-printf", "%P\\n")
    assert found.returncode == 0, found.stderr
    return sorted(found.stdout.splitlines())


def test_outputs_and_leftovers_in_files_stay_out_of_the_image(image, tmp_path):
    """A checkout where the programs ran: beside them in files/ the sample outputs and what a run
    leaves. The image built from it carries the programs and nothing else."""
    context = tmp_path / "context"
    shutil.copytree(ROOT / "broker", context / "broker",
                    ignore=shutil.ignore_patterns(".run*", ".cache", ".cluster"))
    for name in ("Dockerfile", ".dockerignore", "requirements.txt", "requirements.lock"):
        shutil.copy(ROOT / name, context / name)
    files = context / "files"
    shutil.copytree(ROOT / "files", files, ignore=shutil.ignore_patterns(*LEFTOVER_PATTERNS))
    programs = sorted(str(path.relative_to(files)) for path in files.rglob("*") if path.is_file())
    assert set(PROGRAMS) <= set(programs)
    outputs = ["partition-0.json", "partition-3.json", "birthday.json", "yearly_trends.png",
               "partition-0.json.lock", "birthday.json.lock", "partition-1.json.x7k2p9.tmp",
               "yearly_trends.png.tmp", "partition-2.json.stale-20250101-000000",
               "__pycache__/weather.cpython-311.pyc"]
    for name in outputs:
        (files / name).parent.mkdir(exist_ok=True)
        (files / name).write_text('{"partition": 0, "offset": 1000}')

    tag = f"p7-context-test:{harness.unique_suffix()}"
    try:
        harness.build_image(context, tag)  # the layers before files/ come from the cache
        assert files_in("run", "--rm", tag) == programs
    finally:
        run("docker", "rmi", "-f", tag)


def test_a_new_container_has_the_programs_and_no_outputs(bare_container):
    names = files_in("exec", bare_container.name)
    assert set(PROGRAMS) <= set(names), f"/files lacks {set(PROGRAMS) - set(names)}"
    assert not leftovers(names), f"a new container's /files holds {leftovers(names)}"


def test_producer_in_the_background(bare_container):
    """`docker exec -d p7 python3 /files/producer.py`"""
    start_producer_in_background(bare_container)


def test_debug_prints_new_messages(bare_container, tmp_path):
    """`docker exec -it p7 python3 /files/debug.py`"""
    assert_debug_prints_new_messages(bare_container, tmp_path)


def test_consumer_0_2_is_exact(bare_container, tmp_path):
    """`docker exec -it p7 python3 /files/consumer.py 0 2`: its files, in the container's /files,
    exact against the topic."""
    consume_0_2_until_caught_up(bare_container, tmp_path)
    assert_exact(bare_container, [0, 2])
    assert read_back(bare_container, "partition-1.json") is None
    assert read_back(bare_container, "partition-3.json") is None


def test_plot_draws_a_png(bare_container, tmp_path):
    """`docker exec -it p7 python3 /files/plot.py`: yearly_trends.png in the container's /files."""
    plot = bare_container.program("plot.py", [], logs(tmp_path))
    try:
        p7check.wait_until(lambda: read_back(bare_container, "yearly_trends.png") is not None
                           or not plot.running(), TIMEOUT, "plot.py to draw yearly_trends.png",
                           interval=1)
        assert plot.stop() == 0, plot.stderr
    finally:
        plot.kill()
    with tempfile.TemporaryDirectory() as scratch:
        height, width, _channels = matplotlib.image.imread(
            local_file(bare_container, "yearly_trends.png", scratch)).shape
    assert height > 100 and width > 100


@pytest.fixture(autouse=True)
def _container_alive_after_each_test(request):
    yield
    if "bare_container" in request.fixturenames:
        request.getfixturevalue("bare_container").require_running()
