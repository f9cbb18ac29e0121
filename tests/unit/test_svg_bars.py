"""grader/svg_bars.py reads the bars of month.svg back: every SVG here is written by matplotlib
itself (Agg, into tmp_path), as the students' plot.py would write it, and read back to within
the error bound the reader states; match_values accepts the right averages in any order and
says, in one sentence, what is wrong otherwise. No broker.

With pandas importable the pandas-style chart is Series.plot.bar; without it (the project's
venv) it is drawn the way pandas draws one: ax.bar of width 0.5 at 0..n-1, labels rotated 90°.
The course's own versions (pandas 2.1.1, matplotlib 3.8.0) are tried through
.venv-course/bin/python when that venv exists.
"""

import itertools
import math
import os
import random
import re
import subprocess
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # after choosing the backend
from matplotlib import ticker

from grader.svg_bars import MAX_BYTES, SvgError, match_values, read_bars

ROOT = Path(__file__).resolve().parents[2]
COURSE_PYTHON = ROOT / ".venv-course" / "bin" / "python"

STARTER = '''import pandas as pd
import matplotlib.pyplot as plt
month_series = pd.Series({'March-2009': 47.478365000000004, 'February-2010': 34.99720714285714, 'January-2010': 37.26354516129032})
fig, ax = plt.subplots()
month_series.plot.bar(ax=ax)
ax.set_ylabel('Avg. Max Temperature')
plt.tight_layout()
plt.savefig("/files/month.svg")
'''
MONTHS = {"March-2009": 47.478365000000004, "February-2010": 34.99720714285714,
          "January-2010": 37.26354516129032}
VALUES = list(MONTHS.values())
# February's latest average with a neighbouring year's in its place (a few degrees off).
OTHER_YEAR = 31.84


def svg_of(tmp_path, draw, name="month.svg", **rc):
    """The bytes of the SVG that matplotlib writes for one Axes drawn by draw(ax)."""
    with plt.rc_context(rc):
        fig, ax = plt.subplots()
        try:
            draw(ax)
            fig.tight_layout()
            fig.savefig(tmp_path / name)
        finally:
            plt.close(fig)
    return (tmp_path / name).read_bytes()


def bars_of(tmp_path, values, labels=None, **rc):
    """The starter's chart, drawn with ax.bar, read back."""
    labels = labels or [f"m{i}" for i in range(len(values))]
    return read_bars(svg_of(tmp_path, lambda ax: ax.bar(labels, values), **rc))


def assert_read_back(bars, values):
    """Each value read is the one drawn, within the error the reader states, which is itself
    far below match_values' default tolerance (1e-6 of the value)."""
    assert bars.values is not None, bars.uncalibrated
    assert len(bars.values) == len(values)
    for read, drawn in zip(bars.values, values):
        assert abs(read - drawn) <= bars.value_error, (read, drawn, bars.value_error)
        assert math.isclose(read, drawn, rel_tol=1e-7, abs_tol=1e-7 * max(map(abs, values)))


def assert_one_sentence(message):
    assert "\n" not in message and message.endswith("."), message
    assert not re.search(r"[.;:]\s+[A-Z]", message), message


# ------------------------------------------------------------------------ reading values

def test_the_starters_values_read_back_with_their_labels(tmp_path):
    bars = bars_of(tmp_path, VALUES, list(MONTHS))
    assert_read_back(bars, VALUES)
    assert bars.labels == list(MONTHS)
    assert all(h > 0 for h in bars.heights)
    assert bars.value_error < 1e-6 * min(VALUES)


def test_negative_values_go_down_from_the_baseline_and_a_legend_adds_no_bar(tmp_path):
    values = [-5.5, 12.25, 3.0, -0.75]

    def draw(ax):
        ax.bar(["a", "b", "c", "d"], values, label="avg")
        ax.legend()

    svg = svg_of(tmp_path, draw)
    assert b'id="legend_1"' in svg  # the legend's patch is there to be left out
    bars = read_bars(svg)
    assert_read_back(bars, values)
    assert [h > 0 for h in bars.heights] == [v > 0 for v in values]


def test_a_pandas_bar_plot(tmp_path):
    try:
        import pandas as pd
    except ImportError:
        pd = None

    def draw(ax):
        if pd is not None:
            pd.Series(MONTHS).plot.bar(ax=ax)
        else:  # what pandas' BarPlot does for a Series
            ax.bar(range(3), VALUES, 0.5)
            ax.set_xticks(range(3), list(MONTHS), rotation=90)
            ax.set_xlim(-0.5, 2.5)
        ax.set_ylabel("Avg. Max Temperature")

    bars = read_bars(svg_of(tmp_path, draw))
    assert_read_back(bars, VALUES)
    assert bars.labels == list(MONTHS)


