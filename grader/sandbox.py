"""The native sandbox every process of a submission runs in: its programs and the grader's small
scripts over its code (the pace probe, the report_pb2 field checks, protoc).

When the grader runs as root, each process runs as a dedicated unprivileged uid and gid (64000 +
the slot: P7_SANDBOX_SLOT, or the first one no other grader holds) with no supplementary groups
and no passwd entry. It therefore cannot signal the grader, ptrace it or read its environment,
cannot write the grader's root-owned files or read root's home.

As root, the slot also has cgroups of its own where the machine lets root make them (cgroup v1
hierarchies, or a unified cgroup v2 one), all named p7-sandbox-SLOT, under the grader's own
cgroup (on v2, under the nearest cgroup above it that hands the controllers down):
- pids: at most GROUP_LIMITS["pids"] processes and threads for the whole submission together; a
  fork bomb stops there, and the grader's own processes, outside the group, can still fork;
- memory: GROUP_LIMITS["memory"] for all its processes together, swap included where the kernel
  accounts it (page cache included too; beyond it the kernel's OOM killer ends one of them),
  and the peak reached, for the report;
- cpu: the default weight (cpu.shares 1024, cpu.weight 100). The scheduler first divides CPU
  time between sibling groups (and, on v1, the processes of the parent) by weight, and only
  then among the processes of a group, so the submission weighs as one busy process against
  the grader, the broker and the submission graded beside it, however many it spins;
- freezer (v1; core on v2): sweep() freezes the group, kills what it lists and thaws it, so
  that nothing forks in between; on v2 cgroup.kill does the same in one write.
Each process joins them before it runs any of the submission's code: the bootstrap below starts
as root, writes its own pid into each group's cgroup.procs, then drops to the uid and execs the
program, so whatever it forks is born inside. The groups' files stay root's: a process of the
uid cannot move itself out, nor change a limit. A group is made fresh when a Sandbox is made (a
group left by an earlier run is emptied and made again), and close() empties and removes it.
sweep() kills every process in the groups and every process of the uid, wherever it moved
(another process group, session or working directory, a new argv).

Always (root or not):
- a session of its own (start_new_session), so that killpg(0) or the terminal's Ctrl-C reaches
  only its own processes;
- a scrubbed environment: PATH (the interpreter's folder, then a fixed system path), LANG, HOME
  and TMPDIR (folders of the session, the sandbox's own), MPLBACKEND=Agg, MPLCONFIGDIR in that
  HOME, and what the grader passes on purpose (KAFKA_BOOTSTRAP, the pace variables...);
- resource limits, set by the bootstrap, which lowers them (soft and hard, so they cannot be
  raised again) and then execs the program in the same process: RLIMIT_FSIZE (the biggest file
  a process may write, its stdout log included), RLIMIT_AS, RLIMIT_CORE 0, and as root
  RLIMIT_NPROC (counted per uid: a fork bomb of the whole submission stops there, cgroup or
  not). A bootstrap rather than Popen's preexec_fn, because preexec_fn is not safe in a process
  with threads (the grader has some).
Sandbox.confinement says in a sentence which of these limits hold, for the report.

Not as root nothing can be dropped: the programs run as the grader's user (the report says so
once, NOT_SANDBOXED), there are no cgroups, RLIMIT_NPROC is left alone (it would count that
user's other processes) and sweep() does nothing (the uid is not the submission's alone).

The sandbox uid must reach the interpreter: a folder on the way that only its owner may enter
(`/root` 0700 holding pyenv's python) is given a POSIX ACL entry granting that uid search (x)
permission only, never listing or reading; the grader says so on stderr when it does.
"""

import atexit
import contextlib
import fcntl
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path, PurePosixPath

