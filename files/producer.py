"""Part 1: stream the daily weather into the `temperatures` topic.

    python3 producer.py                         # natively
    docker exec -it p7 python3 /files/producer.py

(Re)creates `temperatures` with 4 partitions, then sends one protobuf Report per day, keyed by
the month's name, forever. Ctrl-C or SIGTERM flushes what is in flight and exits 0, whatever
weather.py is doing. Something from weather.py that is no reading, or an exception raised in it,
ends the producer with one sentence (exit 1), after the readings before it were sent.

On a cluster, KAFKA_BOOTSTRAP lists its brokers and P7_REPLICATION_FACTOR (default 1) says on
how many of them each partition lives:
    KAFKA_BOOTSTRAP=localhost:9192,localhost:9193,localhost:9194 P7_REPLICATION_FACTOR=3 \
        python3 producer.py
"""

try:
    import p7common  # first: importing it installs the early Ctrl-C guard (see there)
except KeyboardInterrupt:  # a Ctrl-C before even that: nothing has started yet
    raise SystemExit(0) from None

import argparse
import collections
import datetime
import gc
import inspect
import itertools
import math
import numbers
import os
import queue
import sys
import threading
import time

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

import weather
from p7common import (BIRTHDAY_TOPIC, BOOTSTRAP_TIMEOUT_MS, BROKER, MONTHS, PARTITIONS,
                      RECONNECT_BACKOFF_MAX_MS, TOPIC, shown, stop)
from report_pb2 import Report

# consumer.py --birthday publishes that day's readings to BIRTHDAY_TOPIC (assignment: "write to
# different Kafka topics"); it is recreated with the main topic so both start from 1990 together.
BIRTHDAY_PARTITIONS = 1
REPLICATION_FACTOR = os.environ.get("P7_REPLICATION_FACTOR", "1")
TOPIC_TIMEOUT_SEC = 60
FLUSH_TIMEOUT_SEC = 30
FLUSH_STEP_SEC = 0.5
CLOSE_TIMEOUT_SEC = 3
# kafka-python 3 queues unsent messages without limit. While the broker is away a producer at
# full speed would pile up ~10,000 readings a second, more than a restarted broker takes in
# before they expire (120 s after they were queued). So no more than this many may await their
# acknowledgement; a few seconds' worth, enough for full speed.
MAX_UNACKNOWLEDGED = 20_000
WAIT_FOR_ROOM_SEC = 0.01
# After Kafka gave up on a reading that it may take later (a cluster short of in-sync replicas,
# a broker away for longer than kafka-python waits), the readings it did not acknowledge are
# sent again, in their order, this long afterwards; and again, until Kafka takes them.
RESEND_PAUSE_SEC = 2
DELAY_SEC = 0.5  # the assignment's pace: one simulated day per half second
# At full speed (WEATHER_DELAY_SEC=0) the readings are made and encoded this many at a time, then
# sent: taking turns for every single message, the generator, the Report and kafka-python's
# send() each cost far more CPU than when each runs a thousand times in a row.
READ_AHEAD = 1000
# While the generator takes its time (its pace, or a drop-in weather.py that blocks), the sending
# loop looks for Ctrl-C and SIGTERM this often: a stop never waits for the generator.
STOP_CHECK_SEC = 0.1
# An exception's message from weather.py is shown on one line, up to this many characters.
SHOWN_MESSAGE_CHARS = 200

# The KafkaProducer's settings, as data (bench/ reads them too).
PRODUCER_CONFIG = {
    "client_id": "p7-producer",
    "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
    "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
    # A send counts only once every in-sync replica has the message (no undercounting)...
    "acks": "all",
    # ...and a failed send is retried up to 10 times before the message is given up.
    "retries": 10,
    # A retry must not overtake the messages sent after it. If 03-05 failed, 03-06 went through
    # and 03-05 were then retried, the consumer would see 03-05 after 03-06 and its "skip dates
    # not after the last one" rule would drop a real reading. One request in flight per
    # connection keeps the order; idempotence lets the broker drop the copy a retry makes when
    # only the acknowledgement was lost.
    "max_in_flight_requests_per_connection": 1,
    "enable_idempotence": True,
}
# At full speed (WEATHER_DELAY_SEC=0), batches may gather readings for up to 50 ms before they
# are sent: bigger requests, whose fixed costs, paid in the same interpreter as the weather's,
# are shared by more readings. At a pace each reading goes out at once.
FULL_SPEED_CONFIG = {"linger_ms": 50}
# A message's key by the date's month digits, encoded once rather than for every message.
MONTH_KEYS = {f"{number:02d}": name.encode("utf-8") for number, name in enumerate(MONTHS, 1)}


