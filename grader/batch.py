"""--batch DIR: a class of submissions, --jobs of them at a time (one by default).

Each submission is graded by a autograde.py of its own (a child process), so that whatever one
does cannot reach the next: the child has a temporary folder of its own (TMPDIR), which every
program it starts runs in, and a run id that names its containers.

--jobs N. N lanes grade at once, each taking the next submission nobody has taken. A lane has a
sandbox slot of its own (grader/sandbox.py: natively its uid, so a lane's sweep never reaches
another's programs) and, natively, a broker of its own: the first lane's is the class broker at
KAFKA_BOOTSTRAP, the others' are started on free ports for the batch's life. In Docker each
submission has a container, with its own broker, anyway. A submission is graded the same way
whichever lane takes it and whatever the others do: its topic, programs, files and uid are its
own; only the machine's CPUs are shared (the grader's waits end on progress, not on fixed
times). The table and results.csv keep the order the submissions were found in. A child still grading after
the time limit gets SIGTERM (it stops its programs and writes what it has), then SIGKILL to its
process group; after it, any process still running in its folder is killed with its process
group and any container or image of its run id is removed (sweep()). The child writes its JSON
after every check, so a submission stopped halfway is graded as far as it got; the checks it did
not reach get no points.

Results go to DIR/autograde-results/: NAME.json (the course grader's shape), NAME.log (the
child's output) and results.csv (a row per submission: name, score, each check's points).

Stopping the batch. SIGINT (Ctrl-C) and SIGTERM stop it cleanly. Their handlers only record the
signal, and the batch acts on it where that is safe: an exception raised from a handler could
land between the start of a child and the batch's record of it (a child nobody stops), or in the
middle of a cleanup. The child grading at that moment gets SIGTERM and STOP_GRACE seconds to
stop its programs (a second signal cuts the wait short), then SIGKILL to its process group, then
the sweep of its folder and run id; no further submission starts; the class's broker, when the
batch started it, is stopped as grade_class leaves its `with` block (a signal during its start
lets the start finish, or fail when a Ctrl-C reached the launcher too, then stops what was
started); the table and results.csv are written. The children, their programs and the sweep's
docker commands run in sessions of their own, so a Ctrl-C in the batch's terminal reaches none
of them: only the batch decides how they stop. The submission stopped halfway and those not
reached are listed as not graded: "not graded" in results.csv's score column, the check columns
empty. The stopped one's NAME.json is removed (a grade cut short by the instructor is not the
student's); its NAME.log stays, ending with why. The files of a submission not reached are left
as they are (an earlier run's, if any). The exit code is then 128 + the signal's number, the
shell's convention: 130 for SIGINT, 143 for SIGTERM; otherwise it is 0 whatever the scores, and
2 when grading cannot start (no submission, no broker).

--keep. Each child gets --keep, so its session keeps its grading folder (the copy of files/ the
programs ran in, and logs/ with their output) inside the child's TMPDIR and names it on its
last line, "kept the grading folder PATH". Once the child has ended and the sweep has killed
whatever still ran in its TMPDIR (nothing writes there any more), and before the TMPDIR is
removed, the batch moves that folder to DIR/autograde-results/NAME-logs/ (replacing one of an
earlier run), and says so at the end of NAME.log. A child killed before it named its folder
leaves its whole TMPDIR kept there instead. The TMPDIR itself stays a short path under the
system's temporary folder rather than inside the results folder: a long one would break programs
that put Unix sockets there (multiprocessing's managers do; a socket's path has at most 107
bytes), so a submission would be graded differently with --keep. Moved across file systems, the
folder is copied, without what is not a regular file, a folder or a symbolic link (a FIFO, a
socket). Without --keep nothing is kept, as before.
"""

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tools import harness, p7check

from . import course_env, sandbox, version
from .session import COURSE_IMAGE

RESULTS_DIR = "autograde-results"
DEFAULT_TIMEOUT = 900
STOP_GRACE = 60             # what the child gets to clean up after SIGTERM
POLL = 0.2                  # how often the batch looks at its child and at a stop request
KEPT_LINE = re.compile(r"^kept the grading folder (.+)$", re.MULTILINE)  # grader/session.py
NOT_GRADED = "not graded"