BASE_ID = 64000
SLOT_VARIABLE = "P7_SANDBOX_SLOT"
SLOT_LOCKS = Path("/tmp/p7-sandbox-slots")     # a lock file a slot: held by the grader using it
MAX_SLOT = 999
SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"
MiB = 1024 * 1024
LIMITS = {
    "RLIMIT_NPROC": 256,            # processes and threads of the uid (root only, see above)
    "RLIMIT_FSIZE": 256 * MiB,      # bytes of one file
    "RLIMIT_AS": 4096 * MiB,        # address space of one process (pandas+matplotlib: ~250 MiB)
    "RLIMIT_CORE": 0,
}
GiB = 1024 * MiB
GROUP_LIMITS = {
    "pids": 512,                    # processes and threads of the whole submission
    "memory": 4 * GiB,              # bytes, all its processes together
}
CGROUP_ROOT = Path("/sys/fs/cgroup")
SWEEP_TIMEOUT = 30
FREEZE_TIMEOUT = 5
PROBE_TIMEOUT = 60

NOT_SANDBOXED = ("not sandboxed: the grader does not run as root, so the programs ran as this "
                 "user (they could reach this user's files)")

# argv[1]: the cgroup.procs files to write its own pid to, one a line; argv[2]: "UID:GID" to
# drop to (with no supplementary groups), or nothing; argv[3]: the limits to lower
# ("NAME=VALUE,..."). Then it puts back the default action of the signals Python ignores (as
# Popen's restore_signals does) and becomes argv[4:]. It runs as root until the drop: -I keeps
# the environment and the working folder out of its imports.
BOOTSTRAP = """\
import os, resource, signal, sys
groups, ident, limits = sys.argv[1:4]
for procs in filter(None, groups.split("\\n")):
    with open(procs, "w") as file:
        file.write(str(os.getpid()))
if ident:
    uid, gid = map(int, ident.split(":"))
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
for item in filter(None, limits.split(",")):
    name, value = item.split("=")
    limit = getattr(resource, name)
    hard = resource.getrlimit(limit)[1]
    value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
    resource.setrlimit(limit, (value, value))
for name in ("SIGPIPE", "SIGXFSZ"):
    signal.signal(getattr(signal, name), signal.SIG_DFL)
os.execvp(sys.argv[4], sys.argv[4:])
"""

# Run as the sandbox uid: SIGKILL to every process that uid may signal, that is every process
# of the uid but this one. The kernel goes through them all at once, so a process forking
# while it is being killed cannot slip through, and no pid of another user can be hit.
KILL_ALL = "import os, signal\ntry:\n    os.kill(-1, signal.SIGKILL)\nexcept OSError:\n    pass\n"


class SandboxError(Exception):
    """The sandbox cannot be set up; the message says why in a sentence."""


def active():
    """Whether processes can be dropped to the sandbox uid (the grader runs as root)."""
    return os.geteuid() == 0


def slot():
    """The slot of this grader: P7_SANDBOX_SLOT when set (a batch gives its child grader its
    own), else the first slot no other grader on this machine holds, claimed for the life of
    this process: two graders at once never share a uid, so neither sweeps the other's
    programs."""
    text = os.environ.get(SLOT_VARIABLE, "").strip()
    if text:
        if not text.isdigit() or int(text) > MAX_SLOT:
            raise SandboxError(f"{SLOT_VARIABLE} must be a whole number from 0 to {MAX_SLOT}, "
                               f"not {text!r}.")
        return int(text)
    global _claimed
    if _claimed is None:
        _claimed = _claim_slot()
    return _claimed[0]


_claimed = None     # (slot, the open lock file that holds it) of this process


