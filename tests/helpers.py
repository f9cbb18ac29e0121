"""What the tests share besides their fixtures (those are in conftest.py)."""

import datetime
import json
import os
import signal
import struct
import subprocess
import sys
import time
import urllib.error
import urllib.request

from kafka.errors import KafkaError

from tools import harness, p7check
# The tests' vocabulary, defined once in the harness.
from tools.harness import FILES, ROOT, free_port, launcher, wait_until  # noqa: F401


def broker_port():
    return int(p7check.bootstrap().rsplit(":", 1)[1])


def total_messages():
    return sum(p7check.end_offsets().values())


def wait_for_new_topic(producer, previous_id=None, partitions=p7check.PARTITIONS):
    """Until the producer has recreated `temperatures` (a new topic id, every partition led)."""
    admin = p7check.new_admin()
    try:
        return harness.wait_for_recreated_topic(admin, p7check.TOPIC, previous_id, partitions,
                                                still_going=producer.running)
    finally:
        admin.close()


def current_topic_id():
    admin = p7check.new_admin()
    try:
        return harness.topic_id(admin, p7check.TOPIC)
    finally:
        admin.close()


def group_has_partitions(group="debug", partitions=range(p7check.PARTITIONS)):
    """Whether Kafka says that `group` is stable with one member, which holds every one of
    `partitions` of the topic: a consumer that subscribed may now get messages. (debug.py says
    nothing on a healthy start, so the broker is asked.)"""
    admin = p7check.new_admin()
    try:
        described = admin.describe_groups([group])[group]
    except KafkaError:  # no coordinator for it yet: not stable either
        return False
    finally:
        admin.close()
    members = described.get("members") or []
    if described.get("group_state") != "Stable" or len(members) != 1:
        return False
    assigned = members[0]["member_assignment"]["assigned_partitions"]
    held = {n for entry in assigned if entry["topic"] == p7check.TOPIC
            for n in entry["partitions"]}
    return held == set(partitions)


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


# ---------------------------------------------------------------- partition files

def load(path):
    with open(path) as f:
        return json.load(f)


def offsets_in(folder, partitions):
    return p7check.partition_offsets(folder, partitions)


def caught_up(folder, partitions):
    ends = p7check.end_offsets(partitions)
    return all(offsets_in(folder, [n])[n] == ends[n] for n in partitions)


def assert_exact(folder, partitions):
    for n in partitions:
        offset, problems = p7check.check_partition_file(folder / f"partition-{n}.json", n)
        assert not problems, f"partition-{n}.json at offset {offset}: {problems[:5]}"


def days_counted(folder, partitions=range(p7check.PARTITIONS)):
    """(readings counted in the partition files, days from 1990-01-01 to the newest date
    counted): equal when every day was counted exactly once, nothing skipped or doubled."""
    total, newest = 0, "1990-01-01"
    for n in partitions:
        for key, years in load(folder / f"partition-{n}.json").items():
            if key in ("partition", "offset"):
                continue
            for stats in years.values():
                total += stats["count"]
                newest = max(newest, stats["end"])
    days = (datetime.date.fromisoformat(newest) - datetime.date(1990, 1, 1)).days + 1
    return total, days


def consume_until_caught_up(run_program, folder, partitions, *extra):
    consumer = run_program("consumer.py", *partitions, "--dir", folder, *extra)
    wait_until(lambda: caught_up(folder, partitions) or not consumer.running(), 120,
               f"partitions {partitions} to catch up")
    assert consumer.stop() == 0, consumer.stderr
    return consumer


def kill_9_mid_run(run_program, folder, rng, *extra):
    """Start consumer.py on every partition, let it make progress, then kill -9 it at an
    arbitrary instant: mid-batch, mid-write, between files."""
    consumer = run_program("consumer.py", "0", "1", "2", "3", "--dir", folder, *extra)
    progress = sum(offsets_in(folder, range(4)).values())
    wait_until(lambda: sum(offsets_in(folder, range(4)).values()) > progress, 60,
               "the consumer to make progress")
    time.sleep(rng.uniform(0.0, 0.4))
    consumer.process.send_signal(signal.SIGKILL)
    consumer.wait()


def fresh_topic():
    admin = p7check.new_admin()
    try:
        p7check.recreate_empty_topic(admin)
    finally:
        admin.close()


def report_bytes(date, degrees):
    """A Report's bytes written by hand (fields 1 and 2), so that any date can be sent."""
    encoded = date.encode()
    return bytes([0x0A, len(encoded)]) + encoded + b"\x11" + struct.pack("<d", degrees)


def assert_birthdays_exact(folder, birthday):
    offsets = offsets_in(folder, range(4))
    expected = p7check.expected_birthdays(birthday, offsets)
    assert load(folder / "birthday.json") == expected
    return expected


def http_get(url):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


AUTOGRADE_TIMEOUT = 600     # autograde.py has its own deadlines; this only stops a hung grader


def autograde(broker, tmp_path, *args):
    """Run autograde.py against `broker`; returns (exit code, the JSON results, {check number:
    result}, output). The JSON must be in the course grader's shape, its score the sum of its
    checks' points, and each check's outcome must hold its reason."""
    report = tmp_path / "results.json"
    env = dict(os.environ, KAFKA_BOOTSTRAP=broker)
    done = subprocess.run([sys.executable, str(ROOT / "autograde.py"), "--json", str(report),
                           *args], capture_output=True, text=True, env=env,
                          timeout=AUTOGRADE_TIMEOUT)
    output = done.stdout + done.stderr
    assert report.exists(), output
    results = json.loads(report.read_text())
    assert set(results) >= {"score", "full_score", "tests"}, results
    checks = {r["number"]: r for r in results["checks"]}
    assert results["score"] == sum(r["points"] for r in checks.values())
    for result in checks.values():
        outcome = results["tests"][result["check"]]
        if result["status"] == "PASS":
            assert outcome == f"PASS ({result['points']}/{result['max_points']})"
        else:
            assert result["reason"] in outcome
    return done.returncode, results, checks, output
