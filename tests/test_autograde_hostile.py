"""autograde.py against the hostile corpus (tests/submissions/hostile.py), each submission graded
alone, natively: the correct final-version submission with a few lines added that attack the
grader, this machine or the class. Whatever they do, the grader survives and writes its verdict
(the checks the attack does not touch get the verdict the correct submission gets), leaves no
process of the submission's uid behind, refuses links out of the submission in a sentence each,
and neither its own files, a canary of root's outside the grading folder nor another
submission's files change (grader/sandbox.py). Each attack leaves proof that it ran, so that a
case whose attack never ran fails instead of proving nothing.

Each run grades the case's quick checks (--only) so that it takes seconds; floods_output (2 GiB
printed by debug.py) takes longer and is graded in tests/test_autograde_hostile_batch.py (chaos
tier). The runs use a sandbox slot of their own (SLOT, one a pytest-xdist worker) so that their
sweeps never reach a grader running here at the same time on another slot. The grader's files the attacks aim at are put
back if an attack reached them, and the test then fails."""

import os
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from grader import sandbox
from helpers import ROOT, autograde
from submissions import hostile

pytestmark = pytest.mark.broker

# A slot a pytest-xdist worker (make test runs four), apart from the other tests' (900-993):
# the runs of two workers never sweep each other's programs.
WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
SLOT = 994 + WORKER % 4                     # 994-997
SLOW = {"floods_output"}            # graded in the chaos tier's file
# A case the grader does not stand yet is expected to fail, until it does.
ALONE = [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=case.hole))
         if case.hole else name for name, case in hostile.HOSTILE.items() if name not in SLOW]
KEPT_LINE = re.compile(r"^kept the grading folder (.+)$", re.MULTILINE)
GRADER_TREES = [ROOT / "grader", ROOT / "tools", ROOT / "autograde.py"]


def uid():
    return sandbox.slot_id(SLOT)


@pytest.fixture(autouse=True)
def own_slot(monkeypatch):
    monkeypatch.setenv(sandbox.SLOT_VARIABLE, str(SLOT))
    # Were the grader's environment to reach a program, this would be in it.
    monkeypatch.setenv(hostile.SECRET_VARIABLE, "the grader's secret")


@pytest.fixture
def outside():
    """hostile.Outside in /tmp (0755, root's): the canary, the links' targets and the drop
    folder; and `victims`, files of another student and of a results folder beside them."""
    folder = hostile.Outside(tempfile.mkdtemp(prefix="p7-hostile-"))
    other = folder.folder / "other-student" / "files"
    other.mkdir(parents=True)
    shutil.copy(hostile.FINAL / "files" / "producer.py", other / "producer.py")
    results = folder.folder / "autograde-results"
    results.mkdir()
    (results / "results.csv").write_text("name,score\nother-student,100\n")
    folder.victims = [other / "producer.py", results / "results.csv", results / "pwned.json"]
    yield folder
    shutil.rmtree(folder.folder, ignore_errors=True)


def requirement(case):
    """Why `case` cannot be graded here (None: it can)."""
    if (case.root or case.pid_limit) and not sandbox.active():
        return ("only a grader running as root runs the submission as a uid of its own (and "
                "under its pids limits): as this user the attack would reach this user's files")
    return None


@pytest.fixture
def kept():
    """The grading folders the grader kept (--keep), removed at the test's end."""
    folders = []
    yield folders
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def grade_alone(broker, tmp_path, name, outside, kept):
    """Grade case `name` alone with --keep: (exit code, results, {number: check}, output, the
    kept grading folder or None), that folder added to `kept`. The grader's files are put back
    if an attack reached them, and the test then fails."""
    case = hostile.HOSTILE[name]
    reason = requirement(case)
    if reason:
        pytest.skip(reason)
    present = [path for path in outside.victims if path.exists()]
    victims = {path: hostile.digest(path) for path in present}
    files = hostile.make(name, tmp_path / "submission", outside=outside,
                         victims=outside.victims, scope=[outside.folder])
    class_before = hostile.tree_digests(files.parent)
    saved = hostile.save_grader_files()
    try:
        code, results, checks, output = autograde(broker, tmp_path, "--files", str(files),
                                                  "--version", "final", "--only", case.only,
                                                  "--keep")
    finally:
        restored = hostile.restore_grader_files(saved)
    named = KEPT_LINE.findall(output)
    kept_folder = Path(named[-1].strip()) if named else None
    kept += [kept_folder] if kept_folder else []
    assert not restored, f"{name} changed the grader's {restored} (put back from before)"
    marked = hostile.marked_files(*GRADER_TREES)
    assert not marked, f"{name} wrote into {marked}"
    assert outside.canary_untouched() == []
    assert {path: hostile.digest(path) for path in present} == victims, \
        f"{name} changed another submission's files or the results"
    assert hostile.tree_digests(files.parent) == class_before, f"{name} changed its own folder"
    return code, results, checks, output, kept_folder