class StopRequest:
    """SIGINT and SIGTERM, recorded for the batch to act on (the module's docstring says how).
    The handler never raises and never prints: it may run at any point of the main thread."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.signum = None      # the first signal
        self.hurry = False      # a second one: stop waiting for the child's own cleanup

    def __call__(self, signum, frame):
        if self.signum is None:
            self.signum = signum
        else:
            self.hurry = True

    def __bool__(self):
        return self.signum is not None

    @property
    def name(self):
        return signal.Signals(self.signum).name

    @property
    def exit_code(self):
        return 128 + self.signum

    @contextlib.contextmanager
    def installed(self):
        """The handlers for the block; the previous ones come back afterwards."""
        previous = {signum: signal.signal(signum, self) for signum in self.SIGNALS}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def submissions(folder):
    """[(name, files folder)] of the submissions in `folder`, and [(name, why skipped)]."""
    found, skipped = [], []
    for child in sorted(folder.iterdir()):
        if not child.is_dir() or child.name.startswith(".") or child.name == RESULTS_DIR:
            continue
        if (child / "files").is_dir():
            found.append((child.name, child / "files"))
        elif any(child.glob("*.py")):
            found.append((child.name, child))
        else:
            skipped.append((child.name, "no files/ folder and no programs in it"))
    return found, skipped


def child_command(files, json_path, args):
    command = [sys.executable, str(harness.ROOT / "autograde.py"), "--files", str(files),
               "--json", str(json_path)]
    if args.image is not None:
        command += ["--image", args.image]
    elif args.docker:
        command.append("--docker")
    if args.only:
        command += ["--only", ",".join(map(str, args.only))]
    if args.version != version.AUTO:  # with auto, each child tells its submission's apart
        command += ["--version", args.version]
    if args.env is not None:
        command += ["--env", args.env]
    if args.keep:
        command.append("--keep")
    return command


def grade_one(name, files, out, args, timeout, stop, lane):
    """Grade one submission in a child autograde.py, in `lane` (its sandbox slot and broker).
    Returns (the results JSON or None, seconds, what stopped it or "", whether a stop request
    cut it short). Whatever happens, the child and everything it started are gone when this
    returns."""
    json_path, log_path = out / f"{name}.json", out / f"{name}.log"
    json_path.unlink(missing_ok=True)
    own_tmp = Path(tempfile.mkdtemp(prefix=f"p7-batch-{harness.unique_suffix()}-"))
    run_id = harness.unique_suffix()
    # The child grades in its lane's sandbox slot, which the batch's sweep then ends, and with
    # its lane's broker.
    env = dict(os.environ, TMPDIR=str(own_tmp), P7_AUTOGRADE_RUN_ID=run_id,
               **{sandbox.SLOT_VARIABLE: str(lane.slot)}, **lane.environment)
    started = time.monotonic()
    stopped, interrupted = "", False
    with open(log_path, "w") as log:
        child = subprocess.Popen(child_command(files, json_path, args), stdout=log,
                                 stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                 start_new_session=True)
    try:
        deadline = started + timeout
        while not exited(child, POLL):
            if stop:
                stopped, interrupted = f"the batch was stopped by {stop.name}", True
                print(f"stopping ({stop.name}) ...", end=" ", flush=True)
                break
            if time.monotonic() > deadline:
                stopped = f"grading was stopped after {timeout:.0f} s"
                break
    finally:
        # Also when the batch itself fails here: the child is ended, then its folder swept.
        end_child(child, stop)
        kept = sweep(own_tmp, run_id, keep_to=out / f"{name}-logs" if args.keep else None,
                     named_in=log_path, slot=lane.slot)
    seconds = time.monotonic() - started
    with open(log_path, "a") as log:
        if kept is not None:
            print(f"batch: kept the grading folder in {kept}", file=log)
        if interrupted:
            print(f"batch: not graded: {stopped} during its grading", file=log)
    if interrupted:
        json_path.unlink(missing_ok=True)  # a partial grade that is not the student's doing
        return None, seconds, stopped, True
    try:
        results = json.loads(json_path.read_text())
    except (OSError, ValueError):
        results = None
    if results is None and not stopped:
        stopped = f"the grader stopped with exit code {child.returncode} (see {log_path.name})"
    return results, seconds, stopped, False


def exited(child, timeout):
    """Whether the child has exited, looking for up to `timeout` seconds. It is not reaped: as a
    zombie it keeps its pid, which is its process group's id, from being reused before
    end_child() has killed that group."""
    deadline = time.monotonic() + timeout
    while True:
        if os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(min(0.05, max(0.0, deadline - time.monotonic())))


def end_child(child, stop):
    """The child gone, with every process left in its process group: SIGTERM while it runs
    (its own cleanup stops its programs) and up to STOP_GRACE seconds for it to exit, fewer when
    a second signal asks the batch to hurry; then SIGKILL to the group, and the child reaped."""
    if not exited(child, 0):
        os.kill(child.pid, signal.SIGTERM)  # unreaped, so the pid is still the child's
        grace = time.monotonic() + STOP_GRACE
        while not exited(child, POLL) and not stop.hurry and time.monotonic() < grace:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.wait(timeout=harness.KILL_TIMEOUT)  # a SIGKILLed process is gone long before


def sweep(folder, run_id, keep_to=None, named_in=None, slot=None):
    """Kill what still runs in `folder` (cwd or command line), with its process group; remove
    the containers and images named with `run_id`; with `keep_to`, move the grading folder that
    the child's log `named_in` names (else the whole of `folder`) there; then remove `folder`.
    Returns where the grading folder was kept, or None.

    As root, every process of the sandbox slot (grader/sandbox.py: its uid and its cgroups) is
    killed too, and its cgroups removed: whatever a submission left running, even after
    changing its session and working directory, is gone when this returns (the child may have
    been SIGKILLed before its own cleanup)."""
    kill_processes_in(folder)
    left = sandbox.close_slot(sandbox.slot() if slot is None else slot)
    if left:
        print(f"batch: processes {left} of the sandbox's slot were still there after SIGKILL",
              file=sys.stderr)
    if shutil.which("docker"):
        for listing, remove in ((["ps", "-aq", "--filter", f"name=p7-autograde-{run_id}-"],
                                 ["rm", "-f"]),
                                (["images", "-q", f"p7-autograde:{run_id}"], ["rmi", "-f"])):
            found = docker(*listing)
            ids = found.stdout.split() if found is not None and found.returncode == 0 else []
            if ids:
                docker(*remove, *ids)
    kept = keep_grading_folder(folder, keep_to, named_in) if keep_to is not None else None
    shutil.rmtree(folder, ignore_errors=True)
    return kept


def docker(*args):
    """A docker command's outcome, None when it timed out. In a session of its own, so that a
    Ctrl-C in the batch's terminal cannot cut a removal short."""
    try:
        return subprocess.run(["docker", *args], capture_output=True, text=True,
                              timeout=harness.DOCKER_TIMEOUT, start_new_session=True)
    except subprocess.TimeoutExpired:
        return None


