"""The web dashboard the partition files are for (the assignment: "for use on a web dashboard").

    python3 dashboard.py                    # http://localhost:8544/
    python3 dashboard.py --port 8600 --dir /files
    docker exec -d p7 python3 /files/dashboard.py   # with docker run ... -p 8544:8544

A standard-library HTTP server. It reads only the partition files consumer.py replaces
atomically, again whenever one has changed, so it always shows a consistent file, and it never
stops or waits on a missing, special, oversized or malformed one (it says which, in a sentence).
The page draws its chart itself (SVG, no CDN, works offline) and fetches /stats.json every few
seconds, updating in place without reloading. One thread waits on every connection, a few build
the answers: a flood of requests, or of idle or slow clients, costs no thread each (Server).

GET /            the page; ?month=March selects the month shown first (default January)
                 (HEAD: the same answers without their bodies)
GET /stats.json  {"months": {MONTH: {YEAR: {"count", "sum", "avg", "start", "end"}}},
                  "partitions": {N: {"offset", "end_offset", "lag"}}, "newest_date": "YYYY-MM-DD",
                  "files": {N: null or why it could not be read}, "last_changed": ISO time}
Unknown paths get 404, bad parameters 400. end_offset and lag are null while the broker cannot
be reached: a background thread asks it, so a request never waits for Kafka. Ctrl-C or SIGTERM
exits 0.
"""

try:
    import p7common  # first: importing it installs the early Ctrl-C guard (see there)
except KeyboardInterrupt:  # a Ctrl-C before even that: nothing has started yet
    raise SystemExit(0) from None

import argparse
import datetime
import errno
import html
import io
import json
import os
import queue
import resource
import selectors
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

from p7common import (BROKER, MONTHS, OUT_DIR, PARTITIONS, STAT_KEYS, TOPIC, Refused,
                      partition_path, stop)

# Natively only this machine may look; the p7 image sets P7_LISTEN_HOST=0.0.0.0 (as for the
# broker) so that `docker run -p 8544:8544` reaches it from the host.
LISTEN_HOST = os.environ.get("P7_LISTEN_HOST", "127.0.0.1")
DEFAULT_PORT = 8544
DEFAULT_MONTH = "January"
PAGE_REFRESH_MS = 2000
# How often the background thread asks the broker for the topic's end offsets, and how long one
# question may take: a broker that went away makes them null within a few seconds.
END_OFFSETS_EVERY_SEC = 2
KAFKA_TIMEOUT_MS = 2000

KAFKA_CONFIG = {
    "client_id": "p7-dashboard",
    "group_id": None,  # only end offsets are asked; nothing is consumed or committed
    "enable_auto_commit": False,
    # The one client waits for the broker as long as it takes (in the background thread):
    # kafka-python starts a thread per client before it bootstraps and leaves it running when
    # bootstrapping fails, so a new client every few seconds would add a thread every time.
    "bootstrap_timeout_ms": None,
    "reconnect_backoff_max_ms": 1000,
}


class BadRequest(Exception):
    """A parameter we cannot serve; answered with 400 and this sentence."""


# ---------------------------------------------------------------- reading the partition files

def load_partition(folder, partition_num):
    """(data, None) for a readable partition file, (None, why) otherwise: why is one sentence,
    whatever the file is or holds."""
    try:
        return p7common.read_partition(folder, partition_num), None
    except FileNotFoundError:
        return None, "missing (consumer.py has not written it yet)"
    except Refused as err:  # p7common.partition_problem's rule, or no regular file
        return None, f"unreadable: it {err}"
    except OSError as err:
        return None, f"unreadable ({err.strerror or err})"


def last_changed(folder):
    """When a partition file was last replaced (ISO time, UTC), None if there is none."""
    times = []
    for n in range(PARTITIONS):
        try:
            times.append(os.stat(partition_path(folder, n)).st_mtime)
        except OSError:
            pass
    return iso_time(max(times)) if times else None


