"""The sandbox slot's cgroups (grader/sandbox.py) with real processes and no broker: every
sandboxed process is born in them and cannot leave them; a fork bomb stops at pids.max and the
sweep ends it; a daemon that left its session and changed its argv is found by the cgroup alone;
the memory limit holds and the peak memory is the submission's; two slots are apart; a fork
bomb spinning in one slot leaves another slot its CPU share; a group left behind is emptied and
made afresh; without a writable cgroup, rlimits alone.

The tests need root and a writable cgroup hierarchy, and skip otherwise (the where-to-put-it
logic is tested on a folder tree of its own, as any user). Each test uses slots of its own
(SLOT + 0..7, apart for each pytest-xdist worker) and removes its groups (Sandbox.close())."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader import sandbox
from tools.harness import wait_until

WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
SLOT = 930 + 8 * (WORKER % 8)              # 930-993, apart from test_sandbox.py's
MiB = sandbox.MiB
ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="only root can make cgroups and run a "
                                                         "program as another uid")
UNIFIED = Path("/sys/fs/cgroup/unified")   # cgroup v2 beside v1 hierarchies (hybrid layout)

# Forks without end: every process forks again, and waits a moment when the kernel refuses.
FORK_BOMB = """
import os, time
while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.05)
"""
SPIN = "while True:\n    pass\n"


@pytest.fixture
def boxes(tmp_path):
    """boxes(offset, **group_limits): a Sandbox on slot SLOT + offset with cgroups (the test is
    skipped when none could be made here); all closed at the end."""
    made = []

    def make(offset=0, **group_limits):
        folder = tmp_path / f"box{len(made)}"
        folder.mkdir()
        box = sandbox.Sandbox(folder, slot_number=SLOT + offset,
                              group_limits=group_limits)
        made.append(box)
        if box.groups is None:
            pytest.skip("no cgroup could be made here (no writable cgroup hierarchy)")
        box.require_runs(sys.executable)
        return box

    yield make
    for box in made:
        folders = list(box.groups.folders.values()) if box.groups else []
        assert box.close() == [], "processes outlived the sandbox's close()"
        assert not [folder for folder in folders if folder.exists()], "a cgroup was left"


def needs(box, controller):
    if controller not in box.groups.folders:
        pytest.skip(f"the {controller} controller cannot be used here")


def start(box, code):
    """`code` as a python program in `box`, not waited for."""
    return subprocess.Popen(box.argv([sys.executable, "-c", textwrap.dedent(code)]),
                            cwd=box.tmp, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                            **box.popen_kwargs(box.environment(python=sys.executable)))


def run(box, code, timeout=60):
    """`code` as a python program in `box` (Sandbox.run); its stdout's last line as JSON."""
    done = box.run([sys.executable, "-c", textwrap.dedent(code)], cwd=box.tmp, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def expected_places(box):
    """{hierarchy: path} where the slot's groups show in /proc/PID/cgroup (sandbox's
    cgroup_places() keys: a v1 controller, or "" for v2)."""
    groups = box.groups
    if groups.version == 2:
        return {"": "/" + str(groups.folders["freezer"].relative_to(groups.root))}
    return {controller: "/" + str(folder.relative_to(groups.root / controller))
            for controller, folder in groups.folders.items()}


def places_of(pid):
    return sandbox.cgroup_places(Path(f"/proc/{pid}/cgroup").read_text())


def control(box, controller, name):
    return (box.groups.folders[controller] / name).read_text()


def cpu_seconds(pids):
    """CPU time (user + system) the processes `pids` used so far, those still there."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


@ROOT_ONLY
def test_every_sandboxed_process_is_born_in_the_slots_groups(boxes):
    box = boxes()
    expected = expected_places(box)
    seen = run(box, """
        import json
        print(json.dumps(open("/proc/self/cgroup").read()))
    """)
    assert {key: sandbox.cgroup_places(seen)[key] for key in expected} == expected
    sleeper = start(box, "import time; time.sleep(60)")
    wait_until(lambda: sleeper.pid in box.groups.pids(), 10, "the sleeper in the groups")
    assert {key: places_of(sleeper.pid)[key] for key in expected} == expected
    assert box.groups.holds(sleeper.pid)
    assert not box.groups.holds(os.getpid()), "the grader itself joined the sandbox's groups"


@ROOT_ONLY
def test_a_sandboxed_process_cannot_leave_its_groups_or_raise_their_limits(boxes):
    box = boxes()
    needs(box, "pids")
    folder = box.groups.folders["pids"]
    seen = run(box, f"""
        import json, os
        outcomes = []
        for path, text in (({str(folder.parent / "cgroup.procs")!r}, str(os.getpid())),
                           ({str(folder / "pids.max")!r}, "max")):
            try:
                with open(path, "w") as f:
                    f.write(text)
                outcomes.append("written")
            except PermissionError:
                outcomes.append("PermissionError")
        print(json.dumps(outcomes))
    """)
    assert seen == ["PermissionError", "PermissionError"]
    assert control(box, "pids", "pids.max").strip() == str(sandbox.GROUP_LIMITS["pids"])


@ROOT_ONLY
def test_a_fork_bomb_stops_at_pids_max_and_the_sweep_ends_it(boxes):
    cap = 40    # under RLIMIT_NPROC (256): the cgroup is what stops it
    box = boxes(pids=cap)
    needs(box, "pids")
    seen = []

    def current():
        seen.append(int(control(box, "pids", "pids.current")))
        return seen[-1]

    bomb = start(box, FORK_BOMB)
    wait_until(lambda: current() >= cap, 30, f"the fork bomb to reach {cap} processes")
    wait_until(lambda: current() and len(seen) > 30, 10, "more samples", interval=0.02)
    assert max(seen) <= cap, seen
    refused = dict(line.split() for line in control(box, "pids", "pids.events").splitlines())
    assert int(refused["max"]) > 0, "the kernel never refused the bomb a fork"
    # The grader, outside the group, still starts processes while the bomb holds its cap.
    assert subprocess.run(["true"], check=False, timeout=10).returncode == 0
    assert box.sweep() == []
    bomb.wait(timeout=10)
    assert box.groups.pids() == set()
    assert sandbox.processes_of(box.uid) == []


@ROOT_ONLY
def test_the_groups_alone_find_a_daemon_that_left_its_session_folder_and_argv(boxes):
    box = boxes()
    run(box, """
        import json, os
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.chdir("/")
                os.closerange(0, 3)
                os.execvp("sleep", ["innocent", "600"])
            os._exit(0)
        os.wait()
        print(json.dumps("forked"))
    """)
    (daemon,) = wait_until(lambda: box.groups.pids(), 10, "the daemon in the groups")
    assert Path(f"/proc/{daemon}/cmdline").read_bytes().split(b"\0")[0] == b"innocent"
    assert os.getsid(daemon) != os.getsid(0) and os.readlink(f"/proc/{daemon}/cwd") == "/"
    assert box.groups.kill() == []  # the groups' kill only: no uid sweep
    assert sandbox.processes_of(box.uid) == []


@ROOT_ONLY
def test_the_peak_memory_is_what_the_submission_used_together(boxes):
    box = boxes()
    needs(box, "memory")
    assert box.peak_memory() < 64 * MiB, "a fresh sandbox starts with an old peak"
    seen = run(box, """
        import json
        block = b"x" * (200 * 1024 * 1024)   # written, so every page is there
        print(json.dumps(len(block)))
    """)
    assert seen == 200 * MiB
    assert box.peak_memory() >= 200 * MiB, box.peak_memory()


@ROOT_ONLY
def test_the_memory_limit_holds_below_the_address_space_limit(boxes):
    box = boxes(memory=128 * MiB)       # RLIMIT_AS (4 GiB a process) would let it through
    needs(box, "memory")
    done = box.run([sys.executable, "-c", "block = b'x' * (300 * 1024 * 1024)"], cwd=box.tmp,
                   timeout=60)
    assert done.returncode == -9, f"not killed for its memory: {done.returncode} {done.stderr}"
    assert box.peak_memory() <= 128 * MiB


@ROOT_ONLY
def test_a_group_left_behind_is_emptied_and_made_afresh(boxes):
    earlier = boxes(1, pids=40)
    needs(earlier, "pids")
    leftover = start(earlier, """
        block = b"x" * (100 * 1024 * 1024)
        import time; time.sleep(600)
    """)
    wait_until(lambda: (earlier.peak_memory() or 0) >= 100 * MiB
               or "memory" not in earlier.groups.folders, 30, "the leftover's memory")
    later = boxes(1)     # the same slot, as a grader after a crashed one
    assert leftover.wait(timeout=10) != 0
    assert later.groups.pids() == set()
    assert control(later, "pids", "pids.max").strip() == str(sandbox.GROUP_LIMITS["pids"])
    if "memory" in later.groups.folders:
        assert later.peak_memory() < 64 * MiB, "the peak of the earlier run is still there"


@ROOT_ONLY
def test_two_slots_have_groups_of_their_own_and_sweep_apart(boxes):
    first, second = boxes(2), boxes(3)
    assert not set(first.groups.folders.values()) & set(second.groups.folders.values())
    sleepers = [start(box, "import time; time.sleep(600)") for box in (first, second)]
    wait_until(lambda: sleepers[0].pid in first.groups.pids()
               and sleepers[1].pid in second.groups.pids(), 10, "a sleeper in each slot")
    assert first.sweep() == []
    assert sleepers[0].wait(timeout=10) != 0
    assert sleepers[1].poll() is None, "sweeping one slot killed the other's process"
    assert second.groups.holds(sleepers[1].pid)


@ROOT_ONLY
def test_a_slot_spinning_many_processes_leaves_the_next_slot_its_cpu_share(boxes):
    spinners, seconds = 24, 3
    hog, fair = boxes(4), boxes(5)
    needs(hog, "cpu")
    for _ in range(spinners):
        start(hog, SPIN)
    pids = wait_until(lambda: len(hog.groups.pids()) == spinners and hog.groups.pids(), 10,
                      "the spinners")
    before = cpu_seconds(pids)
    used = run(fair, f"""
        import json, time
        end = time.monotonic() + {seconds}
        while time.monotonic() < end:
            pass
        print(json.dumps(time.process_time()))
    """)
    each = (cpu_seconds(pids) - before) / spinners
    # Weighed process by process, the one spinner of `fair` would get what each of the
    # others gets; as a group, as much as all of them together.
    assert used > 4 * each, f"{used:.2f} s of CPU against {each:.2f} s for each spinner"


@ROOT_ONLY
@pytest.mark.skipif(not (UNIFIED / "cgroup.controllers").exists(),
                    reason="no cgroup v2 hierarchy beside v1 ones here (/sys/fs/cgroup/unified)")
def test_on_a_cgroup_v2_hierarchy_the_group_finds_and_kills_everything(boxes, monkeypatch):
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", UNIFIED)
    box = boxes(6)
    assert box.groups.version == 2
    run(box, """
        import json, os
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.closerange(0, 3)
                os.execvp("sleep", ["innocent", "600"])
            os._exit(0)
        os.wait()
        print(json.dumps("forked"))
    """)
    (daemon,) = wait_until(lambda: box.groups.pids(), 10, "the daemon in the group")
    assert places_of(daemon)[""] == expected_places(box)[""]
    assert box.groups.kill() == []
    assert sandbox.processes_of(box.uid) == []


@ROOT_ONLY
def test_without_a_writable_cgroup_rlimits_alone_hold(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "CGROUP_ROOT", tmp_path / "no-cgroups")
    box = sandbox.Sandbox(tmp_path / "box", slot_number=SLOT + 7)
    try:
        assert box.groups is None and box.peak_memory() is None
        assert box.confinement.startswith("rlimits only, no cgroup could be made here (")
        assert run(box, "import json, os; print(json.dumps(os.getuid()))") == box.uid
    finally:
        assert box.close() == []


def test_the_confinement_names_the_groups_limits_and_the_rlimits(tmp_path):
    groups = sandbox.SlotGroups(7, root=tmp_path, own="1:pids:/\n2:memory:/a\n3:cpu:/\n")
    groups.folders = {"pids": tmp_path, "memory": tmp_path}
    text = sandbox.confinement(groups, {"pids": 512, "memory": 4096 * MiB},
                               {"RLIMIT_FSIZE": 256 * MiB, "RLIMIT_CORE": 0})
    assert text == ("cgroups of its own (for all its processes together: at most 512 "
                    "processes, 4 GiB of memory) and rlimits (files up to 256 MiB, no core "
                    "files)")


def test_v1_groups_go_under_the_graders_own_group_in_each_hierarchy(tmp_path):
    for controller in ("pids", "memory", "cpu,cpuacct", "freezer"):
        (tmp_path / controller).mkdir()
        (tmp_path / controller / "cgroup.procs").touch()
    (tmp_path / "cpu").symlink_to("cpu,cpuacct")
    own = "9:name=systemd:/\n8:pids:/\n4:memory:/jobs/7\n2:cpu,cpuacct:/\n6:freezer:/\n0::/\n"
    groups = sandbox.SlotGroups(5, root=tmp_path, own=own)
    assert groups.version == 1
    assert groups.folders == {"pids": tmp_path / "pids/p7-sandbox-5",
                              "memory": tmp_path / "memory/jobs/7/p7-sandbox-5",
                              "cpu": tmp_path / "cpu/p7-sandbox-5",
                              "freezer": tmp_path / "freezer/p7-sandbox-5"}
    assert groups.paths == {"/p7-sandbox-5", "/jobs/7/p7-sandbox-5"}


def test_a_v2_group_goes_where_the_most_controllers_are_handed_down(tmp_path):
    (tmp_path / "cgroup.controllers").write_text("cpu memory pids io\n")
    scope = "/user.slice/user-0.slice/s.scope"
    tree = {"": "cpu memory pids io", "user.slice": "memory pids",
            "user.slice/user-0.slice": "memory pids", scope.lstrip("/"): ""}
    for path, enabled in tree.items():
        (tmp_path / path).mkdir(exist_ok=True)
        (tmp_path / path / "cgroup.subtree_control").write_text(enabled + "\n")
    groups = sandbox.SlotGroups(3, root=tmp_path, own=f"0::{scope}\n")
    assert groups.version == 2
    folder = tmp_path / "p7-sandbox-3"       # the root: the only one handing cpu down
    assert groups.folders == {"pids": folder, "memory": folder, "cpu": folder,
                              "freezer": folder}
    assert groups.paths == {"/p7-sandbox-3"}
    (tmp_path / "cgroup.subtree_control").write_text("memory pids io\n")
    assert sandbox.v2_parent(tmp_path, scope) == "/user.slice/user-0.slice"  # the nearest
    # Nothing handed down anywhere: a group under the grader's own, to find and kill with.
    for path in tree:
        (tmp_path / path / "cgroup.subtree_control").write_text("\n")
    assert sandbox.v2_parent(tmp_path, scope) == scope