def processes_in(folder):
    """Pids of the processes (zombies aside: they run nothing) whose cwd is in `folder` or whose
    command line names it; never this one."""
    mark = str(folder)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")  # fails for a zombie
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().decode(errors="replace")
        except OSError:
            continue
        if cwd == mark or cwd.startswith(mark + "/") or mark in cmdline:
            pids.append(int(entry))
    return pids


def kill_processes_in(folder):
    """SIGKILL to each process of processes_in(folder) and to its process group (never the
    batch's own group), pass after pass until none is left: a process forking as it is killed
    leaves children that the next pass finds. Gives up after KILL_TIMEOUT seconds."""
    deadline = time.monotonic() + harness.KILL_TIMEOUT
    while (pids := processes_in(folder)) and time.monotonic() < deadline:
        for pid in pids:
            try:
                if os.getpgid(pid) != os.getpgid(0):
                    os.killpg(os.getpgid(pid), signal.SIGKILL)
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)


def keep_grading_folder(folder, keep_to, log_path):
    """Move the grading folder the child kept to `keep_to` (see the module's docstring); returns
    `keep_to`, or None when nothing could be kept."""
    source = folder
    try:
        named = KEPT_LINE.findall(Path(log_path).read_text(errors="replace"))
    except (OSError, TypeError):
        named = []
    if named:
        path = Path(named[-1].strip())
        if path.is_dir() and path.resolve().is_relative_to(folder.resolve()):
            source = path
    shutil.rmtree(keep_to, ignore_errors=True)
    try:
        os.rename(source, keep_to)
    except OSError:  # another file system
        try:
            shutil.copytree(source, keep_to, symlinks=True, ignore=_not_plain_files)
        except OSError:  # shutil.Error too: what could be copied is there
            pass
    return keep_to if keep_to.is_dir() else None