def _claim_slot():
    """(slot, fd): the first slot whose lock file this process could lock. Without root there
    is no uid to share (the programs run as this user): slot 0, nothing claimed."""
    if not active():
        return 0, None
    SLOT_LOCKS.mkdir(mode=0o700, exist_ok=True)
    for number in range(MAX_SLOT + 1):
        fd = os.open(SLOT_LOCKS / f"slot-{number}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return number, fd
    raise SandboxError(f"all {MAX_SLOT + 1} sandbox slots are held by other graders "
                       f"({SLOT_LOCKS}).")


def claim_slot():
    """(slot, lock fd) of one more slot for this process (a batch's further lanes), held until
    the fd is closed; (0, None) when not root."""
    return _claim_slot()


def slot_id(number=None):
    """The uid (and gid) of a slot, this grader's by default."""
    return BASE_ID + (slot() if number is None else number)


class Sandbox:
    """The sandbox of one grading session: its HOME and TMPDIR in `folder`, its uid, its
    cgroups (SlotGroups, or None: rlimits only). `limits`: the rlimits (LIMITS by default);
    `group_limits`: the values of GROUP_LIMITS to change. close() when done: it ends every
    process and removes the cgroups."""

    def __init__(self, folder, slot_number=None, limits=None, group_limits=None):
        self.active = active()
        self.slot = (slot() if slot_number is None else slot_number) if self.active else None
        self.uid = self.gid = slot_id(self.slot) if self.active else os.getuid()
        if not self.active:
            self.gid = os.getgid()
        self.limits = dict(LIMITS if limits is None else limits)
        if not self.active:
            self.limits.pop("RLIMIT_NPROC", None)
        self.group_limits = dict(GROUP_LIMITS, **(group_limits or {}))
        self.groups = SlotGroups.make(self.slot, self.group_limits) if self.active else None
        self.confinement = confinement(self.groups, self.group_limits, self.limits)
        self.closed = False
        if self.active:  # whoever forgot close(): nothing outlives this process, no group stays
            atexit.register(self.close)
        self.folder = Path(folder)
        self.home = self.folder / "home"
        self.tmp = self.folder / "tmp"
        for path in (self.home, self.tmp):
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.own(self.home, self.tmp)
        if self.active:
            # The programs start in `folder` (it holds files/) and may write there, as root in
            # the course's container may write to /. The sticky bit keeps them from renaming
            # or removing what is not theirs in it (the grader's logs/), and makes the kernel
            # refuse root to follow a symbolic link they plant there (fs.protected_symlinks).
            os.chmod(self.folder, 0o1755)
            try:
                grant(self.folder, self.uid, 0o7)
            except SandboxError:  # no ACLs here: writable by all, still sticky
                os.chmod(self.folder, 0o1777)
        self._checked = set()

    # ---------------------------------------------------------------- how a process starts

    def environment(self, extra=None, python=None):
        """The whole environment of a sandboxed process: the fixed part and `extra`."""
        path = SAFE_PATH if python is None else f"{Path(python).parent}:{SAFE_PATH}"
        env = {"PATH": path, "LANG": "C.UTF-8", "HOME": str(self.home), "TMPDIR": str(self.tmp),
               "MPLBACKEND": "Agg", "MPLCONFIGDIR": str(self.home / ".matplotlib")}
        env.update(extra or {})
        return env

    def argv(self, argv):
        """`argv` behind the bootstrap that joins the cgroups, drops to the uid, sets the
        limits and execs it (same pid)."""
        groups = "\n".join(map(str, self.groups.procs_files())) if self.groups else ""
        ident = f"{self.uid}:{self.gid}" if self.active else ""
        limits = ",".join(f"{name}={value}" for name, value in self.limits.items())
        return [sys.executable, "-I", "-S", "-c", BOOTSTRAP, groups, ident, limits,
                *map(str, argv)]

    def popen_kwargs(self, env):
        """Popen's keywords for a sandboxed process (run through argv()) with the environment
        `env` (made by environment()). It starts as this process's user: the bootstrap drops
        to the uid once in the cgroups."""
        return {"env": env, "start_new_session": True}

    def run(self, argv, cwd, timeout, env=None, python=None):
        """subprocess.run(argv, capture_output=True, text=True) in the sandbox, with the
        environment(env, python). At the timeout its whole process group is killed and
        subprocess.TimeoutExpired raised."""
        self.require_runs(python or argv[0])
        process = subprocess.Popen(self.argv(argv), cwd=cwd, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   **self.popen_kwargs(self.environment(env, python)))
        try:
            stdout, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise
        finally:
            if process.poll() is None:  # an exception other than the timeout
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)

    # ---------------------------------------------------------------- files

    def own(self, *paths):
        """Give `paths` (and everything under them) to the sandbox uid, symbolic links
        themselves, never what they point to, and let it reach them (reach()). Nothing to do
        when not root."""
        if not self.active:
            return
        for top in paths:
            top = Path(top)
            self.reach(top)
            os.lchown(top, self.uid, self.gid)
            if top.is_symlink() or not top.is_dir():
                continue
            for folder, dirs, files in os.walk(top):
                for name in dirs + files:
                    os.lchown(os.path.join(folder, name), self.uid, self.gid)

    @contextlib.contextmanager
    def scratch(self, sources=()):
        """A fresh folder of the sandbox uid holding copies of `sources` (regular files),
        removed afterwards: where a grader's script reads the submission's files, which the
        uid may not be able to read where they are."""
        folder = Path(tempfile.mkdtemp(prefix="scratch-", dir=self.tmp))
        try:
            for source in sources:
                shutil.copyfile(source, folder / Path(source).name, follow_symlinks=False)
            self.own(folder)
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def reach(self, path):
        """Give the uid search permission on each folder above `path` that it could not enter
        (see the module's docstring)."""
        if not self.active:
            return
        for folder in reversed(Path(os.path.realpath(path)).parents):
            info = folder.stat()
            if info.st_mode & 0o001 or info.st_uid == self.uid:
                continue
            if grant(folder, self.uid, 0o1):
                print(f"sandbox: gave uid {self.uid} search permission (a POSIX ACL entry, no "
                      f"listing) on {folder}, so that it can reach {path}", file=sys.stderr,
                      flush=True)

    def require_runs(self, python):
        """SandboxError unless `python` (and the bootstrap's) runs as the sandbox uid."""
        python = str(python)
        if python in self._checked:
            return
        for needed in (sys.executable, python, self.folder / "home"):
            self.reach(needed)
        done = subprocess.run(self.argv([python, "-c", "import encodings"]),
                              cwd=self.tmp, capture_output=True, text=True, check=False,
                              timeout=PROBE_TIMEOUT, stdin=subprocess.DEVNULL,
                              **self.popen_kwargs(self.environment(python=python)))
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines()
            raise SandboxError(f"{python} does not run as the sandbox's uid {self.uid}: "
                               f"{lines[-1] if lines else f'exit code {done.returncode}'}.")
        self._checked.add(python)

    def peak_memory(self):
        """The most memory (bytes) the submission's processes used together since the Sandbox
        was made, or None without a memory cgroup."""
        return self.groups.peak_memory() if self.groups else None

    def sweep(self):
        """SIGKILL every process in the cgroups and of the uid; the pids left (none unless a
        deadline passed). Nothing to do when not root."""
        return _sweep(self.uid, self.groups) if self.active else []

    def close(self):
        """sweep(), then remove the cgroups; the pids left. The sandbox runs nothing after;
        closing it again does nothing."""
        if self.closed:
            return []
        self.closed = True
        left = self.sweep()
        if self.groups is not None:
            self.groups.remove()
            self.groups = None
        return left


