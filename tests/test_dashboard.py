"""files/dashboard.py on the real consumer's files and the real broker, its page rendered by
headless Debian chromium (tests/browser.py), and its behaviour without a broker, with bad files,
bad requests and bad options; hostile files, a flood of requests and idle or slow clients
against a dashboard process that needs no broker at all.

The browser test's screenshot is kept as an artifact: its path is printed (pytest -s shows it).
"""

import http.client
import json
import os
import selectors
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest

from bench.dashboard_flood import century_files, flood, thread_count
from browser import Chromium
from helpers import (FILES, assert_exact, assert_one_clean_sentence, caught_up, free_port, load,
                     wait_until)
from tools import harness, p7check

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


def get(url):
    """(status, body) of a GET."""
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def stats_json(url):
    status, body = get(url + "stats.json")
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

    status, body = get(url)
    assert status == 200 and "<svg" in body and 'src="http' not in body
    assert get(url + "?month=March")[0] == 200
    for bad in ("?month=Smarch", "?month=", "?year=1990", "stats.json?month=May"):
        status, body = get(url + bad)
        assert status == 400, bad
        assert len(body.strip().splitlines()) == 1
    for unknown in ("index.html", "stats.json/", "partition-1.json", "../consumer.py"):
        assert get(url + unknown)[0] == 404, unknown
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


# ---------------------------------------------------------------- hostile files and floods
# A dashboard told of a broker nobody answers at: these need no broker (its requests never wait
# for Kafka), and run as a real process.

FLOOD_CLIENTS = 1000
FLOOD_BOUND_SEC = 10  # every one of the flood's requests answered within this, from its start
IDLE_CLIENTS = 400
SLOW_CLIENTS = 20


@pytest.fixture
def dashboard_alone(tmp_path):
    """start(folder) runs files/dashboard.py on `folder` without a broker: (program, port).
    Killed at the end of the test."""
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
        return program, port

    yield start
    for program in started:
        program.kill()


