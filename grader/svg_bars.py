"""The bars of a matplotlib bar chart, read back out of its SVG: for the check of plot.py's
month.svg, which must show the latest January, February and March average max-temperatures
(in any order along the x axis). Standard library only.

    bars = read_bars(svg_bytes)                      # raises SvgError(sentence)
    problem = match_values(bars, [37.26, 34.99, 47.48])   # None, or one sentence

What it relies on is how matplotlib writes a figure as SVG (3.8 and 3.11 at least; the unit tests
read back SVGs that matplotlib itself writes):
- an Axes is a <g id="axes_N">, and each patch drawn in it a <g id="patch_N"> child holding one
  <path>. A bar (ax.bar, plt.bar, pandas' Series.plot.bar) is "M x0 y0 L x1 y0 L x1 y1 L x0 y1 z":
  its first edge lies on the baseline (data y = the bar's bottom, 0 unless bottom= is given) and
  its third point is the bar's end. The axes background is the first such rectangle, unclipped
  and containing every other one; a legend's patches sit inside <g id="legend_N"> and spines are
  two-point paths, so neither is taken for a bar.
- a y tick is a <g id="ytick_N"> inside a <g id="matplotlib.axis_N">, with a <use x= y=> marker
  and a text group holding its label as an XML comment (svg.fonttype 'path', the default) or as
  a <text> element (svg.fonttype 'none'). The axis's offset text ("1e7", "+1e6", or the mathtext
  forms) is a text group beside the ticks: a factor ("1e7") scales every label, an added offset
  ("+1e6") moves them all alike and so changes no bar's height.
- coordinates carry at most 6 decimals, trailing zeros dropped.

A bar's value is its height times the slope of a straight line fitted through the y ticks'
(position, label) pairs. When the labels cannot be trusted for that (not plain numbers, fewer
than two, or off one straight line by more than the SVG's rounding, as on a log axis or with
rounded labels) `values` is None, and match_values compares the bars' proportions instead.
"""

import html
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from dataclasses import dataclass

MAX_BYTES = 5_000_000  # matplotlib writes a three-bar chart in 15-40 kB, text as paths included
# The default tolerance of match_values, relative to each expected value; see match_values.
REL_TOL = 1e-6
DESCRIBE = "the partition files' latest January, February and March averages"
FIT_SLACK = 1e-9  # of the largest tick label: the float error of reading "0.1" and the like

_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")
_GROUPED = re.compile(r"[-+]?\d{1,3}(?:([,\u00a0\u202f\u2009 ])\d{3})(?:\1\d{3})*(?:\.\d*)?")
_OFFSET = re.compile(r"(?:×?1e(?P<exp>[-+]?\d+))?(?P<shift>[-+](?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)?")
_NUMBERISH = re.compile(r"[-+×^{}.e\d\s]*\d[-+×^{}.e\d\s]*")
_PATH_TOKEN = re.compile(r"[A-Za-z]|" + _NUMBER.pattern.replace("e", "[eE]"))
_RECT_LETTERS = ["M", "L", "L", "L", "z"]


class SvgError(ValueError):
    """Why an SVG was refused, as one sentence a student can act on."""


@dataclass(frozen=True)
class Bars:
    """The bars of one bar chart, left to right.

    values: each bar's height in data units (its value when it starts at 0), or None when the
        y axis could not be calibrated (`uncalibrated` says why).
    heights: each bar's signed height in SVG units, positive for a bar drawn upwards.
    labels: the x tick labels, left to right, that matplotlib wrote as text or comments.
    value_error: the most the SVG's rounding can move a value, in data units (None with values).
    height_error: the most the SVG's rounding can move a height, in SVG units.
    """

    values: list | None
    heights: list
    labels: list
    name: str = "month.svg"
    uncalibrated: str | None = None
    value_error: float | None = None
    height_error: float = 1e-6


# ------------------------------------------------------------------------ the XML

