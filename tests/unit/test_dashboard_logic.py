"""dashboard.py's pure parts, in process: merging partition files into the /stats.json dict,
reading files that are missing or broken, and checking the page's parameters. No broker."""

import json
import os
import random
import socket
import threading
import time

import pytest

import dashboard  # files/dashboard.py
import p7common  # files/p7common.py

MONTHS = dashboard.MONTHS


def random_stats(rng, month_index, year):
    count = rng.randint(1, 31)
    total = round(rng.uniform(-20, 90) * count, 4)
    first = rng.randint(1, 28 - min(count, 27) + 1)
    return {"count": count, "sum": total, "avg": total / count,
            "start": f"{year}-{month_index + 1:02d}-{first:02d}",
            "end": f"{year}-{month_index + 1:02d}-{min(28, first + count - 1):02d}"}


def random_files(rng):
    """{partition: data}: each month in one random partition, random years, random offsets."""
    files = {n: {"partition": n, "offset": rng.randint(0, 10_000)} for n in range(4)}
    for i, month in enumerate(MONTHS):
        if rng.random() < 0.8:
            years = rng.sample(range(1990, 2040), rng.randint(1, 12))
            files[rng.randrange(4)][month] = {str(y): random_stats(rng, i, y) for y in years}
    return files


def write(folder, n, data):
    (folder / f"partition-{n}.json").write_text(json.dumps(data))


@pytest.mark.parametrize("seed", range(20))
def test_merge_holds_every_month_and_offset_of_the_files(seed):
    rng = random.Random(seed)
    files = random_files(rng)
    ends = None if seed % 3 == 0 else {n: files[n]["offset"] + rng.randint(0, 50)
                                        for n in range(4)}
    stats = dashboard.merge_stats(files, ends)

    assert set(stats) == {"months", "partitions", "newest_date"}
    expected_months = {m: years for data in files.values() for m, years in data.items()
                       if m in MONTHS}
    assert stats["months"] == expected_months
    assert list(stats["months"]) == [m for m in MONTHS if m in expected_months]  # calendar order
    for years in stats["months"].values():
        assert list(years) == sorted(years)
    all_ends = [s["end"] for years in expected_months.values() for s in years.values()]
    assert stats["newest_date"] == (max(all_ends) if all_ends else None)
    for n in range(4):
        part = stats["partitions"][str(n)]
        assert part["offset"] == files[n]["offset"]
        if ends is None:
            assert part["end_offset"] is None and part["lag"] is None
        else:
            assert part["end_offset"] == ends[n]
            assert part["lag"] == ends[n] - files[n]["offset"]
    # What the page fetches must survive JSON as it is.
    assert json.loads(json.dumps(stats)) == stats


def test_a_file_ahead_of_the_sampled_end_offset_is_not_behind():
    files = {n: {"partition": n, "offset": 100} for n in range(4)}
    stats = dashboard.merge_stats(files, {0: 90, 1: 100, 2: 101, 3: 0})
    assert [stats["partitions"][str(n)]["lag"] for n in range(4)] == [0, 0, 1, 0]


def test_a_month_in_two_files_is_taken_from_the_lower_partition():
    rng = random.Random(1)
    low, high = random_stats(rng, 0, 1990), random_stats(rng, 0, 1991)
    files = {1: {"partition": 1, "offset": 5, "January": {"1990": low}},
             3: {"partition": 3, "offset": 7, "January": {"1991": high}}}
    assert dashboard.merge_stats(files, None)["months"] == {"January": {"1990": low}}


@pytest.mark.parametrize("content, complaint", [
    (None, "missing"),
    ("{\"partition\": 2, \"offs", "unreadable"),
    ("[1, 2]", "does not hold a JSON object"),
    (json.dumps({"partition": 3, "offset": 4}), "belongs to partition 3"),
    (json.dumps({"partition": 2, "offset": -1}), "no valid offset"),
    (json.dumps({"partition": 2, "offset": 4, "March": {"1990": {"count": 1}}}),
     "incomplete March stats"),
    (json.dumps({"partition": 2, "offset": 4, "March": [1]}), "incomplete March stats"),
    ('{"partition": 2, "offset": 4, "March": {"1990": {"count": 1, "sum": NaN, "avg": NaN, '
     '"start": "1990-03-01", "end": "1990-03-01"}}}', "sum nan for March 1990"),
    ('{"partition": 2, "offset": 4, "March": {"1990": {"count": 2, "sum": 1e308, '
     '"avg": Infinity, "start": "1990-03-01", "end": "1990-03-02"}}}', "avg inf for March 1990"),
])
def test_a_bad_file_is_named_and_the_others_still_show(tmp_path, content, complaint):
    rng = random.Random(2)
    files = random_files(rng)
    for n, data in files.items():
        write(tmp_path, n, data)
    if content is None:
        (tmp_path / "partition-2.json").unlink()
    else:
        (tmp_path / "partition-2.json").write_text(content)

    stats = dashboard.collect_stats(str(tmp_path), {n: 10**6 for n in range(4)})

    assert complaint in stats["files"]["2"]
    assert [stats["files"][str(n)] for n in (0, 1, 3)] == [None, None, None]
    assert stats["partitions"]["2"] == {"offset": None, "end_offset": 10**6, "lag": None}
    others = {m: years for n in (0, 1, 3) for m, years in files[n].items() if m in MONTHS}
    assert stats["months"] == others
    assert stats["last_changed"] is not None


