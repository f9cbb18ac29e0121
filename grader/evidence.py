"""What the checks look at besides the topic and the partition files (those are read through
tools/partition_files.py): the PNG, the grading folder's files, and the programs' sources."""

import ast
import math

from tools.partition_files import read_regular

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SHOWN_PROBLEMS = 3


def first_problems(problems):
    shown = "; ".join(str(p) for p in problems[:SHOWN_PROBLEMS])
    more = len(problems) - SHOWN_PROBLEMS
    return shown + (f" (and {more} more)" if more > 0 else "")


def is_png(path):
    try:
        return read_regular(path)[1][:8] == PNG_SIGNATURE
    except OSError:
        return False


def folder_snapshot(folder):
    """{name: (size, mtime)} of a folder's files, Python's byte-code caches left out."""
    snapshot = {}
    for path in folder.iterdir():
        if path.name == "__pycache__" or path.suffix == ".pyc":
            continue
        stat = path.stat()
        snapshot[path.name] = (stat.st_size, stat.st_mtime_ns)
    return snapshot


def _literal(node, names=None):
    """The value of a literal, or of a module-level NAME bound to one; None otherwise."""
    if isinstance(node, ast.Name) and names and node.id in names:
        return names[node.id]
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        return None


def calls_to(source_path, function_name):
    """The keyword arguments of every call `function_name(...)` or `module.function_name(...)`
    in a Python source file, as {name: literal value (None when not a literal)}. A module-level
    constant counts as its value (ACKS = "all"; acks=ACKS), and settings kept as data,
    `function_name(**CONFIG)` with a module-level `CONFIG = {...}`, count as keywords. A file
    that does not parse has no calls."""
    try:
        tree = ast.parse(source_path.read_text())
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError):
        return
    names = module_constants(tree)
    settings = module_dicts(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name == function_name:
                keywords = {}
                for keyword in node.keywords:
                    if keyword.arg:
                        keywords[keyword.arg] = _literal(keyword.value, names)
                    elif isinstance(keyword.value, ast.Name):
                        keywords.update(settings.get(keyword.value.id, {}))
                yield keywords


def _module_assignments(tree):
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 \
                and isinstance(node.targets[0], ast.Name):
            yield node.targets[0].id, node.value


def module_constants(tree):
    """{NAME: value} of the module-level assignments NAME = literal."""
    found = {}
    for name, value in _module_assignments(tree):
        literal = _literal(value)
        if literal is not None:
            found[name] = literal
    return found


def module_dicts(tree):
    """{NAME: {key: literal value}} of the module-level assignments NAME = {"key": value...}."""
    names = module_constants(tree)
    return {name: {_literal(key): _literal(item, names)
                   for key, item in zip(value.keys, value.values) if key is not None}
            for name, value in _module_assignments(tree) if isinstance(value, ast.Dict)}


def counted(data):
    """The readings a partition file (or expected statistics) counts: the sum of its counts."""
    total = 0
    for month, years in (data or {}).items():
        if month in ("partition", "offset") or not isinstance(years, dict):
            continue
        for stats in years.values():
            if isinstance(stats, dict) and isinstance(stats.get("count"), int):
                total += stats["count"]
    return total


def truncation_problem(data, readings):
    """A sentence when every sum in a partition file that differs from the oracle's is the sum
    of the same readings' degrees cut to whole numbers (int()), else None. `readings`: the
    (month, date, degrees) the oracle counted for the file's offset."""
    exact, cut = {}, {}
    for month, date, degrees in readings:
        key = (month, date[:4])
        exact[key] = exact.get(key, 0.0) + degrees
        cut[key] = cut.get(key, 0) + math.trunc(degrees)
    differing = 0
    for (month, year), total in exact.items():
        stats = data.get(month, {}).get(year) if isinstance(data.get(month), dict) else None
        found = stats.get("sum") if isinstance(stats, dict) else None
        if not isinstance(found, (int, float)) or _close(found, total):
            continue
        if not _close(found, cut[(month, year)]):
            return None
        differing += 1
    if not differing:
        return None
    return (f"{differing} sums are the sums of the degrees cut to whole numbers (int()): add "
            "each reading's degrees as they are, a float")


def _close(found, wanted):
    return abs(found - wanted) <= 1e-6 * max(1.0, abs(wanted))
