"""The hostile corpus: copies of the correct final-version submission (final/) with a few lines
added that attack the grader, the machine, or the other submissions of a class. Shared by the
native tests (tests/test_autograde_hostile.py, tests/test_autograde_hostile_batch.py) and the
Docker ones (dockertests/test_autograde_hostile_corpus_docker.py).

HOSTILE[name] = Hostile(what, only, prepend, inserts, links, expect, docker, pid_limit, root,
hole):
- `prepend`: {file: code} put at the top of that file of files/; `inserts`: (file, anchor,
  code) triples, `code` put right after `anchor` (found exactly once, so that a change to final/
  that breaks a case fails loudly instead of grading final/ itself).
- `links`: {name in files/: target}; a target may name {outside} (see Outside below).
- `only`: what `autograde.py --version final --only` grades it with: the quick checks that make
  its attack run (checks 1 and 2 are static, check 2 imports report_pb2.py; any broker check
  first probes weather.py at import; 3 runs producer.py, 5 the producer and debug.py, 6
  `consumer.py 0 2`). BATCH_ONLY covers every case at once.
- `expect`: {check: "PASS" or "FAIL"} natively as root (the sandbox's uid), for the checks whose
  verdict the attack decides; the others may get either: a verdict is all that is asked.
- `docker`: graded alone in a container by the Docker test too, where the container's own
  defence is the point (its pids limit, its end, the copy's refusals); every case is graded in
  its class there (and the import-time case has a test of its own,
  dockertests/test_autograde_hostile_docker.py).
- `root`: natively, graded only by a grader running as root, whose sandbox runs the programs as
  a uid of their own: as the grader's own user they would reach its files, outlive it or kill it.
- `hole`: the grader does not stand this attack yet, and why (the tests expect it to fail
  until it does: pytest.mark.xfail(strict=True)); such a case is not in CLASS_CASES.
- `pid_limit`: a fork bomb: graded only where a pids limit holds (natively as root: the slot's
  pids cgroup and RLIMIT_NPROC; in a container: --pids-limit). The bomb also looks for a limit
  itself and refuses to go off without one, or as root, and every bomb process exits after
  BOMB_SECONDS: a grader whose sandbox failed must not take this machine down with it.

Each changed file starts with a header (HEADER): `_P7`, the settings make() was given, and
`_p7_proof(what, **data)`, which appends a JSON line to DROP/NAME-what (natively: the test's drop
folder, writable by the sandbox's uid) or, where there is no such folder (in a container), to
NAME-what next to the file itself (the grading copy, /files: kept with --keep). That is the proof
that an attack ran, and what came of each of its tries (an OSError's class name, or "done").

What the attacks aim at is given to make() and never guessed beyond it: the grader's own
grader/CONTRACT.md and grader/checks.py (appended to, with MARKER, so that a test can restore
them exactly: restore_grader_files()), a canary and a folder of the test's own (Outside), and
`victims`, other files of the test's class. What an attack finds by itself (the other
submissions named on the graders' command lines, in /proc) is tried only within `scope`, the
test's own folders.
"""

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .final_variants import FINAL

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "grader" / "CONTRACT.md"
CHECKS = ROOT / "grader" / "checks.py"
GRADER_FILES = (CONTRACT, CHECKS)
MARKER = "p7-hostile-was-here"      # what the attacks append to a file they reach
APPENDED = f"\n{MARKER}\n".encode()   # as _p7_append writes it (the sources hold MARKER too)
FLOOD_BYTES = 2 * 1024 ** 3         # what floods_output's debug.py prints before its work
BOMB_SECONDS = 120                  # the fork bomb's own end, were nothing to stop it
BOMB_MAX_LIMIT = 4096               # a pids limit higher than this is no limit to the bomb
SPARSE_BYTES = 300 * 1000 ** 3      # the sparse file in the folder a link points at
# Every case's attack runs in this one plan: 2 imports report_pb2.py, 3 and 5 run producer.py,
# 5 debug.py, 6 `consumer.py 0 2`, any of them the weather.py probe first, and the copy's links.
# Check 3 is there for its order: it puts 6 first (check 6 needs the topic without a producer,
# and --only 5,6 runs 5, which starts one, first).
BATCH_ONLY = "1,2,3,5,6"
NOBODY = 65534


