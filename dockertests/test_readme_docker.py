"""The README's Docker section, command by command, then autograde.py --docker beside it.

The tests run in file order and share one container (the README's p7, under a unique name):
each step builds on what the one before left, as a user's session does.
"""

import json
import shutil
import sys
import urllib.request
from pathlib import Path

import matplotlib.image
import pytest
from kafka import KafkaAdminClient

from conftest import (DASHBOARD_PORT, PROGRAMS, ROOT, TIMEOUT, assert_debug_prints_new_messages,
                      assert_exact, consume_0_2_until_caught_up, copy_of_files, leftovers, logs,
                      partition_offset, producer_running, run, start_producer_in_background,
                      wait_caught_up, wait_for_broker)
from tools import p7check

# The grader's corpus lives with the tests (tests/submissions); appended, so that this folder's
# conftest stays the one imported above.
sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from submissions import final_variants  # noqa: E402



def topic_id():
    admin = KafkaAdminClient(bootstrap_servers=p7check.bootstrap().split(","))
    try:
        (described,) = admin.describe_topics([p7check.TOPIC])
        return described.get("topic_id")
    finally:
        admin.close()


def test_image_holds_what_the_programs_need_and_nothing_else(image, programs_at_build):
    """Kafka's jars and the packages, no build or test tools; in /files the programs as they are
    in files/ and none of the committed sample outputs (nor a run's leftovers)."""
    version = (ROOT / "broker" / "kafka-version").read_text().strip()
    listing = run("docker", "run", "--rm", image, "sh", "-c",
                  f"ls /opt/p7/broker/.cache/kafka-{version}/kafka_2.13-{version}.jar; "
                  "for tool in curl mvn pytest; do command -v $tool; done; "
                  "python3 -c 'import kafka, google.protobuf, grpc_tools, matplotlib'")
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.split() == [
        f"/opt/p7/broker/.cache/kafka-{version}/kafka_2.13-{version}.jar"], listing.stdout

    found = run("docker", "run", "--rm", "-w", "/files", image, "find", ".", "-mindepth", "1",
                "-printf", "%P\\n")
    assert found.returncode == 0, found.stderr
    names = found.stdout.splitlines()
    assert not leftovers(names), f"the image's /files holds outputs: {leftovers(names)}"
    assert set(PROGRAMS) <= set(names), f"the image's /files lacks {set(PROGRAMS) - set(names)}"
    sums = run("docker", "run", "--rm", "-w", "/files", image, "sha256sum", *PROGRAMS)
    assert sums.returncode == 0, sums.stderr
    in_image = dict(reversed(line.split()) for line in sums.stdout.splitlines())
    assert in_image == programs_at_build, "the image's programs are not those of files/"


def test_producer_in_the_background(user_container):
    """`docker exec -d p7 python3 /files/producer.py`"""
    start_producer_in_background(user_container)


def test_debug_prints_new_messages(user_container, tmp_path):
    """`docker exec -it p7 python3 /files/debug.py`: dicts of messages newer than its start."""
    assert_debug_prints_new_messages(user_container, tmp_path)


def test_consumer_0_2_is_exact(user_container, tmp_path):
    """`docker exec -it p7 python3 /files/consumer.py 0 2`"""
    consume_0_2_until_caught_up(user_container, tmp_path)
    assert_exact(user_container, [0, 2])
    assert not (user_container.files_dir / "partition-1.json").exists()
    assert not (user_container.files_dir / "partition-3.json").exists()


def test_consumer_two_rounds_is_exact(user_container, tmp_path):
    """`docker exec -it p7 python3 /files/consumer.py`: round 1 (30 polls), then round 2."""
    consumer = user_container.program("consumer.py", [], logs(tmp_path))
    try:
        p7check.wait_until(lambda: "round 2" in consumer.stdout or not consumer.running(),
                           TIMEOUT, "round 2 of consumer.py")
        wait_caught_up(user_container, consumer, [0, 1, 2, 3])
        assert consumer.stop() == 0, consumer.stderr
    finally:
        consumer.kill()
    assert "round 1" in consumer.stdout
    assert_exact(user_container, [0, 1, 2, 3])