def iso_time(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(
        timespec="seconds")


def merge_stats(files, end_offsets):
    """The /stats.json dict from {partition: data or None} and {partition: end offset} (None
    when the broker cannot be reached). A month lives in one partition (its key picks it); if
    two files held it, the lower partition wins, as plot.py's search would find it."""
    months = {}
    partitions = {}
    for n in range(PARTITIONS):
        data = files.get(n)
        offset = data["offset"] if data else None
        end = end_offsets.get(n) if end_offsets else None
        # The end offsets were asked up to a few seconds before the file was read: a consumer
        # may already be past them. Behind by nothing, then, not by a negative count.
        lag = max(0, end - offset) if end is not None and offset is not None else None
        partitions[str(n)] = {"offset": offset, "end_offset": end, "lag": lag}
        for month in MONTHS:
            if data and month in data and month not in months:
                months[month] = {year: {key: stats[key] for key in STAT_KEYS}
                                 for year, stats in sorted(data[month].items())}
    ends = [stats["end"] for years in months.values() for stats in years.values()]
    return {"months": {month: months[month] for month in MONTHS if month in months},
            "partitions": partitions,
            "newest_date": max(ends, default=None)}


def collect_stats(folder, end_offsets):
    """merge_stats of the files as they are now, with which could not be read and when they
    last changed."""
    files, problems = {}, {}
    for n in range(PARTITIONS):
        files[n], problems[str(n)] = load_partition(folder, n)
    stats = merge_stats(files, end_offsets)
    stats["files"] = problems
    stats["last_changed"] = last_changed(folder)
    return stats


def stats_body(stats):
    """/stats.json's bytes: strict JSON (partition_problem lets no NaN or Infinity through)."""
    return json.dumps(stats, allow_nan=False).encode()


# A file replaced twice within the filesystem's timestamp granularity (a few ms), the same size
# and a recycled inode, would keep its mark while its contents changed. So a file read less
# than RACY_NS after it changed is trusted only RACY_REREAD_NS and then read again.
RACY_NS = 1_000_000_000
RACY_REREAD_NS = 500_000_000


class StatsCache:
    """/stats.json kept between requests. A partition file is read again only when its mark
    (device, inode, type and mode, size, mtime and ctime in ns) changed, or it is one that
    changed just before it was read (RACY_NS); the files are merged again only when one was
    read again or the end offsets changed. So a request the files have not changed for costs
    four stat calls and no read, and a flood of them the same. It answers what collect_stats
    would answer at that moment, except for a file rewritten under the same mark (see
    RACY_NS), whose new contents show up to RACY_REREAD_NS late. One request reads and merges
    at a time: the ones waiting then find it done."""

    def __init__(self, folder):
        self.folder = folder
        self.lock = threading.Lock()
        self.entries = {}  # partition -> (mark, read at (ns), read number, (data, why))
        self.reads = 0
        self.body_key = self.body_bytes = None

    def _file(self, n, now_ns):
        """((data, why), what identifies this reading of it, mtime in ns or None)."""
        try:
            info = os.stat(partition_path(self.folder, n))
        except OSError:
            self.entries.pop(n, None)
            loaded = load_partition(self.folder, n)  # missing or refused: says why
            if loaded[0] is not None:  # it appeared since: this reading is like no other
                self.reads += 1
                return loaded, self.reads, None
            return loaded, ("uncached", loaded[1]), None
        mark = (info.st_dev, info.st_ino, info.st_mode, info.st_size, info.st_mtime_ns,
                info.st_ctime_ns)
        entry = self.entries.get(n)
        changed_ns = max(info.st_mtime_ns, info.st_ctime_ns)
        if entry is None or entry[0] != mark or (
                entry[1] - changed_ns < RACY_NS and now_ns - entry[1] >= RACY_REREAD_NS):
            self.reads += 1
            entry = self.entries[n] = (mark, now_ns, self.reads, load_partition(self.folder, n))
        return entry[3], entry[2], info.st_mtime_ns

    def body(self, end_offsets):
        """The bytes of /stats.json with the files as they are now."""
        with self.lock:
            now_ns = time.time_ns()
            files, problems, reads, mtimes = {}, {}, [], []
            for n in range(PARTITIONS):
                (files[n], problems[str(n)]), read, mtime_ns = self._file(n, now_ns)
                reads.append(read)
                if mtime_ns is not None:
                    mtimes.append(mtime_ns)
            key = (tuple(reads), tuple(sorted(end_offsets.items())) if end_offsets else None,
                   max(mtimes, default=None))
            if key != self.body_key:
                stats = merge_stats(files, end_offsets)
                stats["files"] = problems
                stats["last_changed"] = iso_time(max(mtimes) / 1e9) if mtimes else None
                self.body_key, self.body_bytes = key, stats_body(stats)
            return self.body_bytes


# ---------------------------------------------------------------- the broker's end offsets

class EndOffsets(threading.Thread):
    """Asks the broker for the topic's end offsets every few seconds; `latest` is the last
    answer, or None while the broker does not answer (requests never wait for Kafka)."""

    def __init__(self, broker):
        super().__init__(name="end-offsets", daemon=True)
        self.broker = broker
        self.latest = None
        self.stopping = threading.Event()

    def run(self):
        consumer = None
        while not self.stopping.is_set():
            try:
                if consumer is None:
                    consumer = KafkaConsumer(bootstrap_servers=self.broker.split(","),
                                             **KAFKA_CONFIG)
                tps = [TopicPartition(TOPIC, n) for n in range(PARTITIONS)]
                answer = consumer.end_offsets(tps, timeout_ms=KAFKA_TIMEOUT_MS)
                self.latest = {tp.partition: offset for tp, offset in answer.items()}
            except (KafkaError, OSError, ValueError):
                # ValueError: kafka-python's answer when the topic does not exist (yet).
                self.latest = None
            self.stopping.wait(END_OFFSETS_EVERY_SEC)
        if consumer is not None:
            consumer.close()

    def stop(self):
        self.stopping.set()


# ---------------------------------------------------------------- the HTTP side

# A flood of connections waits in the kernel's queue until the loop accepts it, instead of being
# dropped (and retried by the client a second, then three, then seven seconds later).
LISTEN_BACKLOG = 1024
# The threads that build answers. A connection costs none: one loop waits on all of them.
WORKERS = 4
# From its accept to its request's last header line, and to take the whole answer: a client
# slower than that (or idle) is disconnected. A browser on this machine needs milliseconds.
REQUEST_TIMEOUT_SEC = 10
WRITE_TIMEOUT_SEC = 10
MAX_REQUEST_HEAD = 64 * 1024
# Open connections at most; more wait in the listen backlog until some close.
MAX_CONNECTIONS = 4096
SPARE_FDS = 64  # for the files, the broker's connection, the loop's own sockets
SWEEP_SEC = 0.25  # how often the loop looks for clients past their deadline
RECEIVE_BYTES = 16 * 1024


def parse_month(query):
    """The month of `?month=...` ("" or absent: January); BadRequest for anything else."""
    params = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(params) - {"month"})
    if unknown:
        raise BadRequest(f"unknown parameter {unknown[0]!r}; the page takes only month")
    values = params.get("month", [DEFAULT_MONTH])
    if len(values) != 1 or values[0] not in MONTHS:
        raise BadRequest(f"month must be one of {', '.join(MONTHS)} (got {values!r})")
    return values[0]


