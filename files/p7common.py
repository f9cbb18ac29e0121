"""What the programs in this folder share: settings, the partition files' format, safe file
writes and reads, the owner locks, the broker-outage wait and the stop flag.

Each program imports this module first: when a program of this folder runs as the main program,
that import installs the early Ctrl-C guard below, which then covers the slower imports
(kafka-python, protobuf, matplotlib) that follow it.
"""

import os
import signal
import sys

HERE = os.path.dirname(os.path.realpath(__file__))


def quit_quietly(signum, frame):
    # os._exit: an exception raised this early can be swallowed ("Exception ignored in ...").
    os._exit(0)


# Ctrl-C or SIGTERM while a program is still loading its imports (a good 0.1 s) ends it quietly
# with exit 0: nothing has started yet. Only for a program of this folder run as the main
# program: a module that imports one (a test, a benchmark) keeps its own handlers. Each
# program's main() installs the handlers for the real work (StopFlag.install).
_main_file = getattr(sys.modules.get("__main__"), "__file__", None)
if _main_file and os.path.dirname(os.path.realpath(_main_file)) == HERE:
    signal.signal(signal.SIGINT, quit_quietly)
    signal.signal(signal.SIGTERM, quit_quietly)

import ctypes  # noqa: E402  (after the guard, like every import that follows it)
import datetime  # noqa: E402
import errno  # noqa: E402
import fcntl  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import stat  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

BROKER = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
TOPIC = "temperatures"
PARTITIONS = 4
BIRTHDAY_TOPIC = "birthday-temperatures"
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
STAT_KEYS = ("count", "sum", "avg", "start", "end")
# The partition files live next to the programs (/files in the container).
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
FILE_MODE = 0o644
BOOTSTRAP_TIMEOUT_MS = 10_000
# kafka-python waits up to 30 s between attempts to reach a broker that went away (the Java
# client: 1 s), so a restarted broker would stay unused for up to half a minute.
RECONNECT_BACKOFF_MAX_MS = 1000
# While the broker is away (killed, restarting) every Kafka call is retried this often, forever:
# an outage of any length must not end a program that was already running.
RETRY_SEC = 1
# poll() rides out most outages silently; after this long without a message a bounded request
# for the end offsets tells an outage from a quiet topic.
PROBE_SEC = 5
PROBE_TIMEOUT_MS = 5000
# The largest partition file consumer.py can write: every year 0000-9999 of all twelve months,
# each month-year line at its longest (137 bytes: a count of 31, sum and avg at the longest
# float repr, 24 characters) is 16,440,000 bytes, plus a few hundred bytes of partition, offset
# and braces (birthday.json, a reading a year, stays far smaller). A bigger file is none of ours:
# it is refused on its size alone, unread.
MAX_FILE_BYTES = 16 * 1024 * 1024
SHOWN_CHARS = 40
STOP_TIMEOUT_SEC = 60


class Refused(Exception):
    """Something the user has to fix (a file we must not touch, a lock another process keeps),
    as one sentence."""


class LockBusy(Refused):
    """Another running process keeps a file's lock."""


class MalformedMessage(Exception):
    """A message that is not what its topic carries; skipped, saying why."""


def bootstrap_problem(servers):
    """Why `servers` (KAFKA_BOOTSTRAP) is not HOST:PORT[,HOST:PORT...], or None if it is one."""
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return (f"KAFKA_BOOTSTRAP={servers!r} must be HOST:PORT[,HOST:PORT...], "
                    "like localhost:9092")
    return None


# ---------------------------------------------------------------- stopping

class StopFlag:
    """Ctrl-C and SIGTERM, counted, once install() ran. A signal only sets the flag, so it never
    cuts a file write or a batch short: the program looks at it between steps. The next
    `interrupts` signals also raise KeyboardInterrupt, for a program that waits where it cannot
    look (debug.py in poll(): all of them; producer.py until it starts sending: the first)."""

    def __init__(self):
        self.requests = 0
        self.interrupts = 0

    def __bool__(self):
        return self.requests > 0

    def request(self, signum=None, frame=None):
        self.requests += 1
        if self.interrupts > 0:
            self.interrupts -= 1
            raise KeyboardInterrupt

    def install(self, interrupts=0):
        """SIGTERM (docker stop, kill) stops us like Ctrl-C does, and Ctrl-C works even when a
        shell started us in the background with SIGINT ignored."""
        self.interrupts = interrupts
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self.request)

    def wait(self, seconds):
        """Sleep up to `seconds` in short steps; True as soon as a stop was requested."""
        deadline = time.monotonic() + seconds
        while not self.requests:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(left, 0.2))
        return True


