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

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

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


def copy_sources(files, copy):
    if copy.exists():
        shutil.rmtree(copy)
    shutil.copytree(files, copy, ignore=shutil.ignore_patterns(*OUTPUT_PATTERNS))


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
    env = dict(os.environ, **delay_environment())
    probe = PROBE.format(pace=pace, readings=PROBE_READINGS)
    try:
        done = subprocess.run([str(python), "-B", "-c", probe], cwd=copy, env=env,
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, f"{PROBE_READINGS} readings took longer than {PROBE_TIMEOUT} s"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return None, lines[-1] if lines else f"it exited with {done.returncode}"
    try:
        return float(done.stdout.strip().splitlines()[-1]), ""
    except (ValueError, IndexError):
        return None, f"it printed {done.stdout.strip()[:80]!r}"


def settle_weather(copy, python=sys.executable, assignment_pace=ASSIGNMENT_DELAY_SEC):
    """Keep the copy's weather.py when it honours the grader's pace, else put the pristine one
    in its place. Returns the notes for the report."""
    weather = copy / "weather.py"
    if not weather.is_file():
        shutil.copy(PRISTINE_WEATHER, weather)
        return ["there is no files/weather.py: graded with the grader's own (the provided "
                "file's get_next_weather(delay_sec=...))"]
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
    """The grading copy: sources copied, rewritten as said above, weather.py settled (probed
    with `python` at the version's `pace`). Returns the notes for the report."""
    copy_sources(files, copy)
    return settle_weather(copy, python, pace) + rewrite_sources(copy, folder, broker_port)