@dataclass(frozen=True)
class Hostile:
    what: str
    only: str
    prepend: dict = field(default_factory=dict)
    inserts: tuple = ()
    links: dict = field(default_factory=dict)
    expect: dict = field(default_factory=dict)
    docker: bool = False
    pid_limit: bool = False
    root: bool = True
    hole: str = ""


HEADER = '''\
# ---- hostile (tests/submissions/hostile.py) ----
import json as _p7_json, os as _p7_os, sys as _p7_sys
_P7 = {settings}
_P7_HERE = _p7_os.path.dirname(_p7_os.path.abspath(__file__))


def _p7_proof(what, **data):
    """A JSON line in DROP/NAME-what, or NAME-what next to this file without a drop folder."""
    data.update(uid=_p7_os.getuid(), pid=_p7_os.getpid(), argv0=_p7_sys.argv[0] or "-",
                file=_p7_os.path.basename(__file__))
    line = _p7_json.dumps(data, default=str) + "\\n"
    for folder in (_P7["drop"], _P7_HERE):
        if folder and _p7_os.path.isdir(folder):
            try:
                with open(_p7_os.path.join(folder, _P7["name"] + "-" + what), "a") as out:
                    out.write(line)
                return
            except OSError:
                pass


def _p7_try(action, *args):
    """Whether `action` worked ("done"), or the class name of the OSError that stopped it."""
    try:
        action(*args)
        return "done"
    except OSError as err:
        return type(err).__name__


def _p7_append(path):
    with open(path, "a") as out:
        out.write("\\n" + _P7["marker"] + "\\n")
# ---- end of the hostile header ----
'''

# 1. Code at import in weather.py and report_pb2.py (the grader's probe imports weather.py,
# check 2 imports report_pb2.py, and so does every program): a canary written outside the
# grading folder (appended to, and a new file beside it), the grader's CONTRACT.md appended to,
# and what the code can learn (its environment, its HOME's listing, root's home, the parent's
# environment) left in the drop folder.
AT_IMPORT = '''\
def _p7_create(path):
    with open(path, "x") as out:
        out.write(_P7["marker"])


def _p7_listing(path):
    try:
        return sorted(_p7_os.listdir(path))
    except OSError as err:
        return type(err).__name__


def _p7_read(path):
    try:
        with open(path, "rb") as source:
            return "read %d bytes" % len(source.read())
    except OSError as err:
        return type(err).__name__


_p7_proof("import", environ=dict(_p7_os.environ),
          home=_p7_os.environ.get("HOME", ""),
          home_listing=_p7_listing(_p7_os.environ.get("HOME") or "/nonexistent"),
          root_listing=_p7_listing("/root"),
          parent_environ=_p7_read("/proc/%d/environ" % _p7_os.getppid()),
          writes={_P7["contract"]: _p7_try(_p7_append, _P7["contract"]),
                  _P7["canary"]: _p7_try(_p7_append, _P7["canary"]),
                  _P7["created"]: _p7_try(_p7_create, _P7["created"])})
'''

# 2. The process group killed at import (the grader's probe of weather.py, producer.py).
KILLPG = '''\
import signal as _p7_signal
_p7_proof("killpg", pgid=_p7_os.getpgid(0))
_p7_os.killpg(0, _p7_signal.SIGKILL)
'''

# 2. consumer.py kills its parent: the grader natively (in a container the parent is outside
# the container's pid namespace: getppid() is 0 there, and kill(0) would be its own group).
KILLS_PARENT = '''\
import signal as _p7_signal
_p7_parent = _p7_os.getppid()
_p7_proof("kills-parent", parent=_p7_parent,
          outcome=_p7_try(_p7_os.kill, _p7_parent, _p7_signal.SIGKILL)
          if _p7_parent > 1 else "no parent in this pid namespace")
'''

