"""autograde.py --image (the course's environment) against the hostile corpus
(tests/submissions/hostile.py): a class where each case sits between two correct submissions,
graded --batch --jobs 2 in containers, and the cases that are cheap graded alone (the
import-time case has its own test, test_autograde_hostile_docker.py).

In a container the attacks' targets on this machine (the grader's files, a canary, the class's
other folders) do not exist: the proofs they leave go to /files, the grading copy, which --keep
keeps. Whatever they do: the correct submissions get full marks, each hostile one a verdict, no
container or network of the runs is left, and nothing on this machine changes (the grader's
files, the class's folders, the canary)."""

import csv
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from submissions import hostile  # noqa: E402

AUTOGRADE = ROOT / "autograde.py"
TIMEOUT = 1800              # the first --image builds the course's image
PER_SUBMISSION = "300"      # --timeout of the batch
GRADER_TREES = [ROOT / "grader", ROOT / "tools", ROOT / "autograde.py"]
RUN_ID = re.compile(r"\bp7-autograde-([0-9a-f]{8})\b")
# Graded alone too: the cases whose container-side defence is the point (Hostile.docker); a case
# the grader does not stand yet is expected to fail, until it does. All are graded in the class.
ALONE = [pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=case.hole))
         if case.hole else name for name, case in hostile.HOSTILE.items() if case.docker]


