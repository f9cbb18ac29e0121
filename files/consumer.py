"""Part 3: keep partition-N.json summaries of the `temperatures` topic, exactly once.

    python3 consumer.py 0 2        # partitions 0 and 2, forever (manual assignment)
    python3 consumer.py 0 2 --iterations 30
    python3 consumer.py            # the assignment's two rounds: workers [0, 1] and [2, 3]
    docker exec -it p7 python3 /files/consumer.py 0 2

Each partition-N.json holds the per month and year stats *and* the offset they were computed up
to, and is replaced atomically. Stats and checkpoint therefore always agree: a consumer killed at
any instant restarts from the offset of the file it left, so no message is lost or counted twice.
Dates that are not after the last date already counted in a partition are the producer's
duplicates and are skipped; a date far ahead of its partition's stream is held back until the
readings after it confirm it (README: "How exactly-once works here"). One consumer.py owns a
partition at a time: partition-N.json.lock says which.
"""

import os
import sys

# Ctrl-C or SIGTERM while the imports below are still loading (a good 0.1 s) ends the program
# quietly with exit 0: nothing has started yet. os._exit, as an exception raised there can be
# swallowed ("Exception ignored in ..."). main() installs the handlers for the real work; a
# module that imports this one keeps its own.
try:
    import signal
    if __name__ == "__main__":
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(0))
        signal.signal(signal.SIGTERM, lambda signum, frame: os._exit(0))
except KeyboardInterrupt:
    sys.exit(0)

import argparse
import ctypes
import datetime
import errno
import fcntl
import gc
import json
import math
import multiprocessing
import stat
import tempfile
import time

from google.protobuf.message import DecodeError
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner.default import murmur2

from report_pb2 import Report

isfinite = math.isfinite  # once per message: a global name, not an attribute look-up

BROKER = os.environ.get("KAFKA_BOOTSTRAP", "localhost:9092")
TOPIC = "temperatures"
PARTITIONS = 4
OUT_DIR = os.path.dirname(os.path.abspath(__file__))
BOOTSTRAP_TIMEOUT_MS = 10_000
# kafka-python waits up to 30 s between attempts to reach a broker that went away (the Java
# client: 1 s), so a restarted broker would stay unused for up to half a minute.
RECONNECT_BACKOFF_MAX_MS = 1000
POLL_TIMEOUT_MS = 1000
ROUND_ONE_ITERATIONS = 30
ROUND_WORKERS = ([0, 1], [2, 3])
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
MONTH_OF_KEY = {name.encode("utf-8"): name for name in MONTHS}  # a message's key -> its month
MONTH_DIGITS = {name: f"{number:02d}" for number, name in enumerate(MONTHS, 1)}
STAT_KEYS = ("count", "sum", "avg", "end", "start")
# Readings of other dates than the one the stream carries next are held back until the stream
# decides them (DateFilter). A run of this many consecutive dates among them is the stream
# itself: one more than the three foreign readings that can never decide anything, however they
# are dated. MAX_HELD dates held without such a run (days keep going missing) count the first.
HOLD_LIMIT = 4
MAX_HELD = 8
FILE_MODE = 0o644
# While it catches up on a backlog a consumer saves each partition file at most this often, and
# at most once per SAVE_COST_FACTOR times as long as the last save took (files of thousands of
# years take a while to write); once caught up, after every batch (a live stream's message is in
# its file within milliseconds).
CHECKPOINT_EVERY_SEC = 1.0
SAVE_COST_FACTOR = 20

# Optional (--birthday or P7_BIRTHDAY): the stats workers also produce every counted reading of
# that day to a second topic, and one more process keeps birthday.json from it.
BIRTHDAY_TOPIC = "birthday-temperatures"
BIRTHDAY_GROUP = "birthday"
BIRTHDAY_FILE = "birthday.json"
DRAIN_TIMEOUT_SEC = 10
STOP_TIMEOUT_SEC = 60
# While the broker is away (killed, restarting) every Kafka call is retried this often, forever:
# an outage of any length must not end a consumer that was already running.
RETRY_SEC = 1
# poll() rides out most outages silently; after this long without a message a bounded request
# for the end offsets tells an outage from a quiet topic.
PROBE_SEC = 5
PROBE_TIMEOUT_MS = 5000
ACK_WAIT_SEC = 5
CLOSE_TIMEOUT_SEC = 3

# The Kafka clients' settings, as data (bench/ reads and varies them).
CONSUMER_CONFIG = {  # the stats workers
    "client_id": "p7-stats-consumer",
    # Manual assignment, no group: the offset lives in partition-N.json, never in Kafka.
    "group_id": None,
    "enable_auto_commit": False,
    # Only when the checkpoint's offset was deleted by retention: restart from the oldest
    # message still there, not from the newest (the date filter drops what was counted).
    "auto_offset_reset": "earliest",
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    # Up to 5000 messages per poll (kafka-python's default is 500): fewer, bigger batches while
    # catching up on a backlog, so less work per message in kafka-python's poll and in our
    # loop; a live stream still gets each message written as soon as it arrives.
    "max_poll_records": 5000,
}
BIRTHDAY_PRODUCER_CONFIG = {  # the stats workers' publisher of birthday readings
    "client_id": "p7-birthday-publisher",
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    # producer.py's settings, for the same reasons: nothing unacknowledged is considered sent,
    # and retries never reorder.
    "acks": "all",
    "retries": 10,
    "max_in_flight_requests_per_connection": 1,
    "enable_idempotence": True,
}
BIRTHDAY_CONSUMER_CONFIG = {  # the subscriber that keeps birthday.json
    "client_id": "p7-birthday-subscriber",
    "group_id": BIRTHDAY_GROUP,
    "enable_auto_commit": False,  # committed after each atomic write of birthday.json
    "auto_offset_reset": "earliest",
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
}