# 3. A daemon (double fork, setsid, chdir /) that writes a reading of 2999-01-01 into
# `temperatures` through the broker consumer.py was given (its `broker`, rewritten by the
# grader like producer.py's), forever: to the partitions consumer.py does not read while it
# runs, then to every one. Were it left running, the next submission graded on that broker
# would find its readings in its topic. Inserted after consumer.py's `broker = ...`.
DAEMON = '''\
import time as _p7_time
_p7_consumer, _p7_consumer_sid = _p7_os.getpid(), _p7_os.getsid(0)
_p7_theirs = [int(n) for n in _p7_sys.argv[1:] if n.isdigit()]
if _p7_os.fork() == 0:
    _p7_os.setsid()
    if _p7_os.fork() == 0:
        _p7_os.chdir("/")
        try:
            from kafka import KafkaProducer as _P7Producer
            _p7_proof("daemon-started", broker=broker, sid=_p7_os.getsid(0),
                      consumer_sid=_p7_consumer_sid)
            _p7_producer = _P7Producer(bootstrap_servers=[broker])
            _p7_value = report_pb2.Report(date="2999-01-01", degrees=2999.0).SerializeToString()
            _p7_sent = False
            while True:
                _p7_alive = _p7_try(_p7_os.kill, _p7_consumer, 0) == "done"
                for _p7_n in range(4):
                    if _p7_alive and _p7_n in _p7_theirs:
                        continue
                    try:
                        _p7_producer.send("temperatures", key=b"January", value=_p7_value,
                                          partition=_p7_n)
                    except Exception:
                        pass
                if not _p7_sent:
                    try:
                        _p7_producer.flush(timeout=30)
                        _p7_proof("daemon-sent", broker=broker)
                        _p7_sent = True
                    except Exception:
                        pass
                _p7_time.sleep(0.05)
        except BaseException as _p7_err:
            _p7_proof("daemon-failed", error=repr(_p7_err))
        finally:
            _p7_os._exit(0)
    _p7_os._exit(0)
'''

# 4. debug.py prints FLOOD_BYTES to stdout as fast as it can, then does its work.
FLOOD = f'''\
import time as _p7_time
_p7_line = b"flood " * 20 + b"\\n"
_p7_chunk = _p7_line * (1024 * 1024 // len(_p7_line))
_p7_started, _p7_total = _p7_time.monotonic(), 0
while _p7_total < {FLOOD_BYTES}:
    _p7_sys.stdout.buffer.write(_p7_chunk)
    _p7_total += len(_p7_chunk)
_p7_sys.stdout.flush()
_p7_proof("flooded", bytes=_p7_total, seconds=round(_p7_time.monotonic() - _p7_started, 1))
'''

# 5. SIGTERM (and SIGINT, SIGHUP, SIGQUIT) ignored.
IGNORES_SIGTERM = '''\
import signal as _p7_signal
for _p7_name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT"):
    _p7_signal.signal(getattr(_p7_signal, _p7_name), _p7_signal.SIG_IGN)
_p7_proof("ignores-sigterm")
'''

# 6. A fork bomb in a child of consumer.py (in a session of its own, so that killing
# consumer.py's process group does not end it), consumer.py itself going on with its work.
FORK_BOMB = f'''\
import resource as _p7_resource, time as _p7_time


def _p7_pids_limit():
    """The pids limit this process is under (a sentence), or None: then no bomb."""
    if _p7_os.getuid() == 0:
        return None
    soft = _p7_resource.getrlimit(_p7_resource.RLIMIT_NPROC)[0]
    if soft != _p7_resource.RLIM_INFINITY and soft <= {BOMB_MAX_LIMIT}:
        return "RLIMIT_NPROC %d" % soft
    places = ["/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"]
    try:
        with open("/proc/self/cgroup") as groups:
            for line in groups.read().splitlines():
                _, controllers, path = line.split(":", 2)
                if controllers in ("pids", ""):
                    places[:0] = ["/sys/fs/cgroup/pids%s/pids.max" % path,
                                  "/sys/fs/cgroup%s/pids.max" % path]
    except (OSError, ValueError):
        pass
    for place in places:
        try:
            with open(place) as limit:
                text = limit.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) <= {BOMB_MAX_LIMIT}:
            return "%s %s" % (place, text)
    return None


_p7_limit = _p7_pids_limit()
if _p7_limit is None:
    _p7_proof("bomb-refused", why="no pids limit of at most {BOMB_MAX_LIMIT}, or root")
elif _p7_os.fork() == 0:
    _p7_os.setsid()
    try:
        with open("/proc/self/cgroup") as _p7_groups:
            _p7_cgroups = _p7_groups.read().splitlines()
    except OSError:
        _p7_cgroups = []
    _p7_proof("bomb-started", limit=_p7_limit, cgroups=_p7_cgroups)
    _p7_deadline = _p7_time.monotonic() + {BOMB_SECONDS}
    _p7_capped = False
    while _p7_time.monotonic() < _p7_deadline:
        try:
            _p7_os.fork()
        except OSError as _p7_err:
            if not _p7_capped:
                _p7_capped = True
                _p7_proof("bomb-capped", error=type(_p7_err).__name__)
            _p7_time.sleep(0.01)
    _p7_os._exit(0)
'''