def test_plt_bar_through_pyplots_current_axes(tmp_path):
    with plt.rc_context({}):
        plt.figure()
        try:
            plt.bar(list(MONTHS), VALUES)
            plt.ylabel("Avg. Max Temperature")
            plt.savefig(tmp_path / "month.svg")
        finally:
            plt.close()
    assert_read_back(read_bars((tmp_path / "month.svg").read_bytes()), VALUES)


def test_fonttype_none_writes_labels_as_text_elements(tmp_path):
    bars = bars_of(tmp_path, [-3.5, *VALUES], ["x", *MONTHS], **{"svg.fonttype": "none"})
    assert_read_back(bars, [-3.5, *VALUES])
    assert bars.labels == ["x", *MONTHS]


def test_bars_are_read_left_to_right_whatever_order_they_were_drawn_in(tmp_path):
    svg = svg_of(tmp_path, lambda ax: ax.bar([2, 0, 1], VALUES))
    assert_read_back(read_bars(svg), [VALUES[1], VALUES[2], VALUES[0]])


def test_an_inverted_y_axis(tmp_path):
    def draw(ax):
        ax.bar(list(MONTHS), VALUES)
        ax.invert_yaxis()

    bars = read_bars(svg_of(tmp_path, draw))
    assert_read_back(bars, VALUES)
    assert all(h < 0 for h in bars.heights)  # drawn downwards on the page


def test_thousands_separators_in_the_tick_labels(tmp_path):
    values = [12_000, 34_000.5, 22_000]

    def draw(ax):
        ax.bar(["a", "b", "c"], values)
        ax.yaxis.set_major_formatter(ticker.StrMethodFormatter("{x:,.0f}"))

    svg = svg_of(tmp_path, draw)
    assert b"10,000" in svg
    assert_read_back(read_bars(svg), values)


@pytest.mark.parametrize("mathtext", [False, True])
def test_a_factor_in_the_offset_text_scales_the_labels(tmp_path, mathtext):
    values = [1.2e7, 3.4e7, 2.2e7]  # labelled 0.0 .. 3.5 with "1e7" (or "×10^7") beside
    bars = bars_of(tmp_path, values, **{"axes.formatter.use_mathtext": mathtext})
    assert_read_back(bars, values)


def test_an_added_offset_in_the_offset_text_changes_no_height(tmp_path):
    values = [1_000_000.5, 1_000_001.25, 1_000_000.75]  # labelled 0.00 .. 2.00 with "+1e6"

    def draw(ax):
        ax.bar(["a", "b", "c"], values)
        ax.set_ylim(1_000_000, 1_000_002)

    svg = svg_of(tmp_path, draw)
    assert b"+1e6" in svg
    assert_read_back(read_bars(svg), values)


def test_random_charts_read_back_within_the_stated_error(tmp_path):
    rng = random.Random(7)
    for case in range(12):
        values = [rng.uniform(-40, 90) for _ in range(rng.randint(1, 6))]
        size = (rng.uniform(2, 12), rng.uniform(2, 9))

        def draw(ax, size=size, values=values):
            ax.figure.set_size_inches(size)
            ax.bar([str(i) for i in range(len(values))], values)

        assert_read_back(read_bars(svg_of(tmp_path, draw, f"{case}.svg")), values)


# ------------------------------------------------------------------------ uncalibrated axes

def test_tick_labels_that_are_not_plain_numbers_leave_values_unknown(tmp_path):
    def draw(ax):
        ax.bar(list(MONTHS), VALUES)
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.0f}°F"))

    bars = read_bars(svg_of(tmp_path, draw))
    assert bars.values is None and "°F' is not a plain number" in bars.uncalibrated
    assert len(bars.heights) == 3 and bars.labels == list(MONTHS)
    assert match_values(bars, reversed(VALUES)) is None
    problem = match_values(bars, [VALUES[0], OTHER_YEAR, VALUES[2]])
    assert_one_sentence(problem)
    assert "could not be read" in problem and "proportions" in problem


