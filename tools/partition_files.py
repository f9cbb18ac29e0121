"""The partition files of a folder as an outsider sees them: read without ever blocking, and
read over and over while a consumer replaces them.

- read_json(path): the parsed file, or None when it is missing, unreadable or no JSON.
- PartitionFiles(folder): partition-N.json of one folder: their paths, the offsets they say
  they have read up to, the years they hold.
- ConcurrentReader(folder): a thread that parses the four files in a tight loop, as a dashboard
  would, and remembers every read that failed (a half-written file, a file that vanished while
  being replaced), whether a failed read was of a file that had just replaced the old one by a
  rename (renamed before it was completely written), and any file whose offset went back.

The grader's checks and the tests use these; they never use the programs of files/. What they
read is a submission's: only regular files are read, never through a symbolic link (the reader
may be root), and the grader's own files replace whatever is there without following one.
"""

import contextlib
import json
import os
import stat
import threading

from tools.harness import STOP_TIMEOUT
from tools.p7check import MONTH_NAMES, PARTITIONS

# How many failures a ConcurrentReader keeps word for word (it counts all of them).
KEPT_FAILURES = 3


def read_json(path):
    """The parsed file, or None when it is missing, no regular file (a symbolic link included)
    or does not parse."""
    try:
        return json.loads(read_regular(path)[1])
    except (OSError, ValueError, RecursionError):
        return None


def month_years(data, month):
    """{year: stats} of `month` in a parsed partition file; {} when it has none."""
    years = data.get(month) if isinstance(data, dict) else None
    return years if isinstance(years, dict) else {}


class PartitionFiles:
    """partition-N.json in the folder where the consumers run."""

    def __init__(self, folder):
        self.folder = folder

    def path(self, n):
        return self.folder / f"partition-{n}.json"

    def write(self, n, text):
        """partition-N.json written anew (write_new)."""
        write_new(self.path(n), text)

    def remove(self, *patterns):
        for pattern in patterns:
            for path in self.folder.glob(pattern):
                path.unlink()

    def offsets(self):
        """{partition: the offset its file says it has read up to, None without a file}."""
        offsets = {}
        for n in range(PARTITIONS):
            data = read_json(self.path(n))
            offsets[n] = data.get("offset") if isinstance(data, dict) else None
        return offsets

    def caught_up(self, target):
        offsets = self.offsets()
        return all(isinstance(offsets[n], int) and offsets[n] >= target[n] for n in target)

    def january_years(self):
        return max((len(month_years(read_json(self.path(n)), "January"))
                    for n in range(PARTITIONS)), default=0)

    def years(self, folder=None):
        """Every year any month of the four files has (of `folder`, default this one)."""
        folder = folder or self.folder
        found = set()
        for n in range(PARTITIONS):
            data = read_json(folder / f"partition-{n}.json")
            for month in MONTH_NAMES:
                found.update(month_years(data, month))
        return found


class ConcurrentReader(threading.Thread):
    """json.load the partition files in a tight loop, like a dashboard, and remember any failure."""

    def __init__(self, folder):
        super().__init__(daemon=True, name="concurrent-reader")
        self.files = PartitionFiles(folder)
        self.halt = threading.Event()
        self.reads = 0
        self.failures = []
        self.failure_count = 0
        self.seen = set()
        self.versions = set()
        self.inodes = {}            # {partition: inode of the last file that parsed}
        self.renamed_unfinished = False
        self.last_offsets = {}
        self.went_back = {}         # {partition: (offset, a later smaller offset)}, the first

    def fail(self, text):
        self.failure_count += 1
        if len(self.failures) < KEPT_FAILURES:
            self.failures.append(text)

    def run(self):
        while not self.halt.is_set():
            for n in range(PARTITIONS):
                self.read_once(n)

    def read_once(self, n):
        path = self.files.path(n)
        inode = None
        try:
            inode, text = _read_regular_text(path)
            data = json.loads(text)
        except FileNotFoundError:
            if n in self.seen:
                self.fail(f"{path.name} vanished while being replaced")
            return
        except (ValueError, UnicodeDecodeError, RecursionError) as err:
            if inode is not None and n in self.inodes and inode != self.inodes[n]:
                self.renamed_unfinished = True  # a new file, renamed in before it was whole
            self.fail(f"{path.name} did not parse ({err})")
            return
        except OSError as err:
            self.fail(f"{path.name} could not be read ({err})")
            return
        self.reads += 1
        self.seen.add(n)
        self.inodes[n] = inode
        if isinstance(data, dict):
            offset = data.get("offset")
            self.versions.add((n, offset))
            last = self.last_offsets.get(n)
            if isinstance(offset, int) and isinstance(last, int) and offset < last:
                self.went_back.setdefault(n, (last, offset))
            self.last_offsets[n] = offset

    def stop(self):
        self.halt.set()
        self.join(timeout=STOP_TIMEOUT)


def _read_regular_text(path):
    inode, data = read_regular(path)
    return inode, data.decode("utf-8")


def read_regular(path):
    """(inode, bytes) of a regular file; OSError for anything else. The programs that write the
    folder are a submission's and the reader may be root: a symbolic link they plant is never
    followed (O_NOFOLLOW: it could name a file only root may read, or /dev/zero), and a FIFO is
    opened without blocking (it would wait for a writer for ever) and refused."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    try:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise OSError(f"{path} is not a regular file")
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return status.st_ino, b"".join(chunks)
    finally:
        os.close(fd)


def write_new(path, text, attempts=10):
    """`text` as a new regular file at `path`, in place of whatever is there. Created with
    O_EXCL: never written through a symbolic link a program planted there, even one planted
    between the removal and the creation (then removed again, up to `attempts` times)."""
    for _attempt in range(attempts):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            continue
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return
    raise OSError(f"{path} kept being replaced while it was written")