def _parse(data, name):
    """The root element of `data`, comments kept (they carry matplotlib's labels); SvgError for
    anything too big, empty, declaring entities, not XML or not rooted in <svg>."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    if len(data) > MAX_BYTES:
        raise SvgError(f"{name} is {len(data):,} bytes, more than the {MAX_BYTES:,} that a bar "
                       "chart of a few months takes, so it was not read.")
    if not data.strip():
        raise SvgError(f"{name} is empty: it should be the bar chart plot.py saves.")
    if b"<!ENTITY" in data:  # matplotlib declares none; refusing them rules out entity bombs
        raise SvgError(f"{name} declares XML entities, which matplotlib never writes, so it "
                       "was not read.")
    parser = ET.XMLParser(target=ET.TreeBuilder(insert_comments=True))
    try:
        parser.feed(bytes(data))
        root = parser.close()
    except ET.ParseError as err:
        raise SvgError(f"{name} is not an SVG: it does not parse as XML ({err}).") from None
    if _local(root) != "svg":
        raise SvgError(f"{name} is XML but not an SVG: its root element is <{_local(root)}>.")
    return root


def _local(element):
    """The element's tag without its namespace; '' for a comment."""
    return element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""


def _gid(element):
    """The id of a <g> element, '' for anything else."""
    return element.get("id", "") if _local(element) == "g" else ""


def _children(element, prefix):
    """The element's child groups whose id starts with `prefix`."""
    return [child for child in element if _gid(child).startswith(prefix)]


def _label(group):
    """The text of the first label inside `group`: matplotlib's XML comment (escaped as its
    _escape_comment does: HTML entities, a zero-width space between two '-') or <text>."""
    for element in group.iter():
        if element.tag is ET.Comment:
            return html.unescape(element.text or "").replace("\u200b", "").strip()
        if _local(element) == "text":
            return "".join(element.itertext()).strip()
    return ""


def _decimals(token):
    """How many decimals a number as written carries."""
    mantissa = token.lower().split("e")[0]
    return len(mantissa.split(".")[1]) if "." in mantissa else 0


# ------------------------------------------------------------------------ the bars

@dataclass(frozen=True)
class _Rect:
    """An axis-aligned rectangle drawn from (x0, y0) along x first, to (x1, y1)."""
    x0: float
    y0: float
    x1: float
    y1: float
    clip: str | None  # the id of the clipPath it is drawn through, if any
    decimals: int

    def box(self):
        return (min(self.x0, self.x1), min(self.y0, self.y1),
                max(self.x0, self.x1), max(self.y0, self.y1))

    def contains(self, other):
        mine, theirs = self.box(), other.box()
        return (mine[0] <= theirs[0] and mine[1] <= theirs[1]
                and mine[2] >= theirs[2] and mine[3] >= theirs[3])


def _rectangle(patch):
    """The patch group's path as a _Rect when it is exactly "M p0 L p1 L p2 L p3 z" with a
    horizontal first edge and axis-aligned sides (how matplotlib writes a Rectangle), else None."""
    path = next((el for el in patch if _local(el) == "path"), None)
    d = path.get("d", "") if path is not None else ""
    tokens = _PATH_TOKEN.findall(d)
    if _PATH_TOKEN.sub("", d).strip(" \t\r\n,") or len(tokens) != 13:
        return None
    if [tokens[i] for i in (0, 3, 6, 9, 12)] not in (_RECT_LETTERS, _RECT_LETTERS[:4] + ["Z"]):
        return None
    numbers = [tokens[i] for i in (1, 2, 4, 5, 7, 8, 10, 11)]
    x0, y0, x1, y1a, x2, y2, x3, y3 = (float(n) for n in numbers)
    if not (y0 == y1a and x1 == x2 and y2 == y3 and x3 == x0):
        return None
    clip = re.fullmatch(r"url\(#(.+)\)", path.get("clip-path", "").strip())
    return _Rect(x0, y0, x2, y2, clip[1] if clip else None, max(_decimals(n) for n in numbers))


def _bars_of(axes, clip_boxes):
    """The bar rectangles drawn directly in one axes group, the axes background left out: that
    is the first rectangle (matplotlib draws it before any artist), unclipped, and either
    containing all the others or the very box that the others are clipped to (bars are clipped
    to the axes by default, and may reach past it when the y limits are set)."""
    rects = [rect for rect in map(_rectangle, _children(axes, "patch_")) if rect is not None]
    if rects and rects[0].clip is None and (
            all(rects[0].contains(r) for r in rects[1:])
            or any(_same_box(rects[0].box(), clip_boxes.get(r.clip)) for r in rects[1:])):
        rects = rects[1:]
    return rects


