"""One grading session: the grading copy of files/ (grader/submission.py), the broker the
programs talk to (the launcher's, or the one inside a container of the submission's image or of
a given one), the programs it started, and what the topic holds. cleanup() undoes all of it,
whatever happened before."""

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kafka import KafkaAdminClient, TopicPartition
from kafka.admin import OffsetSpec
from kafka.errors import KafkaError

from tools import harness, p7check
from tools.harness import DockerError
from tools.p7check import TOPIC
from tools.partition_files import PartitionFiles

from .programs import Programs, wait_for
from .registry import CheckFailed, require
from .submission import OUTPUT_PATTERNS, prepare  # noqa: F401  (OUTPUT_PATTERNS: dockertests)

TOPIC_TIMEOUT = 60
CATCH_UP_TIMEOUT = 90
ADMIN_TIMEOUT = 120
FIRST_MESSAGES = 100    # what a (re)started producer must send before a check goes on

# The grader's own image tag and container name, never the user's `p7`: grading must not
# touch what the user runs. The broker port is a free one for the same reason.
DOCKER_NAME_PREFIX = "p7-autograde"
DOCKER_RUN_ATTEMPTS = 3     # a free port can be taken between choosing and publishing it


class Session:
    def __init__(self, files, docker=False, image=None, keep=False):
        self.files = files
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
        self.outputs = PartitionFiles(self.copy)
        self.programs = Programs(self.copy, self.logs)
        self.notes = []             # how the grading copy differs from the submission
        self.admin = None
        self.producer = None
        self.producer_error = None  # why the session's producer could not be (re)started
        self.reader = None          # check 7's ConcurrentReader, judged by check 9
        self.records = {}           # {partition: [records]} of the topic with id records_id
        self.records_id = None
        self.resources = contextlib.ExitStack()  # the broker we started, stopped at cleanup
        self.setup_error = None
        self.topics_before = {}     # {topic: id} when the session began
        self.container = None
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

    def start_native_broker(self):
        bootstrap = p7check.bootstrap()
        host, _, port = bootstrap.split(",")[0].rpartition(":")
        self.note(prepare(self.files, self.copy, folder=self.copy, broker_port=int(port)))
        if host not in ("localhost", "127.0.0.1"):
            return  # somebody else's broker: use it as it is
        print(f"broker: the launcher's broker on {bootstrap}", flush=True)
        self.resources.enter_context(harness.local_broker())

    def start_container(self):
        suffix = os.environ.get("P7_AUTOGRADE_RUN_ID") or harness.unique_suffix()
        if self.given_image:
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
        for attempt in range(1, DOCKER_RUN_ATTEMPTS + 1):
            port = harness.free_port()
            notes = prepare(self.files, self.copy, folder=None, broker_port=port)
            container = harness.Container(f"{DOCKER_NAME_PREFIX}-{suffix}-{attempt}",
                                          image, self.copy, broker_port=port, host_port=port)
            try:
                self.container = container.run()
                break
            except DockerError as err:
                container.remove()
                if "already allocated" not in str(err) or attempt == DOCKER_RUN_ATTEMPTS:
                    raise
        self.note(notes)
        self.programs.container = self.container
        os.environ["KAFKA_BOOTSTRAP"] = f"localhost:{port}"  # p7check reads it too
        print(f"docker: container {self.container.name}, broker published on "
              f"localhost:{port}", flush=True)

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
        if self.admin is not None:
            self.admin.close()
        if self.container is not None:
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

    def wait_caught_up(self, target, keep_going=lambda: None):
        """Until the partition files reach the offsets `target`; keep_going() runs at each look
        (it raises CheckFailed when a consumer died)."""
        def caught_up():
            keep_going()
            return self.outputs.caught_up(target)
        try:
            p7check.wait_until(caught_up, CATCH_UP_TIMEOUT, "the consumers to catch up")
        except AssertionError:
            raise CheckFailed(f"the partition files did not reach the topic's offsets {target} "
                              f"within {CATCH_UP_TIMEOUT} s (they say {self.outputs.offsets()})") \
                from None

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