def page(month):
    options = "".join(f'<option{" selected" if m == month else ""}>{m}</option>'
                      for m in MONTHS)
    return (PAGE_HTML.replace("@OPTIONS@", options)
            .replace("@REFRESH_MS@", str(PAGE_REFRESH_MS))
            .replace("@MONTH@", html.escape(month)))


class Handler(BaseHTTPRequestHandler):
    """One request, whose head the loop has already received whole (`request`: its bytes);
    the answer is written to memory, for the loop to send."""

    server_version = "p7-dashboard"

    def setup(self):
        self.rfile = io.BytesIO(self.request)
        self.wfile = io.BytesIO()

    def finish(self):
        pass

    def do_GET(self):
        url = urlsplit(self.path)
        try:
            if url.path == "/":
                self.reply(200, "text/html; charset=utf-8", page(parse_month(url.query)).encode())
            elif url.path == "/stats.json":
                if url.query:
                    raise BadRequest("/stats.json takes no parameters")
                self.reply(200, "application/json",
                           self.server.stats.body(self.server.end_offsets.latest))
            else:
                self.reply(404, "text/plain; charset=utf-8",
                           f"{url.path} is not here: try / or /stats.json\n".encode())
        except BadRequest as err:
            self.reply(400, "text/plain; charset=utf-8", f"{err}\n".encode())

    def do_HEAD(self):
        self.do_GET()  # reply() leaves the body out

    def reply(self, status, content_type, data):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format, *args):
        pass  # one line per request every two seconds per open page would drown the log