def _same_box(box, other):
    """True when the two boxes agree to within a few units of the SVG's 6th decimal (the clip
    box is written as x, y, width, height, each rounded on its own)."""
    return other is not None and all(abs(a - b) <= 1e-5 for a, b in zip(box, other))


def _clip_boxes(root):
    """{clipPath id: box of its rectangle} for the clipPaths matplotlib writes: one <rect>."""
    boxes = {}
    for clip in root.iter():
        rect = next((el for el in clip if _local(el) == "rect"), None)
        if _local(clip) == "clipPath" and rect is not None:
            try:
                x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
                boxes[clip.get("id")] = (x, y, x + float(rect.get("width", 0)),
                                         y + float(rect.get("height", 0)))
            except ValueError:
                continue
    return boxes


def _chart(root, name):
    """The one axes group that holds bars, with its bars; SvgError when none or several do."""
    axes = [el for el in root.iter() if _gid(el).startswith("axes_")]
    if not axes:
        raise SvgError(f"{name} holds no bar chart: it has no matplotlib axes at all.")
    clip_boxes = _clip_boxes(root)
    charts = [(group, bars) for group in axes if (bars := _bars_of(group, clip_boxes))]
    if not charts:
        raise SvgError(f"{name} holds no bar chart: its axes have no bars (draw them with "
                       "ax.bar or Series.plot.bar).")
    if len(charts) > 1:
        raise SvgError(f"{name} holds bars in {len(charts)} separate plots; draw the months "
                       "as bars of one chart.")
    group, bars = charts[0]
    if _horizontal(bars):
        raise SvgError(f"{name} draws its bars horizontally (barh), which is not supported: "
                       "draw them upright with ax.bar or Series.plot.bar.")
    return group, sorted(bars, key=lambda r: (r.x0 + r.x1) / 2)


def _horizontal(bars):
    """True when the bars share the x of their first point but not its y: barh's bars start
    on a common vertical baseline, upright bars on a horizontal one."""
    return (len(bars) > 1 and len({r.x0 for r in bars}) == 1
            and len({r.y0 for r in bars}) > 1)


# ------------------------------------------------------------------------ the axes' labels

def _normalized(label):
    """The label with the Unicode minus as '-', a mathtext wrapper ($\\mathdefault{..}$)
    removed, 10^{n} as 1en and \\times as '×'."""
    text = label.replace("\u2212", "-").strip()
    if len(text) > 1 and text[0] == text[-1] == "$":
        text = text[1:-1]
        for _ in range(3):  # \mathdefault{10^{7}} nests one level; three undo any it writes
            text = re.sub(r"\\mathdefault\{((?:[^{}]|\{[^{}]*\})*)\}", r"\1", text)
        text = text.replace("\\times", "×").replace(" ", "")
    return re.sub(r"(?<![\d.])10\^\{?([-+]?\d+)\}?", r"1e\1", text)


def _number(label):
    """The tick label as a float when it is a plain number (thousands separators allowed),
    else None."""
    text = _normalized(label)
    if _GROUPED.fullmatch(text):
        text = re.sub(r"[,\u00a0\u202f\u2009 ]", "", text)
    return float(text) if _NUMBER.fullmatch(text) else None


def _ticks(axes, kind):
    """(position, label) of each tick of `kind` ('xtick' or 'ytick') in the axes, the position
    being the marker's x for an x tick and y for a y tick; a tick without a label is left out.
    Also the axis group, for its offset text (None when the axes has no such axis)."""
    axis = next((group for group in _children(axes, "matplotlib.axis")
                 if _children(group, kind + "_")), None)
    ticks = []
    for tick in _children(axis, kind + "_") if axis is not None else []:
        marker = next((el for el in tick.iter() if _local(el) == "use" and el.get("y")), None)
        texts = _children(tick, "text_")
        label = _label(texts[0]) if texts else ""
        if marker is not None and label:
            ticks.append((marker.get("x" if kind == "xtick" else "y"), label))
    return axis, ticks


def _scale(axis):
    """10**n for an offset text that holds a factor 1en, 1.0 when there is none or it only adds
    an offset; None when a number-like text beside the ticks is not understood."""
    factor = 1.0
    for group in _children(axis, "text_"):
        text = _normalized(_label(group))
        match = _OFFSET.fullmatch(text) if text else None
        if match and (match["exp"] or match["shift"]):
            factor = 10.0 ** int(match["exp"]) if match["exp"] else 1.0
        elif text and _NUMBERISH.fullmatch(text):
            return None
    return factor