def _not_plain_files(directory, names):
    """copytree's `ignore`: the names in `directory` that are no regular file, folder or
    symbolic link (copying a FIFO would fail, a socket means nothing elsewhere)."""
    ignored = set()
    for name in names:
        path = os.path.join(directory, name)
        if not (os.path.islink(path) or os.path.isdir(path) or os.path.isfile(path)):
            ignored.add(name)
    return ignored


def row(name, results, checks, stopped):
    """(score, {check title: points}, {check title: outcome}) of one submission. The child
    graded the version of the assignment it was given or told apart (--version), whose check
    of a number may be another than the batch's plan names (checks 1, 7 and 10 differ): its
    checks are matched by number, and its outcomes keep their own titles."""
    by_number = {c["number"]: c for c in (results or {}).get("checks", [])}
    points, outcomes = {}, {}
    for check in checks:
        found = by_number.get(check.number)
        points[check.title] = found["points"] if found else 0
        if found:
            outcomes[found["check"]] = (results["tests"].get(found["check"])
                                        or f"{found['status']}")
        else:
            outcomes[check.title] = f"NOT RUN (0/{check.points}): " + (
                stopped or "the grader did not get to it")
    return sum(points.values()), points, outcomes


class Lane:
    """Where one of the --jobs gradings at a time runs: a sandbox slot of its own (natively,
    its uid) and, natively, a broker of its own (`environment` gives the child its
    KAFKA_BOOTSTRAP). A container brings its own broker, so there a lane is its slot alone."""

    def __init__(self, number, slot, environment=None):
        self.number = number
        self.slot = slot
        self.environment = environment or {}


def open_lanes(jobs, native, resources, stop):
    """`jobs` lanes. Natively the first uses the class's broker at KAFKA_BOOTSTRAP (started
    here when none answers, stopped when `resources` closes) and each other one a broker of
    its own on free ports; every lane after the first holds a sandbox slot of its own for the
    batch's life. Raises BrokerError when a broker cannot start (unless a stop request came)."""
    lanes = [Lane(1, sandbox.slot())]
    if native:
        host = p7check.bootstrap().split(",")[0].rpartition(":")[0]
        if host in ("localhost", "127.0.0.1"):
            resources.enter_context(harness.local_broker())
    for number in range(2, jobs + 1):
        if stop:
            break
        slot, lock = sandbox.claim_slot()
        if lock is not None:
            resources.callback(os.close, lock)
        environment = {}
        if native:
            broker = resources.enter_context(harness.LocalBroker())
            environment["KAFKA_BOOTSTRAP"] = broker.bootstrap
        lanes.append(Lane(number, slot, environment))
    return lanes


def grade_class(folder, args, checks):
    folder = folder.resolve()
    if not folder.is_dir():
        print(f"autograde.py: {folder} is not a folder: --batch takes the folder that holds "
              "the submissions.", file=sys.stderr)
        return 2
    found, skipped = submissions(folder)
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    if not found:
        print(f"autograde.py: {folder} holds no submission (a folder with files/ in it, or a "
              "files folder).", file=sys.stderr)
        return 2
    out = folder / RESULTS_DIR
    out.mkdir(exist_ok=True)
    timeout = args.timeout or DEFAULT_TIMEOUT
    full = sum(check.points for check in checks)
    native = not (args.docker or args.image is not None)
    jobs = min(args.jobs, len(found))
    started = time.monotonic()
    stop = StopRequest()
    with stop.installed():  # to the last line: a signal never cuts the results short
        with contextlib.ExitStack() as resources:
            try:
                if args.image == COURSE_IMAGE:
                    # Built once here, not by the first children at the same time.
                    course_env.course_image(progress=lambda text: print(text, flush=True))
                needs_broker = native and any(c.needs_broker for c in checks)
                lanes = open_lanes(jobs, needs_broker, resources, stop)
            except (harness.BrokerError, harness.DockerError, subprocess.TimeoutExpired,
                    course_env.CourseEnvError) as err:
                if not stop:  # a Ctrl-C reaches the launcher too: then it is the stop
                    print(f"autograde.py: could not prepare the class's grading: {err}",
                          file=sys.stderr)
                    return 2
                lanes = []
            rows = grade_all(found, out, args, timeout, checks, full, stop, lanes)
            # Leaving the block stops the brokers we started and frees the slots, signal or not.
        write_csv(out / "results.csv", rows, checks)
        print_summary(rows, checks)
        kept = ", NAME-logs/" if args.keep else ""
        where = f"results in {out} (results.csv, NAME.json, NAME.log{kept})"
        seconds = time.monotonic() - started
        at_once = f", {len(lanes)} at a time" if len(lanes) > 1 else ""
        if not stop:
            print(f"\n{len(rows)} submissions in {seconds:.0f} s{at_once}; {where}")
            return 0
        not_graded = [name for name, score, *_ in rows if score is None]
        print(f"\nstopped by {stop.name}: {len(rows) - len(not_graded)} of {len(rows)} "
              f"submissions graded in {seconds:.0f} s; not graded: "
              f"{', '.join(not_graded) or 'none'}; {where}")
        return stop.exit_code