def assert_verdicts(name, code, checks, output):
    """A verdict for every check graded, the one the case expects where it decides one, and a
    grader that exited on its own."""
    case = hostile.HOSTILE[name]
    assert code in (0, 1), output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    planned = {int(n) for n in case.only.split(",")}
    assert planned <= set(checks), (sorted(checks), output[-3000:])
    for check in checks.values():
        assert check["status"] in ("PASS", "FAIL"), check
    for number, status in case.expect.items():
        assert checks[number]["status"] == status, (number, checks[number], output[-3000:])


def assert_nothing_left(name, output):
    left = sandbox.processes_of(uid())
    assert left == [], f"{name}: processes {left} of the sandbox's uid {uid()} outlived the " \
                       f"grader: {output[-2000:]}"


@pytest.mark.parametrize("name", ALONE)
def test_hostile_alone(broker, tmp_path, outside, kept, name):
    code, results, checks, output, folder = grade_alone(broker, tmp_path, name, outside, kept)
    assert_verdicts(name, code, checks, output)
    assert_nothing_left(name, output)
    plan = {int(n) for n in hostile.HOSTILE[name].only.split(",")}
    problems = hostile.proof_problems(name, lambda what: outside.proofs(name, what), uid(),
                                      plan, denied="PermissionError")
    assert problems == [], problems
    shown = [where for where, text in (("the output", output), ("the results", str(results)))
             if hostile.SECRET in text]
    assert not shown, f"{name}: a file only root may read is shown in {shown}"
    CASE_CHECKS.get(name, lambda *args: None)(results, checks, output, folder, outside)


def symlinks_refused(results, checks, output, kept, outside):
    """Each link refused in one sentence naming it and its target, and none of them copied."""
    refusals = hostile.link_refusals(results["notes"])
    for link, notes in refusals.items():
        assert len(notes) == 1 and notes[0].endswith("not copied"), (link, results["notes"])
    assert "points outside the submission" in refusals["hostname"][0]
    assert "loop" in refusals["loop"][0]
    assert kept is not None, output[-2000:]
    copied = {path.name for path in (kept / "files").iterdir()}
    assert not copied & set(hostile.LINKS), sorted(copied)


def killpg_fails_producer_alone(results, checks, output, kept, outside):
    """The producer killed its own group, nothing else: check 3 says it exited, and weather.py
    (killed at the probe) was replaced by the grader's."""
    assert "exited with -9" in checks[3]["reason"], checks[3]
    assert any("weather.py could not be run" in note for note in results["notes"]), \
        results["notes"]


def fork_bomb_in_the_slots_pids_cgroup(results, checks, output, kept, outside):
    """Where this machine has a pids controller, the bomb ran in the slot's pids cgroup
    (p7-sandbox-SLOT): the whole submission's processes are capped together there, besides
    RLIMIT_NPROC."""
    if not pids_controller():
        return
    for started in outside.proofs("fork_bomb", "bomb-started"):
        groups = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in started["cgroups"]}
        place = groups.get("pids", groups.get(""))
        assert place is not None and place.rstrip("/").endswith(f"p7-sandbox-{SLOT}"), \
            f"the bomb ran in the cgroups {started['cgroups']}, not the slot's pids cgroup"


def pids_controller():
    """Whether this machine has a pids cgroup controller the grader can use (v1 or v2)."""
    root = Path("/sys/fs/cgroup")
    if (root / "pids" / "cgroup.procs").exists():
        return True
    controllers = root / "cgroup.controllers"
    return controllers.exists() and "pids" in controllers.read_text().split()


CASE_CHECKS = {"symlinks": symlinks_refused, "killpg": killpg_fails_producer_alone,
               "fork_bomb": fork_bomb_in_the_slots_pids_cgroup}