class Connection:
    """A client's socket and where its request stands."""
    __slots__ = ("sock", "address", "state", "head", "answer", "sent", "deadline")

    def __init__(self, sock, address):
        self.sock, self.address = sock, address
        # "receiving" (the loop's), "working" (a worker's), "answered" (queued for the loop),
        # "sending" (the loop's again)
        self.state = "receiving"
        self.head = bytearray()
        self.answer, self.sent = b"", 0
        self.deadline = time.monotonic() + REQUEST_TIMEOUT_SEC


def connection_limit():
    """MAX_CONNECTIONS, or fewer if the open-files limit cannot be raised that far."""
    want = MAX_CONNECTIONS + SPARE_FDS
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft != resource.RLIM_INFINITY and soft < want:
            soft = want if hard == resource.RLIM_INFINITY else min(want, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    except (ValueError, OSError):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(8, min(MAX_CONNECTIONS, soft - SPARE_FDS))


class Server:
    """The dashboard's HTTP server. One thread (serve_forever) waits on the listening socket
    and on every connection at once (selectors): a connection costs a socket and no thread
    while its request arrives, however slowly. A request whose head has arrived whole goes to
    one of WORKERS threads, which builds the answer in memory; the loop sends it as the client
    takes it and closes the connection (HTTP/1.0). A client that has not sent its request
    REQUEST_TIMEOUT_SEC after connecting, or not taken its answer WRITE_TIMEOUT_SEC after it
    was ready, is disconnected. Threads: this loop and WORKERS, whatever the clients do."""

    def __init__(self, host, port, folder, end_offsets):
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.listener.bind((host, port))
            self.listener.listen(LISTEN_BACKLOG)
        except OSError:
            self.listener.close()
            raise
        self.listener.setblocking(False)
        self.stats = StatsCache(folder)
        self.end_offsets = end_offsets
        self.max_connections = connection_limit()
        self.selector = selectors.DefaultSelector()
        self.wake_reader, self.wake_writer = socket.socketpair()
        self.wake_reader.setblocking(False)
        self.wake_writer.setblocking(False)
        self.work = queue.SimpleQueue()   # connections whose answer is to be built
        self.ready = queue.SimpleQueue()  # connections whose answer the loop is to send
        self.open = set()                 # every connection not yet closed (the loop's own)
        self.stopping = threading.Event()
        self.workers = [threading.Thread(target=self._worker, name=f"http-worker-{i}",
                                         daemon=True) for i in range(WORKERS)]

    # -- the loop's thread

    def serve_forever(self):
        for worker in self.workers:
            worker.start()
        self.selector.register(self.wake_reader, selectors.EVENT_READ)
        accepting = paused_until = False
        next_sweep = time.monotonic() + SWEEP_SEC
        while not self.stopping.is_set():
            now = time.monotonic()
            want = len(self.open) < self.max_connections and not (paused_until
                                                                  and now < paused_until)
            if want != accepting:
                if want:
                    self.selector.register(self.listener, selectors.EVENT_READ)
                else:
                    self.selector.unregister(self.listener)
                accepting = want
            for key, events in self.selector.select(SWEEP_SEC):
                if key.fileobj is self.listener:
                    paused_until = self._accept()
                elif key.fileobj is self.wake_reader:
                    self._drain_wakes()
                elif events & selectors.EVENT_READ:
                    self._receive(key.data)
                else:
                    self._send(key.data)
            self._take_ready()
            now = time.monotonic()
            if now >= next_sweep:
                for conn in [c for c in self.open if c.deadline < now
                             and c.state in ("receiving", "sending")]:
                    self._close(conn)
                next_sweep = now + SWEEP_SEC
        for conn in list(self.open):
            self._close(conn)

    def _accept(self):
        """Accepts what waits, up to the limit; the time until which to stop accepting when
        the process ran out of file descriptors, else False."""
        while len(self.open) < self.max_connections:
            try:
                sock, address = self.listener.accept()
            except BlockingIOError:
                return False
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    return time.monotonic() + SWEEP_SEC  # the backlog keeps them meanwhile
                continue  # a connection reset before it was accepted
            sock.setblocking(False)
            conn = Connection(sock, address)
            self.open.add(conn)
            self.selector.register(sock, selectors.EVENT_READ, conn)
        return False

    def _receive(self, conn):
        try:
            data = conn.sock.recv(RECEIVE_BYTES)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)
            return
        conn.head += data
        if b"\r\n\r\n" in conn.head or b"\n\n" in conn.head \
                or len(conn.head) >= MAX_REQUEST_HEAD:
            self.selector.unregister(conn.sock)
            conn.state = "working"
            self.work.put(conn)

    def _take_ready(self):
        while True:
            try:
                conn = self.ready.get_nowait()
            except queue.Empty:
                return
            if conn.sent >= len(conn.answer):
                self._close(conn)
            else:
                conn.state = "sending"
                conn.deadline = time.monotonic() + WRITE_TIMEOUT_SEC
                self.selector.register(conn.sock, selectors.EVENT_WRITE, conn)

    def _send(self, conn):
        try:
            conn.sent += conn.sock.send(conn.answer[conn.sent:])
        except BlockingIOError:
            return
        except OSError:
            conn.sent = len(conn.answer)  # the client went away: nothing more to send
        if conn.sent >= len(conn.answer):
            self._close(conn)

    def _close(self, conn):
        if conn.state in ("receiving", "sending"):
            self.selector.unregister(conn.sock)
        self.open.discard(conn)
        conn.sock.close()

    def _drain_wakes(self):
        try:
            while self.wake_reader.recv(4096):
                pass
        except BlockingIOError:
            pass

    # -- the workers' threads

    def _worker(self):
        while True:
            conn = self.work.get()
            if conn is None:
                return
            try:
                handler = Handler(bytes(conn.head), conn.address, self)
                answer = handler.wfile.getvalue()
            except Exception as err:  # a bug must cost one answer, not the server
                print(f"dashboard: error: answering {bytes(conn.head[:80])!r}: {err!r}",
                      file=sys.stderr, flush=True)
                answer = (b"HTTP/1.0 500 Internal Server Error\r\nContent-Type: text/plain"
                          b"\r\nContent-Length: 22\r\n\r\nthe dashboard failed.\n")
            conn.answer = memoryview(answer)
            try:  # most answers fit in the socket's buffer at once
                conn.sent = conn.sock.send(conn.answer)
            except BlockingIOError:
                pass
            except OSError:
                conn.sent = len(answer)
            conn.state = "answered"
            self.ready.put(conn)
            self._wake()

    def _wake(self):
        try:
            self.wake_writer.send(b"x")
        except OSError:
            pass  # wakes are pending already (or the loop has closed: stopping)

    # -- from other threads

    def shutdown(self):
        """Stops serve_forever (from another thread) and the workers."""
        self.stopping.set()
        self._wake()
        for _ in self.workers:
            self.work.put(None)

    def server_close(self):
        self.listener.close()
        self.selector.close()
        self.wake_reader.close()
        self.wake_writer.close()