def test_no_files_at_all_is_an_empty_dashboard(tmp_path):
    stats = dashboard.collect_stats(str(tmp_path), None)
    assert stats["months"] == {} and stats["newest_date"] is None
    assert stats["last_changed"] is None
    assert all("missing" in why for why in stats["files"].values())


@pytest.mark.parametrize("query, month", [("", "January"), ("month=March", "March"),
                                          ("month=December", "December")])
def test_good_month_parameters(query, month):
    assert dashboard.parse_month(query) == month


@pytest.mark.parametrize("query, complaint", [
    ("month=Smarch", "month must be one of"),
    ("month=", "month must be one of"),
    ("month=march", "month must be one of"),
    ("month=March&month=May", "month must be one of"),
    ("year=1990", "unknown parameter 'year'"),
])
def test_bad_month_parameters_are_refused(query, complaint):
    with pytest.raises(dashboard.BadRequest, match=complaint):
        dashboard.parse_month(query)


def test_the_page_preselects_the_month():
    page = dashboard.page("March")
    assert "<option selected>March</option>" in page
    assert page.count("<option") == 12 and page.count(" selected") == 1
    assert "http://" not in page.replace('"http://www.w3.org/2000/svg"', "")  # nothing remote


def test_readings_far_beyond_any_climate_show_as_they_are(tmp_path):
    hot = {"partition": 2, "offset": 4, "July": {"4800": {
        "count": 2, "sum": 1e308, "avg": 5e307, "start": "4800-07-01", "end": "4800-07-02"}}}
    write(tmp_path, 2, hot)
    stats = dashboard.collect_stats(str(tmp_path), None)
    assert stats["files"]["2"] is None and stats["months"]["July"] == hot["July"]
    json.dumps(stats, allow_nan=False)


# ---------------------------------------------------------------- hostile files