class ProducerError(Exception):
    """Something the user must fix; printed as one sentence."""


def replication_problem(factor):
    """Why P7_REPLICATION_FACTOR is unusable, or None."""
    if not factor.isdigit() or not 1 <= int(factor) <= 100:
        return (f"P7_REPLICATION_FACTOR={factor!r} must be a whole number of copies, like 1 "
                "(one broker) or 3 (the three-node cluster)")
    return None


def check_replication(admin, factor):
    """Refuse a factor the brokers cannot hold, and one too low for their min.insync.replicas
    (every acks=all write would then fail)."""
    brokers = admin.describe_cluster()["brokers"]
    if factor > len(brokers):
        raise ProducerError(f"P7_REPLICATION_FACTOR={factor} asks for {factor} copies of each "
                            f"partition, but only {len(brokers)} broker"
                            f"{'s are' if len(brokers) > 1 else ' is'} live at {BROKER}: start "
                            "the others or lower P7_REPLICATION_FACTOR")
    resource = ConfigResource(ConfigResourceType.BROKER, str(brokers[0]["broker_id"]),
                              configs=["min.insync.replicas"])
    try:
        answer = admin.describe_configs([resource], config_filter="all")
        min_isr = int(answer["broker"][resource.name]["min.insync.replicas"]["value"])
    except (KafkaError, KeyError, TypeError, ValueError):
        return  # a broker that does not say: its own errors will tell
    if factor < min_isr:
        raise ProducerError(f"P7_REPLICATION_FACTOR={factor} is below the brokers' "
                            f"min.insync.replicas={min_isr}, so Kafka would refuse every "
                            f"reading: use P7_REPLICATION_FACTOR={len(brokers)}")


def connect_admin():
    try:
        return KafkaAdminClient(bootstrap_servers=BROKER.split(","), client_id="p7-producer-admin",
                                bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS)
    except KafkaTimeoutError:
        raise ProducerError(f"cannot reach the Kafka broker at {BROKER}: is it running? "
                            "(`make broker`, or the p7 container)") from None


def wait_for(condition, what, timeout=TOPIC_TIMEOUT_SEC):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ProducerError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def recreate_topic(admin, name, partitions):
    """Delete `name` if it exists, wait until it is really gone, create it anew."""
    if name in admin.list_topics():
        admin.delete_topics([name])
        print(f"Deleted topic {name}")
        # Deletion is asynchronous: creating too early fails with TopicAlreadyExists.
        wait_for(lambda: name not in admin.list_topics(), f"topic {name} to be deleted")
    else:
        print(f"Topic {name} did not exist yet")

    deadline = time.monotonic() + TOPIC_TIMEOUT_SEC
    while True:
        try:
            admin.create_topics([NewTopic(name=name, num_partitions=partitions,
                                          replication_factor=int(REPLICATION_FACTOR))])
            break
        except TopicAlreadyExistsError:
            if time.monotonic() > deadline:
                raise ProducerError(f"topic {name} still exists {TOPIC_TIMEOUT_SEC} s after "
                                    "its deletion") from None
            time.sleep(0.2)
    wait_for(lambda: topic_has_leaders(admin, name, partitions),
             f"all {partitions} partitions of {name} to have a leader")


def topic_has_leaders(admin, name, partitions):
    try:
        (description,) = admin.describe_topics([name])
    except KafkaError:
        return False
    leaders = [p["leader_id"] for p in description.get("partitions") or []]
    return description.get("error_code") == 0 and len(leaders) == partitions and min(leaders) >= 0


def weather_takes_seed():
    """Whether weather.get_next_weather takes a seed: this project's generator does, the course's
    provided weather.py (which may be dropped in instead) has only delay_sec."""
    try:
        return "seed" in inspect.signature(weather.get_next_weather).parameters
    except (TypeError, ValueError):  # a builtin or a callable without a signature
        return False


