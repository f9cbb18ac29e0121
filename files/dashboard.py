"""The web dashboard the partition files are for (the assignment: "for use on a web dashboard").

    python3 dashboard.py                    # http://localhost:8544/
    python3 dashboard.py --port 8600 --dir /files
    docker exec -d p7 python3 /files/dashboard.py   # with docker run ... -p 8544:8544

A standard-library HTTP server. It reads only the partition files consumer.py replaces
atomically, at every request, so it always shows a consistent file and never stops on a missing
or unreadable one (it says which). The page draws its chart itself (SVG, no CDN, works offline)
and fetches /stats.json every few seconds, updating in place without reloading.

GET /            the page; ?month=March selects the month shown first (default January)
GET /stats.json  {"months": {MONTH: {YEAR: {"count", "sum", "avg", "start", "end"}}},
                  "partitions": {N: {"offset", "end_offset", "lag"}}, "newest_date": "YYYY-MM-DD",
                  "files": {N: null or why it could not be read}, "last_changed": ISO time}
Unknown paths get 404, bad parameters 400. end_offset and lag are null while the broker cannot
be reached: a background thread asks it, so a request never waits for Kafka. Ctrl-C or SIGTERM
exits 0.
"""

import os
import sys

# Ctrl-C or SIGTERM while the imports below are still loading (a good 0.1 s) ends the program
# quietly with exit 0: nothing has started yet. os._exit, as an exception raised there can be
# swallowed ("Exception ignored in ..."). main() installs the handlers for the real work; a
# module that imports this one keeps its own.
try:
    import signal
    if __name__ == "__main__":
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(0))
        signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
except KeyboardInterrupt:
    sys.exit(0)

import argparse
import datetime
import html
import json
import math
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError

BROKER = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
# Natively only this machine may look; the p7 image sets P7_LISTEN_HOST=0.0.0.0 (as for the
# broker) so that `docker run -p 8544:8544` reaches it from the host.
LISTEN_HOST = os.environ.get("P7_LISTEN_HOST", "127.0.0.1")
DEFAULT_PORT = 8544
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
TOPIC = "temperatures"
PARTITIONS = 4
DEFAULT_MONTH = "January"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
STAT_KEYS = ("count", "sum", "avg", "start", "end")
PAGE_REFRESH_MS = 2000
# How often the background thread asks the broker for the topic's end offsets, and how long one
# question may take: a broker that went away makes them null within a few seconds.
END_OFFSETS_EVERY_SEC = 2
KAFKA_TIMEOUT_MS = 2000

KAFKA_CONFIG = {
    "client_id": "p7-dashboard",
    "group_id": None,  # only end offsets are asked; nothing is consumed or committed
    "enable_auto_commit": False,
    "bootstrap_timeout_ms": KAFKA_TIMEOUT_MS,
    "reconnect_backoff_max_ms": 1000,
}


class BadRequest(Exception):
    """A parameter we cannot serve; answered with 400 and this sentence."""


def bootstrap_problem(servers):
    """Why `servers` (KAFKA_BOOTSTRAP) is not HOST:PORT[,HOST:PORT...], or None if it is one."""
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return (f"KAFKA_BOOTSTRAP={servers!r} must be HOST:PORT[,HOST:PORT...], "
                    "like localhost:9092")
    return None


# ---------------------------------------------------------------- reading the partition files

def partition_path(folder, partition_num):
    return os.path.join(folder, f"partition-{partition_num}.json")


def partition_problem(data, partition_num):
    """Why `data` is not a partition file of `partition_num` we can show, or None."""
    if not isinstance(data, dict):
        return "does not hold a JSON object"
    if data.get("partition") != partition_num:
        return f"belongs to partition {data.get('partition')!r}"
    offset = data.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        return f"has no valid offset ({offset!r})"
    for month in MONTHS:
        years = data.get(month, {})
        if not isinstance(years, dict) or not all(
                isinstance(stats, dict) and all(key in stats for key in STAT_KEYS)
                for stats in years.values()):
            return f"has incomplete {month} stats"
        # consumer.py's rule: any finite number of degrees, so sums and averages are finite
        # numbers (and /stats.json stays strict JSON).
        for year, stats in years.items():
            for key in ("sum", "avg"):
                value = stats[key]
                if isinstance(value, bool) or not isinstance(value, (int, float)) \
                        or not math.isfinite(value):
                    return f"has {key} {value!r} for {month} {year}"
    return None


