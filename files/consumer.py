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
readings after it confirm it (DateFilter). One consumer.py owns a partition at a time:
partition-N.json.lock says which. From the top: main() (the assignment's two rounds), consume()
(its starter's PART 1 and PART 2), then the pieces they call.
"""

try:
    import p7common  # first: importing it installs the early Ctrl-C guard (see there)
except KeyboardInterrupt:  # a Ctrl-C before even that: nothing has started yet
    raise SystemExit(0) from None

import argparse
import datetime
import gc
import math
import os
import sys
import time

from google.protobuf.message import DecodeError
from kafka import KafkaConsumer, TopicPartition
from kafka.errors import KafkaError, KafkaTimeoutError
from kafka.partitioner.default import murmur2

import birthday
from p7common import (BOOTSTRAP_TIMEOUT_MS, BROKER, MONTHS, OUT_DIR, PARTITIONS,
                      RECONNECT_BACKOFF_MAX_MS, TOPIC, BrokerWait, MalformedMessage, Refused,
                      date_problem, partition_path, save_dict_to_json, stop)
from report_pb2 import Report

isfinite = math.isfinite  # once per message: a global name, not an attribute look-up

POLL_TIMEOUT_MS = 1000
ROUND_ONE_ITERATIONS = 30
ROUND_WORKERS = ([0, 1], [2, 3])
MONTH_OF_KEY = {name.encode("utf-8"): name for name in MONTHS}  # a message's key -> its month
MONTH_DIGITS = {name: f"{number:02d}" for number, name in enumerate(MONTHS, 1)}
# Readings of other dates than the one the stream carries next are held back until the stream
# decides them (DateFilter). A run of this many consecutive dates among them is the stream
# itself: one more than the three foreign readings that can never decide anything, however they
# are dated. MAX_HELD dates held without such a run (days keep going missing) count the first.
HOLD_LIMIT = 4
MAX_HELD = 8
# While it catches up on a backlog a consumer saves each partition file at most this often, and
# at most once per SAVE_COST_FACTOR times as long as the last save took (files of thousands of
# years take a while to write); once caught up, after every batch (a live stream's message is in
# its file within milliseconds).
CHECKPOINT_EVERY_SEC = 1.0
SAVE_COST_FACTOR = 20

# The stats workers' KafkaConsumer settings, as data (bench/ reads and varies them).
CONSUMER_CONFIG = {
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


class ConsumerError(Refused):
    """Something the user has to fix (a partition file we must not touch, a partition the
    topic lacks); reported as one sentence, exit 1."""


def log(partition_nums, text):
    print(f"consumer {list(partition_nums)}: {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- the assignment's shape

def main(argv=None):
    """`consumer.py N ...` consumes those partitions; without numbers, the assignment's two
    rounds: workers ROUND_WORKERS for ROUND_ONE_ITERATIONS polls (then they exit, a simulated
    death), then the same workers again, picking up where round 1 left off, until stopped."""
    args = parse_args(argv)
    # What the imports made (kafka-python, protobuf and the standard library) lives as long as
    # we do: kept out of the garbage collector's passes, which the records of a catch-up set
    # off again and again.
    gc.freeze()
    partition_nums = args.partitions or list(range(PARTITIONS))
    paths = [partition_path(args.dir, n) for n in partition_nums]
    try:
        # Held until we exit, across both rounds; the forked workers inherit them.
        locks = p7common.lock_files(paths, "consumer")
        birthday_lock = (birthday.keep_birthdays(args.dir, partition_nums) if args.birthday
                         else None)
    except Refused as err:
        log(partition_nums, f"error: {err}")
        return 1
    if args.reset:
        if birthday_lock and not args.partitions:
            paths.append(os.path.join(args.dir, birthday.BIRTHDAY_FILE))
        reset_files(paths)
    stop.install()
    subscriber = (p7common.start_process(birthday_main, args.birthday, args.dir)
                  if birthday_lock else None)
    status = 1
    try:
        if args.partitions:
            status = guarded(partition_nums, consume, partition_nums, args.iterations, args.dir,
                             args.birthday)
        else:
            print(f"round 1: workers {list(ROUND_WORKERS)} for {ROUND_ONE_ITERATIONS} "
                  "iterations", flush=True)
            status = run_round(ROUND_ONE_ITERATIONS, args.dir, args.birthday)
            if status == 0 and not stop:
                print("round 2: workers run until Ctrl-C", flush=True)
                status = run_round(None, args.dir, args.birthday)
    finally:
        if subscriber:
            status = max(status, p7common.stop_processes([subscriber]))
        for fd in locks + (birthday_lock or []):
            os.close(fd)
    return status


def consume(partition_nums_to_consume, max_iterations, out_dir=OUT_DIR, birthday_date=None):
    """The assignment's consume(): keep the partitions' files, for max_iterations polls (None:
    until stopped). The loop's order is the protocol: apply a batch to the partition's stats,
    have its birthday readings acknowledged, advance the offset to the batch's end, save."""
    who = partition_nums_to_consume
    consumer = make_consumer()
    publisher = None
    try:
        partition_count = wait_for_topics(consumer, who, birthday_date)
        if partition_count is None:
            return  # stopped while waiting
        if birthday_date:
            publisher = birthday.BirthdayPublisher(birthday_date)
        consumer.assign([TopicPartition(TOPIC, n) for n in who])

        # PART 1: initialization. key = partition number, value = that partition's Partition:
        # its file's dict, loaded (or created as {"partition": N, "offset": 0}), and sought to.
        files = {n: load_partition(n, out_dir) for n in who}
        seek_to_checkpoints(consumer, files, out_dir, who)
        partitions = {n: Partition(n, data, out_dir, who, partition_months(n, partition_count))
                      for n, data in files.items()}
        log(who, "resuming at offsets " + ", ".join(f"{n}:{files[n]['offset']}" for n in who))

        # PART 2: process batches.
        iteration_count = 0
        outage = BrokerWait(lambda text: log(who, text))
        while not stop and (max_iterations is None or iteration_count < max_iterations):
            batch = outage.poll(consumer, POLL_TIMEOUT_MS)
            for tp, messages in batch.items():
                partition = partitions[tp.partition]
                partition.apply(messages, publisher and publisher.counted)
                if publisher and not publisher.flush(outage):
                    # Stopped during an outage: the stats are now ahead of the offset, so this
                    # file is not saved again; its checkpoint stays before those readings.
                    partition.unsaved = False
                    break
                partition.advance(messages, reached_end(consumer, tp, messages))
            for partition in partitions.values():
                partition.save_if_due()
            if max_iterations is not None:
                iteration_count += 1
        for partition in partitions.values():
            partition.save_if_due(now=True)
    finally:
        if publisher:
            publisher.close()
        consumer.close()
    print("exiting", flush=True)


# ---------------------------------------------------------------- PART 1: the partition files

def fresh_partition(partition_num):
    return {"partition": partition_num, "offset": 0}


def load_partition(partition_num, out_dir):
    """Load partition-N.json, creating it as {"partition": N, "offset": 0} when missing. One
    that is no regular file, or no partition file of N (p7common.partition_problem), is
    refused, never overwritten."""
    path = partition_path(out_dir, partition_num)
    if not os.path.exists(path):
        save_dict_to_json(fresh_partition(partition_num), path)
    try:
        return p7common.read_partition(out_dir, partition_num)
    except (Refused, OSError) as err:
        why = err if isinstance(err, Refused) else f"cannot be read ({err.strerror or err})"
        raise ConsumerError(f"{path} {why}; it was left untouched: fix it, or delete it to "
                              "count this partition from scratch") from None


def last_date(data):
    """The newest date counted in a partition file, "" if none: the duplicate filter's memory."""
    ends = [stats["end"] for key, years in data.items() if key in MONTHS
            for stats in years.values()]
    return max(ends, default="")


def seek_to_checkpoints(consumer, files, out_dir, who):
    """Seek each partition to its file's offset; a file from an older, longer topic is moved
    aside (the topic was recreated) and that partition starts again from 0."""
    topic_partitions = [TopicPartition(TOPIC, n) for n in files]
    # Files at offset 0 (a fresh start) cannot be past the end: no need to ask the broker.
    moved_on = [tp for tp in topic_partitions if files[tp.partition]["offset"] > 0]
    end_offsets = consumer.end_offsets(moved_on) if moved_on else {}
    for tp in topic_partitions:
        data = files[tp.partition]
        if data["offset"] > end_offsets.get(tp, 0):
            path = partition_path(out_dir, tp.partition)
            moved = p7common.set_aside(path)
            log(who, f"{path} has offset {data['offset']} but partition {tp.partition} ends at "
                     f"{end_offsets[tp]} (the topic was recreated): moved it to {moved} and "
                     "starting fresh")
            data = files[tp.partition] = fresh_partition(tp.partition)
            save_dict_to_json(data, path)
        consumer.seek(tp, data["offset"])


# ---------------------------------------------------------------- PART 2: one partition

class Partition:
    """One partition this consumer keeps: `data`, its file's dict (the stats and the offset
    they were computed up to), `dates`, the date rule's state, and when the file is saved next.

    Each save rewrites a whole file, and the files grow with the years: after every batch of a
    long catch-up the rewriting would cost more than the counting. So the file is saved after
    every batch that reached the partition's end, at most every CHECKPOINT_EVERY_SEC (or
    SAVE_COST_FACTOR times the last save's duration) while catching up, and when we stop.
    Exactly-once does not depend on it: a file always holds stats and the offset they were
    computed up to; a crash only loses the work since the last save, redone from that offset."""

    def __init__(self, partition_num, data, out_dir, who, months):
        self.data = data
        self.path = partition_path(out_dir, partition_num)
        self.who = who
        self.dates = DateFilter(partition_num, last_date(data), who, months)
        self.next_save = time.monotonic() + CHECKPOINT_EVERY_SEC
        self.unsaved = False  # stats or offset changed since the last save
        self.behind = False   # the last batch did not reach the partition's end

    def apply(self, messages, on_counted=None):
        """Count the batch's readings into the stats, as the date rule decides."""
        apply_messages(self.data, self.dates, messages, self.who, on_counted)

    def advance(self, messages, at_end):
        """Move the offset past the batch, from the batch itself (position() would ask the
        broker, and raises when it has just gone away); never past a date still held back."""
        self.data["offset"] = self.dates.checkpoint(messages[-1].offset + 1)
        self.unsaved, self.behind = True, not at_end

    def save_if_due(self, now=False):
        """save_dict_to_json, when there is something new and a save is due (or `now`)."""
        start = time.monotonic()
        if self.unsaved and (now or not self.behind or start >= self.next_save):
            save_dict_to_json(self.data, self.path)
            took = time.monotonic() - start
            self.next_save = start + max(CHECKPOINT_EVERY_SEC, SAVE_COST_FACTOR * took)
            self.unsaved = False


def make_consumer():
    try:
        return KafkaConsumer(bootstrap_servers=BROKER.split(","), **CONSUMER_CONFIG)
    except KafkaTimeoutError:
        raise ConsumerError(f"cannot reach the Kafka broker at {BROKER}: is it running? "
                            "(`make broker`, or the p7 container)") from None


def wait_for_topics(consumer, who, birthday_date):
    """The topic's partition count once it (and with a birthday, the birthday topic) exists;
    None when a stop came first. A partition the topic does not have is refused."""
    def say(text):
        log(who, text)
    partition_count = p7common.wait_for_topic(consumer, say)
    if partition_count is None or (birthday_date and p7common.wait_for_topic(
            consumer, say, birthday.BIRTHDAY_TOPIC) is None):
        return None
    missing = [n for n in who if n >= partition_count]
    if missing:
        raise ConsumerError(f"{TOPIC} has partitions 0-{partition_count - 1}; there is no "
                            f"partition {missing[0]}")
    return partition_count


def reached_end(consumer, tp, messages):
    """Whether a batch ends at the partition's end, as the broker said with it (no request)."""
    highwater = consumer.highwater(tp)
    return highwater is None or messages[-1].offset + 1 >= highwater


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


def say_sum_not_finite(partition_nums, dates, month, date, degrees):
    log(partition_nums, f"partition {dates.partition_num}: skipped {degrees!r} degrees on {date}: "
                        f"{month} {date[:4]}'s sum would no longer be a finite number")


def parse_message(message):
    """(month, date, degrees) of a message, or MalformedMessage saying what is wrong."""
    # One dictionary look-up per message instead of a decode and a search of MONTHS.
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


# ---------------------------------------------------------------- the date rule

class DateFilter:
    """Which valid readings of one partition are counted.

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

    def say(self, offset, text):
        log(self.who, f"partition {self.partition_num} offset {offset}: {text}")

    def judge(self, offset, month, date, degrees):
        """A valid reading newer than `newest` that the fast path did not take: returns the
        readings to count now, in order (updating `newest`)."""
        if date == self.expected:
            for held_offset, _, held_date, _ in self.held:
                self.say(held_offset, f"skipped date {held_date}: the stream went on with "
                                      f"{date}, the date after {self.newest}")
            self.held = []
            self.newest, self.expected = date, date_after(date, self.months)
            return [(month, date, degrees)]
        self.held.append((offset, month, date, degrees))
        if len(self.held) == 1:
            why = (f"the date after {self.newest} is {self.expected or 'none'}" if self.newest
                   else "the first date of this partition")
            self.say(offset, f"holding back date {date} ({why}) until the next readings "
                             "decide it")
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
            self.say(skipped_offset, f"skipped date {skipped_date}: the stream goes on from "
                                     f"{date}, which came after it")
        self.say(offset, f"counted date {date}, held back until now: the stream goes on after it")
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


# ---------------------------------------------------------------- processes

def guarded(who, job, *args):
    """Run one job of this program; its exit code says whether it stopped cleanly."""
    try:
        job(*args)
    except (Refused, KafkaError, OSError) as err:
        log(who, f"error: {err}")
        return 1
    return 0


def worker_main(partition_nums, max_iterations, out_dir, birthday_date):
    stop.install()
    p7common.die_with_parent()
    sys.exit(guarded(partition_nums, consume, partition_nums, max_iterations, out_dir,
                     birthday_date))


def birthday_main(birthday_date, out_dir):
    stop.install()
    p7common.die_with_parent()
    sys.exit(guarded(["birthday"], birthday.follow_birthdays, birthday_date, out_dir))


def run_round(max_iterations, out_dir, birthday_date):
    """One worker process per partition group of ROUND_WORKERS, until all have exited. A stop
    request (Ctrl-C reaches every process; SIGTERM only us) is passed on as SIGTERM, which each
    one turns into a clean stop after its current batch."""
    workers = [p7common.start_process(worker_main, nums, max_iterations, out_dir,
                                      birthday_date) for nums in ROUND_WORKERS]
    forwarded = False
    while any(worker.is_alive() for worker in workers):
        if stop and not forwarded:
            p7common.stop_processes(workers, wait=False)
            forwarded = True
        for worker in workers:
            worker.join(timeout=0.2)
    return p7common.exit_status(workers)


# ---------------------------------------------------------------- the command line

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
    problem = (p7common.bootstrap_problem(BROKER) or partitions_problem(args)
               or birthday.date_problem(args.birthday))
    if problem:
        parser.error(problem)
    if not os.path.isdir(args.dir):
        parser.error(f"--dir {args.dir} is not a folder")
    return args


def partitions_problem(args):
    """Why the partition numbers or --iterations are unusable, or None; makes them ints."""
    numbers = []
    for text in args.partitions:
        try:
            number = int(text)
        except ValueError:
            return f"partition {text!r} is not a number: use 0-{PARTITIONS - 1}"
        if not 0 <= number < PARTITIONS:
            return f"partition {number} does not exist: use 0-{PARTITIONS - 1}"
        if number in numbers:
            return f"partition {number} is given twice"
        numbers.append(number)
    args.partitions = numbers
    if args.iterations is not None and not numbers:
        return ("--iterations needs partition numbers (the two rounds without them run "
                f"{ROUND_ONE_ITERATIONS} iterations, then forever)")
    if args.iterations is not None and args.iterations < 1:
        return "--iterations must be 1 or more"
    return None


def reset_files(paths):
    for path in paths:
        for leftover in [path] + p7common.temporary_files(path):
            if os.path.lexists(leftover):
                os.remove(leftover)


if __name__ == "__main__":
    sys.exit(main())