@pytest.fixture
def base():
    """A folder of root's (0755) for the class and the test's outside folder."""
    folder = Path(tempfile.mkdtemp(prefix="p7-hostile-docker-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def left_of(run_ids):
    """The containers and networks named after `run_ids` that are still there."""
    left = []
    for run_id in sorted(run_ids):
        for kind, field in ((["ps", "-a"], "{{.Names}}"), (["network", "ls"], "{{.Name}}")):
            done = subprocess.run(["docker", *kind, "--filter", f"name=p7-autograde-{run_id}",
                                   "--format", field], capture_output=True, text=True,
                                  timeout=60, check=False)
            assert done.returncode == 0, done.stderr
            left += done.stdout.split()
    return left


def proofs_in(files, label):
    """read(what) over the proofs a case labelled `label` left in the grading copy `files`."""
    return lambda what: hostile.read_proofs(files / f"{label}-{what}")


def assert_host_untouched(restored, outside, klass=None, class_before=None):
    assert not restored, f"the grader's {restored} were changed (put back from before)"
    marked = hostile.marked_files(*GRADER_TREES)
    assert not marked, f"a submission wrote into {marked}"
    assert outside.canary_untouched() == []
    assert not list(outside.drop.iterdir()), "a submission's code ran on this machine: " \
                                             f"{sorted(outside.drop.iterdir())}"
    if klass is not None:
        assert hostile.tree_digests(klass, skip={"autograde-results"}) == class_before


@pytest.mark.parametrize("name", ALONE)
def test_hostile_alone_in_a_container(base, name):
    case = hostile.HOSTILE[name]
    outside = hostile.Outside(base / "outside")
    files = hostile.make(name, base / "submission", outside=outside, scope=[base])
    report = base / "results.json"
    saved = hostile.save_grader_files()
    try:
        done = subprocess.run([sys.executable, str(AUTOGRADE), "--image", "--version", "final",
                               "--only", case.only, "--keep", "--files", str(files), "--json",
                               str(report)], capture_output=True, text=True, timeout=TIMEOUT,
                              check=False)
    finally:
        restored = hostile.restore_grader_files(saved)
    output = done.stdout + done.stderr
    kept = [Path(line.split("kept the grading folder ", 1)[1].strip())
            for line in output.splitlines() if "kept the grading folder " in line]
    try:
        assert done.returncode in (0, 1), output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        run_ids = set(RUN_ID.findall(output))
        assert run_ids, f"no container of the grading was named: {output[-2000:]}"
        assert left_of(run_ids) == []
        assert_host_untouched(restored, outside)
        results = json.loads(report.read_text())
        checks = {check["number"]: check for check in results["checks"]}
        planned = {int(n) for n in case.only.split(",")}
        assert planned <= set(checks), output[-3000:]
        for number, status in case.expect.items():
            assert checks[number]["status"] == status, (checks[number], output[-3000:])
        assert kept, output[-2000:]
        problems = hostile.proof_problems(name, proofs_in(kept[0] / "files", name),
                                          hostile.NOBODY, planned)
        assert problems == [], problems
        shown = [where for where, text in (("the output", output), ("the results", str(results)))
                 if hostile.SECRET in text]
        assert not shown, f"{name}: a file only root may read is shown in {shown}"
        if name == "symlinks":
            refusals = hostile.link_refusals(results["notes"])
            assert all(len(notes) == 1 for notes in refusals.values()), refusals
            assert not {p.name for p in (kept[0] / "files").iterdir()} & set(hostile.LINKS)
    finally:
        for folder in kept:
            shutil.rmtree(folder, ignore_errors=True)


def test_a_class_with_the_hostile_corpus_in_containers(base):
    klass = base / "class"
    outside = hostile.Outside(base / "outside")
    victims = [klass / "00-correct" / "files" / "producer.py",
               klass / "autograde-results" / "results.csv"]
    # The fork bomb is graded alone in a container (above) and in the native class, where its
    # cgroup weighs as one process: a container has no such weight against its neighbour's, and
    # beside a few hundred busy processes on 2 CPUs a correct neighbour's timings would say more
    # about this machine than about the grader.
    cases = [name for name in hostile.CLASS_CASES if not hostile.HOSTILE[name].pid_limit]
    names = hostile.make_class(klass, cases, outside=outside, victims=victims, scope=[base])
    class_before = hostile.tree_digests(klass, skip={"autograde-results"})
    saved = hostile.save_grader_files()
    try:
        done = subprocess.run([sys.executable, str(AUTOGRADE), "--batch", str(klass), "--image",
                               "--jobs", "2", "--version", "final", "--only", hostile.BATCH_ONLY,
                               "--keep", "--timeout", PER_SUBMISSION],
                              capture_output=True, text=True, timeout=TIMEOUT, check=False)
    finally:
        restored = hostile.restore_grader_files(saved)
    output = done.stdout + done.stderr
    results_dir = klass / "autograde-results"
    logs = "".join(path.read_text(errors="replace") for path in results_dir.glob("*.log"))

    assert done.returncode == 0, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    run_ids = set(RUN_ID.findall(logs))
    assert len(run_ids) >= len(names), f"the containers of {len(names)} gradings were not " \
                                       f"all named: {sorted(run_ids)}"
    assert left_of(run_ids) == []
    assert_host_untouched(restored, outside, klass, class_before)
    leftover = subprocess.run(["pgrep", "-f", str(base)], capture_output=True, text=True,
                              check=False)
    assert not leftover.stdout.strip(), f"processes of the batch survived: {leftover.stdout}"

    with open(results_dir / "results.csv") as f:
        rows = {row["name"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == sorted(names), sorted(rows)
    plan = {int(n) for n in hostile.BATCH_ONLY.split(",")}
    verdicts = {name: json.loads((results_dir / f"{name}.json").read_text()) for name in names}
    for name, verdict in verdicts.items():
        print(f"  {name}: {verdict['score']}/{verdict['full_score']}",
              {title.split(".")[0]: outcome[:150] for title, outcome in verdict["tests"].items()
               if not outcome.startswith("PASS")})
    lost = {name: {title: outcome for title, outcome in verdicts[name]["tests"].items()
                   if not outcome.startswith("PASS")}
            for name, case in names.items() if case is None
            and verdicts[name]["score"] != verdicts[name]["full_score"]}
    assert not lost, f"correct submissions lost points: {lost}\n{output[-2500:]}"
    full = None
    for name, case in names.items():
        verdict = verdicts[name]
        assert isinstance(verdict["score"], int), verdict
        full = verdict["full_score"]
        if case is None:
            continue
        problems = hostile.proof_problems(case, proofs_in(results_dir / f"{name}-logs" /
                                                          "files", name), hostile.NOBODY, plan)
        assert problems == [], problems
        if case == "symlinks":
            refusals = hostile.link_refusals(verdict["notes"])
            assert all(len(notes) == 1 for notes in refusals.values()), refusals
    assert full == sum(check_points(n) for n in plan)


def check_points(number):
    importlib.import_module("grader.checks")  # registers the checks
    from grader.registry import CHECKS
    return CHECKS["final"][number].points
