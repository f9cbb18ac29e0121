"""One grading session: the grading copy of files/ (grader/submission.py), the broker the
programs talk to (the launcher's, or the one inside a container of the submission's image or of
a given one), the programs it started, and what the topic holds. cleanup() undoes all of it,
whatever happened before."""

import contextlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from tools import harness, p7check, relay
from tools.harness import DockerError
from tools.p7check import TOPIC
from tools.partition_files import PartitionFiles

from . import course_env, sandbox

from .programs import Programs, wait_for
from .registry import CheckFailed, require
# OUTPUT_PATTERNS: for the dockertests.
from .submission import (OUTPUT_PATTERNS, SubmissionTooLarge,  # noqa: F401
                         copy_sources, inside, open_to_container_user, prepare,
                         rewrite_sources, settle_weather)

TOPIC_TIMEOUT = 60
CATCH_UP_TIMEOUT = 90       # for a wait that sees no progress at all
# Waiting for the consumers to reach the topic's end ends on the outcome: it goes on while any
# file's offset advances, and fails only after this long without progress (or at the cap).
STALL_TIMEOUT = 60
CATCH_UP_CAP = 900
QUIET_TOPIC = 1.0           # seconds without a new message: a paused producer's last write landed
# Each version's pace of weather.py, a day per this many seconds: what consumers must keep up
# with (messages a second, with 5% duplicates).
ASSIGNMENT_PACE = {"draft": 0.5, "final": 0.1}
MIN_BACKLOG = 500           # messages behind before a catch-up's rate says anything
ADMIN_TIMEOUT = 120
FIRST_MESSAGES = 100    # what a (re)started producer must send before a check goes on
MiB = 1024 * 1024

# The grader's own image tag and container name, never the user's `p7`: grading must not
# touch what the user runs. The broker port is a free one for the same reason.
DOCKER_NAME_PREFIX = "p7-autograde"
# --image without a name: this project's image with the course's packages, built once.
COURSE_IMAGE = "course"
# What students' programs run with natively: the course image's packages, or this project's.
ENVIRONMENTS = ("course", "project")


