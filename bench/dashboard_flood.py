#!/usr/bin/env python3
"""files/dashboard.py under a flood: requests per second and latency at 1, 100 and 1,000
concurrent clients, against a real dashboard process. Called by bench.bench's main (section 7
of BENCHMARKS.md), or alone, which fills in only that section of BENCHMARKS.md:

    PYTHONPATH=files .venv/bin/python -m bench.dashboard_flood [--seconds 5] [--out FILE]

No broker is needed: the dashboard's requests never wait for Kafka (it asks the broker in a
thread of its own; here nobody answers at the address it is given, so its end offsets are
null). It serves a century of all twelve months in four partition files written with
consumer.py's own json_text().

flood() is the client, also used by tests/test_dashboard.py: one thread and a selector drive
every connection at once, each client making its requests one after another (a new connection
each: the dashboard answers HTTP/1.0 and closes).
"""

import argparse
import errno
import os
import random
import resource
import selectors
import socket
import string
import sys
import tempfile
import time
from pathlib import Path

from tools import harness
from tools.harness import FILES, ROOT

CLIENTS = (1, 100, 1000)
SECONDS = 5.0
YEARS = 100
SECTION = "## 7. Dashboard under a flood"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")


def say(text):
    print(f"bench.dashboard_flood: {text}", flush=True)


class Result:
    """One request: its status (None when it got no answer), latency and body."""
    __slots__ = ("status", "seconds", "headers", "body", "error")

    def __init__(self, status=None, seconds=None, headers=b"", body=b"", error=None):
        self.status, self.seconds, self.headers = status, seconds, headers
        self.body, self.error = body, error


class _Client:
    __slots__ = ("sock", "started", "buffer", "left", "sent")

    def __init__(self, left):
        self.sock, self.started, self.buffer, self.left, self.sent = None, 0.0, bytearray(), \
            left, False


def _answer(client, now):
    head, _, body = bytes(client.buffer).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit():
        return Result(seconds=now - client.started, error=f"no HTTP answer: {head[:60]!r}")
    return Result(int(status_line[1]), now - client.started, head, body)


def raise_open_files(count):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (count if hard == resource.RLIM_INFINITY else min(count, hard), hard))


def flood(port, clients, requests_each=1, seconds=None, path="/stats.json", method="GET",
          timeout=60.0, host="127.0.0.1"):
    """`clients` clients at once, each making requests one after another: `requests_each` of
    them, or as many as it starts within `seconds` when that is given. Returns (results, wall
    seconds): a Result per request started, one without a status for a request that got no
    answer within `timeout` of the flood's start (or was refused or reset)."""
    raise_open_files(clients + 256)
    request = f"{method} {path} HTTP/1.0\r\nHost: {host}:{port}\r\n\r\n".encode()
    selector = selectors.DefaultSelector()
    results = []
    began = time.monotonic()
    stop_starting = began + seconds if seconds is not None else None
    deadline = began + timeout
    active = set()

    def start(client):
        if client.left == 0 or (stop_starting is not None and time.monotonic() >= stop_starting):
            return
        client.left -= 1
        client.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.sock.setblocking(False)
        client.buffer, client.sent = bytearray(), False
        client.started = time.monotonic()
        code = client.sock.connect_ex((host, port))
        if code not in (0, errno.EINPROGRESS):
            finish(client, Result(seconds=0.0, error=os.strerror(code)))
            return
        selector.register(client.sock, selectors.EVENT_WRITE, client)
        active.add(client)

    def finish(client, result):
        results.append(result)
        if client in active:
            selector.unregister(client.sock)
            active.discard(client)
        client.sock.close()
        if result.status is not None:  # a failure ends that client (and fails the bench)
            start(client)

    for _ in range(clients):
        start(_Client(requests_each if seconds is None else -1))
    while active:
        now = time.monotonic()
        if now >= deadline:
            for client in list(active):
                results.append(Result(seconds=now - client.started,
                                      error=f"no answer within {timeout:g} s"))
                selector.unregister(client.sock)
                client.sock.close()
            active.clear()
            break
        for key, _ in selector.select(min(1.0, deadline - now)):
            client = key.data
            if not client.sent:
                code = client.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if code:
                    finish(client, Result(seconds=time.monotonic() - client.started,
                                          error=os.strerror(code)))
                    continue
                try:
                    client.sock.sendall(request)  # a few dozen bytes: the buffer takes them
                except OSError as err:
                    finish(client, Result(seconds=time.monotonic() - client.started,
                                          error=str(err)))
                    continue
                client.sent = True
                selector.modify(client.sock, selectors.EVENT_READ, client)
                continue
            try:
                data = client.sock.recv(256 * 1024)
            except BlockingIOError:
                continue
            except OSError as err:
                finish(client, Result(seconds=time.monotonic() - client.started,
                                      error=str(err)))
                continue
            if data:
                client.buffer += data
            else:
                finish(client, _answer(client, time.monotonic()))
    selector.close()
    return results, time.monotonic() - began


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