def test_plot_draws_a_png(user_container, tmp_path):
    """`docker exec -it p7 python3 /files/plot.py`"""
    png = user_container.files_dir / "yearly_trends.png"
    plot = user_container.program("plot.py", [], logs(tmp_path))
    try:
        p7check.wait_until(lambda: png.exists() or not plot.running(), TIMEOUT,
                           "plot.py to draw yearly_trends.png")
        assert plot.stop() == 0, plot.stderr
    finally:
        plot.kill()
    height, width, _channels = matplotlib.image.imread(png).shape
    assert height > 100 and width > 100


def test_stop_and_start_keep_the_data_and_the_consumer_resumes(user_container, tmp_path):
    """`docker stop p7`, `docker start p7`: the topic survives, a consumer resumes exactly."""
    user_container.exec("sh", "-c", f"kill -TERM {' '.join(producer_running(user_container))}")
    p7check.wait_until(lambda: not producer_running(user_container), 60,
                       "the producer to stop on SIGTERM")
    ends, topic = p7check.end_offsets(), topic_id()
    saved = {n: partition_offset(user_container.files_dir, n) for n in (0, 2)}

    user_container.stop()
    user_container.start()
    wait_for_broker(user_container)
    assert (p7check.end_offsets(), topic_id()) == (ends, topic), "the broker lost its data"

    consumer = consume_0_2_until_caught_up(user_container, tmp_path)
    assert f"resuming at offsets 0:{saved[0]}, 2:{saved[2]}" in consumer.stderr
    assert_exact(user_container, [0, 2])


def test_dashboard_in_the_background_serves_the_files_to_the_host(user_container):
    """`docker exec -d p7 python3 /files/dashboard.py`, then http://localhost:8544/ on the host:
    the files as they are (nothing runs now) and the topic's end offsets."""
    run("docker", "exec", "-d", user_container.name, "python3", "/files/dashboard.py")
    url = f"http://localhost:{DASHBOARD_PORT}"

    def stats():
        try:
            with urllib.request.urlopen(f"{url}/stats.json", timeout=5) as answer:
                found = json.load(answer)
        except OSError:
            return None
        return found if all(p["end_offset"] is not None for p in found["partitions"].values()) \
            else None

    found = p7check.wait_until(stats, TIMEOUT, "the dashboard's /stats.json", interval=0.5)
    ends = p7check.end_offsets()
    for n in range(p7check.PARTITIONS):
        assert found["partitions"][str(n)] == {
            "offset": partition_offset(user_container.files_dir, n), "end_offset": ends[n],
            "lag": ends[n] - partition_offset(user_container.files_dir, n)}
    files = [json.loads((user_container.files_dir / f"partition-{n}.json").read_text())
             for n in range(p7check.PARTITIONS)]
    holder = next(data for data in files if "January" in data)
    assert found["months"]["January"] == holder["January"]
    with urllib.request.urlopen(f"{url}/", timeout=5) as page:
        assert page.status == 200 and b"<h1>P7: Kafka, Weather Data</h1>" in page.read()


def docker_names():
    listed = run("docker", "ps", "-a", "--format", "{{.Names}}")
    images = run("docker", "images", "--format", "{{.Repository}}:{{.Tag}}")
    return set(listed.stdout.split()) | set(images.stdout.split())


def grade(files, tmp_path, *how):
    """autograde.py on `files`, --docker unless `how` says otherwise: (run, per-check results)."""
    result_file = tmp_path / "grade.json"
    graded = run(sys.executable, ROOT / "autograde.py", *(how or ["--docker"]), "--files", files,
                 "--json", result_file)
    # The course grader's shape; the per-check results are its "checks".
    results = json.loads(result_file.read_text())["checks"] if result_file.exists() else []
    return graded, results


def test_autograde_docker_passes_beside_the_users_container(user_container, tmp_path):
    """The README's container still publishes 9092: the grader must not collide with it, nor
    touch the user's p7 image and container, and leaves nothing of its own behind."""
    image_id = run("docker", "image", "inspect", "-f", "{{.Id}}", "p7").stdout
    before = docker_names()
    graded, results = grade(ROOT / "files", tmp_path)
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-2000:]
    # Every check that has points passes; the ungraded birthday check is only reported.
    assert len(results) == 12 and [r["status"] for r in results] == [
        "PASS" if r["max_points"] else "SKIPPED" for r in results], results
    assert user_container.state()[0], "the user's container was stopped"
    assert run("docker", "image", "inspect", "-f", "{{.Id}}", "p7").stdout == image_id
    assert docker_names() == before