def grade_all(found, out, args, timeout, checks, full, stop, lanes):
    """[(name, score, {check title: points}, seconds, what stopped it)] of each submission, in
    the order found; score and points are None for one not graded because the batch was
    stopped. Each lane grades the next submission nobody has taken until none is left; the
    main thread only waits, so that the signal handlers run at once."""
    rows = [None] * len(found)
    waiting = list(enumerate(found))
    taken = threading.Lock()
    one_at_a_time = len(lanes) == 1

    def next_submission():
        with taken:
            return None if stop or not waiting else waiting.pop(0)

    def work(lane):
        while (item := next_submission()) is not None:
            index, (name, files) = item
            label = f"[{index + 1}/{len(found)}] {name}"
            if one_at_a_time:
                print(f"{label} ...", end=" ", flush=True)
            try:
                rows[index], line = grade_and_record(name, files, out, args, timeout, checks,
                                                     full, stop, lane)
            except Exception as err:  # noqa: BLE001  (one submission's failure, not the class's)
                stopped = f"the batch could not grade it: {err}"
                rows[index], line = (name, None, None, 0.0, stopped), f"{NOT_GRADED}: {stopped}"
            print(line if one_at_a_time else f"{label} ... {line}", flush=True)

    workers = [threading.Thread(target=work, args=(lane,), name=f"lane-{lane.number}",
                                daemon=True) for lane in lanes]
    for worker in workers:
        worker.start()
    for worker in workers:
        while worker.is_alive():
            worker.join(POLL)
    for index, (name, _files) in enumerate(found):
        if rows[index] is None:
            rows[index] = (name, None, None, 0.0,
                           f"the batch was stopped by {stop.name}" if stop
                           else "the batch could not start grading")
    return rows


def grade_and_record(name, files, out, args, timeout, checks, full, stop, lane):
    """Grade one submission in `lane` and write its NAME.json: (its row, the line that says
    how it went)."""
    results, seconds, stopped, interrupted = grade_one(name, files, out, args, timeout, stop,
                                                       lane)
    if interrupted:
        return (name, None, None, seconds, stopped), f"{NOT_GRADED}: {stopped} ({seconds:.0f} s)"
    score, points, outcomes = row(name, results, checks, stopped)
    (out / f"{name}.json").write_text(json.dumps(
        {"score": score, "full_score": full, "tests": outcomes,
         "notes": (results or {}).get("notes", []) + ([stopped] if stopped else []),
         "checks": (results or {}).get("checks", [])}, indent=2) + "\n")
    line = f"{score}/{full} ({seconds:.0f} s){'; ' + stopped if stopped else ''}"
    return (name, score, points, seconds, stopped), line


def write_csv(path, rows, checks):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", "score"] + [check.title for check in checks])
        for name, score, points, _, _ in rows:
            if score is None:
                writer.writerow([name, NOT_GRADED] + [""] * len(checks))
            else:
                writer.writerow([name, score] + [points[check.title] for check in checks])


def print_summary(rows, checks):
    width = max(len("submission"), *(len(name) for name, *_ in rows))
    print(f"\n{'submission':<{width}}  score  " + " ".join(f"{c.number:>3}" for c in checks)
          + "  seconds")
    for name, score, points, seconds, stopped in rows:
        if score is None:
            print(f"{name:<{width}}  {NOT_GRADED} ({stopped})")
            continue
        print(f"{name:<{width}}  {score:>5}  "
              + " ".join(f"{points[c.title]:>3}" for c in checks)
              + f"  {seconds:>7.0f}" + ("  (stopped)" if stopped else ""))