stop_requested = False


class ConsumerError(Exception):
    """Something the user has to fix; reported as one sentence, exit 1."""


class CheckpointError(ConsumerError):
    """A partition file we must not touch; the user has to look at it."""


class BrokerUnavailable(ConsumerError):
    """No Kafka broker answers at BROKER, or it did not take what we produced."""


class LockBusy(ConsumerError):
    """Another process keeps a file's lock."""


class MalformedMessage(Exception):
    """A message that is not a Report keyed by its month."""


def bootstrap_problem(servers):
    """Why `servers` (KAFKA_BOOTSTRAP) is not HOST:PORT[,HOST:PORT...], or None if it is one."""
    for server in servers.split(","):
        host, _, port = server.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            return (f"KAFKA_BOOTSTRAP={servers!r} must be HOST:PORT[,HOST:PORT...], "
                    "like localhost:9092")
    return None


def log(partition_nums, text):
    print(f"consumer {list(partition_nums)}: {text}", file=sys.stderr, flush=True)


class BrokerWait:
    """Notices an outage (a Kafka call failed, or the probe of a quiet consumer did), says once
    that we wait for the broker, and once that it answers again."""

    def __init__(self, who):
        self.who = who
        self.since = None
        self.heard = time.monotonic()

    def failed(self, err):
        if self.since is None:
            self.since = time.monotonic()
            log(self.who, f"lost the Kafka broker at {BROKER} ({err}); waiting for the broker to "
                          "come back, then resuming where we were")
        time.sleep(RETRY_SEC)

    def answered(self):
        self.heard = time.monotonic()
        if self.since is not None:
            log(self.who, f"the broker answers again after {time.monotonic() - self.since:.0f} s")
            self.since = None

    def probe_if_quiet(self, consumer):
        assigned = list(consumer.assignment())
        if not assigned or time.monotonic() - self.heard < PROBE_SEC:
            return
        try:
            consumer.end_offsets(assigned, timeout_ms=PROBE_TIMEOUT_MS)
        except KafkaError as err:
            self.failed(err)
        else:
            self.answered()


def request_stop(signum, frame):
    # Only a flag: a signal must never interrupt a file write or a batch half applied.
    global stop_requested
    stop_requested = True


# ---------------------------------------------------------------- partition files

def partition_path(out_dir, partition_num):
    return os.path.join(out_dir, f"partition-{partition_num}.json")


def save_dict_to_json(data, path):
    """Replace `path` atomically and durably: readers see the old or the new file, never a mix,
    and after a crash the rename is not undone while the data it points to is missing.
    The temporary file is our own (O_EXCL: never another writer's, never through a symlink)."""
    folder = os.path.dirname(path) or "."
    tmp_path = None
    try:
        fd, tmp_path = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp",
                                        dir=folder)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), FILE_MODE)  # mkstemp makes it private to its owner
            f.write(json_text(data))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    except OSError as err:
        # A full disk or a file size limit: leave no half-written temporary file behind.
        if tmp_path and os.path.exists(tmp_path):
            os.remove(tmp_path)
        raise ConsumerError(f"could not write {path} ({err.strerror or err}); it still holds "
                            "what was saved before") from None
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


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


def temporary_files(path):
    """The temporary files save_dict_to_json leaves when killed mid-write (and the old name)."""
    folder = os.path.dirname(path) or "."
    prefix = os.path.basename(path) + "."
    return [os.path.join(folder, name) for name in os.listdir(folder)
            if name.startswith(prefix) and name.endswith(".tmp")]


def fresh_partition(partition_num):
    return {"partition": partition_num, "offset": 0}


def open_regular(path, flags=os.O_RDONLY):
    """A descriptor of `path`, refused with CheckpointError unless it is a regular file. Opened
    without blocking: open() of a FIFO would otherwise wait for a writer for ever, deaf to
    Ctrl-C and SIGTERM."""
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)
    except OSError as err:
        raise CheckpointError(f"cannot open {path}: {err.strerror or err}") from None
    refuse_unless_regular(fd, path, CheckpointError)
    os.set_blocking(fd, True)
    return fd


def refuse_unless_regular(fd, path, error):
    """Close `fd` and raise `error` naming `path` unless it is a regular file."""
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise error(f"{path} is not a regular file but {file_kind(mode)}; it was left "
                    "untouched: remove it")


def file_kind(mode):
    for test, kind in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return "something else"


def read_json(path, remedy):
    """A JSON file we keep; one that does not parse, or is no regular file, is refused, never
    overwritten."""
    with os.fdopen(open_regular(path)) as f:
        try:
            return json.load(f)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
            why = "nested too deeply" if isinstance(err, RecursionError) else err
            raise CheckpointError(f"{path} is not valid JSON ({why}); it was left untouched: "
                                  f"{remedy}") from None


def load_partition(partition_num, out_dir):
    """Load partition-N.json, creating it as {"partition": N, "offset": 0} when missing."""
    path = partition_path(out_dir, partition_num)
    if not os.path.exists(path):
        save_dict_to_json(fresh_partition(partition_num), path)
    data = read_json(path, "fix it, or delete it to count this partition from scratch")
    problem = checkpoint_problem(data, partition_num)
    if problem:
        raise CheckpointError(f"{path} {problem}; it was left untouched: fix it, or delete it to "
                              "count this partition from scratch")
    return data


