"""Part 4: plot a month's average max temperature per year from the partition files.

    python3 plot.py                     # January, redrawn every 5 s into yearly_trends.png
    python3 plot.py --month March       # another month
    python3 plot.py --once              # draw once and exit (1 when there is no data yet)
    docker exec -it p7 python3 /files/plot.py

At every tick it looks through partition-0.json .. partition-3.json for the file that holds the
month (which partition a month lands in is up to Kafka's partitioner, so it is searched for, not
assumed), draws one bar per year and replaces yearly_trends.png atomically: whoever opens the PNG
sees the old picture or the new one, never half of one. A missing, half-written or unparseable
partition file only skips a tick. Ctrl-C or SIGTERM exits 0.
"""

try:
    import p7common  # first: importing it installs the early Ctrl-C guard (see there)
except KeyboardInterrupt:  # a Ctrl-C before even that: nothing has started yet
    raise SystemExit(0) from None

import argparse
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # headless: we only ever write PNG files, no window is opened
import matplotlib.pyplot as plt  # noqa: E402  (must come after matplotlib.use)

from p7common import MONTHS, OUT_DIR, PARTITIONS, Refused, stop  # noqa: E402

PNG_NAME = "yearly_trends.png"
DEFAULT_MONTH = "January"
REFRESH_SEC = 5.0
MAX_YEAR_LABELS = 30


class NoPlot(Exception):
    """Why this tick drew nothing, as one sentence; the next tick tries again."""


# ---------------------------------------------------------------- reading the partition files

def find_month(folder, month):
    """The path of the partition file holding `month`, and that month's {year: stats} dict.
    A file that is no partition file (p7common.partition_problem: half-written by a consumer
    that does not write atomically, edited by hand, a FIFO) is passed over, saying why."""
    missing = 0
    unreadable = None
    for n in range(PARTITIONS):
        path = p7common.partition_path(folder, n)
        try:
            data = p7common.read_partition(folder, n)
        except FileNotFoundError:
            missing += 1
            continue
        except (Refused, OSError) as err:
            why = err if isinstance(err, Refused) else f"cannot be opened ({err.strerror})"
            unreadable = unreadable or f"{path} could not be read (it {why})"
            continue
        if month in data:
            return path, data[month]
    if missing == PARTITIONS:
        raise NoPlot(f"there are no partition files in {folder} yet (is consumer.py running?)")
    if unreadable:
        raise NoPlot(f"no {month} data found: {unreadable}")
    raise NoPlot(f"no partition file in {folder} has {month} data yet")


def yearly_averages(path, month, years):
    """[(year, avg), ...] sorted by year, from one month's {year: stats} dict."""
    if not isinstance(years, dict) or not years:
        raise NoPlot(f"{path} has no {month} years yet")
    points = []
    for year, stats in years.items():
        avg = stats.get("avg") if isinstance(stats, dict) else None
        if not (isinstance(year, str) and year.isdigit() and len(year) == 4):
            raise NoPlot(f"{path} has {month} data for {year!r}, which is not a year")
        if isinstance(avg, bool) or not isinstance(avg, (int, float)) or not math.isfinite(avg):
            raise NoPlot(f"{path} has no valid avg for {month} {year}")
        points.append((int(year), avg))
    return sorted(points)


# ---------------------------------------------------------------- drawing

def draw(points, month):
    """A fresh figure with one bar per year; the caller saves and closes it.

    The assignment's starter clears one long-lived axes (ax.clear()) before each redraw; a new
    figure per refresh, closed once saved, draws the same and keeps memory flat for hours."""
    x = [year for year, avg in points]
    y = [avg for year, avg in points]
    fig, ax = plt.subplots()
    ax.bar(x, y)
    ax.set_xlabel('Year')
    ax.set_ylabel(f'Avg. Max Temperature for {month}')
    ax.set_title('Avg. Max Temperatures per year')
    # A label under every bar while they fit (under every 2nd, 3rd... bar after decades of
    # data), written out in full ("1990", not 1990.5 or "+1.99e3"), turned 90 degrees.
    labelled = x[::math.ceil(len(x) / MAX_YEAR_LABELS)]
    ax.set_xticks(labelled, labels=[str(year) for year in labelled])
    ax.tick_params(axis="x", labelrotation=90)
    fig.tight_layout()
    return fig


def refresh(folder, month):
    """Redraw the PNG from the partition files once; NoPlot says why it could not."""
    path, years = find_month(folder, month)
    points = yearly_averages(path, month, years)
    fig = draw(points, month)
    try:
        # Readers see the old or the new PNG, never half of one.
        p7common.replace_atomically(os.path.join(folder, PNG_NAME),
                                    lambda f: fig.savefig(f, format="png"))
    except Refused as err:
        raise NoPlot(str(err)) from None
    finally:
        plt.close(fig)  # one figure per tick, always released: memory stays flat for hours


# ---------------------------------------------------------------- main loop

def try_refresh(folder, month):
    """Redraw once; None when done, else why not, as one sentence."""
    try:
        refresh(folder, month)
    except NoPlot as err:
        return str(err)
    except Exception as err:  # noqa: BLE001  (a plot that runs for hours must not die of it)
        return f"drawing failed ({err.__class__.__name__}: {' '.join(str(err).split())})"
    print("Refreshed Graph", flush=True)
    return None


def keep_refreshing(folder, month, interval):
    # Keep refreshing the plot every `interval` seconds, as long as we are not asked to stop.
    while not stop:
        problem = try_refresh(folder, month)
        if problem:
            print(f"plot: {problem}; retrying in {interval:g} s", file=sys.stderr, flush=True)
        stop.wait(interval)
    print("plot: stopped", flush=True)


def month_name(text):
    for month in MONTHS:
        if text.strip().lower() == month.lower():
            return month
    raise argparse.ArgumentTypeError(f"{text!r} is not a month: use an English month name "
                                     "such as January or March")


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=f"Plot a month's average max temperature per year into {PNG_NAME}.")
    parser.add_argument("--month", type=month_name, default=DEFAULT_MONTH,
                        help=f"month to plot (default: {DEFAULT_MONTH})")
    parser.add_argument("--dir", default=OUT_DIR,
                        help="folder of the partition files and of the PNG (default: this "
                             "program's folder)")
    parser.add_argument("--interval", type=float, default=REFRESH_SEC, metavar="SECONDS",
                        help=f"seconds between refreshes (default: {REFRESH_SEC:g})")
    parser.add_argument("--once", action="store_true",
                        help="draw once and exit: 0 when drawn, 1 when there is no data yet")
    args = parser.parse_args(argv)
    if not (args.interval > 0 and math.isfinite(args.interval)):
        parser.error("--interval must be a number of seconds above 0")
    if not os.path.isdir(args.dir):
        parser.error(f"--dir {args.dir} is not a folder")
    return args


def main(argv=None):
    args = parse_args(argv)
    # A signal only sets the flag: it never cuts a PNG write short; the wait between ticks
    # notices it.
    stop.install()
    if args.once:
        problem = try_refresh(args.dir, args.month)
        if problem:
            print(f"plot: error: {problem}", file=sys.stderr)
            return 1
        return 0
    keep_refreshing(args.dir, args.month, args.interval)
    return 0


if __name__ == "__main__":
    sys.exit(main())