# 7. Links out of the submission: a host file, a canary of the test's, a folder of the test's
# holding a big sparse file, and a loop. consumer.py looks for them where it runs.
LINKS = {"hostname": "/etc/hostname", "canary.txt": "{outside}/canary", "big": "{outside}/big",
         "loop": "."}
LOOKS_FOR_LINKS = '''\
_p7_proof("links-seen", seen={_p7_name: _p7_os.path.lexists(_p7_os.path.join(_P7_HERE, _p7_name))
                              for _p7_name in _P7["links"]})
'''

# 8. Writes into the grader's files, into the other submissions of the class and into its
# results folder: the paths make() was given, the same by relative paths (as if the class's
# folders were next to the grading folder), and whatever the graders' command lines name
# (--files CLASS/NAME/files, --batch CLASS), tried only within `scope`.
WRITES_OTHERS = '''\
import glob as _p7_glob


def _p7_targets():
    named = [_P7["contract"], _P7["checks"]] + _P7["victims"]
    for base in (_p7_os.getcwd(), _P7_HERE):
        for up in ("..", "../.."):
            named += [_p7_os.path.join(base, up, "other-student", "files", "producer.py"),
                      _p7_os.path.join(base, up, "autograde-results", "results.csv")]
    found = []
    for cmdline in _p7_glob.glob("/proc/[0-9]*/cmdline"):
        try:
            with open(cmdline, "rb") as source:
                argv = source.read().decode(errors="replace").split("\\0")
        except OSError:
            continue
        for flag, value in zip(argv, argv[1:]):
            if flag in ("--files", "--batch"):
                klass = value if flag == "--batch" else _p7_os.path.dirname(
                    _p7_os.path.dirname(_p7_os.path.abspath(value)))
                found += _p7_glob.glob(_p7_os.path.join(klass, "*", "files", "producer.py"))
                found += _p7_glob.glob(_p7_os.path.join(klass, "autograde-results", "*"))
                found.append(_p7_os.path.join(klass, "autograde-results", "pwned.json"))
    inside = [path for path in found if any(
        _p7_os.path.abspath(path).startswith(scope.rstrip("/") + "/") for scope in _P7["scope"])]
    return sorted(set(named + inside)), sorted(set(found) - set(inside))


_p7_named, _p7_out_of_scope = _p7_targets()
_p7_proof("writes", outcomes={_p7_path: _p7_try(_p7_append, _p7_path) for _p7_path in _p7_named},
          out_of_scope=_p7_out_of_scope)
'''

# 9. (Not in the list.) consumer.py makes partition-0.json, in the grading copy, a link
# to a file of root's that only root may read (Outside.secret, JSON): the grader, reading the
# partition files as root, must not follow it (natively; nor, from a container's /files, to
# this machine's path of that name).
PLANTS_LINK = '''\
    if n == 0 and not os.path.lexists(partition_path(0)):
        os.symlink(_P7["secret"], partition_path(0))
        _p7_proof("planted", link=partition_path(0), target=_P7["secret"])
        return {"partition": 0, "offset": 0, "planted": True}
'''
SKIPS_PLANTED = '''\
    if data.get("planted"):
        return
'''
SECRET = "root-only-4f1e9c"     # in Outside.secret: must never be in a report

BROKER_LINE = "broker = 'localhost:9092'\n"