def weather_raised(err):
    """What weather.py raised, in one line: "weather.py raised ValueError: its message"."""
    message = " ".join(str(err).split())
    if len(message) > SHOWN_MESSAGE_CHARS:
        message = message[:SHOWN_MESSAGE_CHARS - 3] + "..."
    return f"weather.py raised {type(err).__name__}" + (f": {message}" if message else "")


def at_full_speed():
    """Whether the generator runs without pausing between readings. Only this project's
    generator says (weather.effective_delay); with any other the readings are sent one by one,
    which is right at every pace."""
    effective_delay = getattr(weather, "effective_delay", None)
    try:
        return effective_delay is not None and effective_delay(DELAY_SEC) == 0
    except Exception as err:  # a bad delay variable
        raise ProducerError(f"{weather_raised(err)}; nothing was sent") from None


def weather_chunks(seed, full_speed):
    """The weather generator's readings, in lists that produce() sends one at a time: READ_AHEAD
    readings at full speed, a single one at a pace (each is sent as soon as it is made)."""
    if seed is not None and not weather_takes_seed():
        raise ProducerError(f"--seed needs a generator that takes one, and {weather.__file__}'s "
                            "get_next_weather takes only delay_sec: leave out --seed")
    seed_arg = {} if seed is None else {"seed": seed}
    try:
        made = weather.get_next_weather(delay_sec=DELAY_SEC, **seed_arg)
    except Exception as err:  # this project's weather.py: a bad delay variable
        raise ProducerError(f"{weather_raised(err)}; nothing was sent") from None
    try:
        readings = iter(made)
    except TypeError:
        raise ProducerError(f"weather.get_next_weather returned {shown(made)}, which gives no "
                            "readings; nothing was sent") from None
    return WeatherReader(readings, READ_AHEAD if full_speed else 1)


class NotAReading(ProducerError):
    """What the generator yielded is no reading."""

    def __init__(self, yielded, why):
        try:
            what = shown(yielded)
        except Exception:  # an object whose repr() fails
            what = f"a {type(yielded).__name__}"
        super().__init__(f"weather.py yielded {what}, {why}; stopped before it: the readings "
                         "before it were sent, it was not")


def as_reading(yielded):
    """("YYYY-MM-DD", degrees as a float) of what the generator yielded, or NotAReading. A
    reading is a pair of a real calendar date, as a "YYYY-MM-DD" string or a date object, and
    a finite number of degrees (an int or a float; a bool or a string is no number). Checked
    before anything is sent: the consumer must never meet a reading it cannot count."""
    if not isinstance(yielded, (tuple, list)) or len(yielded) != 2:
        raise NotAReading(yielded, "which is not a (YYYY-MM-DD date, degrees) pair")
    date, degrees = yielded
    if isinstance(date, datetime.date):  # datetime.datetime too: its day
        date = f"{date.year:04d}-{date.month:02d}-{date.day:02d}"
    if not is_calendar_date(date):
        raise NotAReading(yielded, "whose date is not a YYYY-MM-DD calendar date")
    if type(degrees) is not float:  # the usual case costs one check
        if isinstance(degrees, bool) or not isinstance(degrees, numbers.Real):
            raise NotAReading(yielded, "whose degrees are not a number")
        try:
            degrees = float(degrees)
        except (OverflowError, ValueError, TypeError):  # an int beyond any float
            raise NotAReading(yielded, "whose degrees are not a finite number") from None
    if not math.isfinite(degrees):
        raise NotAReading(yielded, "whose degrees are not a finite number")
    return date, degrees


def is_calendar_date(text):
    # Of the forms fromisoformat takes, only YYYY-MM-DD has 10 characters and dashes at 4 and 7.
    if not isinstance(text, str) or len(text) != 10 or text[4] != "-" or text[7] != "-":
        return False
    try:
        datetime.date.fromisoformat(text)
    except ValueError:
        return False
    return True