def test_rounded_tick_labels_are_not_trusted(tmp_path):
    def draw(ax):  # ticks every 0.25, labelled by '%d': 0, 0, 0, 0, 1, 1, ...
        ax.bar(["a", "b", "c"], [0.3, 1.75, 2.2])
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%d"))

    svg = svg_of(tmp_path, draw)
    assert b"<!-- 0 -->" in svg and b"<!-- 1 -->" in svg
    bars = read_bars(svg)
    assert bars.values is None and "evenly spaced" in bars.uncalibrated
    assert match_values(bars, [2.2, 0.3, 1.75]) is None


def test_tick_labels_all_alike_are_not_trusted(tmp_path):
    def draw(ax):  # ticks every 0.1 up to 0.9, all labelled 0 by '%d'
        ax.bar(["a", "b", "c"], [0.3, 0.75, 0.9])
        ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%d"))

    bars = read_bars(svg_of(tmp_path, draw))
    assert bars.values is None and "all the same" in bars.uncalibrated


def test_a_log_axis_is_not_taken_for_a_linear_one(tmp_path):
    def draw(ax):
        ax.bar(["a", "b", "c"], [10, 1000, 50])
        ax.set_yscale("log")

    assert read_bars(svg_of(tmp_path, draw)).values is None


def test_ratios_hold_on_an_inverted_y_axis(tmp_path):
    def draw(ax):
        ax.bar(list(MONTHS), VALUES)
        ax.set_yticks([])
        ax.invert_yaxis()

    bars = read_bars(svg_of(tmp_path, draw))
    assert bars.values is None and all(h < 0 for h in bars.heights)
    assert match_values(bars, sorted(VALUES)) is None
    assert match_values(bars, [VALUES[0], OTHER_YEAR, VALUES[2]]) is not None


def test_ratios_say_which_proportions_differ(tmp_path):
    def draw(ax):
        ax.bar(list(MONTHS), [VALUES[0], VALUES[1] + 0.001, VALUES[2]])
        ax.set_yticks([])  # no tick labels at all

    bars = read_bars(svg_of(tmp_path, draw))
    assert bars.values is None and "no labelled y ticks" in bars.uncalibrated
    problem = match_values(bars, VALUES)
    assert_one_sentence(problem)
    shown, wanted = re.search(r"bars stand (.+) and those values (.+)\.$", problem).groups()
    assert shown != wanted  # enough decimals to show the 0.001 in 35


# ------------------------------------------------------------------------ matching

@pytest.fixture
def starter_svg(tmp_path):
    return svg_of(tmp_path, lambda ax: ax.bar(list(MONTHS), VALUES))


@pytest.fixture
def starter_bars(starter_svg):
    return read_bars(starter_svg)


def test_the_right_values_match_in_any_order(starter_bars):
    for order in itertools.permutations(VALUES):
        assert match_values(starter_bars, order) is None
    assert match_values(starter_bars, dict(reversed(MONTHS.items()))) is None


def test_float_noise_in_the_expected_averages_is_accepted(starter_bars):
    # Another summation order, or float32, moves an average by 1e-16 to 1e-7 of itself.
    assert match_values(starter_bars, [v * (1 + 3e-7) for v in VALUES]) is None


def test_a_neighbouring_years_value_is_rejected(starter_bars):
    problem = match_values(starter_bars, [VALUES[0], OTHER_YEAR, VALUES[2]])
    assert_one_sentence(problem)
    assert "no bar shows 31.84" in problem and "34.997 matches none" in problem


def test_an_int_truncated_bar_is_rejected_and_named(tmp_path):
    bars = bars_of(tmp_path, [VALUES[0], int(VALUES[1]), VALUES[2]])
    problem = match_values(bars, VALUES)
    assert_one_sentence(problem)
    assert "the bar of 34.000 is 34.997 cut to a whole number" in problem


def test_truncation_is_told_apart_down_to_a_millionth_of_the_value(tmp_path):
    # The promise of the default tolerance: a bar differing by more than 1e-6 of the value
    # (plus the SVG's rounding, ~1e-8 of it) is rejected; less is accepted.
    bars = bars_of(tmp_path, [35.0, 50.0, 20.0])
    assert match_values(bars, [35.0001, 50.0, 20.0]) is not None  # 2.9e-6 of 35.0001
    assert match_values(bars, [35.00002, 50.0, 20.0]) is None  # 5.7e-7 of 35.00002


def test_values_rounded_to_two_decimals_are_rejected(tmp_path):
    bars = bars_of(tmp_path, [round(v, 2) for v in VALUES])
    problem = match_values(bars, VALUES)
    assert_one_sentence(problem)
    assert "rounded to 2 decimals" in problem