HOSTILE = {
    "import_time_code": Hostile(
        "code at import in weather.py and report_pb2.py writes a canary outside the grading "
        "folder, appends to grader/CONTRACT.md and leaves its environment and its HOME's "
        "listing in the drop folder",
        "2,6", prepend={"weather.py": AT_IMPORT, "report_pb2.py": AT_IMPORT},
        expect={2: "PASS", 6: "PASS"}),
    "killpg": Hostile(
        "os.killpg(0, SIGKILL) at import of weather.py and of producer.py",
        "3", prepend={"weather.py": KILLPG, "producer.py": KILLPG}, expect={3: "FAIL"},
        docker=True, root=False),
    "kills_parent": Hostile(
        "consumer.py kills its parent (os.kill(os.getppid(), SIGKILL))",
        "6", prepend={"consumer.py": KILLS_PARENT}, expect={6: "PASS"}),
    "setsid_daemon": Hostile(
        "consumer.py leaves a daemon (double fork, setsid, chdir /) writing a 2999-01-01 "
        "reading into temperatures on its broker, forever",
        "6", inserts=(("consumer.py", BROKER_LINE, DAEMON),), expect={6: "PASS"}, docker=True),
    "floods_output": Hostile(
        "debug.py prints 2 GiB to stdout as fast as it can, then does its work",
        "5", prepend={"debug.py": FLOOD}, expect={5: "PASS"}, root=False),
    "ignores_sigterm": Hostile(
        "consumer.py and producer.py ignore SIGTERM, SIGINT, SIGHUP and SIGQUIT",
        "3,6", prepend={"consumer.py": IGNORES_SIGTERM, "producer.py": IGNORES_SIGTERM},
        expect={3: "PASS", 6: "PASS"}, root=False),
    "fork_bomb": Hostile(
        "consumer.py starts a fork bomb in a child of its own session and goes on working",
        "6", prepend={"consumer.py": FORK_BOMB}, docker=True, pid_limit=True),
    "symlinks": Hostile(
        "files/ holds links to a host file, to a canary file, to a folder holding a big sparse "
        "file, and a loop (loop -> .)",
        "1,2,6", links=LINKS, prepend={"consumer.py": LOOKS_FOR_LINKS},
        expect={1: "PASS", 2: "PASS", 6: "PASS"}, docker=True, root=False),
    "writes_others": Hostile(
        "weather.py and consumer.py append to grader/checks.py, grader/CONTRACT.md, the other "
        "submissions' producer.py and the class's results folder",
        "6", prepend={"weather.py": WRITES_OTHERS, "consumer.py": WRITES_OTHERS},
        expect={6: "PASS"}),
    "links_for_the_grader": Hostile(
        "consumer.py makes partition-0.json a link to a file only root may read, for the grader "
        "to read as root and show in the report",
        "6", inserts=(("consumer.py", "def load_partition(n):\n", PLANTS_LINK),
                      ("consumer.py", "def save_partition(data):\n", SKIPS_PLANTED)),
        docker=True),
}
# Every case the grader stands: graded in the classes of the batch tests.
CLASS_CASES = [name for name, case in HOSTILE.items() if not case.hole]


# ---------------------------------------------------------------- the test's own folders

class Outside:
    """A folder of root's outside any grading folder (0755: the sandbox's uid may look, not
    write): `canary` (0644, appended to by the attacks), `created` (a file they try to create
    beside it), `big/` (a sparse file of SPARSE_BYTES, where a link points), `secret.json`
    (0600: root's alone) and `drop/` (1777: where the attacks leave their proofs natively)."""

    def __init__(self, folder):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        os.chmod(self.folder, 0o755)
        self.canary = self.folder / "canary"
        self.canary.write_text("root's canary\n")
        os.chmod(self.canary, 0o644)
        self.created = self.folder / "created-by-a-submission"
        self.big = self.folder / "big"
        self.big.mkdir()
        with open(self.big / "sparse", "wb") as sparse:
            sparse.truncate(SPARSE_BYTES)
        self.secret = self.folder / "secret.json"
        self.secret.write_text(json.dumps({"partition": 0, "offset": 0, "secret": SECRET}))
        os.chmod(self.secret, 0o600)
        self.drop = self.folder / "drop"
        self.drop.mkdir()
        os.chmod(self.drop, 0o1777)
        self.canary_digest = digest(self.canary)

    def canary_untouched(self):
        """Problems with the canary (changed, or a file created beside it); [] when none."""
        problems = []
        if digest(self.canary) != self.canary_digest:
            problems.append(f"{self.canary} was changed: {self.canary.read_text()[-200:]!r}")
        if self.created.exists():
            problems.append(f"{self.created} was created")
        return problems

    def proofs(self, name, what):
        """The JSON lines the hostile `name` left as `what` in the drop folder."""
        return read_proofs(self.drop / f"{name}-{what}")


