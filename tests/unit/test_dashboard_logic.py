"""dashboard.py's pure parts, in process: merging partition files into the /stats.json dict,
reading files that are missing or broken, and checking the page's parameters. No broker."""

import json
import random

import pytest

import dashboard  # files/dashboard.py

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