class WeatherReader:
    """The generator's readings, in chunks of up to `chunk_size`: an iterator for produce().

    The generator runs in a thread of its own, and only when the next chunk is asked for: its
    own pace holds, nothing is read ahead, and the readings keep its order. The sending loop
    waits for a chunk in steps of STOP_CHECK_SEC, so a Ctrl-C or SIGTERM ends the producer at
    once whatever the generator does (a drop-in weather.py may sleep, wait on a read or catch
    every exception): next() then returns an empty chunk, on which produce() stops, and the
    thread (a daemon) is left where it is.

    Every reading is checked (as_reading) in that thread. What ends the readings comes after
    the good ones before it, so they are sent first: the generator's end (StopIteration), a
    reading that is none or an exception from the generator (ProducerError, one sentence; the
    bad reading is never sent). KeyboardInterrupt or SystemExit raised in the generator is
    raised here as it is."""

    def __init__(self, readings, chunk_size):
        self.chunk_size = chunk_size
        self.requests = queue.SimpleQueue()
        self.answers = queue.SimpleQueue()
        self.asked = False  # a chunk was asked for and has not come yet
        self.end = None     # what ends the readings, once it came
        threading.Thread(target=self.read, args=(readings,), name="weather",
                         daemon=True).start()

    def __iter__(self):
        return self

    def __next__(self):
        if self.end is not None:
            raise self.end
        if stop:
            return []
        if not self.asked:
            self.requests.put(True)
            self.asked = True
        while True:
            try:
                chunk, self.end = self.answers.get(timeout=STOP_CHECK_SEC)
                break
            except queue.Empty:
                if stop:
                    return []
        self.asked = False
        if chunk or self.end is None:
            return chunk
        raise self.end

    def read(self, readings):
        """The thread: a chunk for each request, until the readings end."""
        end = None
        while end is None:
            self.requests.get()
            chunk = []
            try:
                for yielded in itertools.islice(readings, self.chunk_size):
                    chunk.append(as_reading(yielded))
                if len(chunk) < self.chunk_size:
                    end = StopIteration()
            except NotAReading as err:
                end = err
            except Exception as err:
                end = ProducerError(f"{weather_raised(err)}; stopped there: the readings before "
                                    "it were sent")
            except BaseException as err:  # KeyboardInterrupt, SystemExit: the main thread's
                end = err
            self.answers.put((chunk, end))


def make_producer(full_speed=False):
    return KafkaProducer(bootstrap_servers=BROKER.split(","), **PRODUCER_CONFIG,
                         **(FULL_SPEED_CONFIG if full_speed else {}))


def month_partitions(producer):
    """Each month's partition, by the date's month digits: where kafka-python's default
    partitioner puts the month's key (murmur2, as the Java client does). Worked out once per
    producer and then given to send(): for every message the partitioner would hash the key in
    pure Python and sort the partition list."""
    partitions = sorted(producer.partitions_for(TOPIC))
    return {digits: partitions[(murmur2(key) & 0x7FFFFFFF) % len(partitions)]
            for digits, key in MONTH_KEYS.items()}


class Deliveries:
    """The readings handed to Kafka and not acknowledged yet, in the order they were sent.

    When Kafka gives up on one, nothing more may go out after it: a later reading of the same
    month stored before it would make the consumer skip it. So the first failure stops the
    producer's sender on the spot, and every unacknowledged reading is sent again, in order, by
    a new producer. One that Kafka did store after all is then stored twice: a duplicate, which
    the consumer skips like the generator's own.

    The sends' futures wait in order, and unacknowledged() takes the acknowledged ones off the
    front: one done behind one still waiting is counted a moment later, never too few. Only the
    failure needs a callback, and one per batch of messages will do: a callback on every future
    would be a sizeable part of the whole send path."""

    def __init__(self):
        self.waiting = collections.deque()  # (future, reading), in send order
        self.failure = None    # the first error since the last resend
        self.producer = None   # the KafkaProducer sending them now
        self.stop_sender = None  # its sender thread's emergency stop
        self.resending = False
        self.watched_batch = None

    def track(self, futures, readings):
        """Keep the futures of readings just sent (as many as there are futures), in order."""
        self.waiting.extend(zip(futures, readings))

    def watch(self, batch):
        """Watch a new batch's own future: kafka-python settles a batch's futures together from
        it, and its result carries the records' errors when the batch failed."""
        self.watched_batch = batch
        batch.add_callback(self.batch_done)
        batch.add_errback(self.fail)
        # Once a batch, not for every reading, the acknowledged ones are let go.
        self.unacknowledged()

    def batch_done(self, result):
        _offset, _timestamp, record_errors = result
        if record_errors is not None:
            self.fail(record_errors(0))

    def fail(self, error):
        # Runs in kafka-python's sender thread, before it sends anything else.
        if self.failure is None:
            self.failure = error
            self.stop_sender()

    def unacknowledged(self):
        """How many readings still wait for the broker's acknowledgement (or were refused)."""
        waiting = self.waiting
        acknowledged = False
        while waiting and waiting[0][0].is_done and waiting[0][0].exception is None:
            waiting.popleft()
            acknowledged = True
        if acknowledged and self.resending:
            self.resending = False
            print("producer: Kafka takes readings again", file=sys.stderr, flush=True)
        return len(waiting)

    def undelivered(self):
        """Exactly how many readings Kafka has not acknowledged."""
        return sum(1 for future, _ in self.waiting
                   if not future.is_done or future.exception is not None)

    def take_pending(self):
        """The unacknowledged readings, oldest first, for a new producer to send again."""
        readings = [reading for future, reading in self.waiting
                    if not future.is_done or future.exception is not None]
        self.waiting.clear()
        self.failure = None
        self.resending = True
        return readings


