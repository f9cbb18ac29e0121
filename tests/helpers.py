"""What the tests share besides their fixtures (those are in conftest.py)."""

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


def assert_one_clean_sentence(stderr):
    """Bad input is reported as one readable line: no traceback."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert lines, "nothing was reported on stderr"
    return lines[-1]