# ---------------------------------------------------------------- main

def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Serve a live web page of the partition files consumer.py keeps.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"TCP port to listen on (default {DEFAULT_PORT})")
    parser.add_argument("--dir", default=OUT_DIR,
                        help="folder of the partition files (default: next to dashboard.py)")
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be between 1 and 65535 (got {args.port})")
    if not os.path.isdir(args.dir):
        parser.error(f"--dir {args.dir} is not a folder")
    problem = p7common.bootstrap_problem(BROKER)
    if problem:
        parser.error(problem)
    return args


def main(argv=None):
    args = parse_args(argv)
    end_offsets = EndOffsets(BROKER)
    try:
        server = Server(LISTEN_HOST, args.port, args.dir, end_offsets)
    except OSError as err:
        print(f"dashboard: error: cannot listen on {LISTEN_HOST}:{args.port} "
              f"({err.strerror or err})", file=sys.stderr)
        return 1
    # serve_forever() runs in a thread of its own: shutdown() must come from another thread,
    # and the main thread stays free to wait for a signal.
    stop.install()
    server.end_offsets.start()
    serving = threading.Thread(target=server.serve_forever, name="http")
    serving.start()
    shown_host = "localhost" if LISTEN_HOST == "127.0.0.1" else LISTEN_HOST
    print(f"dashboard: serving http://{shown_host}:{args.port}/ from {args.dir}", flush=True)
    while not stop.wait(60):
        pass
    server.shutdown()
    serving.join()
    server.server_close()
    server.end_offsets.stop()
    print("dashboard: stopped", flush=True)
    return 0