def checkpoint_problem(data, partition_num):
    """Why `data` is not a checkpoint of partition `partition_num`, or None if it is one."""
    if not isinstance(data, dict):
        return "does not hold a JSON object"
    if data.get("partition") != partition_num:
        return f"belongs to partition {data.get('partition')!r}, not {partition_num}"
    offset = data.get("offset")
    if not is_count(offset):
        return f"has no valid offset (found {offset!r})"
    for key, years in data.items():
        if key in ("partition", "offset"):
            continue
        if key not in MONTHS or not isinstance(years, dict):
            return f"has an unexpected key {key!r}"
        for year, stats in years.items():
            if not isinstance(stats, dict) or any(k not in stats for k in STAT_KEYS):
                return f"has incomplete stats for {key} {year}"
            problem = stats_problem(key, year, stats)
            if problem:
                return f"has {problem} for {key} {year}"
    return None


def is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def stats_problem(month, year, stats):
    """What is wrong with the values of one month and year's stats, or None."""
    if not is_count(stats["count"]):
        return f"count {stats['count']!r}"
    for key in ("sum", "avg"):
        value = stats[key]
        if not isinstance(value, (int, float)) or isinstance(value, bool) \
                or not math.isfinite(value):
            return f"{key} {value!r}"
    for key in ("start", "end"):
        # The end dates are the duplicate filter's memory: a bad one would block the partition.
        if date_problem(stats[key], month) or stats[key][:4] != year:
            return f"{key} {stats[key]!r}"
    return None


def last_date(data):
    """The newest date counted in a partition file, "" if none: the duplicate filter's memory."""
    ends = [stats["end"] for key, years in data.items() if key in MONTHS
            for stats in years.values()]
    return max(ends, default="")


def set_aside(path):
    stamp = time.strftime("%Y%m%dT%H%M%S")
    target = f"{path}.stale-{stamp}"
    suffix = 1
    while os.path.exists(target):
        suffix += 1
        target = f"{path}.stale-{stamp}-{suffix}"
    os.replace(path, target)
    return target


# ---------------------------------------------------------------- owners

def lock_files(paths):
    """Lock each `path`.lock (flock, pid inside) for as long as this process and the workers it
    forks live; the kernel drops the locks when they die, kill -9 included. Refuses, having
    created and changed nothing, when another process holds one of them."""
    fds = {}
    try:
        # Existing lock files first, so that a refusal never leaves a new one behind.
        for create in (False, True):
            for path in paths:
                if path not in fds:
                    fd = open_lock(path + ".lock", create)
                    if fd is not None:
                        fds[path] = fd
                        take_lock(fd, path)
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
        if err.errno == errno.ELOOP:
            raise ConsumerError(f"{lock_path} is a symbolic link; it was left untouched: "
                                "remove it") from None
        raise ConsumerError(f"cannot open {lock_path}: {err.strerror}") from None
    refuse_unless_regular(fd, lock_path, ConsumerError)
    return fd