# ---------------------------------------------------------------- the measurement

def century_files(folder, years=YEARS, seed=7):
    """Four partition files as consumer.py writes them (its json_text), a century of every
    month, month i in partition i % 4."""
    import p7common  # files/p7common.py (PYTHONPATH=files): the partition files' writer
    rng = random.Random(seed)
    files = {n: {"partition": n, "offset": 0} for n in range(4)}
    for i, month in enumerate(MONTHS):
        data = files[i % 4]
        data[month] = {}
        for year in range(1990, 1990 + years):
            days = 28 if i == 1 else 30
            total = sum(rng.uniform(-20, 100) for _ in range(days))
            data[month][str(year)] = {"count": days, "sum": total, "avg": total / days,
                                      "start": f"{year}-{i + 1:02d}-01",
                                      "end": f"{year}-{i + 1:02d}-{days:02d}"}
            data["offset"] += days
    for n, data in files.items():
        (Path(folder) / f"partition-{n}.json").write_text(p7common.json_text(data))


def thread_count(pid):
    """How many threads process `pid` has now (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError(f"no thread count in /proc/{pid}/status")


def cpu_seconds(pid):
    """User + system CPU time process `pid` has used so far, all its threads (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_dashboard(folder, log_dir):
    """A dashboard process serving `folder`, told of a broker nobody answers for: (program,
    port)."""
    port = harness.free_port()
    env = dict(os.environ, KAFKA_BOOTSTRAP=f"localhost:{harness.free_port()}",
               PYTHONUNBUFFERED="1")
    program = harness.Program(FILES / "dashboard.py", ["--port", port, "--dir", folder],
                              log_dir, env=env)
    harness.wait_until(lambda: "serving http" in program.stdout or not program.running(), 30,
                       "the dashboard to listen")
    if not program.running():
        program.kill()
        raise RuntimeError(f"the dashboard did not start: {program.tail()}")
    return program, port


def bench_dashboard(workdir, seconds=SECONDS, clients=CLIENTS):
    """{clients: {"rate", "p50", "p99", "max", "requests"}} and what was served, for a
    dashboard process flooded by each number of clients in turn for `seconds`. Every answer
    must be 200 with the body a single request got first (the files do not change)."""
    folder = Path(workdir) / "dashboard-files"
    folder.mkdir(parents=True, exist_ok=True)
    century_files(folder)
    program, port = start_dashboard(folder, workdir)
    try:
        threads_before = thread_count(program.pid)
        [first], _ = flood(port, 1)
        if first.status != 200:
            raise RuntimeError(f"the dashboard answered {first.status} ({first.error})")
        figures = {}
        for count in clients:
            cpu = cpu_seconds(program.pid)
            results, wall = flood(port, count, seconds=seconds)
            cpu = cpu_seconds(program.pid) - cpu
            bad = [r for r in results if r.status != 200 or r.body != first.body]
            if bad:
                raise RuntimeError(f"{len(bad)} of {len(results)} requests at {count} clients "
                                   f"got no right answer, e.g. {bad[0].status} {bad[0].error}")
            latencies = [r.seconds for r in results]
            figures[count] = {"requests": len(results), "seconds": wall,
                              "rate": len(results) / wall,
                              "p50": percentile(latencies, 0.50),
                              "p99": percentile(latencies, 0.99), "max": max(latencies),
                              "cpu_ms": cpu / len(results) * 1000}
            say(f"{count:>5} clients: {figures[count]['rate']:,.0f} requests/s, p99 "
                f"{figures[count]['p99'] * 1000:.0f} ms ({len(results):,} requests)")
        threads = thread_count(program.pid)
    finally:
        code = program.stop()
    if code != 0 or "Traceback" in program.stderr:
        raise RuntimeError(f"the dashboard exited {code}: {program.tail()}")
    return {"clients": figures, "seconds": seconds, "body_bytes": len(first.body),
            "threads_before": threads_before, "threads": threads, "years": YEARS,
            "load": os.getloadavg()}


# ---------------------------------------------------------------- BENCHMARKS.md's section

def section_values(d, date):
    """The template's ${placeholders} of section 7 from bench_dashboard's result."""
    figures = d["clients"]
    least, most = min(figures), max(figures)
    rows = "\n".join(
        f"| {count:,} | {f['rate']:,.0f} | {f['p50'] * 1000:.1f} ms | {f['p99'] * 1000:.1f} ms "
        f"| {f['max'] * 1000:.0f} ms | {f['requests']:,} | {f['cpu_ms']:.2f} ms |"
        for count, f in sorted(d["clients"].items()))
    return {"dashboard_date": date, "dashboard_rows": rows,
            "dashboard_seconds": f"{d['seconds']:g}",
            "dashboard_kib": f"{d['body_bytes'] / 1024:.0f}",
            "dashboard_threads_before": d["threads_before"], "dashboard_threads": d["threads"],
            "dashboard_years": d["years"], "dashboard_load": f"{d['load'][0]:.1f}",
            "dashboard_rate_ratio": f"{figures[most]['rate'] / figures[least]['rate']:.2f}",
            "dashboard_most": f"{most:,}"}


def template_section():
    """Section 7 of bench/BENCHMARKS.template.md: from its heading to the next one."""
    text = (ROOT / "bench" / "BENCHMARKS.template.md").read_text()
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    return text[start:] if end < 0 else text[start:end + 1]


def write_section(out, values):
    """Fills in section 7 alone and puts it in `out` in place of the one there (or before
    "## Method", or at the end)."""
    section = string.Template(template_section()).substitute(values)
    current = out.read_text() if out.exists() else ""
    if SECTION in current:
        start = current.index(SECTION)
        end = current.find("\n## ", start + len(SECTION))
        rest = "" if end < 0 else current[end + 1:]
        out.write_text(current[:start] + section.rstrip("\n") + "\n" + ("\n" + rest.lstrip("\n")
                                                                       if rest else ""))
    elif "\n## Method\n" in current:
        before, after = current.split("\n## Method\n", 1)
        out.write_text(before.rstrip("\n") + "\n\n" + section + "## Method\n" + after)
    else:
        out.write_text(current.rstrip("\n") + "\n\n" + section)


def main(argv=None):
    parser = argparse.ArgumentParser(description="The dashboard under a flood of requests.")
    parser.add_argument("--seconds", type=float, default=SECONDS,
                        help=f"how long each number of clients runs (default {SECONDS:g})")
    parser.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md",
                        help="the file whose section 7 is replaced (default BENCHMARKS.md)")
    args = parser.parse_args(argv)
    date = time.strftime("%Y-%m-%d %H:%M %Z")
    with tempfile.TemporaryDirectory(prefix="p7-bench-dashboard-") as workdir:
        try:
            figures = bench_dashboard(workdir, args.seconds)
        except (RuntimeError, AssertionError, harness.ProgramTimeout) as err:
            print(f"bench.dashboard_flood: error: {err}", file=sys.stderr)
            return 1
    write_section(args.out, section_values(figures, date))
    say(f"wrote {SECTION[3:]!r} into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