# ---------------------------------------------------------------- processes of a uid

def processes_of(uid):
    """Pids of the live (non-zombie) processes whose real, effective, saved or filesystem uid
    is `uid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue  # gone meanwhile
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        uids = [int(n) for n in fields.get("Uid", "").split()]
        if uid in uids and not fields.get("State", "").strip().startswith(("Z", "X")):
            found.append(int(entry))
    return found


def sweep(uid, timeout=SWEEP_TIMEOUT):
    """SIGKILL every process in the cgroups of `uid`'s slot (when they are there) and of `uid`
    (see KILL_ALL), again until none is left or `timeout` seconds passed; returns the pids still
    there then (none when it worked). Root only, and never for uid 0 or the grader's own uid."""
    if not active() or uid in (0, os.getuid()):
        return []
    number = uid - BASE_ID
    return _sweep(uid, SlotGroups.existing(number) if 0 <= number <= MAX_SLOT else None, timeout)


def close_slot(number, timeout=SWEEP_TIMEOUT):
    """sweep() of slot `number`'s uid, then remove its cgroups: what a Sandbox's close() does,
    for whoever holds no Sandbox (a batch whose child grader was killed). Root only."""
    if not active():
        return []
    left = sweep(slot_id(number), timeout)
    groups = SlotGroups.existing(number)
    if groups is not None:
        groups.remove()
    return left