def client_connections(pid, port):
    """How many connections from clients process `pid` holds on `port` (Linux: its sockets'
    inodes among /proc/net/tcp's, the listening socket left out)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    with open(f"/proc/{pid}/net/tcp") as table:
        next(table)
        for line in table:
            fields = line.split()
            local_port, state, inode = int(fields[1].rsplit(":", 1)[1], 16), fields[3], fields[9]
            if local_port == port and state != "0A" and inode in inodes:  # 0A: listening
                count += 1
    return count


def strict(body):
    def refuse(constant):
        raise AssertionError(f"/stats.json holds {constant}, which is not JSON")
    return json.loads(body, parse_constant=refuse)


def test_hostile_files_are_each_named_and_the_rest_is_served_at_once(dashboard_alone, tmp_path):
    folder = tmp_path / "files"
    folder.mkdir()
    century_files(folder)
    good = load(folder / "partition-0.json")
    (folder / "partition-1.json").unlink()
    os.mkfifo(folder / "partition-1.json")
    mixed = load(folder / "partition-2.json")
    first, second = sorted(mixed["March"])[:2]
    mixed["March"][first]["end"] = None  # a string in the other years
    (folder / "partition-2.json").write_text(json.dumps(mixed))
    with open(folder / "partition-3.json", "wb") as f:
        f.truncate(2 * 1024**3)  # sparse: no disk, but 2 GB to read
    program, port = dashboard_alone(folder)
    threads = thread_count(program.pid)

    for _ in range(20):
        started = time.monotonic()
        status, body = get(f"http://localhost:{port}/stats.json")
        took = time.monotonic() - started
        assert status == 200, body
        stats = strict(body)
        assert took < 2, f"/stats.json took {took:.1f} s"
    assert stats["months"] == {m: good[m] for m in dashboard.MONTHS if m in good}
    assert stats["files"]["0"] is None
    assert "FIFO" in stats["files"]["1"]
    assert f"has end None for March {first}" in stats["files"]["2"]
    assert "2,147,483,648 bytes" in stats["files"]["3"]
    for n in "123":
        assert stats["files"][n].startswith("unreadable") and "\n" not in stats["files"][n]
        assert stats["partitions"][n]["offset"] is None
    assert stats["partitions"]["0"]["offset"] == good["offset"]
    assert get(f"http://localhost:{port}/")[0] == 200
    assert thread_count(program.pid) <= threads, "requests left threads behind"
    assert program.stop() == 0 and not program.stderr, program.stderr


def test_head_is_answered_like_get_without_a_body(dashboard_alone, tmp_path):
    century_files(tmp_path)
    program, port = dashboard_alone(tmp_path)
    for path in ("/", "/stats.json", "/?month=May", "/nowhere", "/?month=Smarch"):
        answers = {}
        for method in ("GET", "HEAD"):
            connection = http.client.HTTPConnection("localhost", port, timeout=10)
            connection.request(method, path)
            response = connection.getresponse()
            answers[method] = (response.status, response.getheader("Content-Type"),
                               int(response.getheader("Content-Length")), response.read())
            connection.close()
        status, kind, length, body = answers["GET"]
        assert length == len(body) > 0
        assert answers["HEAD"] == (status, kind, length, b""), path
    assert program.stop() == 0 and not program.stderr, program.stderr


def test_a_flood_of_concurrent_requests_is_all_answered_in_time(dashboard_alone, tmp_path):
    century_files(tmp_path)  # a century of every month: /stats.json is some 140 kB
    program, port = dashboard_alone(tmp_path)
    [single], _ = flood(port, 1)
    assert single.status == 200, single.error
    threads = thread_count(program.pid)

    results, wall = flood(port, FLOOD_CLIENTS, timeout=3 * FLOOD_BOUND_SEC)

    unanswered = [r.error for r in results if r.status is None]
    assert not unanswered, (f"{len(unanswered)} of {FLOOD_CLIENTS} requests got no answer, "
                            f"e.g. {unanswered[0]}")
    assert len(results) == FLOOD_CLIENTS
    assert all(r.status == 200 and r.body == single.body for r in results)
    slowest = max(r.seconds for r in results)
    print(f"\n{FLOOD_CLIENTS} concurrent requests all answered in {wall:.2f} s (slowest "
          f"{slowest:.2f} s; the bound is {FLOOD_BOUND_SEC} s); load average "
          f"{os.getloadavg()[0]:.1f}")
    assert wall <= FLOOD_BOUND_SEC
    assert thread_count(program.pid) <= threads
    assert program.stop() == 0 and not program.stderr, program.stderr


def test_idle_and_slow_clients_cost_no_thread_and_are_dropped(dashboard_alone, tmp_path):
    century_files(tmp_path)
    program, port = dashboard_alone(tmp_path)
    assert get(f"http://localhost:{port}/stats.json")[0] == 200
    threads = thread_count(program.pid)

    idle = [socket.create_connection(("localhost", port)) for _ in range(IDLE_CLIENTS)]
    slow = [socket.create_connection(("localhost", port)) for _ in range(SLOW_CLIENTS)]
    request = b"GET /stats.json HTTP/1.0\r\nHost: localhost\r\n\r\n"
    opened = time.monotonic()
    try:
        # The dashboard has taken every connection in...
        wait_until(lambda: client_connections(program.pid, port) == IDLE_CLIENTS + SLOW_CLIENTS,
                   30, "the dashboard to accept the connections")
        # ...and has no more threads for them, while the slow ones send a byte at a time.
        sent = 0
        for sent in range(8):
            for sock in slow:
                sock.send(request[sent:sent + 1])
            assert thread_count(program.pid) <= threads
            time.sleep(0.25)
        # Meanwhile a normal client is answered at once.
        started = time.monotonic()
        status, body = get(f"http://localhost:{port}/stats.json")
        assert status == 200 and strict(body)["files"]["0"] is None
        assert time.monotonic() - started < 2

        # Then all of them are dropped (end of stream, or reset), the slow ones although they
        # still send: the time for the whole request counts from the connection.
        selector = selectors.DefaultSelector()
        for sock in idle + slow:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
        bound = dashboard.REQUEST_TIMEOUT_SEC + 5
        waiting = len(idle + slow)
        while waiting:
            assert time.monotonic() - opened < bound, (
                f"{waiting} idle or slow connections still open after {bound} s")
            for key, _ in selector.select(0.5):
                try:
                    data = key.fileobj.recv(4096)
                except ConnectionResetError:
                    data = b""
                assert data == b"", f"an idle client got {data[:60]!r}"
                selector.unregister(key.fileobj)
                waiting -= 1
            for sock in slow:  # the slow ones go on sending, a byte a while
                try:
                    sock.send(request[sent:sent + 1])
                except OSError:
                    pass
            sent += 1
        selector.close()
    finally:
        for sock in idle + slow:
            sock.close()
    assert client_connections(program.pid, port) == 0
    assert thread_count(program.pid) <= threads
    assert program.stop() == 0 and not program.stderr, program.stderr
