"""Part 4: files/plot.py against partition files from the real consumer and hand-made ones, and
tools/scripts/run_pipeline.py (`make run`) end to end on the real broker. Without a broker:
tests/unit/test_plot_logic.py (the assignment's labels) and tests/unit/test_run_pipeline.py.

The PNGs are checked by their pixels: bars are found as runs of matplotlib's default bar colour,
so a test knows how many bars were drawn and how tall each one is.
"""

import json
import os
import signal
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
from PIL import Image

from helpers import ROOT, assert_one_clean_sentence, free_port, offsets_in, wait_until

pytestmark = pytest.mark.broker

PNG = "yearly_trends.png"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BAR_RGB = (31, 119, 180)  # matplotlib's default colour C0


# ---------------------------------------------------------------- helpers

def bars(png):
    """Heights in pixels of the bars in a PNG, left to right."""
    with Image.open(png) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    is_bar = (np.abs(pixels - BAR_RGB).max(axis=2) <= 12)
    columns = is_bar.sum(axis=0)
    heights, run = [], []
    for count in list(columns) + [0]:
        if count:
            run.append(count)
        elif run:
            if len(run) >= 3:  # a bar, not a stray anti-aliased pixel
                heights.append(max(run))
            run = []
    return heights


def assert_valid_png(path):
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), f"{path} is not a PNG"
    with Image.open(path) as image:
        image.verify()
    assert matplotlib.image.imread(path).ndim == 3


def assert_heights_follow(heights, avgs):
    """Bar i is avgs[i] tall on one common scale (the bars start at 0)."""
    assert len(heights) == len(avgs), (heights, avgs)
    scale = max(heights) / max(abs(a) for a in avgs)
    for height, avg in zip(heights, avgs):
        assert abs(height - abs(avg) * scale) <= 2.5, (heights, avgs)


def stats(avg, count=31, year="1990", month="01"):
    return {"count": count, "sum": avg * count, "avg": avg,
            "start": f"{year}-{month}-01", "end": f"{year}-{month}-{count:02d}"}


def month_data(avgs_by_year, month="01"):
    """{year: stats}; the day counts differ, so plotting sum or count would give other bars."""
    return {year: stats(avg, count=10 + i * 7, year=year, month=month)
            for i, (year, avg) in enumerate(avgs_by_year.items())}


def write_partition(folder, n, **months):
    """Write partition-n.json atomically (the loop may read it at any moment)."""
    path = folder / f"partition-{n}.json"
    tmp = folder / f"partition-{n}.json.writing"
    tmp.write_text(json.dumps({"partition": n, "offset": 100 + n, **months}))
    os.replace(tmp, path)
    return path


def plot_once(run_program, folder, *args):
    program = run_program("plot.py", "--once", "--dir", folder, *args)
    return program.wait(60), program


def month_in_files(folder, month):
    """The test's own search for the month, to compare plot.py's picture with."""
    for n in range(4):
        data = json.loads((folder / f"partition-{n}.json").read_text())
        if month in data:
            return data[month]
    raise AssertionError(f"no partition file in {folder} holds {month}")


def count_lines(program, text):
    return program.stdout.count(text)


# ---------------------------------------------------------------- with the real consumer