def _sweep(uid, groups, timeout=SWEEP_TIMEOUT):
    """The cgroups' kill, then every process of `uid`; the pids left of either."""
    deadline = time.monotonic() + timeout
    left = set(groups.kill(timeout)) if groups is not None else set()
    return sorted(left | set(_sweep_uid(uid, deadline)))


def _sweep_uid(uid, deadline):
    while True:
        left = processes_of(uid)
        if not left or time.monotonic() > deadline:
            return left
        with contextlib.suppress(subprocess.TimeoutExpired, OSError):
            subprocess.run([sys.executable, "-I", "-S", "-c", KILL_ALL], user=uid, group=uid,
                           extra_groups=[], env={}, cwd="/", timeout=10, check=False,
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(0.05)  # SIGKILLed processes take a moment to leave /proc


# ---------------------------------------------------------------- the slot's cgroups

WANTED = ("pids", "memory", "cpu")
# {version: {controller: the file its limit goes to}}. cpu: the default weight, written again
# so that a group made afresh has it whatever its parent's (see the module's docstring).
LIMIT_FILES = {1: {"pids": "pids.max", "memory": "memory.limit_in_bytes", "cpu": "cpu.shares"},
               2: {"pids": "pids.max", "memory": "memory.max", "cpu": "cpu.weight"}}
DEFAULT_WEIGHT = {1: 1024, 2: 100}
PEAK_FILE = {1: "memory.max_usage_in_bytes", 2: "memory.peak"}
SWAP_FILE = {1: "memory.memsw.limit_in_bytes", 2: "memory.swap.max"}


class SlotGroups:
    """The cgroups of one slot, named p7-sandbox-SLOT: on cgroup v1 one in each hierarchy of
    WANTED and the freezer, under the grader's own cgroup there; on v2 a single one (see
    v2_parent()). `folders` maps each controller to its group's folder ("freezer" on v2: the
    group's core cgroup.freeze and cgroup.kill). `own` is the text of /proc/self/cgroup."""

    def __init__(self, slot_number, root=None, own=None):
        self.name = f"p7-sandbox-{slot_number}"
        self.root = Path(CGROUP_ROOT if root is None else root)
        self.version = 2 if (self.root / "cgroup.controllers").exists() else 1
        places = cgroup_places(Path("/proc/self/cgroup").read_text() if own is None else own)
        self.folders = {}
        if self.version == 1:
            for controller in (*WANTED, "freezer"):
                mount = self.root / controller
                if controller in places and (mount / "cgroup.procs").exists():
                    self.folders[controller] = mount / places[controller].lstrip("/") / self.name
        elif "" in places:
            parent = v2_parent(self.root, places[""])
            folder = self.root / parent.lstrip("/") / self.name
            self.folders = {controller: folder for controller in
                            (*delegated(self.root, parent), "freezer")}
        # How each group appears in /proc/PID/cgroup.
        self.paths = {"/" + str(folder.relative_to(self._mount(folder))).strip("/")
                      for folder in self.folders.values()}

    @classmethod
    def make(cls, slot_number, limits):
        """The slot's groups made afresh with `limits` (GROUP_LIMITS's keys), what was in them
        killed; only those the machine let root make; None when none."""
        try:
            groups = cls(slot_number)
        except OSError:  # no /proc/self/cgroup: no cgroups at all
            return None
        groups.kill()
        groups.create(limits)
        return groups if groups.folders else None

    @classmethod
    def existing(cls, slot_number):
        """The slot's groups that are there now (an earlier Sandbox's), or None."""
        try:
            groups = cls(slot_number)
        except OSError:
            return None
        groups.folders = {c: f for c, f in groups.folders.items() if f.is_dir()}
        return groups if groups.folders else None

    def _mount(self, folder):
        return self.root if self.version == 2 else self.root / folder.relative_to(
            self.root).parts[0]

    def unique_folders(self):
        return list(dict.fromkeys(self.folders.values()))

    def procs_files(self):
        """The cgroup.procs file of each group: what a process writes its pid to, to join."""
        return [folder / "cgroup.procs" for folder in self.unique_folders()]

    # ------------------------------------------------------------ making

    def create(self, limits):
        """Each group made afresh (removed first, so that its counters and peak start at 0)
        with `limits` written; the controllers where that failed are dropped."""
        for folder in self.unique_folders():
            with contextlib.suppress(OSError):
                folder.rmdir()
            try:
                folder.mkdir(exist_ok=True)
            except OSError:  # not writable here (a container, a read-only mount)
                self.drop(folder)
        for controller, folder in list(self.folders.items()):
            try:
                self.configure(controller, folder, limits)
            except OSError:
                self.drop(folder, controller)

    def configure(self, controller, folder, limits):
        if controller == "freezer":
            self.freeze(False)
        elif controller == "cpu":
            write(folder / LIMIT_FILES[self.version]["cpu"], DEFAULT_WEIGHT[self.version])
        else:
            write(folder / LIMIT_FILES[self.version][controller], limits[controller])
        if controller == "memory":
            self.limit_swap(folder, limits["memory"])
            if self.version == 1:
                write(folder / PEAK_FILE[1], 0)  # resets the peak

    def limit_swap(self, folder, limit):
        """Memory and swap together within `limit`, where the kernel accounts swap (without
        swap accounting the file is not there, and the limit is on memory alone)."""
        name, value = (SWAP_FILE[1], limit) if self.version == 1 else (SWAP_FILE[2], 0)
        if (folder / name).exists():
            write(folder / name, value)

    def drop(self, folder, controller=None):
        """Forget `controller` (every controller of `folder` by default), removing `folder`
        when no controller is left in it."""
        for name, place in list(self.folders.items()):
            if place == folder and controller in (None, name):
                del self.folders[name]
        if folder not in self.folders.values():
            with contextlib.suppress(OSError):
                folder.rmdir()

    def remove(self, timeout=SWEEP_TIMEOUT):
        """kill(), then remove every group (again until the kernel lets go of them or
        `timeout` seconds passed)."""
        deadline = time.monotonic() + timeout
        self.kill(timeout)
        for folder in self.unique_folders():
            while folder.is_dir():
                try:
                    folder.rmdir()
                except OSError:  # EBUSY while killed processes finish exiting
                    if time.monotonic() > deadline:
                        break
                    time.sleep(0.05)
        self.folders = {}

    # ------------------------------------------------------------ reading

    def pids(self):
        """The pids of every process in the groups."""
        found = set()
        for procs in self.procs_files():
            with contextlib.suppress(OSError):
                found.update(int(line) for line in procs.read_text().split())
        return found

    def holds(self, pid):
        """Whether process `pid` is in one of the groups."""
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            return False
        return any(line.split(":", 2)[-1] in self.paths for line in lines)

    def peak_memory(self):
        """The memory group's peak usage in bytes, or None without one."""
        folder = self.folders.get("memory")
        try:
            return int((folder / PEAK_FILE[self.version]).read_text()) if folder else None
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------ killing

    def kill(self, timeout=SWEEP_TIMEOUT):
        """SIGKILL every process in the groups, again until none is left or `timeout` seconds
        passed; the pids left then."""
        deadline = time.monotonic() + timeout
        while True:
            left = self.pids()
            if not left or time.monotonic() > deadline:
                return sorted(left)
            if not self.kill_at_once():
                with self.frozen(deadline):
                    for pid in self.pids():
                        self.kill_one(pid)
            time.sleep(0.05)  # SIGKILLed processes take a moment to leave the group

    def kill_at_once(self):
        """cgroup.kill (v2): the kernel kills the whole group, forking or not; whether it
        could."""
        folder = self.folders.get("freezer") if self.version == 2 else None
        try:
            return folder is not None and write(folder / "cgroup.kill", 1)
        except OSError:
            return False

    def kill_one(self, pid):
        """SIGKILL to process `pid` if it is in the groups. Through a pidfd, so that a pid
        reused meanwhile by a process outside them is never hit: the /proc check is about the
        process the pidfd holds when that process is still alive after it."""
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            return  # gone
        try:
            if self.holds(pid):
                signal.pidfd_send_signal(fd, 0)
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        except OSError:
            pass  # gone meanwhile
        finally:
            os.close(fd)

    @contextlib.contextmanager
    def frozen(self, deadline):
        """The groups frozen (nothing in them runs, so nothing forks) for the block, as far as
        a freezer is there and they freeze before FREEZE_TIMEOUT (or `deadline`)."""
        until = min(deadline, time.monotonic() + FREEZE_TIMEOUT)
        try:
            if self.freeze(True):
                while not self.is_frozen() and time.monotonic() < until:
                    time.sleep(0.01)
            yield
        finally:
            self.freeze(False)

    def freeze(self, on):
        """Freeze or thaw the groups; whether there is a freezer to do it."""
        folder = self.folders.get("freezer")
        if folder is None:
            return False
        try:
            if self.version == 1:
                return write(folder / "freezer.state", "FROZEN" if on else "THAWED")
            return write(folder / "cgroup.freeze", int(on))
        except OSError:
            return False

    def is_frozen(self):
        folder = self.folders["freezer"]
        with contextlib.suppress(OSError):
            if self.version == 1:
                return (folder / "freezer.state").read_text().strip() == "FROZEN"
            return "frozen 1" in (folder / "cgroup.events").read_text().splitlines()
        return False

    def describe(self, limits):
        """What the groups hold, in words: "at most 512 processes, 4 GiB of memory..."."""
        parts = {"pids": f"at most {limits.get('pids')} processes",
                 "memory": f"{size(limits.get('memory'))} of memory",
                 "cpu": "the CPU weight of one process"}
        found = [parts[c] for c in WANTED if c in self.folders]
        return ", ".join(found) if found else "no limit, only found and killed as one"


def cgroup_places(text):
    """{controller: path} of a process from its /proc/PID/cgroup text: the v1 hierarchies by
    controller, the unified one by ""."""
    places = {}
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        for controller in controllers.split(","):
            places.setdefault(controller, path)
    return places


def delegated(root, path):
    """The controllers of WANTED that the v2 cgroup `path` hands down to its children."""
    try:
        enabled = (root / path.lstrip("/") / "cgroup.subtree_control").read_text().split()
    except OSError:
        return []
    return [controller for controller in WANTED if controller in enabled]


def v2_parent(root, own):
    """Where the slot's group goes on a unified hierarchy: the nearest cgroup from the
    grader's own (`own`) up that hands down the most of WANTED; the grader's own when none
    does (the group then still finds, freezes and kills every process, but limits nothing).
    The kernel lets only a cgroup without processes of its own hand controllers down, the root
    excepted: so usually above the grader's."""
    chain = [own, *map(str, PurePosixPath(own).parents)]
    return max(chain, key=lambda path: len(delegated(root, path)))


def write(path, value):
    """`value` written to the control file `path` in one write; True."""
    with open(path, "w") as file:
        file.write(str(value))
    return True


def size(number):
    for unit, scale in (("GiB", GiB), ("MiB", MiB)):
        if number and number % scale == 0:
            return f"{number // scale} {unit}"
    return f"{number} bytes"


def confinement(groups, group_limits, limits):
    """Which limits hold for the submission, in one sentence for the report."""
    words = {"RLIMIT_FSIZE": lambda v: f"files up to {size(v)}",
             "RLIMIT_AS": lambda v: f"{size(v)} of address space a process",
             "RLIMIT_NPROC": lambda v: f"{v} processes of its uid",
             "RLIMIT_CORE": lambda v: "no core files" if v == 0 else f"core files up to {size(v)}"}
    rlimits = ", ".join(words[name](value) if name in words else f"{name} {value}"
                        for name, value in limits.items())
    if groups is not None:
        return (f"cgroups of its own (for all its processes together: "
                f"{groups.describe(group_limits)}) and rlimits ({rlimits})")
    why = "no cgroup could be made here" if active() else "the grader does not run as root"
    return f"rlimits only, {why} ({rlimits})"


# ---------------------------------------------------------------- POSIX ACLs

ACL_XATTR = "system.posix_acl_access"
ACL_VERSION = 2
USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20
NO_ID = 0xFFFFFFFF


def grant(folder, uid, permissions):
    """Add `permissions` (rwx bits) for `uid` to `folder`'s access ACL, keeping its entries;
    whether it had to; SandboxError when the file system has no ACLs."""
    try:
        try:
            raw = os.getxattr(folder, ACL_XATTR)
        except OSError:
            raw = b""
        if raw:
            entries = {(tag, ident): perm for tag, perm, ident in
                       struct.iter_unpack("<HHI", raw[4:])}
        else:
            mode = os.stat(folder).st_mode
            entries = {(USER_OBJ, NO_ID): mode >> 6 & 7, (GROUP_OBJ, NO_ID): mode >> 3 & 7,
                       (OTHER, NO_ID): mode & 7}
        entries[(USER, uid)] = entries.get((USER, uid), 0) | permissions
        # The mask bounds every named entry and the owning group: the union of them all.
        entries[(MASK, NO_ID)] = 0
        for (tag, _), perm in list(entries.items()):
            if tag in (USER, GROUP, GROUP_OBJ):
                entries[(MASK, NO_ID)] |= perm
        data = struct.pack("<I", ACL_VERSION) + b"".join(
            struct.pack("<HHI", tag, perm, ident) for (tag, ident), perm in sorted(entries.items()))
        if data == raw:  # already there, not masked out (a chmod since sets the mask)
            return False
        os.setxattr(folder, ACL_XATTR, data)
        return True
    except OSError as err:
        raise SandboxError(f"cannot let the sandbox's uid {uid} into {folder} ({err.strerror}): "
                           f"make it searchable (chmod o+x {folder}).") from None


# ---------------------------------------------------------------- the process's sandbox

_current = None


def use(sandbox):
    """Make `sandbox` the one run() uses (a grading session's)."""
    global _current
    _current = sandbox


def current():
    """The sandbox set by use(), else one of this process's own in a temporary folder."""
    global _current
    if _current is None:
        folder = Path(tempfile.mkdtemp(prefix="p7-sandbox-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _current = Sandbox(folder)  # closed at exit, before the folder goes (atexit's order)
    return _current


def run(argv, cwd, timeout, env=None, python=None):
    """Sandbox.run with the current() sandbox."""
    return current().run(argv, cwd, timeout, env=env, python=python)