def take_lock(fd, path):
    """The lock, or LockBusy naming the running process that keeps it. A consumer.py killed
    with kill -9 leaves its workers finishing their last batch with the lock they inherited
    (they stop by themselves: die_with_parent): a restart waits for them, however long they
    take, instead of being refused. Ctrl-C or SIGTERM ends the wait (the early handlers)."""
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
            print(f"consumer: {os.path.basename(path)} is still kept by the workers of process "
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


# ---------------------------------------------------------------- messages and stats

def date_problem(date, month):
    """Why `date` is not a real YYYY-MM-DD date of `month`, or None."""
    try:
        parsed = datetime.date.fromisoformat(date)
    except (TypeError, ValueError):
        parsed = None
    # Of the forms fromisoformat takes, only YYYY-MM-DD has 10 characters and a dash at
    # index 7 (1990-W20-1 has not); cheaper than a regular expression on the hot path.
    if parsed is None or len(date) != 10 or date[7] != "-":
        return f"date {date!r} is not a YYYY-MM-DD calendar date"
    if MONTHS[parsed.month - 1] != month:
        return f"date {date!r} does not belong to key {month!r}"
    return None


def parse_message(message):
    """(month, date, degrees) of a message, or MalformedMessage saying what is wrong."""
    # One dictionary look-up per message instead of a decode and a search of MONTHS: this runs
    # for every message of a catch-up.
    month = MONTH_OF_KEY.get(message.key)
    if month is None:
        raise MalformedMessage(key_problem(message.key))
    try:
        report = Report.FromString(message.value or b"")
    except DecodeError:
        raise MalformedMessage("value is not a Report protobuf") from None
    date = report.date
    # The cheap checks inline, date_problem (which says why) only for a bad date: of the forms
    # fromisoformat takes, only YYYY-MM-DD has 10 characters and a dash at index 7.
    if len(date) != 10 or date[7] != "-" or date[5:7] != MONTH_DIGITS[month]:
        raise MalformedMessage(date_problem(date, month))
    try:
        datetime.date.fromisoformat(date)  # a real day: not 1990-02-30
    except ValueError:
        raise MalformedMessage(date_problem(date, month)) from None
    degrees = report.degrees
    # Any finite number of degrees is a reading: no bound is plausible for every stream (this
    # project's generator passes 200 F in the year 4756; the provided one's duplicates are
    # 10000 and 1000000).
    if not isfinite(degrees):
        raise MalformedMessage(f"degrees {degrees!r} is not a finite number")
    return month, date, degrees


def key_problem(key):
    try:
        return f"key {key.decode('utf-8')!r} is not a month name"
    except (AttributeError, UnicodeDecodeError):
        return f"key {key!r} is not a month name"


def update_stats(data, month, date, degrees):
    """Count a reading the date rule let through into its month and year. The one it refuses:
    degrees that would make the sum infinite (two readings of 1e308), since the files must stay
    strict JSON. Then count, sum and avg stay, `end` still moves to the date (the duplicate
    filter's memory, so that a restart decides every later reading as this run does), and the
    result is False."""
    year = date[:4]
    years = data.get(month)
    if years is None:
        years = data[month] = {}
    stats = years.get(year)
    if stats is None:
        years[year] = {"count": 1, "sum": 0.0 + degrees, "avg": 0.0 + degrees, "end": date,
                       "start": date}
        return True
    total = stats["sum"] + degrees
    stats["end"] = date
    if not isfinite(total):
        return False
    count = stats["count"] + 1
    stats["count"] = count
    stats["sum"] = total
    stats["avg"] = total / count
    return True


class DateFilter:
    """Which valid readings of one partition are counted (README: "How exactly-once works here").

    The stream's next date is known: the day after `newest`, the newest date counted, or after
    a month's last day the first day of the partition's next month (`expected`). A reading not
    after `newest` is a duplicate or a replay. One of the expected date is counted (the fast
    path, in apply_messages) and rejects whatever is held: the stream went on below it. Any
    other newer date, or any date of an empty partition, is held back, not counted. A held
    reading followed, later among the held ones, by the HOLD_LIMIT - 1 dates the stream carries
    after it, one after the other, starts a genuine gap or the partition: it is counted, the
    ones held before it are skipped and the ones after it judged again, in their order. Where
    days keep going missing no such run forms; then MAX_HELD dates held count the first held
    reading. The checkpoint stays at the first held reading, so a restart re-reads and
    re-decides them the same way."""

    def __init__(self, partition_num, newest, who, months):
        self.partition_num = partition_num
        self.who = who
        self.months = months  # the months this partition carries
        self.newest = newest  # the newest date counted, "" if none
        self.expected = date_after(newest, months) if newest else ""
        self.held = []        # (offset, month, date, degrees), in order

    def checkpoint(self, position):
        """The offset partition-N.json may say: never past a reading not yet decided."""
        return self.held[0][0] if self.held else position

    def judge(self, offset, month, date, degrees):
        """A valid reading newer than `newest` that the fast path did not take: returns the
        readings to count now, in order (updating `newest`)."""
        if date == self.expected:
            for held_offset, _, held_date, _ in self.held:
                log(self.who, f"partition {self.partition_num} offset {held_offset}: skipped "
                              f"date {held_date}: the stream went on with {date}, the date "
                              f"after {self.newest}")
            self.held = []
            self.newest, self.expected = date, date_after(date, self.months)
            return [(month, date, degrees)]
        self.held.append((offset, month, date, degrees))
        if len(self.held) == 1:
            why = (f"the date after {self.newest} is {self.expected or 'none'}" if self.newest
                   else "the first date of this partition")
            log(self.who, f"partition {self.partition_num} offset {offset}: holding back date "
                          f"{date} ({why}) until the next readings decide it")
        first = self.start_of_run()
        if first is None:
            if len({held[2] for held in self.held}) < MAX_HELD:
                return []
            first = 0
        return self.count_held(first)

    def start_of_run(self):
        """The index of the first held reading that the next HOLD_LIMIT - 1 dates follow among
        the held ones, each later than the one before it; None if there is none."""
        for start, (_, _, date, _) in enumerate(self.held):
            length = 1
            for _, _, later, _ in self.held[start + 1:]:
                if later == date_after(date, self.months):
                    date, length = later, length + 1
                    if length == HOLD_LIMIT:
                        return start
        return None

    def count_held(self, index):
        """Count held reading `index`; the ones held before it are skipped (the stream starts
        after them), the ones after it are judged again, in order. So every held reading comes
        after every counted one in the partition, and the checkpoint at the first held one
        never passes a reading that counts."""
        earlier, (offset, month, date, degrees), later = (
            self.held[:index], self.held[index], self.held[index + 1:])
        for skipped_offset, _, skipped_date, _ in earlier:
            log(self.who, f"partition {self.partition_num} offset {skipped_offset}: skipped "
                          f"date {skipped_date}: the stream goes on from {date}, which came "
                          "after it")
        log(self.who, f"partition {self.partition_num} offset {offset}: counted date {date}, "
                      "held back until now: the stream goes on after it")
        self.held = []
        self.newest, self.expected = date, date_after(date, self.months)
        counted = [(month, date, degrees)]
        for reading in later:
            if reading[2] > self.newest:
                counted.extend(self.judge(*reading))
        return counted


def partition_months(partition_num, partition_count):
    """The months whose key Kafka's default partitioner (murmur2, as producer.py and any plain
    producer use it) puts in this partition; every month when it puts none there. A producer
    that places months otherwise loses nothing: its month changes are decided as gaps."""
    months = frozenset(name for name in MONTHS
                       if (murmur2(name.encode()) & 0x7FFFFFFF) % partition_count
                       == partition_num)
    return months or frozenset(MONTHS)


# "MM-DD" -> the next day's "MM-DD", for every day but a month's last one and February 28.
NEXT_DAY_IN_MONTH = {
    day.strftime("%m-%d"): (day + datetime.timedelta(days=1)).strftime("%m-%d")
    for day in (datetime.date(2001, 1, 1) + datetime.timedelta(days=n) for n in range(365))
    if (day + datetime.timedelta(days=1)).month == day.month and day.strftime("%m-%d") != "02-28"}


def date_after(date, months):
    """The date a partition carrying `months` holds after `date`; "" after 9999-12-31. The
    first line answers for all but 13 days of a year: it runs for every message."""
    following = NEXT_DAY_IN_MONTH.get(date[5:])
    if following is not None:
        return date[:5] + following
    day = datetime.date.fromisoformat(date)
    if day == datetime.date.max:
        return ""
    tomorrow = day + datetime.timedelta(days=1)
    if tomorrow.month == day.month:
        return tomorrow.isoformat()
    for ahead in range(1, 13):  # the partition's next month, this year or the next
        index = day.month - 1 + ahead
        if MONTHS[index % 12] in months:
            year = day.year + index // 12
            return f"{year:04d}-{index % 12 + 1:02d}-01" if year <= datetime.MAXYEAR else ""
    return ""


def say_sum_not_finite(partition_nums, dates, month, date, degrees):
    log(partition_nums, f"partition {dates.partition_num}: skipped {degrees!r} degrees on {date}: "
                        f"{month} {date[:4]}'s sum would no longer be a finite number")


def apply_messages(data, dates, messages, partition_nums, on_counted=None):
    """Count each message's reading once into `data`, as DateFilter `dates` decides.
    `on_counted(date, degrees)` hears of every reading that was counted."""
    older, first_older = 0, None
    next_day, months = NEXT_DAY_IN_MONTH.get, dates.months  # looked up once, not per message
    for message in messages:
        try:
            month, date, degrees = parse_message(message)
        except MalformedMessage as err:
            log(partition_nums, f"partition {message.partition} offset {message.offset}: "
                                f"skipped a malformed message: {err}")
            continue
        if date <= dates.newest:
            # Equal: a duplicate from a producer retry (or the generator's 5%). Older: a replay,
            # or a reading behind a date counted before; summed up below, not one line each.
            if date < dates.newest:
                older += 1
                first_older = first_older if first_older is not None else message.offset
            continue
        if date == dates.expected and not dates.held:  # the fast path: the stream going on
            following = next_day(date[5:])  # date_after's first line, inline
            dates.newest = date
            dates.expected = date[:5] + following if following else date_after(date, months)
            if update_stats(data, month, date, degrees):
                if on_counted is not None:
                    on_counted(date, degrees)
            else:
                say_sum_not_finite(partition_nums, dates, month, date, degrees)
            continue
        for month, date, degrees in dates.judge(message.offset, month, date, degrees):
            if update_stats(data, month, date, degrees):
                if on_counted is not None:
                    on_counted(date, degrees)
            else:
                say_sum_not_finite(partition_nums, dates, month, date, degrees)
    if older:
        log(partition_nums, f"partition {dates.partition_num} offset {first_older}: skipped "
                            f"{older} reading(s) of this batch dated before the newest counted "
                            f"date {dates.newest}")


# ---------------------------------------------------------------- Kafka

def make_consumer():
    try:
        return KafkaConsumer(bootstrap_servers=BROKER.split(","), **CONSUMER_CONFIG)
    except KafkaTimeoutError:
        raise BrokerUnavailable(f"cannot reach the Kafka broker at {BROKER}: is it running? "
                                "(`make broker`, or the p7 container)") from None


def wait_for_topic(consumer, partition_nums, topic=TOPIC):
    """The topic's partition count; waits (patiently, saying so) while the topic is missing.
    None when a stop was requested meanwhile."""
    announced = False
    outage = BrokerWait(partition_nums)
    while not stop_requested:
        try:
            consumer.topics()  # refreshes the metadata
            available = consumer.partitions_for_topic(topic)
        except KafkaError as err:
            outage.failed(err)
            continue
        if available:
            return len(available)
        if not announced:
            log(partition_nums, f"topic {topic} does not exist yet; waiting for the producer")
            announced = True
        time.sleep(1)
    return None


def seek_to_checkpoints(consumer, partitions, out_dir, partition_nums):
    """Seek each partition to its file's offset; a file from an older, longer topic is moved
    aside (the topic was recreated) and that partition starts again from 0."""
    topic_partitions = [TopicPartition(TOPIC, n) for n in partitions]
    # Files at offset 0 (a fresh start) cannot be past the end: no need to ask the broker.
    moved_on = [tp for tp in topic_partitions if partitions[tp.partition]["offset"] > 0]
    end_offsets = consumer.end_offsets(moved_on) if moved_on else {}
    for tp in topic_partitions:
        data = partitions[tp.partition]
        if data["offset"] > end_offsets.get(tp, 0):
            path = partition_path(out_dir, tp.partition)
            moved = set_aside(path)
            log(partition_nums, f"{path} has offset {data['offset']} but partition "
                                f"{tp.partition} ends at {end_offsets[tp]} (the topic was "
                                f"recreated): moved it to {moved} and starting fresh")
            data = partitions[tp.partition] = fresh_partition(tp.partition)
            save_dict_to_json(data, path)
        consumer.seek(tp, data["offset"])


def reached_end(consumer, tp, messages):
    """Whether a batch ends at the partition's end, as the broker said with it (no request)."""
    highwater = consumer.highwater(tp)
    return highwater is None or messages[-1].offset + 1 >= highwater


class Checkpoints:
    """When the partition files are saved. Each save rewrites a whole file, and the files grow
    with the years: after every batch of a long catch-up, the rewriting would cost more than
    the counting. Exactly-once does not depend on it: a file always holds stats
    and the offset they were computed up to; a crash only loses the work since the last save,
    which the next run redoes from that offset."""

    def __init__(self, partitions, out_dir):
        self.partitions = partitions
        self.out_dir = out_dir
        self.next_due = dict.fromkeys(partitions, time.monotonic() + CHECKPOINT_EVERY_SEC)
        self.unsaved = {}  # partition number -> whether it is still behind the partition's end

    def counted(self, partition_num, behind):
        self.unsaved[partition_num] = behind

    def forget(self, partition_num):
        self.unsaved.pop(partition_num, None)

    def save_due(self, everything=False):
        """Save each changed file that caught up, or whose next checkpoint is due."""
        for n, behind in list(self.unsaved.items()):
            start = time.monotonic()
            if everything or not behind or start >= self.next_due[n]:
                save_dict_to_json(self.partitions[n], partition_path(self.out_dir, n))
                took = time.monotonic() - start
                self.next_due[n] = start + max(CHECKPOINT_EVERY_SEC, SAVE_COST_FACTOR * took)
                del self.unsaved[n]


def consume(partition_nums_to_consume, max_iterations, out_dir=OUT_DIR, birthday=None):
    consumer = make_consumer()
    publisher = None
    try:
        partition_count = wait_for_topic(consumer, partition_nums_to_consume)
        if partition_count is None:
            return
        if birthday:
            if wait_for_topic(consumer, partition_nums_to_consume, BIRTHDAY_TOPIC) is None:
                return
            publisher = BirthdayPublisher(birthday)
        missing = [n for n in partition_nums_to_consume if n >= partition_count]
        if missing:
            raise ConsumerError(f"{TOPIC} has partitions 0-{partition_count - 1}; "
                                  f"there is no partition {missing[0]}")
        consumer.assign([TopicPartition(TOPIC, n) for n in partition_nums_to_consume])

        # PART 1: initialization. key = partition number, value = that file's dict.
        partitions = {n: load_partition(n, out_dir) for n in partition_nums_to_consume}
        seek_to_checkpoints(consumer, partitions, out_dir, partition_nums_to_consume)
        # After the seek: a file set aside there must not leave its dates behind.
        dates = {n: DateFilter(n, last_date(data), partition_nums_to_consume,
                               partition_months(n, partition_count))
                 for n, data in partitions.items()}
        log(partition_nums_to_consume, "resuming at offsets "
            + ", ".join(f"{n}:{partitions[n]['offset']}" for n in partition_nums_to_consume))

        # PART 2: process batches. A file is saved with the offset its stats were computed up
        # to: at once when the batch reached the partition's end, at most once a second while
        # catching up on a backlog, and when we stop.
        checkpoints = Checkpoints(partitions, out_dir)
        iteration_count = 0
        outage = BrokerWait(partition_nums_to_consume)
        while not stop_requested and (max_iterations is None or iteration_count < max_iterations):
            try:
                batch = consumer.poll(timeout_ms=POLL_TIMEOUT_MS)
            except KafkaError as err:
                outage.failed(err)  # nothing was applied: the positions are where they were
                continue
            if batch:
                outage.answered()
            else:
                outage.probe_if_quiet(consumer)
            for tp, messages in batch.items():
                n = tp.partition
                apply_messages(partitions[n], dates[n], messages, partition_nums_to_consume,
                               publisher and publisher.counted)
                # Acknowledged before the checkpoint moves past them: a crash in between
                # only publishes them again, which the year-keyed birthday.json absorbs.
                if publisher and not publisher.flush(outage):
                    # Stopped during an outage: this file's stats are now ahead of its offset,
                    # so it is not saved again; the checkpoint stays before them.
                    checkpoints.forget(n)
                    break
                # What was applied, from the batch itself: position() would ask the broker,
                # and raises when it has just gone away. Never past a date still held back.
                partitions[n]["offset"] = dates[n].checkpoint(messages[-1].offset + 1)
                checkpoints.counted(n, behind=not reached_end(consumer, tp, messages))
            checkpoints.save_due()
            if max_iterations is not None:
                iteration_count += 1
        checkpoints.save_due(everything=True)
    finally:
        if publisher:
            publisher.close()
        consumer.close()
    print("exiting", flush=True)


# ---------------------------------------------------------------- birthday temperatures

class BirthdayPublisher:
    """Produces "YEAR,DEGREES" to birthday-temperatures for each counted birthday reading."""

    def __init__(self, birthday):
        self.month_day = birthday[5:]
        self.pending = []
        self.producer = KafkaProducer(bootstrap_servers=BROKER.split(","),
                                      **BIRTHDAY_PRODUCER_CONFIG)

    def counted(self, date, degrees):
        # A 29 February birthday only matches in leap years, as it should.
        if date[5:] == self.month_day:
            self.publish(f"{date[:4]},{degrees!r}".encode("utf-8"))

    def publish(self, value):
        self.pending.append((self.producer.send(BIRTHDAY_TOPIC, value=value), value))

    def flush(self, outage):
        """Wait until every reading is acknowledged, sending again those Kafka gave up on (an
        outage longer than its delivery timeout). False when a stop came first: then the
        checkpoint must not move past them (the next run publishes them again)."""
        while self.pending:
            try:
                self.producer.flush(timeout=ACK_WAIT_SEC)
            except KafkaTimeoutError as err:
                if stop_requested:
                    return False
                outage.failed(err)  # acknowledgements take milliseconds when all is well
                continue
            failed = [(future, value) for future, value in self.pending if future.failed()]
            self.pending.clear()
            if failed:
                outage.failed(failed[0][0].exception)
                for _, value in failed:
                    self.publish(value)
        return True

    def close(self):
        if self.pending:
            # Stopped during an outage. kafka-python's close() would flush again and raise, and
            # so would its __del__: drop them first (their checkpoint stayed before them).
            self.producer._sender.force_close()
        self.producer.close(timeout=CLOSE_TIMEOUT_SEC)


def load_birthdays(path, birthday):
    """birthday.json as a dict; a file kept for another birthday is moved aside."""
    if not os.path.exists(path):
        return {"birthday": birthday}
    data = read_json(path, "fix it, or delete it to rebuild it from the topic")
    if not isinstance(data, dict):
        raise CheckpointError(f"{path} does not hold a JSON object; it was left untouched")
    if data.get("birthday") != birthday:
        moved = set_aside(path)
        log(["birthday"], f"{path} was kept for birthday {data.get('birthday')!r}: moved it to "
                          f"{moved} and starting one for {birthday}")
        return {"birthday": birthday}
    return data


def parse_birthday_reading(message):
    """(year, degrees) from a "YEAR,DEGREES" message, or MalformedMessage."""
    try:
        year, degrees = message.value.decode("utf-8").split(",")
        degrees = float(degrees)
    except (AttributeError, UnicodeDecodeError, ValueError):
        raise MalformedMessage(f"value {message.value!r} is not YEAR,DEGREES") from None
    if len(year) != 4 or not year.isdigit() or not math.isfinite(degrees):
        raise MalformedMessage(f"value {message.value!r} is not YEAR,DEGREES")
    return year, degrees


class RebuildWhenEmpty(ConsumerRebalanceListener):
    """Group offsets say what birthday.json has seen, unless the file was deleted or set aside
    since: then the whole (small) topic is read again to rebuild it."""

    def __init__(self, consumer, data):
        self.consumer = consumer
        self.data = data

    def on_partitions_revoked(self, revoked):
        pass

    def on_partitions_assigned(self, assigned):
        if assigned and set(self.data) == {"birthday"}:
            self.consumer.seek_to_beginning(*assigned)


def caught_up(consumer):
    assigned = consumer.assignment()
    if not assigned:
        return False
    try:
        ends = consumer.end_offsets(list(assigned), timeout_ms=RETRY_SEC * 1000)
    except KafkaError:
        return False  # the broker is away: the drain deadline ends the wait
    return all(consumer.position(tp) >= ends[tp] for tp in assigned)


def follow_birthdays(birthday, out_dir):
    """Keep birthday.json = {"birthday": ..., YEAR: degrees} from the birthday topic.

    Group-managed subscription in group "birthday". Offsets are committed after the file is
    saved; a replay after a crash rewrites the same years with the same values."""
    who = ["birthday"]
    path = os.path.join(out_dir, BIRTHDAY_FILE)
    data = load_birthdays(path, birthday)
    consumer = KafkaConsumer(bootstrap_servers=BROKER.split(","), **BIRTHDAY_CONSUMER_CONFIG)
    try:
        if wait_for_topic(consumer, who, BIRTHDAY_TOPIC) is None:
            return
        consumer.subscribe([BIRTHDAY_TOPIC], listener=RebuildWhenEmpty(consumer, data))
        drain_deadline = None
        outage = BrokerWait(who)
        while True:
            if stop_requested and drain_deadline is None:
                # Take in what the stats workers published just before they stopped.
                drain_deadline = time.monotonic() + DRAIN_TIMEOUT_SEC
            try:
                batch = consumer.poll(timeout_ms=200 if drain_deadline else POLL_TIMEOUT_MS)
            except KafkaError as err:
                if drain_deadline:
                    break  # stopping, and nothing more can come from a broker that is away
                outage.failed(err)
                continue
            if batch:
                outage.answered()
            elif not drain_deadline:
                outage.probe_if_quiet(consumer)
            for messages in batch.values():
                for message in messages:
                    try:
                        year, degrees = parse_birthday_reading(message)
                    except MalformedMessage as err:
                        log(who, f"offset {message.offset}: skipped a malformed message: {err}")
                        continue
                    data[year] = degrees
            if batch:
                # "birthday" first, then the years in order.
                save_dict_to_json(dict(sorted(data.items(),
                                              key=lambda kv: (kv[0] != "birthday", kv[0]))),
                                  path)
                try:
                    consumer.commit()
                except KafkaError as err:
                    # The file is saved: an offset committed later only replays years it has.
                    outage.failed(err)
            elif drain_deadline and (caught_up(consumer) or time.monotonic() > drain_deadline):
                break
    finally:
        consumer.close()


# ---------------------------------------------------------------- processes

def install_stop_handlers():
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)


