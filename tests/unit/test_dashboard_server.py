"""files/dashboard.py as a real process told of a broker nobody answers at (its requests never
wait for Kafka): hostile partition files are each named and the rest served at once, HEAD is
answered like GET, a flood of requests is all answered in time, and idle or slow clients cost no
thread and are dropped (conftest.py's dashboard_alone starts it). With the real broker and a
browser: tests/test_dashboard.py."""

import http.client
import json
import os
import selectors
import socket
import time

from bench.dashboard_flood import century_files, flood, thread_count
from helpers import http_get, load
from tools.harness import wait_until

import dashboard  # files/dashboard.py, for its constants only

FLOOD_CLIENTS = 1000
FLOOD_BOUND_SEC = 10  # every one of the flood's requests answered within this, from its start
IDLE_CLIENTS = 400
SLOW_CLIENTS = 20


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
        status, body = http_get(f"http://localhost:{port}/stats.json")
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
    assert http_get(f"http://localhost:{port}/")[0] == 200
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
    assert http_get(f"http://localhost:{port}/stats.json")[0] == 200
    threads = thread_count(program.pid)

    idle = [socket.create_connection(("localhost", port)) for _ in range(IDLE_CLIENTS)]
    slow = [socket.create_connection(("localhost", port)) for _ in range(SLOW_CLIENTS)]
    request = b"GET /stats.json HTTP/1.0\r\nHost: localhost\r\n\r\n"
    opened = time.monotonic()
    try:
        # The dashboard has taken every connection in...
        wait_until(lambda: client_connections(program.pid, port) == IDLE_CLIENTS + SLOW_CLIENTS,
                   30, "the dashboard to accept the connections")
        # ...and has no more threads for them, while the slow ones send a byte at a time (never
        # the request's last byte: however slow this machine, theirs stays unfinished).
        sent = 0
        for sent in range(8):
            for sock in slow:
                sock.send(request[sent:sent + 1])
            assert thread_count(program.pid) <= threads
            time.sleep(0.25)
        sent, last_byte = sent + 1, time.monotonic()
        # Meanwhile a normal client is answered at once.
        started = time.monotonic()
        status, body = http_get(f"http://localhost:{port}/stats.json")
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
            if sent < len(request) - 1 and time.monotonic() - last_byte >= 0.5:
                for sock in slow:  # the slow ones go on sending, a byte every half second
                    try:
                        sock.send(request[sent:sent + 1])
                    except OSError:
                        pass
                sent, last_byte = sent + 1, time.monotonic()
        selector.close()
    finally:
        for sock in idle + slow:
            sock.close()
    assert client_connections(program.pid, port) == 0
    assert thread_count(program.pid) <= threads
    assert program.stop() == 0 and not program.stderr, program.stderr