stop = StopFlag()  # the one stop flag of this process


def die_with_parent():
    """A child process stops by itself, after its current step, when the program that started
    it is killed (consumer.py's workers: a restart waits for their locks). Linux sends SIGTERM
    then (PR_SET_PDEATHSIG); a parent that died before this asked for it is noticed here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the child stops when its work ends or at Ctrl-C
    if os.getppid() != multiprocessing.parent_process().pid:
        stop.request()


def start_process(target, *args):
    process = multiprocessing.Process(target=target, args=args)
    process.start()
    return process


def exit_status(processes):
    """0 only when every process exited cleanly (a killed one has a negative exit code)."""
    return 0 if all(process.exitcode == 0 for process in processes) else 1


def stop_processes(processes, wait=True):
    """SIGTERM to each live one (a clean stop after its current step); with `wait`, wait for
    them (killing one that takes longer than STOP_TIMEOUT_SEC) and return exit_status."""
    for process in processes:
        if process.is_alive():
            process.terminate()
    if not wait:
        return 0
    for process in processes:
        process.join(timeout=STOP_TIMEOUT_SEC)
        if process.is_alive():
            process.kill()
            process.join()
    return exit_status(processes)


# ---------------------------------------------------------------- the broker

class BrokerWait:
    """Notices an outage (a Kafka call failed, or the probe of a quiet consumer did), says once
    that we wait for the broker, and once that it answers again. `say(text)` reports."""

    def __init__(self, say):
        self.say = say
        self.since = None
        self.heard = time.monotonic()

    def failed(self, err):
        if self.since is None:
            self.since = time.monotonic()
            self.say(f"lost the Kafka broker at {BROKER} ({err}); waiting for the broker to "
                     "come back, then resuming where we were")
        time.sleep(RETRY_SEC)

    def answered(self):
        self.heard = time.monotonic()
        if self.since is not None:
            self.say(f"the broker answers again after {time.monotonic() - self.since:.0f} s")
            self.since = None

    def poll(self, consumer, timeout_ms):
        """consumer.poll(); {} while the broker is away (then nothing was polled: the positions
        stay where they were)."""
        from kafka.errors import KafkaError
        try:
            batch = consumer.poll(timeout_ms=timeout_ms)
        except KafkaError as err:
            self.failed(err)
            return {}
        if batch:
            self.answered()
        else:
            self.probe_if_quiet(consumer)
        return batch

    def probe_if_quiet(self, consumer):
        from kafka.errors import KafkaError  # loaded by every caller already
        assigned = list(consumer.assignment())
        if not assigned or time.monotonic() - self.heard < PROBE_SEC:
            return
        try:
            consumer.end_offsets(assigned, timeout_ms=PROBE_TIMEOUT_MS)
        except KafkaError as err:
            self.failed(err)
        else:
            self.answered()


def wait_for_topic(consumer, say, topic=TOPIC):
    """The topic's partition count; waits (patiently, saying so) while the topic is missing.
    None when a stop was requested meanwhile."""
    from kafka.errors import KafkaError
    announced = False
    outage = BrokerWait(say)
    while not stop:
        try:
            consumer.topics()  # refreshes the metadata
            available = consumer.partitions_for_topic(topic)
        except KafkaError as err:
            outage.failed(err)
            continue
        if available:
            return len(available)
        if not announced:
            say(f"topic {topic} does not exist yet; waiting for the producer")
            announced = True
        time.sleep(1)
    return None


# ---------------------------------------------------------------- the partition files

def partition_path(folder, partition_num):
    return os.path.join(folder, f"partition-{partition_num}.json")


def shown(value, quoted=True):
    """repr(value), cut short: a reason stays one short sentence whatever a file holds.
    quoted=False: a printable string as it is (a year, a name), within the same length."""
    text = value if not quoted and isinstance(value, str) and value.isprintable() \
        else repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 3] + "..."


def is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_finite_number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)  # an int too big for a float raises OverflowError
    except OverflowError:
        return False


def date_problem(date, month):
    """Why `date` is not a real YYYY-MM-DD date of `month`, or None."""
    try:
        parsed = datetime.date.fromisoformat(date)
    except (TypeError, ValueError):
        parsed = None
    # Of the forms fromisoformat takes, only YYYY-MM-DD has 10 characters and a dash at
    # index 7 (1990-W20-1 has not).
    if parsed is None or len(date) != 10 or date[7] != "-":
        return f"date {shown(date)} is not a YYYY-MM-DD calendar date"
    if MONTHS[parsed.month - 1] != month:
        return f"date {date!r} does not belong to key {month!r}"
    return None


def partition_problem(data, partition_num):
    """Why `data` is not partition `partition_num`'s file, or None: the one rule consumer.py,
    plot.py and dashboard.py apply. Its keys are "partition" (the number), "offset" (an int
    >= 0) and month names; each month maps years to stats whose count is an int >= 0, sum and
    avg finite numbers (strict JSON), start and end dates of that month and year (the end dates
    are the consumer's duplicate filter's memory: a bad one would block the partition)."""
    if not isinstance(data, dict):
        return "does not hold a JSON object"
    partition = data.get("partition")
    if not is_count(partition) or partition != partition_num:
        return f"belongs to partition {shown(partition)}, not {partition_num}"
    if not is_count(data.get("offset")):
        return f"has no valid offset ({shown(data.get('offset'))})"
    for month, years in data.items():
        if month in ("partition", "offset"):
            continue
        if month not in MONTHS:
            return f"has an unexpected key {shown(month)}"
        if not isinstance(years, dict) or not all(
                isinstance(stats, dict) and all(key in stats for key in STAT_KEYS)
                for stats in years.values()):
            return f"has incomplete {month} stats"
        for year, stats in years.items():
            problem = stats_problem(month, year, stats)
            if problem:
                return f"has {problem} for {month} {shown(year, quoted=False)}"
    return None


def stats_problem(month, year, stats):
    """What is wrong with the values of one month and year's stats, or None."""
    if not is_count(stats["count"]):
        return f"count {shown(stats['count'])}"
    for key in ("sum", "avg"):
        if not is_finite_number(stats[key]):
            return f"{key} {shown(stats[key])}"
    for key in ("start", "end"):
        if date_problem(stats[key], month) or stats[key][:4] != year:
            return f"{key} {shown(stats[key])}"
    return None