def load_partition(folder, partition_num):
    """(data, None) for a readable partition file, (None, why) otherwise."""
    path = partition_path(folder, partition_num)
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None, "missing (consumer.py has not written it yet)"
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"unreadable ({err})"
    problem = partition_problem(data, partition_num)
    return (None, f"unreadable: it {problem}") if problem else (data, None)


def last_changed(folder):
    """When a partition file was last replaced (ISO time, UTC), None if there is none."""
    times = []
    for n in range(PARTITIONS):
        try:
            times.append(os.stat(partition_path(folder, n)).st_mtime)
        except OSError:
            pass
    if not times:
        return None
    return datetime.datetime.fromtimestamp(max(times), datetime.timezone.utc).isoformat(
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
    server_version = "p7-dashboard"

    def do_GET(self):
        url = urlsplit(self.path)
        try:
            if url.path == "/":
                self.reply(200, "text/html; charset=utf-8", page(parse_month(url.query)))
            elif url.path == "/stats.json":
                if url.query:
                    raise BadRequest("/stats.json takes no parameters")
                stats = collect_stats(self.server.folder, self.server.end_offsets.latest)
                self.reply(200, "application/json", json.dumps(stats, allow_nan=False))
            else:
                self.reply(404, "text/plain; charset=utf-8",
                           f"{url.path} is not here: try / or /stats.json\n")
        except BadRequest as err:
            self.reply(400, "text/plain; charset=utf-8", f"{err}\n")

    def reply(self, status, content_type, body):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass  # one line per request every two seconds per open page would drown the log


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
    problem = bootstrap_problem(BROKER)
    if problem:
        parser.error(problem)
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        server = ThreadingHTTPServer((LISTEN_HOST, args.port), Handler)
    except OSError as err:
        print(f"dashboard: error: cannot listen on {LISTEN_HOST}:{args.port} "
              f"({err.strerror or err})", file=sys.stderr)
        return 1
    server.daemon_threads = True  # an open browser connection must not hold up the exit
    server.folder = args.dir
    server.end_offsets = EndOffsets(BROKER)
    # serve_forever() runs in a thread of its own: shutdown() must come from another thread,
    # and the main thread stays free to wait for a signal.
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stop.set())
    server.end_offsets.start()
    serving = threading.Thread(target=server.serve_forever, name="http")
    serving.start()
    shown_host = "localhost" if LISTEN_HOST == "127.0.0.1" else LISTEN_HOST
    print(f"dashboard: serving http://{shown_host}:{args.port}/ from {args.dir}", flush=True)
    while not stop.wait(0.5):
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

function drawChart(month, years) {
  const svg = document.getElementById("chart");
  const width = svg.width.baseVal.value, height = svg.height.baseVal.value;
  const left = 40, bottom = 20, top = 10;
  const points = Object.keys(years).sort().map(y => [y, years[y].avg]);
  const chart = document.createElementNS(SVG, "g");
  const top_value = Math.max(1, ...points.map(p => Math.abs(p[1])));
  const scale = (height - bottom - top) / top_value;
  const step = points.length ? (width - left) / points.length : 0;
  const axis = document.createElementNS(SVG, "line");
  axis.setAttribute("x1", left); axis.setAttribute("x2", width);
  axis.setAttribute("y1", height - bottom); axis.setAttribute("y2", height - bottom);
  chart.appendChild(axis);
  const label = (x, y, text, anchor) => {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", x); t.setAttribute("y", y);
    t.setAttribute("text-anchor", anchor); t.textContent = text;
    chart.appendChild(t);
  };
  label(left - 4, top + 8, top_value.toFixed(0) + "\\u00b0F", "end");
  label(left - 4, height - bottom, "0", "end");
  const every = Math.max(1, Math.ceil(points.length / 20));  // year labels that do not overlap
  points.forEach(([year, avg], i) => {
    const bar = document.createElementNS(SVG, "rect");
    const h = Math.abs(avg) * scale;
    bar.setAttribute("x", left + i * step + step * 0.1);
    bar.setAttribute("width", Math.max(1, step * 0.8));
    bar.setAttribute("y", height - bottom - h);
    bar.setAttribute("height", h);
    const tip = document.createElementNS(SVG, "title");
    tip.textContent = year + ": " + avg.toFixed(1);
    bar.appendChild(tip);
    chart.appendChild(bar);
    if (i % every === 0) label(left + (i + 0.5) * step, height - 5, year, "middle");
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