def guarded(who, job, *args):
    """Run one job of this program; its exit code says whether it stopped cleanly."""
    try:
        job(*args)
    except (ConsumerError, KafkaError, OSError) as err:
        log(who, f"error: {err}")
        return 1
    return 0


def die_with_parent():
    """A worker stops by itself, after its current batch, when the consumer.py that started it
    is killed: a restart waits for its locks. Linux sends SIGTERM then (PR_SET_PDEATHSIG); a
    parent that died before this asked for it is noticed here."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the worker stops when its round ends or at Ctrl-C
    if os.getppid() != multiprocessing.parent_process().pid:
        request_stop(signal.SIGTERM, None)


def worker_main(partition_nums, max_iterations, out_dir, birthday):
    install_stop_handlers()
    die_with_parent()
    sys.exit(guarded(partition_nums, consume, partition_nums, max_iterations, out_dir, birthday))


def birthday_main(birthday, out_dir):
    install_stop_handlers()
    die_with_parent()
    sys.exit(guarded(["birthday"], follow_birthdays, birthday, out_dir))


def start_process(target, *args):
    process = multiprocessing.Process(target=target, args=args)
    process.start()
    return process


def wait_for_processes(processes):
    """Wait for all of them. A stop request (Ctrl-C reaches every process; SIGTERM only us) is
    passed on as SIGTERM, which each one turns into a clean stop after its current batch."""
    forwarded = False
    while any(process.is_alive() for process in processes):
        if stop_requested and not forwarded:
            stop_processes(processes, wait=False)
            forwarded = True
        for process in processes:
            process.join(timeout=0.2)
    return exit_status(processes)


def exit_status(processes):
    """0 only when every process exited cleanly (a killed one has a negative exit code)."""
    return 0 if all(process.exitcode == 0 for process in processes) else 1


def stop_processes(processes, wait=True):
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


def run_round(max_iterations, out_dir, birthday):
    """One worker process per partition group of ROUND_WORKERS, until all have exited."""
    workers = [start_process(worker_main, nums, max_iterations, out_dir, birthday)
               for nums in ROUND_WORKERS]
    return wait_for_processes(workers)


def run_two_rounds(out_dir, birthday):
    # Round 1: both workers for 30 polls each, then they exit (a simulated death).
    print(f"round 1: workers {list(ROUND_WORKERS)} for {ROUND_ONE_ITERATIONS} iterations",
          flush=True)
    status = run_round(ROUND_ONE_ITERATIONS, out_dir, birthday)
    if status != 0 or stop_requested:
        return status
    # Round 2: the same workers pick up where round 1 left off and run until stopped.
    print("round 2: workers run until Ctrl-C", flush=True)
    return run_round(None, out_dir, birthday)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Summarise temperatures partitions into partition-N.json, exactly once.")
    parser.add_argument("partitions", nargs="*", metavar="PARTITION",
                        help=f"partition numbers 0-{PARTITIONS - 1} to consume; none: the "
                             "assignment's two rounds over all of them")
    parser.add_argument("--iterations", type=int, default=None, metavar="N",
                        help="stop after N polls (default: run forever)")
    parser.add_argument("--dir", default=OUT_DIR,
                        help="folder of the partition files (default: this program's folder)")
    parser.add_argument("--reset", action="store_true",
                        help="delete this run's partition files first (after the producer "
                             "recreated the topic)")
    parser.add_argument("--birthday", default=os.environ.get("P7_BIRTHDAY") or None,
                        metavar="YYYY-MM-DD",
                        help="also publish that day's readings to birthday-temperatures and "
                             "keep birthday.json (default: $P7_BIRTHDAY, else off)")
    args = parser.parse_args(argv)
    if bootstrap_problem(BROKER):
        parser.error(bootstrap_problem(BROKER))

    numbers = []
    for text in args.partitions:
        try:
            number = int(text)
        except ValueError:
            parser.error(f"partition {text!r} is not a number: use 0-{PARTITIONS - 1}")
        if not 0 <= number < PARTITIONS:
            parser.error(f"partition {number} does not exist: use 0-{PARTITIONS - 1}")
        if number in numbers:
            parser.error(f"partition {number} is given twice")
        numbers.append(number)
    args.partitions = numbers
    if args.iterations is not None and not numbers:
        parser.error("--iterations needs partition numbers (the two rounds without them run "
                     f"{ROUND_ONE_ITERATIONS} iterations, then forever)")
    if args.iterations is not None and args.iterations < 1:
        parser.error("--iterations must be 1 or more")
    if args.birthday is not None:
        try:
            datetime.date.fromisoformat(args.birthday)
            valid = len(args.birthday) == 10
        except ValueError:
            valid = False
        if not valid:
            parser.error(f"birthday {args.birthday!r} is not a date like 1997-10-02")
    if not os.path.isdir(args.dir):
        parser.error(f"--dir {args.dir} is not a folder")
    return args


def reset_files(paths):
    for path in paths:
        for leftover in [path] + temporary_files(path):
            if os.path.lexists(leftover):
                os.remove(leftover)


def main(argv=None):
    args = parse_args(argv)
    # What the imports made (kafka-python, protobuf and the standard library) lives as long as
    # we do: kept out of the garbage collector's passes, which the records of a catch-up set
    # off again and again.
    gc.freeze()
    partition_nums = args.partitions or list(range(PARTITIONS))
    paths = [partition_path(args.dir, n) for n in partition_nums]
    try:
        # Held until we exit, across both rounds; the forked workers inherit them.
        locks = lock_files(paths)
    except ConsumerError as err:
        log(partition_nums, f"error: {err}")
        return 1
    try:
        birthday_lock = keep_birthdays(args.dir, partition_nums) if args.birthday else None
    except ConsumerError as err:
        log(partition_nums, f"error: {err}")
        return 1
    if args.reset:
        if birthday_lock and not args.partitions:
            paths.append(os.path.join(args.dir, BIRTHDAY_FILE))
        reset_files(paths)
    install_stop_handlers()
    subscriber = start_process(birthday_main, args.birthday, args.dir) if birthday_lock else None
    status = 1
    try:
        if args.partitions:
            status = guarded(partition_nums, consume, partition_nums, args.iterations, args.dir,
                             args.birthday)
        else:
            status = run_two_rounds(args.dir, args.birthday)
    finally:
        if subscriber:
            status = max(status, stop_processes([subscriber]))
        for fd in locks + (birthday_lock or []):
            os.close(fd)
    return status


def keep_birthdays(out_dir, partition_nums):
    """The lock of birthday.json, or None when another consumer.py keeps it: two of them share a
    folder legitimately (consumer.py 0 1 and 2 3); the second one's workers still publish."""
    try:
        return lock_files([os.path.join(out_dir, BIRTHDAY_FILE)])
    except LockBusy as err:
        log(partition_nums, f"{err}: this run keeps no birthday.json (its workers still "
                            "publish the birthday readings, which that process takes in)")
        return None


if __name__ == "__main__":
    sys.exit(main())