def read_proofs(path):
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def make(name, destination, outside=None, victims=(), scope=(), label=None):
    """A copy of final/ at `destination` (the folder that holds files/ and the Dockerfile) with
    case `name`'s changes; returns its files/. `outside`: the test's Outside (its drop folder,
    canary and the links' targets); `victims`: more files the attacks try to write; `scope`:
    folders within which what the attacks find by themselves is tried; `label`: the name their
    proofs carry (default `name`)."""
    case = HOSTILE[name]
    destination = Path(destination)
    shutil.copytree(FINAL, destination, ignore=shutil.ignore_patterns("__pycache__"))
    files = destination / "files"
    folder = outside.folder if outside is not None else Path("/nonexistent-p7-outside")
    settings = {"name": label or name, "marker": MARKER,
                "drop": str(outside.drop) if outside is not None else "",
                "contract": str(CONTRACT), "checks": str(CHECKS),
                "canary": str(folder / "canary"),
                "created": str(folder / "created-by-a-submission"),
                "secret": str(folder / "secret.json"),
                "victims": [str(path) for path in victims],
                "scope": [str(path) for path in scope],
                "links": sorted(case.links)}
    header = HEADER.replace("{settings}", repr(settings))
    changed = {}
    for file, code in case.prepend.items():
        changed[file] = code + "\n" + (files / file).read_text()
    for file, anchor, code in case.inserts:
        source = changed.get(file, (files / file).read_text())
        assert source.count(anchor) == 1, f"hostile.py's {name}: {anchor!r} is not once in " \
                                          f"{file}: update it"
        changed[file] = source.replace(anchor, anchor + code)
    for file, source in changed.items():
        (files / file).write_text(header + source)
    for link, target in case.links.items():
        os.symlink(target.replace("{outside}", str(folder)), files / link)
    return files