class Session:
    def __init__(self, files, docker=False, image=None, keep=False, version="draft",
                 environment="course"):
        self.files = files
        self.environment = environment
        self.version = version
        self.version_reason = ""
        self.throughput = None      # (messages, seconds) of the first long catch-up
        self._python = None         # the course environment's interpreter (natively)
        self._report_numbers = None
        # The assignment's layout: the repository holds the Dockerfile and files/. A folder of
        # another name is graded as files/ on its own.
        self.submission = files.parent if files.name == "files" else None
        self.docker = docker or image is not None
        self.given_image = image
        self.keep = keep
        self.work = Path(tempfile.mkdtemp(prefix="p7-autograde-"))
        self.copy = self.work / "files"
        self.logs = self.work / "logs"
        self.logs.mkdir()
        # Every process of the submission runs in this sandbox (grader/sandbox.py): its HOME
        # and TMPDIR are in the grading folder, and cleanup() sweeps its uid.
        self.sandbox = sandbox.Sandbox(self.work)
        sandbox.use(self.sandbox)
        self.outputs = PartitionFiles(self.copy)
        self.programs = Programs(self.copy, self.logs)
        self.programs.sandbox = self.sandbox
        self.notes = []             # how the grading copy differs from the submission
        if not self.sandbox.active and not self.docker:  # a container is a sandbox of its own
            self.note([sandbox.NOT_SANDBOXED])
        self.admin = None
        self.producer = None
        self.producer_error = None  # why the session's producer could not be (re)started
        self.reader = None          # check 7's ConcurrentReader, judged by check 9
        self.records = {}           # {partition: [records]} of the topic with id records_id
        self.records_id = None
        self.resources = contextlib.ExitStack()  # the broker we started, stopped at cleanup
        self.setup_error = None
        self.setup_refused = False  # the submission itself was refused (too large), not the broker
        self.topics_before = {}     # {topic: id} when the session began
        self.container = None
        self.relay = None           # this machine's way to the broker of a container
        # Bytes: the container's peak (its broker included) or, natively, the sandbox cgroup's
        # (the programs and the grader's scripts together); read at cleanup, None: unknown.
        self.peak_memory = None
        self.image = None           # the image the grader built (and removes)

    # ---------------------------------------------------------- environment

    def setup(self):
        """Prepare the copy, bring up a broker; a failure here fails every broker check."""
        try:
            if self.docker:
                self.start_container()
            else:
                self.start_native_broker()
            self.admin = self.connect_admin()
            self.topics_before = self.topic_ids()
        except SubmissionTooLarge as err:
            # Refused before any program runs: the sentence alone, for every broker check.
            print(f"\nsetup failed: {err}\n", file=sys.stderr, flush=True)
            self.setup_error = str(err)
            self.setup_refused = True
        except Exception as err:  # noqa: BLE001  (reported for every check that needed it)
            text = str(err) or err.__class__.__name__
            # The whole story once (a failed build's step and error lines, a dead container's
            # log); each check that needed the broker then repeats only its first line.
            print(f"\nsetup failed: {text}\n", file=sys.stderr, flush=True)
            first_line = text.splitlines()[0]
            self.setup_error = first_line + (" (the lines that show why are printed above the "
                                             "table)" if "\n" in text else "")

    def note(self, notes):
        for text in notes:
            print(f"note: {text}", flush=True)
        self.notes.extend(notes)

    def python(self):
        """The interpreter students' programs run with natively: a venv of the course image's
        packages (grader/course_env.py), built once; or this project's own."""
        if self._python is None and self.environment == "project":
            self._python = sys.executable
        if self._python is None:
            python, notes = course_env.course_python(
                progress=lambda text: print(text, file=sys.stderr, flush=True))
            self.note(notes)
            self._python = python
        return self._python

    def summary(self):
        """What the report says besides the checks: the version graded and why, the packages
        the programs ran with, the consumers' throughput."""
        lines = {"version": f"the {self.version} version of P7 ({self.version_reason})"}
        found = {"version": self.version, "version_reason": self.version_reason,
                 "environment": self.environment}
        if not self.docker:
            lines["environment"] = ("the course image's packages (grader/course.lock)"
                                    if self.environment == "course" else
                                    "this project's packages (requirements.txt)")
        lines.update(self.confinement_lines(found))
        if self.throughput is not None:
            messages, seconds = self.throughput
            rate = messages / seconds if seconds else float("inf")
            pace = 1.05 / ASSIGNMENT_PACE[self.version]
            keeps_up = "keeps up with" if rate >= pace else "falls behind"
            lines["throughput"] = (f"the consumers counted {rate:.0f} messages a second while "
                                   f"catching up ({messages} messages in {seconds:.1f} s): "
                                   f"that {keeps_up} the assignment's pace of {pace:.1f} a "
                                   "second (never graded)")
            found["throughput"] = {"messages_per_second": round(rate, 1),
                                   "assignment_pace": round(pace, 2), "keeps_up": rate >= pace}
        return {**found, "lines": lines}

    def confinement_lines(self, found):
        """The report's `sandbox:` and `memory:` lines (and their figures into `found`)."""
        lines = {}
        if self.docker:
            lines["sandbox"] = ("a container of its own, the programs as nobody: no network, "
                                "no capability they could use, at most 1024 processes and 4 GiB "
                                "of memory" + (", a read-only root but /files and /tmp"
                                               if self.given_image is not None else ""))
        elif self.sandbox.active:
            lines["sandbox"] = (f"the programs ran as uid {self.sandbox.uid}, in "
                                f"{self.sandbox.confinement}")
        peak = self.peak_memory  # read once, at cleanup: the report comes after it
        grader = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
        if peak is not None:
            what = ("the container peaked at {:.0f} MiB (its broker included)" if self.docker
                    else "the programs peaked at {:.0f} MiB together (their cgroup's peak, page "
                         "cache included)")
            lines["memory"] = what.format(peak / MiB) + f"; the grader at {grader:.0f} MiB"
            found["memory_peak_mib"] = round(peak / MiB, 1)
        found["grader_peak_mib"] = round(grader, 1)
        return lines

    def start_native_broker(self):
        bootstrap = p7check.bootstrap()
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        self.programs.python = self.python()
        self.sandbox.require_runs(self.programs.python)
        self.note(prepare(self.files, self.copy, folder=self.copy, broker_port=int(port),
                          python=self.programs.python, pace=ASSIGNMENT_PACE[self.version]))
        self.sandbox.own(self.copy)  # what prepare() wrote after the probe is the uid's too
        if host not in ("localhost", "127.0.0.1"):
            return  # somebody else's broker: use it as it is
        print(f"broker: the launcher's broker on {bootstrap}", flush=True)
        self.resources.enter_context(harness.local_broker())

    def start_container(self):
        suffix = os.environ.get("P7_AUTOGRADE_RUN_ID") or harness.unique_suffix()
        if self.given_image == COURSE_IMAGE:
            image = course_env.course_image(
                progress=lambda text: print(text, file=sys.stderr, flush=True))
            print(f"docker: the course's environment, image {image}, with the submission's "
                  "files/ at /files", flush=True)
        elif self.given_image:
            image = self.given_image
            harness.docker("image", "inspect", image)  # a missing image: one clear error
            print(f"docker: the image {image} with the submission's files/ at /files",
                  flush=True)
        else:
            require(self.submission is not None and (self.submission / "Dockerfile").is_file(),
                    f"there is no Dockerfile next to {self.files}: grade it with --image")
            image = self.image = f"{DOCKER_NAME_PREFIX}:{suffix}"
            print(f"docker: building image {image} from {self.submission}", flush=True)
            harness.build_image(self.submission, image)
        # The container has no network (harness.NO_NETWORK_FLAGS): its broker and programs
        # meet on its own loopback, and nothing in it reaches this machine or another
        # submission's container. The grader reaches the broker through a relay on this
        # machine's 127.0.0.1:PORT, bound first (so the port is ours, whatever runs beside us),
        # each connection carried into the container by docker exec; the broker advertises
        # localhost:PORT, right both in there and here.
        self.relay = relay.Relay()
        port = self.relay.port
        # The copy first (copied, rewritten for the port, made the container user's), then the
        # container with it mounted, then weather.py probed in there: the submission's code
        # never runs on this machine (the copy is the mount: a replaced weather.py is seen).
        copied = copy_sources(self.files, self.copy)
        rewritten = rewrite_sources(self.copy, None, port)
        open_to_container_user(self.copy)
        container = harness.Container(f"{DOCKER_NAME_PREFIX}-{suffix}-submission", image,
                                      self.copy, broker_port=port, hardened=True,
                                      read_only=self.given_image is not None, networked=False)
        try:
            self.container = container.run()
        except DockerError:
            container.remove()  # one created but not started
            raise
        self.relay.start(self.container.dial_broker)
        settled = settle_weather(self.copy, assignment_pace=ASSIGNMENT_PACE[self.version],
                                 container=self.container)
        open_to_container_user(self.copy)
        self.note(copied + settled + rewritten)
        self.programs.container = self.container
        os.environ["KAFKA_BOOTSTRAP"] = f"localhost:{port}"  # p7check reads it too
        print(f"docker: container {self.container.name} without a network; its broker is "
              f"reached through a relay on localhost:{port}", flush=True)

    def connect_admin(self):
        deadline = time.monotonic() + ADMIN_TIMEOUT
        while True:
            if self.container is not None:
                self.container.require_running()  # a dead container is reported at once
            try:
                return KafkaAdminClient(bootstrap_servers=p7check.bootstrap().split(","),
                                        client_id="p7-autograde")
            except KafkaError as err:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"no Kafka broker answers on {p7check.bootstrap()} "
                                       f"({err})") from None
                time.sleep(1)

    def require_container_running(self):
        """DockerError with the container's log when the container died."""
        if self.container is not None and not self.setup_error:
            self.container.require_running()

    def cleanup(self):
        """Kill everything we started, whatever happened before."""
        if self.reader is not None:
            self.reader.stop()
        self.programs.kill_all()
        # Also what left the programs' process groups (setsid, a double fork) and what the
        # grader's probes left behind: every process of the sandbox's uid and cgroups, which
        # then go (their peak memory read first).
        if not self.docker:
            self.peak_memory = self.sandbox.peak_memory()
        left = self.sandbox.close()
        if left:
            print(f"cleanup: processes {left} of the sandbox's uid {self.sandbox.uid} were "
                  "still there after SIGKILL", file=sys.stderr)
        if self.admin is not None:
            self.admin.close()
        if self.relay is not None:
            self.relay.stop()
        if self.container is not None:
            self.peak_memory = self.container.peak_memory()  # its cgroup goes with it
            if self.keep:
                subprocess.run(["docker", "rm", "-f", self.container.name], capture_output=True)
            else:
                self.container.remove()
        if self.image is not None:
            subprocess.run(["docker", "rmi", self.image], capture_output=True)
        self.resources.close()
        if self.keep:
            print(f"kept the grading folder {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    # ---------------------------------------------------------- the session's producer

    def ensure_producer(self):
        """The session's producer, started again if an earlier check could not leave one.
        When that fails once, every later check that needs it fails at once, for that reason."""
        if self.producer is not None and self.producer.running():
            return
        require(self.producer_error is None, f"no producer: {self.producer_error}")
        old_id, before = self.topic_id(), self.total_messages() or 0

        def sending():
            # To a recreated topic, or (check 3's failure, not every check's) to the old one.
            topic_id, total = self.topic_id(), self.total_messages() or 0
            if topic_id is None:
                return False
            return total >= FIRST_MESSAGES + (before if topic_id == old_id else 0)

        self.producer = self.programs.start("producer.py")
        try:
            wait_for(sending, TOPIC_TIMEOUT, "producer.py to send messages", self.producer)
        except Exception as err:
            self.producer.kill()
            self.producer_error = str(err)
            raise

    @contextlib.contextmanager
    def producer_paused(self):
        """The session's producer stopped (SIGSTOP) for the block, so that the topic's end
        stays put while the consumers drain it; yields those end offsets. It goes on (SIGCONT)
        afterwards, whatever happened."""
        self.ensure_producer()
        self.producer.signal(signal.SIGSTOP)
        try:
            yield self.settled_end_offsets()
        finally:
            if self.producer.running():
                self.producer.signal(signal.SIGCONT)

    def settled_end_offsets(self):
        """The topic's end offsets once no message has landed for QUIET_TOPIC seconds (a paused
        producer's requests in flight land first)."""
        last, since = None, time.monotonic()
        deadline = since + TOPIC_TIMEOUT
        while True:
            now = self.require_end_offsets()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= QUIET_TOPIC:
                return now
            if time.monotonic() > deadline:
                return now
            time.sleep(0.1)

    def wait_caught_up(self, target, keep_going=lambda: None, stall=STALL_TIMEOUT):
        """Until the partition files reach the offsets `target`; keep_going() runs at each look
        (it raises CheckFailed when a consumer died). It waits while any file's offset
        advances, and fails after `stall` seconds without progress (or at CATCH_UP_CAP). The
        first catch-up of a long backlog gives the consumers' throughput (starting up
        included: the consumers start just before)."""
        started = time.monotonic()
        best = self.read_offsets()
        behind = self.backlog(target, best)
        progress_at = started
        while True:
            keep_going()
            if self.outputs.caught_up(target):
                break
            now = self.read_offsets()
            advanced = [n for n in now if now[n] > best[n]]
            if advanced:
                best = {n: max(now[n], best[n]) for n in now}
                progress_at = time.monotonic()
            stalled = time.monotonic() - progress_at > stall
            if stalled or time.monotonic() - started > CATCH_UP_CAP:
                lagging = "; ".join(
                    f"partition-{n}.json says {now[n] if now[n] >= 0 else 'nothing'} of {want}"
                    for n, want in target.items() if now[n] < want)
                why = f"no file's offset advanced for {stall} s" if stalled else \
                    f"still behind after {CATCH_UP_CAP} s"
                raise CheckFailed(f"the partition files did not reach the topic's end offsets "
                                  f"{target}: {why} ({lagging})")
            time.sleep(0.1)
        if self.throughput is None and behind >= MIN_BACKLOG:
            self.throughput = (behind, time.monotonic() - started)

    def read_offsets(self):
        """{partition: the offset its file says, -1 without a readable one}."""
        return {n: offset if isinstance(offset, int) and not isinstance(offset, bool) else -1
                for n, offset in self.outputs.offsets().items()}

    @staticmethod
    def backlog(target, offsets):
        """Messages between the files' `offsets` and `target`."""
        return sum(max(0, end - max(offsets[n], 0)) for n, end in target.items())

    # ---------------------------------------------------------- the submission's Report

    def report_numbers(self):
        """{"date": field number, "degrees": field number} of the submission's own Report, read
        by name from its report_pb2 (in the course environment, in a process of its own); None
        when that cannot be loaded (p7check then tells the fields apart by their wire types)."""
        if self._report_numbers is None:
            if self.docker:
                self._report_numbers = (report_field_numbers(self.files,
                                                             container=self.container)
                                        if self.container is not None else {})
            else:
                self._report_numbers = report_field_numbers(self.files, self.python_for_checks())
        return self._report_numbers or None

    def python_for_checks(self):
        """The interpreter for the grader's small scripts over the submission's code, natively
        (in Docker modes they run in the container: container_for_checks())."""
        return self.python() if not self.docker else sys.executable

    def container_for_checks(self):
        """In Docker modes, the running container the grader's scripts over the submission's
        code run in (set up now when no check brought it up yet); CheckFailed when there is
        none. None natively."""
        if not self.docker:
            return None
        if self.container is None and self.setup_error is None:
            self.setup()
        if self.container is None or self.setup_error:
            prefix = "not graded" if self.setup_refused else "no container"
            raise CheckFailed(f"{prefix}: {self.setup_error}")
        return self.container

    def decode(self, record):
        """(key, date, degrees) of a record, through the submission's own field numbers."""
        return p7check.decode(record, numbers=self.report_numbers())

    # ---------------------------------------------------------- the topic

    def end_offsets(self, topic=TOPIC):
        """{partition: end offset}, or None while the topic does not exist (being recreated)."""
        try:
            described = self.admin.describe_topics([topic])
            numbers = [p["partition_index"] for p in described[0].get("partitions") or []]
            if described[0].get("error_code") or not numbers:
                return None
            offsets = self.admin.list_partition_offsets(
                {TopicPartition(topic, n): OffsetSpec.LATEST for n in numbers}, timeout_ms=2000)
        except KafkaError:
            return None
        return {tp.partition: found.offset for tp, found in offsets.items()}

    def total_messages(self):
        offsets = self.end_offsets()
        return None if offsets is None else sum(offsets.values())

    def require_end_offsets(self):
        return p7check.wait_until(self.end_offsets, TOPIC_TIMEOUT, f"the {TOPIC} topic")

    def topic_id(self, topic=TOPIC):
        """The topic's unique id (a recreated topic gets a new one), None while it is missing."""
        return harness.topic_id(self.admin, topic)

    def topic_ids(self):
        """{topic: id} of every topic but Kafka's own."""
        try:
            names = [t for t in self.admin.list_topics() if not t.startswith("__")]
        except KafkaError:
            return {}
        return {name: self.topic_id(name) for name in names}

    def topic_layout(self, topic=TOPIC):
        """(partition count, [replica count per partition]) of a topic."""
        (described,) = self.admin.describe_topics([topic])
        partitions = described.get("partitions") or []
        return len(partitions), [len(p.get("replica_nodes") or []) for p in partitions]

    def recreate_empty_topic(self):
        p7check.recreate_empty_topic(self.admin, TOPIC_TIMEOUT)

    def read_topic(self, offsets=None):
        """{partition: [records]} of the whole topic up to `offsets` (default: its end now).

        Records never change once written, so what an earlier check read of the same topic (the
        same topic id) is kept and only the newer records are fetched."""
        offsets = offsets or self.require_end_offsets()
        topic_id = self.topic_id()
        if topic_id is None or topic_id != self.records_id:
            self.records, self.records_id = {}, topic_id
        topic = {}
        for n, end in offsets.items():
            records = self.records.setdefault(n, [])
            start = records[-1].offset + 1 if records else 0
            records.extend(p7check.read_partition(n, end, TOPIC_TIMEOUT, start))
            topic[n] = [record for record in records if record.offset < end]
        return topic

    def groups_consuming(self, topic=TOPIC):
        """{group id: [partitions of `topic` its members were assigned]} of the consumer groups
        that have members now (subscribers: a manual assignment joins no group)."""
        found = {}
        try:
            groups = [g["group_id"] for g in self.admin.list_groups()]
            described = self.admin.describe_groups(groups) if groups else {}
        except (KafkaError, KeyError, TypeError):
            return found
        for group, info in described.items():
            for member in info.get("members") or []:
                assignment = member.get("member_assignment")
                if not isinstance(assignment, dict):
                    assignment = getattr(assignment, "to_dict", lambda: {})()
                partitions = [n for assigned in assignment.get("assigned_partitions") or []
                              if assigned.get("topic") == topic
                              for n in assigned.get("partitions") or []]
                found.setdefault(group, []).extend(partitions)
        return found

    def forget_group(self, group):
        """Delete a consumer group's committed offsets, so a program in it starts afresh."""
        try:
            self.admin.delete_groups([group])
        except (KafkaError, KeyError, TypeError):
            pass


FIELD_NUMBERS = ("import json, sys; sys.path.insert(0, sys.argv[1]); import {module} as m; "
                 "fields = m.Report.DESCRIPTOR.fields_by_name; "
                 "print(json.dumps({{name: fields[name].number for name in ('date', "
                 "'degrees')}}))")


def run_over(code, path, python=None, container=None, timeout=60):
    """`python -B -c code FOLDER` over a copy of one of the submission's files (`path`), in
    FOLDER: in `container` (Docker modes) as nobody, in its /tmp; natively in the sandbox
    (grader/sandbox.py) with `python`. Raises subprocess.TimeoutExpired, DockerError,
    sandbox.SandboxError or OSError when it cannot be run."""
    if container is not None:
        return container.run_as(harness.NOBODY, ["python3", "-B", "-c", code, "."],
                                timeout=timeout, sources={path.name: path.read_bytes()})
    box = sandbox.current()
    with box.scratch([path]) as scratch:
        return box.run([str(python), "-B", "-c", code, str(scratch)], cwd=scratch,
                       timeout=timeout, python=python)


def report_field_numbers(files, python=None, container=None):
    """The field numbers of date and degrees in the first *_pb2.py of `files` (imported through
    run_over); {} when it does not load."""
    generated = sorted(path for path in files.glob("*_pb2.py") if inside(files, path))
    if not generated:
        return {}
    try:
        done = run_over(FIELD_NUMBERS.format(module=generated[0].stem), generated[0], python,
                        container)
        numbers = json.loads(done.stdout.strip().splitlines()[-1])
    except (subprocess.TimeoutExpired, ValueError, IndexError, OSError, DockerError,
            sandbox.SandboxError):
        return {}
    ok = isinstance(numbers, dict) and all(isinstance(numbers.get(name), int)
                                           for name in ("date", "degrees"))
    return numbers if ok else {}
