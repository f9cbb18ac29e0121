"""The grading copy without a broker: where /files and localhost:9092 point, which weather.py
is kept, the producer's settings read from its source, and how consumer.py's rounds are told
from its workers."""

import os

import pytest

from grader import submission
from grader.checks import producer_settings_problem
from grader.programs import WorkerWatch
from grader.report import course_json, outcome

STUDENT = '''import json, os
broker = 'localhost:9092'
PATH = "/files/partition-%d.json"
def path(n):
    return f"/files/partition-{n}.json"
plot_at = os.path.join('/files', "yearly_trends.png")
# docker exec -it p7 python3 /files/consumer.py   (a comment: left alone)
other = "/filesystem/x"
'''


def test_files_and_the_default_broker_point_at_the_grading_copy(tmp_path):
    (tmp_path / "consumer.py").write_text(STUDENT)
    notes = submission.rewrite_sources(tmp_path, folder=tmp_path / "copy", broker_port=9500)
    text = (tmp_path / "consumer.py").read_text()
    copy = str(tmp_path / "copy")
    assert f'PATH = "{copy}/partition-%d.json"' in text
    assert f'f"{copy}/partition-{{n}}.json"' in text
    assert f"os.path.join('{copy}', " in text
    assert "broker = 'localhost:9500'" in text
    assert "python3 /files/consumer.py" in text and '"/filesystem/x"' in text
    assert len(notes) == 2 and "write to /files" in notes[0] and "localhost:9500" in notes[1]


def test_nothing_changes_where_nothing_needs_to(tmp_path):
    (tmp_path / "consumer.py").write_text(STUDENT)
    assert submission.rewrite_sources(tmp_path, folder=None, broker_port=9092) == []
    assert (tmp_path / "consumer.py").read_text() == STUDENT


HONOURS = '''import os, time
def get_next_weather(delay_sec=0.1):
    delay = float(os.environ.get("AUTOGRADER_DELAY_OVERRIDE_VAL", delay_sec))
    n = 0
    while True:
        n += 1
        yield "1990-01-%02d" % (n % 28 + 1), 1.0
        time.sleep(delay)
'''
IGNORES = HONOURS.replace('float(os.environ.get("AUTOGRADER_DELAY_OVERRIDE_VAL", delay_sec))',
                          "delay_sec")


def test_a_weather_py_that_honours_the_pace_is_kept(tmp_path):
    (tmp_path / "weather.py").write_text(HONOURS)
    assert submission.settle_weather(tmp_path) == []
    assert (tmp_path / "weather.py").read_text() == HONOURS


def test_a_weather_py_at_its_own_pace_is_replaced_by_the_pristine_one(tmp_path):
    (tmp_path / "weather.py").write_text(IGNORES)
    notes = submission.settle_weather(tmp_path)
    assert (tmp_path / "weather.py").read_bytes() == submission.PRISTINE_WEATHER.read_bytes()
    assert len(notes) == 1 and "honours neither" in notes[0] and "0.5" in notes[0]


def test_a_broken_or_missing_weather_py_is_replaced_and_said(tmp_path):
    (tmp_path / "weather.py").write_text("raise SystemExit('broken on purpose')\n")
    notes = submission.settle_weather(tmp_path)
    assert "could not be run (broken on purpose)" in notes[0]
    (tmp_path / "weather.py").unlink()
    assert "there is no files/weather.py" in submission.settle_weather(tmp_path)[0]
    assert (tmp_path / "weather.py").is_file()


def test_the_pristine_weather_has_the_provided_interface(monkeypatch, tmp_path):
    monkeypatch.setenv("AUTOGRADER_DELAY_OVERRIDE_VAL", "0")
    monkeypatch.syspath_prepend(str(submission.PRISTINE_WEATHER.parent))
    import pristine_weather
    readings = pristine_weather.get_next_weather(delay_sec=0.5)
    seen = [next(readings) for _ in range(2000)]
    dates = [date for date, _ in seen]
    assert dates[0] == "1990-01-01"
    assert dates == sorted(dates)
    duplicates = len(dates) - len(set(dates))
    assert 0.02 * len(dates) < duplicates < 0.08 * len(dates)
    assert all(isinstance(degrees, float) for _, degrees in seen)


@pytest.mark.parametrize("source, problem", [
    ("KafkaProducer(bootstrap_servers=[b], retries=10, acks='all')", None),
    ("KafkaProducer(bootstrap_servers=[b], acks=-1, retries=10)", None),
    ("ACKS = 'all'\nKafkaProducer(acks=ACKS, retries=10)", None),
    ("KafkaProducer(bootstrap_servers=[b], acks='all')", "found: acks='all'"),
    ("KafkaProducer(bootstrap_servers=[b], acks=1, retries=10)", "found: acks=1, retries=10"),
    ("print('no producer')", "found no KafkaProducer"),
    ("def broken(:", "found no KafkaProducer"),
])
def test_the_producer_settings_are_read_from_the_source(tmp_path, source, problem):
    path = tmp_path / "producer.py"
    path.write_text(source + "\n")
    found = producer_settings_problem(path)
    if problem is None:
        assert found is None
    else:
        assert 'acks="all"' in found and "retries=10" in found and problem in found


def watch_of(snapshots):
    watch = WorkerWatch.__new__(WorkerWatch)
    watch.snapshots = [(frozenset(pids), frozenset(tids)) for pids, tids in snapshots]
    return watch


def test_rounds_are_one_set_of_workers_ending_and_another_starting():
    two_rounds = [({"11", "12"}, set()), ({"12"}, set()), (set(), set()),
                  ({"21", "22"}, set())]
    assert watch_of(two_rounds).rounds()
    # Workers that never end, or end without others after them, are one round.
    assert not watch_of([({"11", "12"}, set())] * 5).rounds()
    assert not watch_of([({"11", "12"}, set()), ({"11"}, set()), (set(), set())]).rounds()
    # Threads count when consumer.py starts no process.
    threads = [(set(), {"101", "102"}), (set(), set()), (set(), {"103", "104"})]
    assert watch_of(threads).rounds()
    assert watch_of(threads).description() == ("threads", 4)


def test_the_course_json_says_pass_or_why_not():
    results = [{"number": 1, "check": "1. files", "status": "PASS", "points": 5,
                "max_points": 5, "reason": ""},
               {"number": 3, "check": "3. producer", "status": "FAIL", "points": 0,
                "max_points": 15, "reason": "no acks"}]
    shaped = course_json(results, ["a note"])
    assert shaped["score"] == 5 and shaped["full_score"] == 20
    assert shaped["tests"] == {"1. files": "PASS (5/5)", "3. producer": "FAIL (0/15): no acks"}
    assert outcome(results[1]) == "FAIL (0/15): no acks" and shaped["notes"] == ["a note"]


def test_the_grader_environment_asks_for_its_pace():
    assert submission.delay_environment() == {
        "AUTOGRADER_DELAY_OVERRIDE_VAL": submission.DELAY_SEC,
        "WEATHER_DELAY_SEC": submission.DELAY_SEC}
    assert float(submission.DELAY_SEC) < submission.SLOW_READING_SEC
    assert os.path.basename(submission.PRISTINE_WEATHER) == "pristine_weather.py"