def test_a_missing_bar_is_rejected(tmp_path):
    problem = match_values(bars_of(tmp_path, VALUES[:2]), VALUES)
    assert_one_sentence(problem)
    assert problem.startswith("month.svg shows 2 bars") and "no bar shows 37.26" in problem


def test_an_extra_bar_is_rejected(tmp_path):
    problem = match_values(bars_of(tmp_path, [*VALUES, 20.5]), VALUES)
    assert_one_sentence(problem)
    assert problem.startswith("month.svg shows 4 bars")
    assert re.search(r"the bar of 20\.50* matches none of them", problem), problem


# ------------------------------------------------------------------------ refusals

def refusal(svg):
    with pytest.raises(SvgError) as caught:
        read_bars(svg)
    message = str(caught.value)
    assert_one_sentence(message)
    return message


def test_a_png_is_refused(tmp_path):
    fig, ax = plt.subplots()
    ax.bar(["a"], [1])
    fig.savefig(tmp_path / "month.png")
    plt.close(fig)
    assert "does not parse" in refusal((tmp_path / "month.png").read_bytes())


def test_text_and_other_xml_are_refused():
    assert "does not parse" in refusal(b"January 37.26\n")
    assert "root element is <html>" in refusal(b"<html><body>37.26</body></html>")
    assert "empty" in refusal(b"  \n")


def test_a_truncated_svg_is_refused(starter_svg):
    assert "does not parse" in refusal(starter_svg[: len(starter_svg) // 2])


def test_an_svg_without_bars_is_refused(tmp_path):
    line = svg_of(tmp_path, lambda ax: ax.plot(VALUES))
    assert "no bars" in refusal(line)
    bare = b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="5" height="5"/></svg>'
    assert "no matplotlib axes" in refusal(bare)


def test_a_huge_file_is_refused_before_it_is_parsed(starter_svg):
    padded = starter_svg + b" " * (MAX_BYTES - len(starter_svg))
    assert read_bars(padded).values  # as big as is read, and a chart
    assert "bytes" in refusal(padded + b" ")


def test_entity_declarations_are_refused():
    bomb = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            b'<svg xmlns="http://www.w3.org/2000/svg">&b;</svg>')
    assert "entities" in refusal(bomb)


def test_horizontal_bars_are_refused_by_name(tmp_path):
    assert "horizontally (barh)" in refusal(svg_of(tmp_path, lambda ax: ax.barh(["a", "b"],
                                                                                [3, 4])))


def test_bars_in_two_plots_are_refused(tmp_path):
    fig, (left, right) = plt.subplots(1, 2)
    left.bar(["a"], [1])
    right.bar(["b"], [2])
    fig.savefig(tmp_path / "two.svg")
    plt.close(fig)
    assert "2 separate plots" in refusal((tmp_path / "two.svg").read_bytes())


# ------------------------------------------------------------------------ the course's versions

def test_the_starter_code_under_the_course_versions(tmp_path):
    if not COURSE_PYTHON.exists():
        pytest.skip(f"{COURSE_PYTHON} does not exist, so the starter code was not run under "
                    "the course's pandas 2.1.1 and matplotlib 3.8.0.")
    env = {**os.environ, "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(tmp_path / "mpl")}
    versions = subprocess.run(
        [str(COURSE_PYTHON), "-c",
         "import pandas, matplotlib; print(pandas.__version__, matplotlib.__version__)"],
        check=False, env=env, timeout=120, capture_output=True, text=True)
    if versions.returncode:  # the venv is there but still being built, or broken
        pytest.skip(f"{COURSE_PYTHON} cannot import pandas and matplotlib yet, so the starter "
                    "code was not run under the course's versions.")
    out = tmp_path / "month.svg"
    assert STARTER.count('"/files/month.svg"') == 1
    script = tmp_path / "starter.py"
    script.write_text(STARTER.replace('"/files/month.svg"', repr(str(out))))
    run = subprocess.run([str(COURSE_PYTHON), str(script)], check=False, env=env, timeout=120,
                         capture_output=True, text=True)
    assert run.returncode == 0, f"the starter code failed under {versions.stdout}: {run.stderr}"
    bars = read_bars(out.read_bytes())
    assert_read_back(bars, VALUES)
    assert bars.labels == list(MONTHS)
    assert match_values(bars, sorted(VALUES)) is None
    assert match_values(bars, [VALUES[0], int(VALUES[1]), VALUES[2]]) is not None
