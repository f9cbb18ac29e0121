"""autograde.py against hostile submissions: the correct final-version submission
(tests/submissions/final) with a few lines added that attack the grader. Whatever they do, the
grader survives and writes its verdict, leaves no process of the submission behind, and its own
files and other files of root's stay as they were (grader/sandbox.py).

Each run grades one or two checks (--only) so that it takes seconds. The runs use a sandbox
slot of their own (SLOT) so that their sweeps never reach a grader running here at the same
time on slot 0."""

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from grader import sandbox
from tests.helpers import ROOT, autograde
from tests.submissions.final_variants import FINAL

pytestmark = pytest.mark.broker

SLOT = 902
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="only a grader running as root can "
                                                         "run the submission as another uid")
CONTRACT = ROOT / "grader" / "CONTRACT.md"


@pytest.fixture(autouse=True)
def own_slot(monkeypatch):
    monkeypatch.setenv(sandbox.SLOT_VARIABLE, str(SLOT))


@pytest.fixture
def outside():
    """A folder of root's outside the grading folder that the sandbox uid can reach (mode
    0755, in /tmp): `drop/` in it (1777) is where a hostile program leaves proof that it ran."""
    folder = Path(tempfile.mkdtemp(prefix="p7-hostile-"))
    os.chmod(folder, 0o755)
    (folder / "drop").mkdir()
    os.chmod(folder / "drop", 0o1777)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def hostile(tmp_path, prepend):
    """A copy of final/ whose files given in `prepend` ({name: code}) start with that code;
    returns its files/."""
    destination = tmp_path / "submission"
    shutil.copytree(FINAL, destination, ignore=shutil.ignore_patterns("__pycache__"))
    files = destination / "files"
    for name, code in prepend.items():
        path = files / name
        path.write_text(code + "\n" + path.read_text())
    return files


def grade(broker, tmp_path, files, only):
    return autograde(broker, tmp_path, "--files", str(files), "--version", "final",
                     "--only", only)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_a_weather_py_that_kills_its_process_group_at_import_leaves_the_grader_alive(
        broker, tmp_path):
    files = hostile(tmp_path, {"weather.py": "import os, signal\nos.killpg(0, signal.SIGKILL)"})
    code, results, checks, output = grade(broker, tmp_path, files, "6")
    # A verdict (whichever): the grader lived to write it and exited on its own.
    assert code in (0, 1) and 6 in checks, output


@ROOT_ONLY
def test_a_consumer_that_kills_its_parent_and_leaves_a_daemon_is_swept(
        broker, tmp_path, outside):
    drop = outside / "drop"
    files = hostile(tmp_path, {"consumer.py": f"""
import os as _os, time as _time
try:
    _os.kill(_os.getppid(), 9)          # the grader, were it the parent and the same user
except OSError:
    pass
if _os.fork() == 0:
    _os.setsid()
    if _os.fork() == 0:
        _os.chdir("/")
        open({str(drop)!r} + "/daemon-%d" % _os.getpid(), "w").close()
        while True:
            _time.sleep(0.2)
    _os._exit(0)
"""})
    code, results, checks, output = grade(broker, tmp_path, files, "6")
    assert 6 in checks, output
    started = list(drop.glob("daemon-*"))
    assert started, f"the daemon never started, so this proves nothing: {output}"
    assert code in (0, 1)
    assert sandbox.processes_of(sandbox.slot_id(SLOT)) == [], \
        f"processes of the sandbox's uid outlived the grader: {output}"


@ROOT_ONLY
def test_a_submission_cannot_change_the_graders_files_or_roots(broker, tmp_path, outside):
    canary = outside / "canary"
    canary.write_text("root's\n")
    os.chmod(canary, 0o644)
    before = digest(CONTRACT), digest(canary)
    drop = outside / "drop"
    attack = f"""
import os as _os
for _path in ({str(CONTRACT)!r}, {str(canary)!r}):
    try:
        with open(_path, "a") as _f:
            _f.write("pwned\\n")
        _outcome = "written"
    except OSError as _err:
        _outcome = type(_err).__name__
    open({str(drop)!r} + "/" + _os.path.basename(_path) + "-" + _outcome, "w").close()
"""
    files = hostile(tmp_path, {"producer.py": attack, "weather.py": attack})
    code, results, checks, output = grade(broker, tmp_path, files, "6")
    assert code in (0, 1) and 6 in checks, output
    tried = sorted(marker.name for marker in drop.iterdir())
    assert "CONTRACT.md-PermissionError" in tried and "canary-PermissionError" in tried, tried
    assert not [name for name in tried if name.endswith("-written")], tried
    assert (digest(CONTRACT), digest(canary)) == before
