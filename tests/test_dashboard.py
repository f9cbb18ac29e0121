"""files/dashboard.py on the real consumer's files and the real broker, its page rendered by
headless Debian chromium (tests/browser.py), and its behaviour without a broker, with bad files,
bad requests and bad options. Hostile files, a flood of requests and idle or slow clients
against a dashboard process that needs no broker at all: tests/unit/test_dashboard_server.py.

The browser test's screenshot is kept as an artifact: its path is printed (pytest -s shows it).
"""

import json
import signal
import time

import pytest

from browser import Chromium
from helpers import (assert_exact, assert_one_clean_sentence, caught_up, free_port, http_get,
                     load, wait_until)
from tools import p7check

import dashboard  # files/dashboard.py, for its constants only

pytestmark = pytest.mark.broker

REFRESH_SEC = dashboard.PAGE_REFRESH_MS / 1000
# A busy 2-core machine: the page may see a change up to one refresh late, plus a fetch.
SLACK_SEC = 3
PARTITIONS = range(4)
JANUARY_ROWS = ("[...document.querySelectorAll('#yearly tbody tr')]"
                ".map(r => [r.cells[0].textContent, r.cells[1].textContent])")
BAR_HEIGHTS = "[...document.querySelectorAll('#chart rect')].map(r => r.height.baseVal.value)"


def start_dashboard(run_program, folder, env=None):
    port = free_port()
    program = run_program("dashboard.py", "--port", port, "--dir", folder, env=env)
    url = f"http://localhost:{port}/"
    wait_until(lambda: f"serving {url}" in program.stdout or not program.running(), 30,
               "the dashboard to listen")
    assert program.running(), program.stderr
    return program, url


def stats_json(url):
    status, body = http_get(url + "stats.json")
    assert status == 200, body
    return json.loads(body)


def files_of(folder):
    return {n: load(folder / f"partition-{n}.json") for n in PARTITIONS}


def january_rows(folder):
    """The test's own reading of January from the files, as the page should show it."""
    january = next(data["January"] for data in files_of(folder).values() if "January" in data)
    return [[year, f"{january[year]['avg']:.1f}"] for year in sorted(january)]


# ---------------------------------------------------------------- on a real run

def test_page_follows_the_real_consumer_and_stats_json_equals_the_files(
        run_program, start_producer, tmp_path):
    # A live run: 100 simulated days a second, so a new January comes every ~4 s.
    producer = start_producer(seed=15, delay=0.01)
    consumer = run_program("consumer.py", *map(str, PARTITIONS), "--dir", tmp_path)
    wait_until(lambda: (tmp_path / "partition-0.json").exists(), 60, "the consumer's files")
    program, url = start_dashboard(run_program, tmp_path)
    browser = Chromium(url, tmp_path)
    try:
        # A new January year counted by the consumer reaches the open page without a reload:
        # a reload would drop the marker set here.
        wait_until(lambda: browser.evaluate(JANUARY_ROWS), 60, "January on the page")
        browser.evaluate("window.notReloaded = true")
        years = len(january_rows(tmp_path))
        wait_until(lambda: len(january_rows(tmp_path)) > years, 60,
                   "the consumer to count a new January")
        counted_at = time.monotonic()
        new_year = january_rows(tmp_path)[years][0]
        wait_until(lambda: new_year in [row[0] for row in browser.evaluate(JANUARY_ROWS)],
                   REFRESH_SEC + SLACK_SEC, f"January {new_year} on the page")
        shown_after = time.monotonic() - counted_at
        assert browser.evaluate("window.notReloaded") is True

        # Once the topic is still and read to its end, page and /stats.json equal the files.
        assert producer.stop() == 0, producer.stderr
        wait_until(lambda: caught_up(tmp_path, PARTITIONS), 60, "the consumer to catch up")
        assert_exact(tmp_path, PARTITIONS)
        expected = january_rows(tmp_path)
        wait_until(lambda: browser.evaluate(JANUARY_ROWS) == expected, REFRESH_SEC + SLACK_SEC,
                   f"the page's January rows to be {expected}")
        heights = browser.evaluate(BAR_HEIGHTS)
        avgs = [float(avg) for year, avg in expected]
        assert len(heights) == len(avgs)
        for height, avg in zip(heights, avgs):  # one scale for all bars
            assert abs(height / max(heights) - abs(avg) / max(map(abs, avgs))) < 0.01

        files = files_of(tmp_path)
        ends = p7check.end_offsets()
        partitions = {str(n): {"offset": files[n]["offset"], "end_offset": ends[n], "lag": 0}
                      for n in PARTITIONS}
        # The end offsets come from the dashboard's background thread: fresh within its period.
        stats = wait_until(lambda: (s := stats_json(url))["partitions"] == partitions and s,
                           dashboard.END_OFFSETS_EVERY_SEC + SLACK_SEC,
                           f"/stats.json's partitions to be {partitions}")
        assert stats["months"] == {month: data[month] for month in dashboard.MONTHS
                                   for data in files.values() if month in data}
        assert stats["newest_date"] == max(s["end"] for data in files.values()
                                           for m, years in data.items()
                                           if m in dashboard.MONTHS for s in years.values())
        assert stats["files"] == {str(n): None for n in PARTITIONS}
        wait_until(lambda: browser.evaluate("document.getElementById('newest').textContent")
                   == stats["newest_date"], REFRESH_SEC + SLACK_SEC, "the page's newest date")
        assert browser.evaluate("document.getElementById('warning').textContent") == ""
        shot = browser.screenshot(tmp_path / "dashboard.png")
        print(f"\ndashboard screenshot: {shot}; a new January shown {shown_after:.1f} s "
              "after the consumer counted it")
    finally:
        browser.close()
    assert consumer.stop() == 0, consumer.stderr
    assert program.stop() == 0, program.stderr
    assert "dashboard: stopped" in program.stdout
    assert "Traceback" not in program.stderr


