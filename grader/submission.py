"""The grading copy of a submission's files/ folder, ready to run here.

The programs never run in the graded folder itself: its sources are copied (the committed sample
outputs stay out, the programs must make them) and run in the copy. Three things about the copy
can differ from the submission, each said in the report (notes), none touching what is graded:

- Where the folder is. The assignment's container mounts the submission's files/ at /files, so
  students write `/files/partition-0.json`. Natively the copy is somewhere else: every string
  literal that names `/files` or a path under it says the copy's path instead, so the programs
  write where they would in the container and never into this machine's /files. In a container
  the copy is mounted at /files and nothing changes.
- Where the broker is. Students write `localhost:9092` as the assignment's snippet does. When
  the grader's broker is on another port (the native broker of KAFKA_BOOTSTRAP, or a container's
  broker on a free port so as to leave a user's p7 on 9092 alone), `localhost:9092` and
  `127.0.0.1:9092` in the sources name that port instead.
- The pace of weather.py. The grader asks for a fast stream with AUTOGRADER_DELAY_OVERRIDE_VAL
  (the course graders' variable) and WEATHER_DELAY_SEC. A weather.py that honours neither gives
  a reading every delay_sec (the assignment's 0.5 s) and would make grading take hours: it is
  measured, and then replaced by the grader's pristine_weather.py, which has the same
  get_next_weather(delay_sec=...) and honours both.
"""

import errno
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from tools.harness import NOBODY, NOBODY_ID, DockerError

from . import sandbox

PRISTINE_WEATHER = Path(__file__).with_name("pristine_weather.py")

# The grader's pace: up to 1,000 simulated days a second, decades of data within a session.
DELAY_SEC = "0.001"
DELAY_VARIABLES = ("AUTOGRADER_DELAY_OVERRIDE_VAL", "WEATHER_DELAY_SEC")
ASSIGNMENT_DELAY_SEC = 0.5
# The probe: readings that come slower than this at delay_sec=0.5 ignore the grader's pace.
PROBE_READINGS = 3
SLOW_READING_SEC = 0.1
PROBE_TIMEOUT = 30

# Generated outputs are never copied into the grading folder: the programs must make them.
OUTPUT_PATTERNS = ("partition-*.json*", "birthday.json*", "yearly_trends.png*",
                   "yearly_trend.png*", "*.tmp", "__pycache__", "*.pyc")

# A quote, then /files alone or followed by a path: "/files", '/files/x', f"/files/{n}".
FILES_LITERAL = re.compile(r"""(?P<quote>['"])/files(?=[/'"])""")
DEFAULT_BROKER = re.compile(r"\b(localhost|127\.0\.0\.1):9092\b")

PROBE = """
import sys, time
sys.path.insert(0, ".")
import weather
readings = weather.get_next_weather(delay_sec={pace})
next(readings)
started = time.monotonic()
for _ in range({readings}):
    next(readings)
print((time.monotonic() - started) / {readings})
"""


def delay_environment():
    return {name: DELAY_SEC for name in DELAY_VARIABLES}


# The copy's limit, in apparent size (st_size: a sparse file counts at its full length), added
# up as the files are copied: past it copying stops before the file that would cross it is
# written, and the submission is not graded. The assignment's files are a few hundred KB.
COPY_LIMIT = 200 * 1000 * 1000
# At most this many sentences about what was not copied; the rest are counted in one more.
MAX_REFUSALS = 10
SHOWN_CHARS = 120           # of a name or a link's target in a sentence


class SubmissionTooLarge(Exception):
    """files/ holds more than COPY_LIMIT: the sentence says so; nothing of it is graded."""


def _shown(text):
    """`text` fit for a one-line sentence: unprintable characters as ?, clipped."""
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"