def test_once_plots_january_of_the_real_consumers_files(run_program, produce, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    ends = produce(1600)  # 4 years at least (the producer overshoots while being stopped)
    consumer = run_program("consumer.py", 0, 1, 2, 3, "--dir", out)
    wait_until(lambda: offsets_in(out, range(4)) == ends or not consumer.running(), 90,
               f"the partition files to reach the end offsets {ends}")
    assert consumer.stop() == 0, consumer.stderr

    code, plot = plot_once(run_program, out)
    assert code == 0, plot.stderr
    assert "Refreshed Graph" in plot.stdout
    png = out / PNG
    assert_valid_png(png)
    assert not (out / (PNG + ".tmp")).exists()
    january = month_in_files(out, "January")
    assert len(january) >= 4
    assert_heights_follow(bars(png), [january[year]["avg"] for year in sorted(january)])


def test_the_plot_grows_while_the_consumer_counts_more_years(run_program, start_producer, broker, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    producer = start_producer(3, delay=0.004)
    consumer = run_program("consumer.py", 0, 1, 2, 3, "--dir", out)
    plot = run_program("plot.py", "--dir", out, "--interval", 0.5)
    png = out / PNG

    def bar_count():
        return png.exists() and len(bars(png))

    first = wait_until(lambda: bar_count() >= 2 or not plot.running(), 60, "a plot of 2 years")
    assert plot.running(), plot.stderr
    first = bar_count()
    wait_until(lambda: bar_count() >= first + 2 or not plot.running(), 60,
               f"the plot to grow beyond {first} years")
    assert plot.running(), plot.stderr
    assert_valid_png(png)
    for program in (plot, consumer, producer):
        assert program.stop() == 0, program.stderr
    assert "Traceback" not in plot.stderr + plot.stdout


# ---------------------------------------------------------------- hand-made partition files

@pytest.mark.parametrize("holder", [0, 1, 2, 3])
def test_january_is_found_in_whichever_file_holds_it(run_program, tmp_path, holder):
    # Keys out of order: the bars must still go by year. The other files hold other months with
    # other numbers of years, so plotting the wrong file shows.
    january = month_data({"1992": 31.0, "1990": 12.0, "1993": 5.0, "1991": 24.0})
    others = iter(["March", "June", "October"])
    for n in range(4):
        if n == holder:
            write_partition(tmp_path, n, January=january,
                            April=month_data({"1990": 40.0}, month="04"))
        else:
            write_partition(tmp_path, n, **{next(others): month_data(
                {"1990": 50.0, "1991": 20.0}, month="03")})

    code, plot = plot_once(run_program, tmp_path)
    assert code == 0, plot.stderr
    assert_valid_png(tmp_path / PNG)
    assert_heights_follow(bars(tmp_path / PNG), [12.0, 24.0, 31.0, 5.0])


def test_month_option_plots_that_month(run_program, tmp_path):
    write_partition(tmp_path, 0, January=month_data({"1990": 20.0}))
    write_partition(tmp_path, 2, March=month_data({"1990": 30.0, "1991": 45.0, "1992": 15.0},
                                                  month="03"))
    code, plot = plot_once(run_program, tmp_path, "--month", "march")
    assert code == 0, plot.stderr
    assert_heights_follow(bars(tmp_path / PNG), [30.0, 45.0, 15.0])


def test_no_data_yet_is_exit_1_in_one_sentence(run_program, tmp_path):
    code, plot = plot_once(run_program, tmp_path)
    assert code == 1
    assert "partition files" in assert_one_clean_sentence(plot.stderr)

    write_partition(tmp_path, 1, March=month_data({"1990": 30.0}, month="03"))
    code, plot = plot_once(run_program, tmp_path)
    assert code == 1
    assert "January" in assert_one_clean_sentence(plot.stderr)

    write_partition(tmp_path, 3, January={})
    code, plot = plot_once(run_program, tmp_path)
    assert code == 1
    assert "January" in assert_one_clean_sentence(plot.stderr)
    assert "Refreshed Graph" not in plot.stdout
    assert not (tmp_path / PNG).exists()
    assert not (tmp_path / (PNG + ".tmp")).exists()


def test_a_fifo_or_a_folder_named_like_a_partition_file_is_refused_at_once(run_program,
                                                                          tmp_path):
    # open() of a FIFO waits for a writer for ever; plot.py must not.
    os.mkfifo(tmp_path / "partition-0.json")
    (tmp_path / "partition-1.json").mkdir()
    code, plot = plot_once(run_program, tmp_path)
    assert code == 1, plot.stderr
    line = assert_one_clean_sentence(plot.stderr)
    assert "partition-0.json could not be read (it is not a regular file but a FIFO)" in line, line


def test_a_deeply_nested_partition_file_is_unreadable_not_a_crash(run_program, tmp_path):
    (tmp_path / "partition-0.json").write_text("[" * 200_000 + "]" * 200_000)
    code, plot = plot_once(run_program, tmp_path)
    assert code == 1
    assert "partition-0.json could not be read" in assert_one_clean_sentence(plot.stderr)


@pytest.mark.parametrize("args", [["--month", "Smarch"], ["--month", ""], ["--month", "13"],
                                  ["--interval", "0"], ["--interval", "nan"]])
def test_bad_options_are_usage_errors(run_program, tmp_path, args):
    program = run_program("plot.py", "--dir", tmp_path, *args)
    assert program.wait(60) == 2
    assert "error" in assert_one_clean_sentence(program.stderr)


def test_loop_survives_corrupt_and_missing_files_and_recovers(run_program, tmp_path):
    path = write_partition(tmp_path, 1, January=month_data({"1990": 20.0, "1991": 30.0}))
    plot = run_program("plot.py", "--dir", tmp_path, "--interval", 0.3)
    png = tmp_path / PNG
    wait_until(lambda: count_lines(plot, "Refreshed Graph") or not plot.running(), 60,
               "the first refresh")
    assert_heights_follow(bars(png), [20.0, 30.0])

    # A half-written file, as a consumer that does not write atomically would leave it.
    path.write_text('{"partition": 1, "offset": 7, "January": {"1990": {"count"')
    wait_until(lambda: "partition-1.json" in plot.stderr or not plot.running(), 30,
               "a line about the unparseable file")
    path.unlink()
    wait_until(lambda: "no partition files" in plot.stderr or not plot.running(), 30,
               "a line about the missing files")
    assert plot.running(), plot.stderr
    assert_heights_follow(bars(png), [20.0, 30.0])  # the last good picture stays

    write_partition(tmp_path, 1, January=month_data({"1990": 20.0, "1991": 30.0, "1992": 10.0}))
    wait_until(lambda: len(bars(png)) == 3 or not plot.running(), 30, "the plot to recover")
    assert_heights_follow(bars(png), [20.0, 30.0, 10.0])

    assert plot.stop(signal.SIGTERM) == 0
    assert "Traceback" not in plot.stderr + plot.stdout
    for line in plot.stderr.strip().splitlines():
        assert line.startswith("plot: ") and "retrying" in line, line
    assert not (tmp_path / (PNG + ".tmp")).exists()


def test_png_is_replaced_by_rename_and_sigint_stops_even_if_ignored(run_program, tmp_path):
    write_partition(tmp_path, 0, January=month_data({"1990": 20.0, "1991": 30.0}))
    # Started like `python3 plot.py &` from a shell: SIGINT ignored unless plot.py handles it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        plot = run_program("plot.py", "--dir", tmp_path, "--interval", 0.3)
    finally:
        signal.signal(signal.SIGINT, previous)
    png = tmp_path / PNG
    wait_until(lambda: png.exists() or not plot.running(), 60, "the first PNG")

    # savefig straight onto the PNG would rewrite the same inode; os.replace brings a new one.
    inodes = set()
    wait_until(lambda: inodes.add(png.stat().st_ino) or len(inodes) >= 2 or not plot.running(),
               20, "a refresh to replace the PNG with a new file", interval=0.02)
    assert plot.running(), plot.stderr

    assert plot.stop(signal.SIGINT, timeout=15) == 0
    assert "Traceback" not in plot.stderr + plot.stdout
    assert not (tmp_path / (PNG + ".tmp")).exists()
    assert_valid_png(png)


# ---------------------------------------------------------------- make run

def run_pipeline(*args, env, timeout):
    return subprocess.run([sys.executable, "-m", "tools.scripts.run_pipeline", *map(str, args)],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=timeout)


def test_run_pipeline_runs_everything_and_stops_cleanly(broker, tmp_path):
    out, logs = tmp_path / "out", tmp_path / "logs"
    out.mkdir()
    port = free_port()
    result = run_pipeline("--delay", 0.002, "--duration", 25, "--dir", out, "--log-dir", logs,
                          "--birthday", "", "--dashboard-port", port,
                          env=dict(os.environ, KAFKA_BOOTSTRAP=broker), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert str(logs) in result.stdout
    assert "offsets p0 " in result.stdout and " lag " in result.stdout, result.stdout
    assert "plot " in result.stdout and " s ago" in result.stdout, result.stdout
    assert f"dashboard: http://localhost:{port}/" in result.stdout, result.stdout

    for n in range(4):
        assert (out / f"partition-{n}.json").exists()
    assert offsets_in(out, range(4))[0] > 0
    assert_valid_png(out / PNG)
    assert bars(out / PNG)
    # Each program was stopped by SIGTERM and took its own clean way out.
    assert "producer: stopped" in (logs / "producer.out").read_text()
    assert "plot: stopped" in (logs / "plot.out").read_text()
    assert "exiting" in (logs / "consumer.out").read_text()
    dashboard_out = (logs / "dashboard.out").read_text()
    assert f"serving http://localhost:{port}/ from {out}" in dashboard_out
    assert "dashboard: stopped" in dashboard_out
    for name in ("producer", "consumer", "plot", "dashboard"):
        assert "Traceback" not in (logs / f"{name}.err").read_text(), name