def _calibration(axes, coord_error):
    """(slope, slope_error, None) with slope in data units per SVG unit of y and slope_error
    the most, relative to it, that the ticks' rounded positions can move it; or (None, None,
    why) when the labels cannot be trusted. The ticks' positions carry coord_error each, so a
    tick further than a few of them (in data units) from the fitted line means the labels are
    not on a linear axis."""
    axis, ticks = _ticks(axes, "ytick")
    if axis is None:
        return None, None, "it has no labelled y ticks"
    points = []
    for position, label in ticks:
        value = _number(label)
        if value is None:
            return None, None, f"its y tick label {label!r} is not a plain number"
        points.append((float(position), value))
    scale = _scale(axis)
    if scale is None:
        return None, None, "its y axis's offset text is not understood"
    if len({y for y, _ in points}) < 2:
        return None, None, "it has fewer than two labelled y ticks"
    if len({v for _, v in points}) < 2:
        return None, None, "its y tick labels are all the same number"
    slope, intercept, spread = _fit(points)
    slack = 4 * abs(slope) * coord_error + FIT_SLACK * max(abs(v) for _, v in points)
    if any(abs(slope * y + intercept - v) > slack for y, v in points):
        return None, None, "its y tick labels are not evenly spaced numbers (a log scale?)"
    return slope * scale, coord_error * spread, None


def _fit(points):
    """Least-squares slope and intercept of value against position, and the spread
    sum|y - mean| / sum (y - mean)^2: moving each position by at most e moves the slope by at
    most e * spread of itself (to first order; 2 / span for two ticks)."""
    mean_y = sum(y for y, _ in points) / len(points)
    mean_v = sum(v for _, v in points) / len(points)
    squares = sum((y - mean_y) ** 2 for y, _ in points)
    slope = sum((y - mean_y) * (v - mean_v) for y, v in points) / squares
    spread = sum(abs(y - mean_y) for y, _ in points) / squares
    return slope, mean_v - slope * mean_y, spread


def _tick_decimals(axes):
    """The most decimals among the y ticks' positions."""
    _, ticks = _ticks(axes, "ytick")
    return max((_decimals(position) for position, _ in ticks), default=0)


# ------------------------------------------------------------------------ reading

def read_bars(svg_bytes, name="month.svg"):
    """The bars of the bar chart in `svg_bytes` (bytes, or str), left to right; SvgError with one
    sentence naming the file as `name` when it is not an SVG or holds no (upright) bar chart.

    The SVG's precision is taken from the coordinates themselves: matplotlib rounds each to 6
    decimals and drops trailing zeros, so among a chart's dozen coordinates some show all 6, and
    the most decimals seen bound every coordinate's rounding by half a unit of that decimal."""
    root = _parse(svg_bytes, name)
    axes, rects = _chart(root, name)
    decimals = max([rect.decimals for rect in rects] + [_tick_decimals(axes)])
    coord_error = 0.5 * 10.0 ** -decimals
    heights = [r.y0 - r.y1 + 0.0 for r in rects]  # SVG's y grows downwards; + 0.0: no -0.0
    _, xticks = _ticks(axes, "xtick")
    labels = [label for _, label in sorted(xticks, key=lambda tick: float(tick[0]))]
    slope, slope_error, why = _calibration(axes, coord_error)
    if why:
        return Bars(None, heights, labels, name, why, None, 2 * coord_error)
    values = [-slope * h + 0.0 for h in heights]
    # A value is slope * height: the height carries two coordinates' rounding, the slope the
    # relative error its ticks' rounding allows.
    value_error = abs(slope) * 2 * coord_error + max(abs(v) for v in values) * slope_error
    return Bars(values, heights, labels, name, None, value_error, 2 * coord_error)


# ------------------------------------------------------------------------ comparing