# ---------------------------------------------------------------- without a broker

def test_without_a_broker_it_serves_the_files_quickly_with_null_offsets(run_program, tmp_path):
    good = {"partition": 1, "offset": 31, "January": {"1990": {
        "count": 31, "sum": 310.0, "avg": 10.0, "start": "1990-01-01", "end": "1990-01-31"}}}
    (tmp_path / "partition-1.json").write_text(json.dumps(good))
    (tmp_path / "partition-2.json").write_text("{\"partition\": 2, \"off")  # not JSON
    nobody = {"KAFKA_BOOTSTRAP": f"localhost:{free_port()}"}
    program, url = start_dashboard(run_program, tmp_path, env=nobody)

    started = time.monotonic()
    stats = stats_json(url)
    assert time.monotonic() - started < 1, "a request waited for the missing broker"
    assert stats["months"] == {"January": good["January"]}
    assert stats["newest_date"] == "1990-01-31"
    assert stats["partitions"]["1"] == {"offset": 31, "end_offset": None, "lag": None}
    assert stats["partitions"]["2"] == {"offset": None, "end_offset": None, "lag": None}
    assert "missing" in stats["files"]["0"] and "unreadable" in stats["files"]["2"]
    assert stats["files"]["1"] is None

    status, body = http_get(url)
    assert status == 200 and "<svg" in body and 'src="http' not in body
    assert http_get(url + "?month=March")[0] == 200
    for bad in ("?month=Smarch", "?month=", "?year=1990", "stats.json?month=May"):
        status, body = http_get(url + bad)
        assert status == 400, bad
        assert len(body.strip().splitlines()) == 1
    for unknown in ("index.html", "stats.json/", "partition-1.json", "../consumer.py"):
        assert http_get(url + unknown)[0] == 404, unknown
    # Still serving after all that; Ctrl-C stops it cleanly.
    assert stats_json(url)["months"] == {"January": good["January"]}
    assert program.stop(signal.SIGINT) == 0, program.stderr
    assert "dashboard: stopped" in program.stdout and not program.stderr


def test_a_negative_average_is_a_bar_down_from_zero_on_a_scale_with_negative_ticks(
        dashboard_alone, tmp_path):
    averages = {"1990": -5.0, "1991": 10.0, "1992": -12.5, "1993": 0.25}
    january = {year: {"count": 31, "sum": avg * 31, "avg": avg, "start": f"{year}-01-01",
                      "end": f"{year}-01-31"} for year, avg in averages.items()}
    (tmp_path / "partition-2.json").write_text(
        json.dumps({"partition": 2, "offset": 124, "January": january}))
    _, port = dashboard_alone(tmp_path)
    browser = Chromium(f"http://localhost:{port}/", tmp_path)
    try:
        wait_until(lambda: len(browser.evaluate(JANUARY_ROWS)) == len(averages), 30,
                   "January's rows on the page")
        bars = browser.evaluate("[...document.querySelectorAll('#chart rect')]"
                                ".map(r => [r.y.baseVal.value, r.height.baseVal.value])")
        zero = browser.evaluate("document.getElementById('zero').y1.baseVal.value")
        ticks = browser.evaluate("[...document.querySelectorAll('#chart text.tick')]"
                                 ".map(t => t.textContent)")
        browser.screenshot(tmp_path / "negative.png")
    finally:
        browser.close()
    assert len(bars) == len(averages)
    for (top, height), avg in zip(bars, averages.values()):
        if avg < 0:
            assert abs(top - zero) < 0.01 and height > 0, (avg, top, height, zero)  # goes down
        else:
            assert abs(top + height - zero) < 0.01, (avg, top, height, zero)  # stands on zero
    tallest = max(height for _, height in bars)
    for (_, height), avg in zip(bars, averages.values()):  # one scale for all bars
        assert abs(height / tallest - abs(avg) / 12.5) < 0.01
    values = [float(tick.rstrip("\u00b0F")) for tick in ticks]
    assert min(values) <= -12.5 and max(values) >= 10 and 0 in values, ticks
    assert len(values) >= 4 and values == sorted(values), ticks


@pytest.mark.parametrize("args, env, complaint", [
    (["--port", "0"], {}, "--port must be between 1 and 65535"),
    (["--port", "x"], {}, "invalid int value"),
    (["--dir", "/nonexistent"], {}, "is not a folder"),
    ([], {"KAFKA_BOOTSTRAP": "localhost"}, "must be HOST:PORT"),
])
def test_bad_options_are_one_sentence_exit_2(run_program, tmp_path, args, env, complaint):
    program = run_program("dashboard.py", *args, env=env)
    assert program.wait(30) == 2
    assert complaint in assert_one_clean_sentence(program.stderr)


def test_a_port_in_use_is_one_sentence_exit_1(run_program, tmp_path):
    first, url = start_dashboard(run_program, tmp_path)
    port = url.rsplit(":", 1)[1].strip("/")
    second = run_program("dashboard.py", "--port", port, "--dir", tmp_path)
    assert second.wait(30) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in assert_one_clean_sentence(second.stderr)
    assert first.stop() == 0