class SendAgain(Exception):
    """Kafka gave up on readings it may well take later; args: the chunks still to send."""


def encode(chunk, partition_of):
    """The message of each (date, degrees) reading in `chunk`: (key, value, partition)."""
    report = Report()  # refilled for every reading: cheaper than a new one each time
    messages = []
    for date, degrees in chunk:
        report.date = date
        report.degrees = degrees
        month = date[5:7]
        messages.append((MONTH_KEYS[month], report.SerializeToString(), partition_of[month]))
    return messages


def send_chunk(producer, chunk, partition_of, deliveries):
    """Send a chunk's readings in order; returns how many went out, fewer when the sender has
    stopped (a failure in its thread) or the topic's partitions stayed unknown."""
    futures = []
    try:
        for key, value, partition in encode(chunk, partition_of):
            future = producer.send(TOPIC, key=key, value=value, partition=partition)
            futures.append(future)
            # A new batch is watched before anything else is added to it. This check is the
            # one per-message step of the bookkeeping.
            if future._produce_future is not deliveries.watched_batch:
                deliveries.watch(future._produce_future)
    except KafkaError as err:
        deliveries.failure = deliveries.failure or err
    deliveries.track(futures, chunk)
    return len(futures)


def announce_years(chunk, year):
    """Print "producing YYYY..." for every year that begins in `chunk` after `year`; returns the
    last year announced."""
    if not chunk:  # nothing was pending for a resend
        return year
    first, last = int(chunk[0][0][:4]), int(chunk[-1][0][:4])
    for new_year in range(max(first, year + 1), last + 1):
        print(f"producing {new_year}...", flush=True)
    return max(year, last)


def produce(producer, chunks, deliveries):
    """Send every chunk (a list) of (date, degrees) readings until Ctrl-C or SIGTERM. A reading
    Kafka gave up on ends it: with SendAgain when a later attempt may succeed, else with
    ProducerError. From here on a stop request is only noted (see main): raised inside
    kafka-python's send() an exception could leave a batch half added, which the last flush
    would then wait for in vain."""
    stop.interrupts = 0
    deliveries.producer = producer
    deliveries.stop_sender = producer._sender.force_close
    partition_of = month_partitions(producer)
    year = 0
    for chunk in chunks:
        while (not deliveries.failure and not stop
               and deliveries.unacknowledged() >= MAX_UNACKNOWLEDGED):
            time.sleep(WAIT_FOR_ROOM_SEC)
        if stop:
            return
        sent = 0 if deliveries.failure else send_chunk(producer, chunk, partition_of, deliveries)
        if sent < len(chunk):
            break
        year = announce_years(chunk, year)
    else:
        print("producer: the weather generator has no more readings (this project's ends "
              "with 9999-12-31): all sent", flush=True)
        return
    if not getattr(deliveries.failure, "retriable", False):
        raise ProducerError(f"Kafka refused a reading ({deliveries.failure}); stopping so the "
                            "stream does not silently lose readings")
    # The readings not sent yet go out again after the pending ones.
    raise SendAgain(itertools.chain([chunk[sent:]], chunks))