def _within(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def inside(files, path):
    """True when `path` (in the submitted folder `files`) is a regular file that is, or whose
    links lead to, a file within `files`: what the checks may read. A link out of the
    submission, a dangling link or a loop, a FIFO, socket or device are False, so that reading
    the submission never reads a host file nor blocks on a pipe."""
    try:
        real = os.path.realpath(path)
        return _within(real, os.path.realpath(files)) and stat.S_ISREG(os.stat(real).st_mode)
    except (OSError, ValueError):
        return False


def _link_refusal(link, name, root):
    """Why the link `link` (shown as `name`) is not copied, or None when it points within the
    real folder `root` at a file or at a folder that does not hold it."""
    target = _shown(os.readlink(link))
    try:
        mode = os.stat(link).st_mode
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"{name} -> {target} is a loop of links: not copied"
        return f"{name} -> {target} points at nothing: not copied"
    real = os.path.realpath(link)
    if not _within(real, root):
        return f"{name} -> {target} points outside the submission: not copied"
    if stat.S_ISDIR(mode):
        if _within(os.path.realpath(os.path.dirname(link)), real):
            return f"{name} -> {target} points at a folder that holds it, a loop: not copied"
        return None
    if not stat.S_ISREG(mode):
        return f"{name} -> {target} points at neither a file nor a folder: not copied"
    return None


def _special(mode):
    if stat.S_ISFIFO(mode):
        return "a FIFO (a named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "neither a file, a folder nor a link"


def copy_sources(files, copy, limit=COPY_LIMIT):
    """Copy the submitted folder `files` to `copy`, leaving out OUTPUT_PATTERNS (matched on the
    base name at any depth, as shutil.ignore_patterns does). Returns the notes for the report.

    Nothing is followed: a link whose target, resolved, is a file or a folder within `files`
    (and not a folder that holds the link) is copied as a link, relative, to the same place in
    the copy; any other link (out of the submission, dangling, a loop), FIFO, socket or device
    is left out with a sentence. Raises SubmissionTooLarge, copying no further, before the file
    that would take the copy past `limit` bytes of apparent size."""
    if copy.exists():
        shutil.rmtree(copy)
    root = os.path.realpath(files)
    ignored = shutil.ignore_patterns(*OUTPUT_PATTERNS)
    refusals, total, folders = [], 0, []
    pending = [""]                      # folders to copy, relative to root; never a link
    while pending:
        relative = pending.pop()
        source, target = os.path.join(root, relative), os.path.join(copy, relative)
        os.makedirs(target, exist_ok=True)
        folders.append((source, target))
        try:
            with os.scandir(source) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as err:
            refusals.append(f"{_shown('files/' + relative)} cannot be read "
                            f"({_shown(err.strerror or str(err))}): not copied")
            continue
        skip = ignored(source, [entry.name for entry in entries])
        for entry in entries:
            if entry.name in skip:
                continue
            inner = os.path.join(relative, entry.name)
            name = _shown(f"files/{inner}")
            try:
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    refusal = _link_refusal(entry.path, name, root)
                    if refusal is None:
                        points_at = os.path.relpath(os.path.realpath(entry.path),
                                                    os.path.realpath(source))
                        os.symlink(points_at, os.path.join(target, entry.name))
                elif stat.S_ISDIR(mode):
                    pending.append(inner)
                    refusal = None
                elif stat.S_ISREG(mode):
                    size = entry.stat(follow_symlinks=False).st_size
                    if total + size > limit:
                        raise SubmissionTooLarge(
                            f"files/ holds more than {limit // 1_000_000} MB: {name} "
                            f"({size / 1e6:.0f} MB as listed, a sparse file counted at full "
                            f"size) takes the copy past it, so the submission is not graded")
                    total += size
                    shutil.copy2(entry.path, os.path.join(target, entry.name),
                                 follow_symlinks=False)
                    refusal = None
                else:
                    refusal = f"{name} is {_special(mode)}, not a file: not copied"
            except OSError as err:
                why = _shown(err.strerror or str(err))
                refusal = f"{name} cannot be read ({why}): not copied"
            if refusal is not None:
                refusals.append(refusal)
    # Folders' modes and times last: a read-only folder must first receive its files.
    for source, target in reversed(folders):
        shutil.copystat(source, target, follow_symlinks=False)
    if len(refusals) > MAX_REFUSALS:
        more = len(refusals) - MAX_REFUSALS + 1
        refusals[MAX_REFUSALS - 1:] = [f"{more} more links or special files are not copied"]
    return refusals


def rewrite_sources(copy, folder=None, broker_port=None):
    """Point the copy's `/files` literals at `folder` and its `localhost:9092` at `broker_port`
    (either None: left as it is). Returns the notes for the report."""
    notes = []
    files_changed, broker_changed = [], []
    for path in sorted(copy.rglob("*.py")):
        try:
            source = path.read_text()
        except (OSError, UnicodeDecodeError):
            continue
        text = source
        if folder is not None:
            text = FILES_LITERAL.sub(lambda m: m.group("quote") + str(folder), text)
            if text != source:
                files_changed.append(path.name)
        if broker_port is not None and broker_port != 9092:
            moved = DEFAULT_BROKER.sub(lambda m: f"{m.group(1)}:{broker_port}", text)
            if moved != text:
                broker_changed.append(path.name)
            text = moved
        if text != source:
            path.write_text(text)
    if files_changed:
        notes.append(f"{', '.join(files_changed)} write to /files, as in the assignment's "
                     f"container: graded natively in a copy where /files means the grading "
                     "folder (--docker mounts it at /files instead)")
    if broker_changed:
        notes.append(f"{', '.join(broker_changed)} name localhost:9092: the copy names the "
                     f"grader's broker, localhost:{broker_port}")
    return notes


def weather_pace(copy, python=sys.executable, pace=ASSIGNMENT_DELAY_SEC):
    """Seconds per reading of the copy's weather.py at delay_sec=`pace` (the assignment's) with
    the grader's pace asked for; None when it cannot be run, with the reason."""
    probe = PROBE.format(pace=pace, readings=PROBE_READINGS)
    # In the sandbox (grader/sandbox.py): weather.py is the submission's code, run at import.
    box = sandbox.current()
    box.own(copy)
    try:
        done = box.run([str(python), "-B", "-c", probe], cwd=copy, env=delay_environment(),
                       timeout=PROBE_TIMEOUT, python=python)
    except subprocess.TimeoutExpired:
        return None, f"{PROBE_READINGS} readings took longer than {PROBE_TIMEOUT} s"
    return _probed_pace(done)


def container_weather_pace(container, pace=ASSIGNMENT_DELAY_SEC):
    """weather_pace() inside the submission's container (--docker, --image): the probe runs
    there as nobody, in /files (the grading copy, mounted), never on this machine."""
    probe = PROBE.format(pace=pace, readings=PROBE_READINGS)
    try:
        done = container.run_as(NOBODY, ["python3", "-B", "-c", probe], timeout=PROBE_TIMEOUT,
                                workdir="/files", env=delay_environment())
    except subprocess.TimeoutExpired:
        return None, f"{PROBE_READINGS} readings took longer than {PROBE_TIMEOUT} s"
    except DockerError as err:
        return None, str(err).splitlines()[0]
    return _probed_pace(done)


def _probed_pace(done):
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return None, lines[-1] if lines else f"it exited with {done.returncode}"
    try:
        return float(done.stdout.strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, f"it printed {done.stdout.strip()[:80]!r}"


def settle_weather(copy, python=sys.executable, assignment_pace=ASSIGNMENT_DELAY_SEC,
                   container=None):
    """Keep the copy's weather.py when it honours the grader's pace, else put the pristine one
    in its place. Returns the notes for the report. With `container` (the one the copy is
    mounted in) the probe runs in there instead of in this machine's sandbox."""
    weather = copy / "weather.py"
    if not weather.is_file():
        shutil.copy(PRISTINE_WEATHER, weather)
        return ["there is no files/weather.py: graded with the grader's own (the provided "
                "file's get_next_weather(delay_sec=...))"]
    if container is not None:
        pace, why = container_weather_pace(container, assignment_pace)
    else:
        pace, why = weather_pace(copy, python, assignment_pace)
    if pace is not None and pace < SLOW_READING_SEC:
        return []
    shutil.copy(PRISTINE_WEATHER, weather)
    if pace is None:
        found = f"could not be run ({why})"
    else:
        found = (f"honours neither {' nor '.join(DELAY_VARIABLES)} (a reading every "
                 f"{pace:.2f} s at delay_sec={assignment_pace})")
    return [f"files/weather.py {found}: graded with the grader's pristine weather.py, the same "
            "get_next_weather(delay_sec=...) at the grader's pace"]


def prepare(files, copy, folder=None, broker_port=None, python=sys.executable,
            pace=ASSIGNMENT_DELAY_SEC):
    """The grading copy: sources copied (copy_sources: no link followed, SubmissionTooLarge past
    COPY_LIMIT), rewritten as said above, weather.py settled (probed with `python` at the
    version's `pace`). Returns the notes for the report."""
    notes = copy_sources(files, copy)
    return notes + settle_weather(copy, python, pace) + rewrite_sources(copy, folder, broker_port)


def open_to_container_user(copy, uid=NOBODY_ID):
    """Make the grading copy (the container's /files) writable by the user the programs run as
    in the container: owned by it when the grader is root, else open to everyone (a+rwX)."""
    root = os.geteuid() == 0
    for folder, dirs, names in os.walk(copy):
        paths = [folder] + [os.path.join(folder, name) for name in dirs + names]
        for path in paths:
            try:
                if root:
                    os.lchown(path, uid, uid)
                elif not os.path.islink(path):
                    mode = os.stat(path).st_mode
                    executable = stat.S_ISDIR(mode) or mode & 0o111
                    os.chmod(path, stat.S_IMODE(mode) | 0o666 | (0o111 if executable else 0))
            except OSError:
                pass