def match_values(bars, expected, rel_tol=REL_TOL, describe=DESCRIBE):
    """None when the bars show exactly the `expected` numbers (a sequence, or a mapping whose
    values are used) in any order, else one sentence for the student.

    Calibrated, a bar matches an expected value e when they differ by at most
    rel_tol * |e| + bars.value_error. value_error bounds what the SVG's 6-decimal coordinates
    can hide (under 1e-8 of the value in a default figure, 4e-7 for the starter's chart);
    rel_tol, 1e-6 by default, leaves room for float noise in how the average was computed
    (summation order; even float32, at ~1e-7). What that guarantees, for values of 20-80:
    - a bar differing from every expected value by more than 1e-6 of it (0.00002 at 20,
      0.00008 at 80) plus value_error is rejected: a neighbouring year's average (degrees
      apart) always is, and so is a value rounded to 2 decimals unless rounding moved it by
      less than that;
    - an int()-truncated value is rejected unless the true average lies less than that
      tolerance above a whole number, which about 1 average in 20,000 does (1 in 50,000 at 20,
      1 in 12,500 at 80); such a truncation is accepted, the bar then being within a
      millionth of the truth.

    Uncalibrated (bars.values is None), the heights are compared with the expected values up
    to one common factor, fitted by least squares (its sign too: an inverted y axis draws
    positive values downwards), with the same tolerances in proportion. That cannot tell values
    that are all off by one common factor (say, in other units) from the right ones; the
    sentence then says the axis could not be read and only proportions were checked."""
    wanted = [float(v) for v in (expected.values() if isinstance(expected, Mapping) else expected)]
    if len(bars.heights) != len(wanted):
        return _count_problem(bars, wanted, rel_tol, describe)
    if bars.values is not None:
        return _value_problem(bars, wanted, rel_tol, describe)
    return _ratio_problem(bars, wanted, rel_tol, describe)


def _pairs(shown, wanted, tolerances):
    """(unmatched shown indexes, unmatched wanted indexes): each wanted value, smallest first,
    takes the nearest unused shown value within its tolerance."""
    free = set(range(len(shown)))
    missing = []
    for j in sorted(range(len(wanted)), key=lambda j: wanted[j]):
        near = min(free, key=lambda i: abs(shown[i] - wanted[j]), default=None)
        if near is not None and abs(shown[near] - wanted[j]) <= tolerances[j]:
            free.remove(near)
        else:
            missing.append(j)
    return sorted(free), sorted(missing)


def _tolerances(bars, wanted, rel_tol):
    return [rel_tol * abs(w) + bars.value_error for w in wanted]


def _value_problem(bars, wanted, rel_tol, describe):
    tolerances = _tolerances(bars, wanted, rel_tol)
    extra, missing = _pairs(bars.values, wanted, tolerances)
    if not missing:
        return None
    places = _places(bars.values, wanted, 2, bars.value_error)
    notes = _mismatch_notes(bars.values, wanted, tolerances, extra, missing, places)
    return (f"{bars.name} shows bars of {_listed(bars.values, places)}; {describe} are "
            f"{_listed(wanted, places)} ({'; '.join(notes)}).")


def _count_problem(bars, wanted, rel_tol, describe):
    shown = bars.values or []
    places = _places(shown, wanted, 2, bars.value_error or 0.0)
    count = f"{len(bars.heights)} bar{'s' if len(bars.heights) != 1 else ''}"
    of = f", of {_listed(shown, places)}," if shown else ""
    sentence = (f"{bars.name} shows {count}{of} where {len(wanted)} are wanted, one for each of "
                f"{describe}: {_listed(wanted, places)}")
    if not shown:
        return sentence + "."
    tolerances = _tolerances(bars, wanted, rel_tol)
    extra, missing = _pairs(shown, wanted, tolerances)
    notes = _mismatch_notes(shown, wanted, tolerances, extra, missing, places)
    return sentence + (f" ({'; '.join(notes)})." if notes else ".")


def _mismatch_notes(shown, wanted, tolerances, extra, missing, places):
    """Clauses on the unmatched values: which wanted ones no bar shows, which bars look like
    one of them cut or rounded (grouped by how), and which bars match nothing."""
    notes = [f"no bar shows {_listed([wanted[j] for j in missing], places, 'or')}"] if missing else []
    explained = {}
    for i in extra:
        how = next(((how, j) for j in missing
                    if (how := _how_changed(shown[i], wanted[j], tolerances[j]))), None)
        if how:
            explained.setdefault(how[0], []).append((shown[i], wanted[how[1]]))
    for how, pairs in explained.items():
        many = len(pairs) > 1
        notes.append(f"the bar{'s' if many else ''} of {_listed([s for s, _ in pairs], places)} "
                     f"{'are' if many else 'is'} {_listed([w for _, w in pairs], places)} "
                     f"{how[many]}")
    unexplained = [shown[i] for i in extra
                   if not any(shown[i] == s for pairs in explained.values() for s, _ in pairs)]
    if unexplained:
        many = len(unexplained) > 1
        notes.append(f"the bar{'s' if many else ''} of {_listed(unexplained, places)} "
                     f"match{'' if many else 'es'} none of them")
    return notes