def file_kind(mode):
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "something else"


def open_regular(path, flags=os.O_RDONLY):
    """A descriptor of `path`, Refused("is not a regular file but ...") unless it is a regular
    file. Opened without blocking: open() of a FIFO would otherwise wait for a writer for ever,
    deaf to Ctrl-C and SIGTERM. FileNotFoundError and other OSErrors of open() pass through."""
    fd = os.open(path, flags | os.O_NONBLOCK | os.O_CLOEXEC)
    refuse_unless_regular(fd)
    os.set_blocking(fd, True)
    return fd


def refuse_unless_regular(fd):
    """Close `fd` and raise Refused saying what it is, unless it is a regular file."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise Refused(f"is not a regular file but {file_kind(mode)}")


def read_json(path, limit=MAX_FILE_BYTES):
    """The JSON in the regular file at `path`. Refused says why (one clause, without the path)
    for anything but a regular file of at most `limit` bytes holding valid JSON; a missing file
    is FileNotFoundError, another failing open() Refused("cannot be opened (...)")."""
    try:
        fd = open_regular(path)
    except FileNotFoundError:
        raise
    except OSError as err:
        raise Refused(f"cannot be opened ({err.strerror or err})") from None
    with os.fdopen(fd, "rb") as f:
        size = os.fstat(fd).st_size
        if size > limit:
            raise Refused(f"is {size:,} bytes, over the {limit:,}-byte limit of these files")
        raw = f.read(limit + 1)
    if len(raw) > limit:  # it grew since
        raise Refused(f"is over the {limit:,}-byte limit of these files")
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError:
        raise Refused("is not valid JSON (nested too deeply)") from None
    except ValueError as err:  # UnicodeDecodeError and JSONDecodeError among them
        raise Refused(f"is not valid JSON ({err})") from None


def read_partition(folder, partition_num):
    """Partition `partition_num`'s file in `folder`, checked by partition_problem. Missing:
    FileNotFoundError; anything else that is wrong: Refused saying why, without the path."""
    data = read_json(partition_path(folder, partition_num))
    problem = partition_problem(data, partition_num)
    if problem:
        raise Refused(problem)
    return data


# ---------------------------------------------------------------- writing files

def json_text(data):
    """`data` (a dict) as JSON that a person reads easily: one line per key, and one line per
    entry of a value that is itself a dict, such as a month's years:

        {
          "partition": 0,
          "offset": 9879,
          "March": {
            "1990": {"count": 31, "sum": 1355.5, "avg": 43.72, "end": "1990-03-31", ...},

    json.dump(data, f, indent=2) reads much the same but always takes json's pure-Python
    encoder; each line here is json's C encoder's, so a large file is written faster."""
    lines = []
    for key, value in data.items():
        if isinstance(value, dict) and value:
            entries = ",\n".join(f"    {json.dumps(str(k))}: {json.dumps(v)}"
                                 for k, v in value.items())
            lines.append(f"  {json.dumps(str(key))}: {{\n{entries}\n  }}")
        else:
            lines.append(f"  {json.dumps(str(key))}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def replace_atomically(path, write):
    """Replace `path` with what `write(binary_file)` writes, atomically and durably: readers see
    the old or the new file, never a mix, and after a crash the rename is not undone while the
    data it points to is missing. The temporary file is our own (O_EXCL: never another
    writer's, never through a symlink) and is removed when anything fails. Refused on OSError
    (a full disk, a file size limit)."""
    folder = os.path.dirname(path) or "."
    tmp_path = None
    try:
        fd, tmp_path = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                                        dir=folder)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp makes it private to its owner
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
        tmp_path = None
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as err:
        raise Refused(f"could not write {path} ({err.strerror or err}); it still holds what "
                      "was saved before") from None
    finally:
        if tmp_path and os.path.lexists(tmp_path):
            os.remove(tmp_path)


def save_dict_to_json(data, path):
    """Replace `path` with `data` as JSON (json_text), atomically and durably."""
    text = json_text(data).encode()
    replace_atomically(path, lambda f: f.write(text))


def temporary_files(path):
    """The temporary files replace_atomically leaves when killed mid-write."""
    folder = os.path.dirname(path) or "."
    prefix = os.path.basename(path) + "."
    return [os.path.join(folder, name) for name in os.listdir(folder)
            if name.startswith(prefix) and name.endswith(".tmp")]


def set_aside(path):
    """Rename `path` to path.stale-TIME (never over another file); returns the new name."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = f"{path}.stale-{stamp}"
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = f"{path}.stale-{stamp}-{suffix}"
    os.replace(path, target)
    return target


# ---------------------------------------------------------------- owner locks

def lock_files(paths, who):
    """Lock each `path`.lock (flock, pid inside) for as long as this process and the processes
    it forks live; the kernel drops the locks when they die, kill -9 included. Returns their
    descriptors. Refuses (LockBusy naming the holder, or Refused for a lock file that is no
    regular file or a symbolic link), having created and changed nothing, when one of them
    cannot be taken. A holder that has exited but whose forked children still keep the lock
    is waited for (`who` says so once): they are finishing their last batch."""
    fds = {}
    try:
        # Existing lock files first, so that a refusal never leaves a new one behind.
        for create in (False, True):
            for path in paths:
                if path not in fds:
                    fd = open_lock(path + ".lock", create)
                    if fd is not None:
                        fds[path] = fd
                        take_lock(fd, path, who)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    for fd in fds.values():
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return list(fds.values())


def open_lock(lock_path, create):
    """The lock file's descriptor (None when it is missing and `create` is false). Opened
    without blocking and refused unless it is a regular file: a FIFO or a device there is no
    lock of ours."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | (os.O_CREAT if create else 0)
    try:
        fd = os.open(lock_path, flags, FILE_MODE)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.EISDIR):
            kind = ("a symbolic link" if err.errno == errno.ELOOP
                    else "not a regular file but a folder")
            raise Refused(f"{lock_path} is {kind}; it was left untouched: remove it") from None
        raise Refused(f"cannot open {lock_path}: {err.strerror}") from None
    try:
        refuse_unless_regular(fd)
    except Refused as err:
        raise Refused(f"{lock_path} {err}; it was left untouched: remove it") from None
    return fd


def take_lock(fd, path, who):
    """The lock, or LockBusy naming the running process that keeps it. A holder killed with
    kill -9 may leave forked children finishing their last batch with the lock they inherited:
    a new owner waits for them, however long they take, instead of being refused. Ctrl-C or
    SIGTERM ends the wait (the early guard)."""
    said_so = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            owner = lock_owner(fd)
        if process_alive(owner):
            raise LockBusy(f"{os.path.basename(path)} in {os.path.dirname(path)} is kept by "
                           f"process {owner}, which is still running: stop that one first, or "
                           "use another --dir")
        if not said_so:
            print(f"{who}: {os.path.basename(path)} is still kept by the workers of process "
                  f"{owner}, which has exited: waiting for them to finish their last batch",
                  file=sys.stderr, flush=True)
            said_so = True
        time.sleep(0.1)


def process_alive(pid_text):
    try:
        os.kill(int(pid_text), 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        pass  # somebody else's process, alive
    return True


def lock_owner(fd):
    """The pid written in a lock file (its owner may only just have taken it)."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text:
            return text
        time.sleep(0.05)
    return "(pid unknown)"