def produce_until_stopped(chunks, deliveries, full_speed):
    """produce() until Ctrl-C or SIGTERM; after a failure Kafka may recover from (not enough
    in-sync replicas, a broker away too long), again with a new producer, the readings it did
    not acknowledge first."""
    said_so = False
    while True:
        try:
            produce(make_producer(full_speed), chunks, deliveries)
            return
        except SendAgain as again:
            (chunks,) = again.args
        except KafkaError as err:  # no broker answers the new producer: wait on
            if not said_so:
                deliveries.failure = err
        if not said_so:
            print(f"producer: Kafka did not take readings ({describe(deliveries.failure)}); "
                  f"sending the {deliveries.undelivered()} unacknowledged ones again every "
                  f"{RESEND_PAUSE_SEC} s until it does", file=sys.stderr, flush=True)
            said_so = True
        if deliveries.producer:
            close_quietly(deliveries.producer)
        deadline = time.monotonic() + RESEND_PAUSE_SEC
        while time.monotonic() < deadline:
            if stop:
                return
            time.sleep(WAIT_FOR_ROOM_SEC)
        chunks = itertools.chain([deliveries.take_pending()], chunks)


def describe(error):
    """A kafka-python error in words: its name and, for a broker's error code, what it means."""
    explanation = getattr(error, "description", None) or str(error).split(": ", 1)[-1]
    return f"{type(error).__name__}: {explanation.rstrip('.')}"


def close_quietly(producer):
    """Close a producer whose sender already stopped (its unsent readings are pending)."""
    try:
        producer.close(timeout=CLOSE_TIMEOUT_SEC)
    except KafkaError:
        pass


def close_producer(deliveries):
    """Give the broker FLUSH_TIMEOUT_SEC to acknowledge what is in flight (a Ctrl-C meanwhile
    cuts that short), then close; say how many readings may not have been delivered."""
    producer = deliveries.producer
    if producer is None:
        return
    stop.requests = signals_before = max(stop.requests, 1)  # signals only hurry us from here on
    deadline = time.monotonic() + FLUSH_TIMEOUT_SEC
    while stop.requests == signals_before and time.monotonic() < deadline:
        try:
            producer.flush(timeout=FLUSH_STEP_SEC)
            break
        except KafkaTimeoutError:
            continue  # the broker is away (an outage): wait on, until the deadline
        except KafkaError:
            break
    missing = deliveries.undelivered()
    if missing:
        print(f"producer: the broker did not acknowledge the last {missing} readings, so they "
              "may not have been delivered", file=sys.stderr, flush=True)
        # kafka-python's close() would flush once more and raise, and so would its __del__:
        # drop the unsent messages first (counted above), the one way it offers.
        producer._sender.force_close()
    try:
        producer.close(timeout=CLOSE_TIMEOUT_SEC)
    except KafkaError:
        pass  # dropping them took longer than that (a starved machine); __del__ closes it


def main(argv=None):
    parser = argparse.ArgumentParser(description="Send daily weather reports to Kafka forever.")
    parser.add_argument("--seed", type=int, default=None,
                        help="make the generated weather reproducible")
    args = parser.parse_args(argv)
    for problem in (p7common.bootstrap_problem(BROKER), replication_problem(REPLICATION_FACTOR)):
        if problem:
            parser.error(problem)
    # Until the sending starts, the first Ctrl-C or SIGTERM ends the program at once (as a
    # KeyboardInterrupt). Once it sends, a stop is only noted, and produce() returns before its
    # next chunk of readings (at full speed some 20 ms of sending), or within STOP_CHECK_SEC
    # while it waits for the generator, however long that would take. Later signals only cut
    # close_producer's wait short, so that a second Ctrl-C is never a traceback.
    stop.install(interrupts=1)

    # What the imports made (kafka-python, protobuf and the standard library) lives as long as
    # we do: kept out of the garbage collector's passes, which the futures and batches of a
    # fast stream set off again and again.
    gc.freeze()
    deliveries = Deliveries()
    try:
        full_speed = at_full_speed()
        chunks = weather_chunks(args.seed, full_speed)
        admin = connect_admin()
        try:
            check_replication(admin, int(REPLICATION_FACTOR))
            recreate_topic(admin, TOPIC, PARTITIONS)
            recreate_topic(admin, BIRTHDAY_TOPIC, BIRTHDAY_PARTITIONS)
            print("Topics:", sorted(admin.list_topics()), flush=True)
        finally:
            admin.close()
        produce_until_stopped(chunks, deliveries, full_speed)
    except KeyboardInterrupt:
        pass
    except ProducerError as err:
        print(f"producer: error: {err}", file=sys.stderr)
        return 1
    except KafkaError as err:
        print(f"producer: error: Kafka failed: {err}", file=sys.stderr)
        return 1
    finally:
        close_producer(deliveries)
    print("producer: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