def _how_changed(shown, wanted, tolerance):
    """(singular, plural) wording of how `shown` is `wanted` cut to a whole number or rounded,
    or None."""
    if abs(shown - math.trunc(wanted)) <= tolerance:
        return ("cut to a whole number, as int() does", "cut to whole numbers, as int() does")
    for digits, unit in ((0, "a whole number"), (1, "1 decimal"), (2, "2 decimals")):
        if abs(shown - round(wanted, digits)) <= tolerance:
            plural = "whole numbers" if digits == 0 else unit
            return (f"rounded to {unit}", f"rounded to {plural}")
    return None


def _ratio_problem(bars, wanted, rel_tol, describe):
    if any(_fits_up_to_factor(bars, wanted, rel_tol, sign) for sign in (1, -1)):
        return None
    shown, goal = _proportions(bars.heights), _proportions(wanted)
    places = _places(shown, goal, 3)
    return (f"{bars.name}'s y axis could not be read ({bars.uncalibrated}), so only its bars' "
            f"proportions were checked, and they are not those of {describe} "
            f"({_listed(wanted, _places(wanted, wanted, 2))}): largest first, the bars stand "
            f"{_ratio(shown, places)} and those values {_ratio(goal, places)}.")


def _fits_up_to_factor(bars, wanted, rel_tol, sign):
    """True when heights = factor * wanted, in some order, for the least-squares factor of the
    pairing that sorts both alike (sign 1) or oppositely (sign -1, an inverted y axis)."""
    pairs = zip(sorted(bars.heights), sorted(wanted, reverse=sign < 0))
    norm = sum(w * w for w in wanted)
    if not norm:  # every wanted value is 0: so must every height be, within the rounding
        return all(abs(h) <= bars.height_error for h in bars.heights)
    factor = sum(h * w for h, w in pairs) / norm
    if factor == 0:
        return False
    scaled = [h / factor for h in bars.heights]
    tolerances = [rel_tol * abs(w) + bars.height_error / abs(factor) for w in wanted]
    return not _pairs(scaled, wanted, tolerances)[1]


def _proportions(values):
    """The values, largest in size first, as fractions of that largest one."""
    ordered = sorted(values, key=abs, reverse=True)
    top = abs(ordered[0]) if ordered and ordered[0] else 1.0
    return [v / top for v in ordered]


def _places(shown, wanted, least, error=0.0):
    """The fewest decimals, from `least` up to 10, at which the two lists, sorted, read
    differently when they differ (so that a sentence about a mismatch shows one) and no value
    that is not whole reads as whole (34.9972 as 35.00 beside a bar of 34.00). A shown value
    within `error` of a whole number counts as whole: it carries the SVG's rounding, so a bar
    drawn at 34 may read 33.99999997."""
    def looks_whole(value, places, slack):
        return float(f"{value:.{places}f}") == round(value) and abs(value - round(value)) > slack

    def fine(places):
        texts = lambda values: sorted(f"{v:.{places}f}" for v in values)
        differs = sorted(shown) == sorted(wanted) or texts(shown) != texts(wanted)
        return differs and not (any(looks_whole(v, places, 0.0) for v in wanted)
                                or any(looks_whole(v, places, error) for v in shown))
    return next((places for places in range(least, 11) if fine(places)), 10)


def _listed(values, places, conjunction="and"):
    """'1.00, 2.00 and 3.00'; 'none' for no values."""
    texts = [f"{v:.{places}f}" for v in values] or ["none"]
    return texts[0] if len(texts) == 1 else f"{', '.join(texts[:-1])} {conjunction} {texts[-1]}"


def _ratio(values, places):
    """'1 : 0.785 : 0.737'."""
    return " : ".join("1" if v == 1 else f"{v:.{places}f}" for v in values)