def make_class(klass, cases, outside=None, victims=(), scope=()):
    """A class folder: each case of `cases` between two correct submissions (copies of final/),
    named so that the batch grades them in this order: 00-correct, 01-CASE, 02-correct, ...
    Returns {submission name: its case, None for a correct one}."""
    klass = Path(klass)
    klass.mkdir(parents=True, exist_ok=True)
    names = {}
    order = [None]
    for case in cases:
        order += [case, None]
    for index, case in enumerate(order):
        name = f"{index:02d}-{case or 'correct'}"
        if case is None:
            shutil.copytree(FINAL, klass / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            make(case, klass / name, outside=outside, victims=victims, scope=scope, label=name)
        names[name] = case
    return names


# ---------------------------------------------------------------- the grader's own files

def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def save_grader_files():
    """{path: bytes} of the files the attacks aim at in the grader."""
    return {path: path.read_bytes() for path in GRADER_FILES}


def restore_grader_files(saved):
    """Take out of each of the grader's files what an attack appended to it (APPENDED, where
    it was not in `saved`): exactly what the attacks write, so that an edit made meanwhile by
    someone else stays. Returns the paths put back."""
    restored = []
    for path, data in saved.items():
        now = path.read_bytes()
        if now != data and APPENDED in now and APPENDED not in data:
            path.write_bytes(now.replace(APPENDED, b""))
            restored.append(path)
    return restored


def marked_files(*places):
    """Files among `places` (files, or folders walked without following links) that an attack
    appended MARKER to."""
    found = []
    for place in map(Path, places):
        for path in [place] if place.is_file() else walk(place):
            try:
                if path.is_file() and not path.is_symlink() \
                        and APPENDED in path.read_bytes():
                    found.append(path)
            except OSError:
                pass
    return found


def walk(folder, skip=()):
    """Every file and link under `folder`, links not followed, __pycache__ and the top-level
    names in `skip` left out."""
    for parent, folders, names in os.walk(folder):
        top = Path(parent) == Path(folder)
        folders[:] = [name for name in folders if name != "__pycache__"
                      and not (top and name in skip)]
        for name in names + [name for name in folders if os.path.islink(os.path.join(parent,
                                                                                     name))]:
            if not (top and name in skip):
                yield Path(parent) / name


def tree_digests(folder, skip=()):
    """{relative path: sha256, or "-> target" for a link} of everything under `folder`, links
    not followed; `skip`: top-level names left out (the results folder)."""
    found = {}
    for path in walk(folder, skip):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            found[relative] = "-> " + os.readlink(path)
        elif path.is_file():
            found[relative] = digest(path)
    return found


# ---------------------------------------------------------------- what the proofs must show

SECRET_VARIABLE = "P7_HOSTILE_SECRET"   # set in the grader's environment by the tests


def proof_problems(name, read, uid, plan=(), denied=None):
    """Why the proofs that case `name` left do not show its attack having run, as `uid` (one,
    or a set: any of them), and come to nothing; [] when they do. `read(what)` gives the JSON
    lines of one proof; `plan`: the numbers of the checks graded; `denied`: the OSError every
    write outside must have met ("PermissionError" natively as root), else any error will do."""
    problems = []
    uids = {uid} if isinstance(uid, int) else set(uid)

    def lines(what, files=None):
        found = read(what)
        if not found:
            problems.append(f"{name}: no proof {what!r}: the attack never ran, so this proves "
                            "nothing")
        wrong = sorted({line["uid"] for line in found if line["uid"] not in uids})
        if wrong:
            problems.append(f"{name}: {what!r} ran as uid {wrong}, not {sorted(uids)}")
        seen = {line["file"] for line in found}
        for file in files or ():
            if file not in seen:
                problems.append(f"{name}: no proof {what!r} from {file} (only {sorted(seen)})")
        return found

    def refused(where, outcomes):
        for path, outcome in outcomes.items():
            if outcome == "done" or (denied and outcome != denied
                                     and not path.startswith(("/proc", "/tmp/p7-autograde-"))
                                     and ".." not in path):
                problems.append(f"{name}: {where} tried {path}: {outcome}")

    if name == "import_time_code":
        for line in lines("import", ["weather.py", "report_pb2.py"]):
            where = f"{line['file']} in {line['argv0']}"
            refused(where, line["writes"])
            if SECRET_VARIABLE in line["environ"]:
                problems.append(f"{name}: {where} saw the grader's environment")
            if not isinstance(line["root_listing"], str):
                problems.append(f"{name}: {where} listed /root: {line['root_listing']}")
            if line["parent_environ"].startswith("read"):
                problems.append(f"{name}: {where} read its parent's environment")
    elif name == "killpg":
        lines("killpg", ["producer.py"] if 3 in plan or 5 in plan else [])
    elif name == "kills_parent":
        for line in lines("kills-parent", ["consumer.py"]):
            if line["outcome"] == "done":
                problems.append(f"{name}: consumer.py killed its parent {line['parent']}")
    elif name == "setsid_daemon":
        for line in lines("daemon-started"):
            if line["sid"] == line["consumer_sid"]:
                problems.append(f"{name}: the daemon stayed in consumer.py's session: {line}")
        lines("daemon-sent")
    elif name == "floods_output":
        for line in lines("flooded", ["debug.py"]):
            if line["bytes"] < FLOOD_BYTES:
                problems.append(f"{name}: debug.py printed only {line['bytes']} bytes")
    elif name == "ignores_sigterm":
        lines("ignores-sigterm", ["consumer.py"] + (["producer.py"] if 3 in plan or 5 in plan
                                                     else []))
    elif name == "fork_bomb":
        if read("bomb-refused"):
            problems.append(f"{name}: the bomb found no pids limit: {read('bomb-refused')}")
        lines("bomb-started")
        lines("bomb-capped")
    elif name == "symlinks":
        for line in lines("links-seen", ["consumer.py"]):
            shown = sorted(link for link, seen in line["seen"].items() if seen)
            if shown:
                problems.append(f"{name}: consumer.py found {shown} in the grading copy")
    elif name == "writes_others":
        for line in lines("writes", ["consumer.py"]):
            refused(f"{line['file']} in {line['argv0']}", line["outcomes"])
            for path in (str(CONTRACT), str(CHECKS)):
                if path not in line["outcomes"]:
                    problems.append(f"{name}: {line['file']} never tried {path}")
    elif name == "links_for_the_grader":
        lines("planted", ["consumer.py"])
    return problems


def link_refusals(notes):
    """{link name: the notes naming it} of the symlinks case's links."""
    return {link: [note for note in notes if note.startswith(f"files/{link} -> ")]
            for link in LINKS}