def test_autograde_image_gives_a_plain_student_submission_full_marks(user_container, tmp_path):
    """--image: the corpus's plain submission (its programs write to /files, its weather.py
    reads no speed-up variable) mounted in the p7 image, beside the user's container."""
    graded, results = grade(ROOT / "tests" / "submissions" / "plain" / "files", tmp_path,
                            "--image", "p7")
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-2000:]
    assert "score: 100/100" in graded.stdout
    assert len(results) == 12 and [r["status"] for r in results] == [
        "PASS" if r["max_points"] else "SKIPPED" for r in results], results


def test_autograde_image_grades_a_final_version_submission_in_the_course_environment(
        user_container, tmp_path):
    """--image alone: the course's environment (this project's Dockerfile with the course
    image's packages); the final-version corpus submission, told apart as such, full marks;
    its relative-paths variation too, since a program there starts in / as docker exec starts
    it."""
    graded, results = grade(ROOT / "tests" / "submissions" / "final" / "files", tmp_path,
                            "--image")
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-2000:]
    assert "score: 100/100" in graded.stdout
    assert "version: the final version of P7" in graded.stdout
    assert "image p7-autograde-course:" in graded.stdout
    assert len(results) == 11 and all(r["status"] == "PASS" for r in results), results

    relative = final_variants.make("relative_paths", tmp_path / "relative")
    graded, results = grade(relative, tmp_path, "--image", "--only", "7,10")
    assert graded.returncode == 0, graded.stdout[-3000:] + graded.stderr[-2000:]
    assert [r["status"] for r in results] == ["PASS", "PASS"], results


def submission(tmp_path, dockerfile):
    """A copy of the project with another Dockerfile."""
    root = tmp_path / "submission"
    for name in ("broker", "requirements.txt", "requirements.lock", ".dockerignore"):
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns(".run*", ".cache"))
        else:
            shutil.copy(source, root / name)
    copy_of_files(root)
    (root / "Dockerfile").write_text(dockerfile)
    return root


def test_autograde_shows_why_a_build_failed(user_container, tmp_path):
    broken = (ROOT / "Dockerfile").read_text().replace(
        "FROM python:3.11-slim-bookworm AS runtime\n",
        "FROM python:3.11-slim-bookworm AS runtime\n"
        "RUN echo 'p7-marker: this step is broken' >&2 && exit 3\n", 1)
    assert "p7-marker" in broken
    before = docker_names()
    graded, results = grade(submission(tmp_path, broken) / "files", tmp_path)
    output = graded.stdout + graded.stderr
    assert graded.returncode == 1
    assert "RUN echo 'p7-marker: this step is broken'" in output, output[-3000:]
    assert "\np7-marker: this step is broken" in output, output[-3000:]
    assert [r["status"] for r in results if r["number"] > 2 and r["max_points"]] == ["FAIL"] * 9
    assert docker_names() == before, "the failed build left a container or an image behind"


def test_autograde_reports_a_dead_container_at_once(user_container, tmp_path):
    dying = (ROOT / "Dockerfile").read_text().rsplit("CMD ", 1)[0] + (
        'CMD ["sh", "-c", "echo p7-marker: the broker cannot start >&2; exit 7"]\n')
    before = docker_names()
    graded, results = grade(submission(tmp_path, dying) / "files", tmp_path)
    output = graded.stdout + graded.stderr
    assert graded.returncode == 1
    assert "exit code 7" in output and "p7-marker: the broker cannot start" in output, \
        output[-3000:]
    reasons = [r["reason"] for r in results if r["number"] > 2 and r["max_points"]]
    assert all("exit code 7" in reason for reason in reasons), reasons
    assert docker_names() == before


@pytest.fixture(autouse=True)
def _container_alive_after_each_test(request):
    yield
    if "user_container" in request.fixturenames:
        request.getfixturevalue("user_container").require_running()