def collect_within(folder, seconds=5):
    """collect_stats in a thread of its own: (stats, seconds taken), or an AssertionError when
    it has not answered within `seconds` (it may be blocked in a read for ever)."""
    answer = {}

    def run():
        started = time.monotonic()
        answer["stats"] = dashboard.collect_stats(str(folder), {n: 10**6 for n in range(4)})
        answer["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert "stats" in answer, f"collect_stats did not answer within {seconds} s"
    return answer["stats"], answer["seconds"]


def strict_json(stats):
    """The stats as /stats.json sends them, read back refusing NaN and Infinity."""
    def refuse(constant):
        raise AssertionError(f"/stats.json holds {constant}, which is not JSON")
    return json.loads(dashboard.stats_body(stats) if hasattr(dashboard, "stats_body")
                      else json.dumps(stats), parse_constant=refuse)


def assert_only_partition_2_refused(folder, files, complaint, seconds=5):
    stats, took = collect_within(folder, seconds)
    why = stats["files"]["2"]
    assert why and why.startswith("unreadable") and complaint in why, why
    assert "\n" not in why and len(why) < 200, why  # one short sentence
    assert [stats["files"][str(n)] for n in (0, 1, 3)] == [None, None, None]
    others = {m: years for n in (0, 1, 3) for m, years in files[n].items() if m in MONTHS}
    assert stats["months"] == others
    ends = [s["end"] for years in others.values() for s in years.values()]
    assert stats["newest_date"] == max(ends, default=None)
    assert strict_json(stats) == stats
    return took


def hostile(year_stats):
    """Partition 2's file with one January in order and a second one as given."""
    good = {"count": 1, "sum": 1.0, "avg": 1.0, "start": "1990-01-01", "end": "1990-01-01"}
    return json.dumps({"partition": 2, "offset": 4,
                       "January": {"1990": good,
                                   "1991": {**good, "start": "1991-01-01", "end": "1991-01-01",
                                            **year_stats}}})


@pytest.mark.parametrize("content, complaint", [
    (hostile({"end": None}), "has end None for January 1991"),  # a string in 1990, null here
    (hostile({"end": 19910101}), "has end 19910101"),
    (hostile({"start": ["1991-01-01"]}), "has start ['1991-01-01']"),
    (hostile({"end": "1991/01/01"}), "has end '1991/01/01'"),
    (hostile({"end": "x" * 10_000}), "has end 'xxxx"),  # cut short in the reason
    (hostile({"count": -1}), "has count -1"),
    (hostile({"count": 1.5}), "has count 1.5"),
    (hostile({"count": True}), "has count True"),
    (hostile({"count": "31"}), "has count '31'"),
    (hostile({"sum": "310"}), "has sum '310'"),
    (hostile({"avg": None}), "has avg None"),
    (hostile({"avg": True}), "has avg True"),
    (hostile({"sum": 10**400}), "has sum 1000"),  # an int no float can hold
    ('{"partition": 2, "offset": 4, "January": {"1990": {"count": 1, "sum": -Infinity, '
     '"avg": 1, "start": "1990-01-01", "end": "1990-01-01"}}}', "has sum -inf"),
    ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
    ('{"partition": 2, "offset": 4, "x": ' + "[" * 200_000 + "]" * 200_000 + "}",
     "nested too deeply"),
    (json.dumps({"partition": True, "offset": 4}), "belongs to partition True"),
    (json.dumps({"partition": 2.0, "offset": 4}), "belongs to partition 2.0"),
    (json.dumps({"partition": 2, "offset": 4.0}), "no valid offset (4.0)"),
    (json.dumps({"partition": 2, "offset": 4, "January": {"1990": "x" * 100}}),
     "incomplete January stats"),
    (b"\xff\xfe not utf-8", "can't decode"),
])
def test_a_file_of_any_content_is_named_in_one_sentence_and_the_rest_shows(
        tmp_path, content, complaint):
    files = random_files(random.Random(3))
    for n, data in files.items():
        write(tmp_path, n, data)
    path = tmp_path / "partition-2.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    assert_only_partition_2_refused(tmp_path, files, complaint)


def make_special(path, kind):
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "folder":
        os.mkdir(path)
    elif kind == "character device":
        os.symlink("/dev/zero", path)  # endless: read whole it would never end
    elif kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(path.name)  # relative: a socket's path is limited to 108 bytes
        return sock
    return None


@pytest.mark.parametrize("kind, complaint", [
    ("FIFO", "it is not a regular file but a FIFO"),
    ("folder", "it is not a regular file but a folder"),
    ("character device", "it is not a regular file but a character device"),
    ("socket", "unreadable: it cannot be opened ("),  # by open() itself: no such device
])
def test_a_special_file_is_refused_at_once_never_waited_for(tmp_path, monkeypatch, kind,
                                                           complaint):
    monkeypatch.chdir(tmp_path)
    files = random_files(random.Random(4))
    for n, data in files.items():
        write(tmp_path, n, data)
    (tmp_path / "partition-2.json").unlink()
    sock = make_special(tmp_path / "partition-2.json", kind)
    try:
        took = assert_only_partition_2_refused(tmp_path, files, complaint)
    finally:
        if sock:
            sock.close()
    assert took < 1


def test_a_file_beyond_any_real_size_is_refused_without_reading_it(tmp_path):
    files = random_files(random.Random(5))
    for n, data in files.items():
        write(tmp_path, n, data)
    # Sparse: 2 GB of zeros that take no disk, and a long time to read.
    with open(tmp_path / "partition-2.json", "wb") as f:
        f.truncate(2 * 1024**3)
    took = assert_only_partition_2_refused(tmp_path, files, "2,147,483,648 bytes")
    assert took < 1
    # One byte beyond the limit: refused on its size (its zeros are not JSON, so a reason that
    # names the size shows it was not parsed).
    with open(tmp_path / "partition-2.json", "wb") as f:
        f.truncate(p7common.MAX_FILE_BYTES + 1)
    assert_only_partition_2_refused(tmp_path, files, f"{p7common.MAX_FILE_BYTES + 1:,} bytes")


def test_the_largest_file_consumer_py_can_write_is_within_the_limit(tmp_path):
    """Every year 0000-9999 of every month in one file, each line at its longest: measured on
    a century written by consumer.py's own writer, p7common.json_text (all its month-year lines
    are alike, so the size grows by the same bytes per line), and that century is read back."""
    longest = {"count": 31, "sum": -1.7976931348623157e+308, "avg": -2.2250738585072014e-308}

    def file_of(years):
        data = {"partition": 2, "offset": 2**63 - 1}
        for i, month in enumerate(MONTHS):
            data[month] = {f"{year:04d}": {**longest, "start": f"{year:04d}-{i + 1:02d}-01",
                                           "end": f"{year:04d}-{i + 1:02d}-28"}
                           for year in range(9_900, 9_900 + years)}
        return data, len(p7common.json_text(data).encode())

    data, century = file_of(100)
    _, year = file_of(1)
    per_year = (century - year) / 99  # twelve month-year lines
    assert per_year == int(per_year)
    assert year + per_year * 9_999 <= p7common.MAX_FILE_BYTES
    (tmp_path / "partition-2.json").write_text(p7common.json_text(data))
    loaded, why = dashboard.load_partition(str(tmp_path), 2)
    assert why is None and loaded == data


# ---------------------------------------------------------------- the cache

def replace(folder, n, data):
    """As consumer.py does: a new file renamed over the old one."""
    tmp = folder / f"partition-{n}.json.new"
    tmp.write_text(json.dumps(data))
    os.replace(tmp, folder / f"partition-{n}.json")


@pytest.mark.parametrize("seed", range(5))
def test_the_cached_answer_is_always_what_the_files_hold_now(tmp_path, monkeypatch, seed):
    # A file rewritten in place twice within the timestamps' granularity, the same size, keeps
    # its mark: the dashboard reads such a just-changed file again after RACY_REREAD_NS (the
    # next test); at 0 every answer must equal a fresh read.
    monkeypatch.setattr(dashboard, "RACY_REREAD_NS", 0)
    rng = random.Random(seed)
    cache = dashboard.StatsCache(str(tmp_path))
    for step in range(60):
        n = rng.randrange(4)
        path = tmp_path / f"partition-{n}.json"
        action = rng.choice(["replace", "replace", "rewrite", "delete", "fifo", "corrupt",
                             "nothing"])
        if action in ("delete", "fifo", "replace") and (path.exists() or path.is_fifo()):
            path.unlink()
        if action == "replace":
            replace(tmp_path, n, random_files(rng)[n])
        elif action == "rewrite" and path.is_file():  # in place, the same size
            text = path.read_text()
            path.write_text(text.replace('"offset": ', '"offset": 9', 1)[:len(text)]
                            if len(text) > 40 else text)
        elif action == "fifo":
            os.mkfifo(path)
        elif action == "corrupt":
            path.unlink(missing_ok=True)
            path.write_text("{\"partition\": ")
        ends = None if rng.random() < 0.3 else {k: rng.randint(0, 10**4) for k in range(4)}
        expected = dashboard.stats_body(dashboard.collect_stats(str(tmp_path), ends))
        assert cache.body(ends) == expected, f"step {step}: {action} of partition {n}"


def test_unchanged_files_are_not_read_again_and_a_change_is_seen_at_once(tmp_path):
    files = random_files(random.Random(6))
    for n, data in files.items():
        write(tmp_path, n, data)
        old = time.time() - 10  # changed long before it is read: its mark can be trusted
        os.utime(tmp_path / f"partition-{n}.json", (old, old))
    cache = dashboard.StatsCache(str(tmp_path))
    first = cache.body(None)
    reads = cache.reads
    for _ in range(200):
        assert cache.body(None) is first  # not even merged again
    assert cache.reads == reads
    files[1]["offset"] += 1
    replace(tmp_path, 1, files[1])
    assert json.loads(cache.body(None))["partitions"]["1"]["offset"] == files[1]["offset"]
    assert cache.reads == reads + 1
    assert json.loads(cache.body({n: 10**5 for n in range(4)}))["partitions"]["1"] == {
        "offset": files[1]["offset"], "end_offset": 10**5, "lag": 10**5 - files[1]["offset"]}
    assert cache.reads == reads + 1  # new end offsets: merged again, nothing read


def test_a_file_changed_under_the_same_mark_is_read_again_soon(tmp_path, monkeypatch):
    """A file replaced twice within the filesystem's timestamp granularity, the same size and
    a recycled inode, looks unchanged to stat: a file read just after it changed is read
    again once RACY_REREAD_NS has passed."""
    files = random_files(random.Random(7))
    for n, data in files.items():
        write(tmp_path, n, data)
    real_stat = os.stat
    marks = {}

    def same_mark(path, *args, **kwargs):  # what stat says stays what it said first
        return marks.setdefault(str(path), real_stat(path, *args, **kwargs))

    monkeypatch.setattr(dashboard.os, "stat", same_mark)
    monkeypatch.setattr(dashboard, "RACY_REREAD_NS", 50_000_000)
    cache = dashboard.StatsCache(str(tmp_path))
    assert json.loads(cache.body(None))["partitions"]["0"]["offset"] == files[0]["offset"]
    files[0]["offset"] += 7
    write(tmp_path, 0, files[0])
    wait_until = time.monotonic() + 5
    while json.loads(cache.body(None))["partitions"]["0"]["offset"] != files[0]["offset"]:
        assert time.monotonic() < wait_until, "the change was never seen"
        time.sleep(0.01)
