"""The native sandbox every process of a submission runs in: its programs and the grader's small
scripts over its code (the pace probe, the report_pb2 field checks, protoc).

When the grader runs as root, each process runs as a dedicated unprivileged uid and gid (64000 +
the slot: P7_SANDBOX_SLOT, or the first one no other grader holds) with no supplementary groups
and no passwd entry. It therefore cannot signal the grader, ptrace it or read its environment,
cannot write the grader's root-owned files or read root's home, and sweep() can find every
process it left behind by that uid alone, wherever it moved (another process group, session or
working directory).

Always (root or not):
- a session of its own (start_new_session), so that killpg(0) or the terminal's Ctrl-C reaches
  only its own processes;
- a scrubbed environment: PATH (the interpreter's folder, then a fixed system path), LANG, HOME
  and TMPDIR (folders of the session, the sandbox's own), MPLBACKEND=Agg, MPLCONFIGDIR in that
  HOME, and what the grader passes on purpose (KAFKA_BOOTSTRAP, the pace variables...);
- resource limits, set by a small bootstrap that lowers them (soft and hard, so they cannot be
  raised again) and then execs the program in the same process: RLIMIT_FSIZE (the biggest file
  a process may write, its stdout log included), RLIMIT_AS, RLIMIT_CORE 0, and as root
  RLIMIT_NPROC (counted per uid: a fork bomb of the whole submission stops there). A bootstrap
  rather than Popen's preexec_fn, because preexec_fn is not safe in a process with threads (the
  grader has some).

Not as root nothing can be dropped: the programs run as the grader's user (the report says so
once, NOT_SANDBOXED), RLIMIT_NPROC is left alone (it would count that user's other processes)
and sweep() does nothing (the uid is not the submission's alone).

The sandbox uid must reach the interpreter: a folder on the way that only its owner may enter
(`/root` 0700 holding pyenv's python) is given a POSIX ACL entry granting that uid search (x)
permission only, never listing or reading; the grader says so on stderr when it does.
"""

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
from pathlib import Path

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
SWEEP_TIMEOUT = 30
PROBE_TIMEOUT = 60

NOT_SANDBOXED = ("not sandboxed: the grader does not run as root, so the programs ran as this "
                 "user (they could reach this user's files)")

# Lowers the limits passed as argv[1] ("NAME=VALUE,..."), puts back the default action of the
# signals Python ignores (as Popen's restore_signals does), then becomes argv[2:].
BOOTSTRAP = """\
import os, resource, signal, sys
for item in filter(None, sys.argv[1].split(",")):
    name, value = item.split("=")
    limit = getattr(resource, name)
    hard = resource.getrlimit(limit)[1]
    value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
    resource.setrlimit(limit, (value, value))
for name in ("SIGPIPE", "SIGXFSZ"):
    signal.signal(getattr(signal, name), signal.SIG_DFL)
os.execvp(sys.argv[2], sys.argv[2:])
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


def slot_id(number=None):
    """The uid (and gid) of a slot, this grader's by default."""
    return BASE_ID + (slot() if number is None else number)


class Sandbox:
    """The sandbox of one grading session: its HOME and TMPDIR in `folder`, its uid."""

    def __init__(self, folder, slot_number=None, limits=None):
        self.active = active()
        self.uid = self.gid = slot_id(slot_number) if self.active else os.getuid()
        if not self.active:
            self.gid = os.getgid()
        self.limits = dict(LIMITS if limits is None else limits)
        if not self.active:
            self.limits.pop("RLIMIT_NPROC", None)
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
        """`argv` behind the bootstrap that sets the limits and execs it (same pid)."""
        limits = ",".join(f"{name}={value}" for name, value in self.limits.items())
        return [sys.executable, "-I", "-S", "-c", BOOTSTRAP, limits, *map(str, argv)]

    def popen_kwargs(self, env):
        """Popen's keywords for a sandboxed process with the environment `env` (made by
        environment())."""
        kwargs = {"env": env, "start_new_session": True}
        if self.active:
            kwargs.update(user=self.uid, group=self.gid, extra_groups=[])
        return kwargs

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

    def sweep(self):
        """sweep(uid) of this sandbox; the pids left (none unless a deadline passed)."""
        return sweep(self.uid) if self.active else []


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
    """SIGKILL every process of `uid` (see KILL_ALL), again until none is left or `timeout`
    seconds passed; returns the pids still there then (none when it worked). Root only, and
    never for uid 0 or the grader's own uid."""
    if not active() or uid in (0, os.getuid()):
        return []
    deadline = time.monotonic() + timeout
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
        import atexit
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _current = Sandbox(folder)
    return _current


def run(argv, cwd, timeout, env=None, python=None):
    """Sandbox.run with the current() sandbox."""
    return current().run(argv, cwd, timeout, env=env, python=python)