PAGE_HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>P7 weather dashboard</title>
<style>
 body { font: 14px sans-serif; margin: 1.5em; color: #222; }
 h1 { font-size: 1.4em; margin: 0 0 .3em; }
 .status { color: #555; margin-bottom: 1em; }
 .warn { color: #b00; font-weight: bold; }
 table { border-collapse: collapse; margin: .5em 1.5em 1em 0; display: inline-table;
         vertical-align: top; }
 th, td { border: 1px solid #ccc; padding: 2px 8px; text-align: right; }
 th { background: #f0f0f0; }
 td:first-child { text-align: left; }
 .scroll { display: inline-block; max-height: 300px; overflow-y: auto; vertical-align: top; }
 .scroll table { margin-top: 0; }
 #chart rect { fill: #1f77b4; }
 #chart text { font-size: 11px; fill: #333; }
 #chart line { stroke: #999; }
</style></head>
<body>
<h1>P7: Kafka, Weather Data</h1>
<div class="status">newest date <b id="newest">-</b> &middot; data last changed
 <b id="changed">-</b> &middot; page updated <span id="updated">never</span>
 <span id="warning" class="warn"></span></div>
<label>Month <select id="month">@OPTIONS@</select></label>
<h2 id="chart-title" style="font-size:1.1em">Avg. Max Temperatures per year: @MONTH@</h2>
<svg id="chart" width="900" height="300" role="img" aria-label="yearly averages"></svg>
<div class="scroll"><table id="yearly"><thead><tr><th>year</th><th>avg</th></tr></thead>
<tbody></tbody></table></div>
<div>
<table id="months"><thead><tr><th>month</th><th>latest year</th><th>count</th><th>avg</th>
 <th>start</th><th>end</th></tr></thead><tbody></tbody></table>
<table id="partitions"><thead><tr><th>partition</th><th>offset</th><th>end offset</th>
 <th>lag</th><th>file</th></tr></thead><tbody></tbody></table>
</div>
<script>
"use strict";
const REFRESH_MS = @REFRESH_MS@;
const SVG = "http://www.w3.org/2000/svg";
let latest = null;

function cell(row, text) { row.insertCell().textContent = text; }
function show(value) { return value === null || value === undefined ? "-" : String(value); }

// Rows are rebuilt off-screen and swapped in whole: no flicker, no half-updated table.
function fillTable(id, rows) {
  const body = document.createElement("tbody");
  for (const values of rows) {
    const row = body.insertRow();
    values.forEach(v => cell(row, v));
  }
  document.querySelector("#" + id + " tbody").replaceWith(body);
}

// Tick spacing of 1, 2 or 5 times a power of ten: about five ticks over the range.
function niceStep(rough) {
  const power = Math.pow(10, Math.floor(Math.log10(rough)));
  const fraction = rough / power;
  return (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
}

function tickText(value, step) {
  if (Math.abs(value) >= 1e6) return value.toExponential(1);
  return value.toFixed(Math.min(6, Math.max(0, -Math.floor(Math.log10(step)))));
}

// Bars start at zero: up for a positive average, down for a negative one, all on one scale.
// Halves of the values are used for the range, so that it stays finite up to 1e308.
function drawChart(month, years) {
  const svg = document.getElementById("chart");
  const width = svg.width.baseVal.value, height = svg.height.baseVal.value;
  const left = 64, bottom = 20, top = 10;
  const points = Object.keys(years).sort().map(y => [y, years[y].avg]);
  const chart = document.createElementNS(SVG, "g");
  const step = niceStep(Math.max(0.5, Math.max(0, ...points.map(p => p[1] / 2))
                                      - Math.min(0, ...points.map(p => p[1] / 2))) / 2.5);
  const low = Math.floor(Math.min(0, ...points.map(p => p[1])) / step) * step;
  const high = Math.max(low + step, Math.ceil(Math.max(0, ...points.map(p => p[1])) / step) * step);
  const scale = (height - bottom - top) / (high / 2 - low / 2);
  const y = value => top + (high / 2 - value / 2) * scale;
  const line = (x1, y1, x2, y2, id) => {
    const l = document.createElementNS(SVG, "line");
    l.setAttribute("x1", x1); l.setAttribute("y1", y1);
    l.setAttribute("x2", x2); l.setAttribute("y2", y2);
    if (id) l.setAttribute("id", id);
    chart.appendChild(l);
  };
  const label = (x, at, text, anchor) => {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", x); t.setAttribute("y", at);
    t.setAttribute("text-anchor", anchor); t.textContent = text;
    chart.appendChild(t);
    return t;
  };
  for (let i = 0, value = low; value <= high + step / 2 && i < 25; i++, value = low + i * step) {
    line(left - 3, y(value), left, y(value));
    label(left - 6, y(value) + 4, tickText(value, step) + "\u00b0F", "end").classList.add("tick");
  }
  line(left, top, left, y(low));
  line(left, y(0), width, y(0), "zero");  // the bars' baseline
  const barStep = points.length ? (width - left) / points.length : 0;
  const every = Math.max(1, Math.ceil(points.length / 20));  // year labels that do not overlap
  points.forEach(([year, avg], i) => {
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("x", left + i * barStep + barStep * 0.1);
    bar.setAttribute("width", Math.max(1, barStep * 0.8));
    bar.setAttribute("y", Math.min(y(avg), y(0)));
    bar.setAttribute("height", Math.abs(y(avg) - y(0)));
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = year + ": " + avg.toFixed(1);
    bar.appendChild(tip);
    chart.appendChild(bar);
    if (i % every === 0) label(left + (i + 0.5) * barStep, height - 5, year, "middle");
  });
  if (!points.length) label(width / 2, height / 2, "no " + month + " data yet", "middle");
  svg.replaceChildren(chart);
  document.getElementById("chart-title").textContent =
    "Avg. Max Temperatures per year: " + month;
  fillTable("yearly", points.map(([year, avg]) => [year, avg.toFixed(1)]));
}

function render() {
  if (!latest) return;
  const month = document.getElementById("month").value;
  drawChart(month, latest.months[month] || {});
  fillTable("months", Object.entries(latest.months).map(([m, years]) => {
    const year = Object.keys(years).sort().pop();
    const s = years[year];
    return [m, year, s.count, s.avg.toFixed(1), s.start, s.end];
  }));
  const brokerDown = Object.values(latest.partitions).some(p => p.end_offset === null);
  fillTable("partitions", Object.entries(latest.partitions).map(([n, p]) =>
    [n, show(p.offset), show(p.end_offset), show(p.lag), latest.files[n] || "ok"]));
  document.getElementById("newest").textContent = show(latest.newest_date);
  document.getElementById("changed").textContent =
    latest.last_changed ? new Date(latest.last_changed).toLocaleString() : "never";
  document.getElementById("warning").textContent = brokerDown ?
    "the broker cannot be reached: end offsets and lag unknown, showing the files" : "";
}

async function refresh() {
  try {
    const answer = await fetch("/stats.json", {cache: "no-store"});
    if (!answer.ok) throw new Error("HTTP " + answer.status);
    latest = await answer.json();
    render();
    document.getElementById("updated").textContent = new Date().toLocaleTimeString();
  } catch (err) {
    document.getElementById("warning").textContent =
      "the dashboard does not answer (" + err.message + "); showing the last data";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

document.getElementById("month").addEventListener("change", () => {
  history.replaceState(null, "", "?month=" + document.getElementById("month").value);
  render();
});
refresh();
</script>
</body></html>
"""


if __name__ == "__main__":
    sys.exit(main())
