"""The data half of reliability: poison dates, hostile values and checkpoints, a second owner of a
partition, unwritable files. All against the real broker, with messages injected by a plain
KafkaProducer into a recreated topic."""

import json
import os
import random
import resource
import signal
import stat
import subprocess
import sys
import time

import pytest
from kafka import KafkaProducer

from helpers import (FILES, assert_birthdays_exact, assert_checkpoint_refused, assert_exact,
                     assert_one_clean_sentence, caught_up, consume_until_caught_up, fresh_topic,
                     load, offsets_in, report_bytes, wait_until)
from tools import p7check
from tools.partition_files import ConcurrentReader

pytestmark = pytest.mark.broker


def send(readings, partition=None):
    """Send (key, value) pairs, keyed as producer.py keys them unless `partition` is given;
    returns their (partition, offset)s."""
    producer = KafkaProducer(bootstrap_servers=p7check.bootstrap(), acks="all")
    try:
        futures = [producer.send(p7check.TOPIC, key=key, value=value, partition=partition)
                   for key, value in readings]
        producer.flush()
        return [(meta.partition, meta.offset) for meta in (f.get(timeout=30) for f in futures)]
    finally:
        producer.close()


def reports(key, *dates, degrees=50.0):
    return [(key.encode(), report_bytes(date, degrees)) for date in dates]


def year_stats(folder, partition, month, year):
    return load(folder / f"partition-{partition}.json").get(month, {}).get(year)


def counted_dates(stats):
    return stats["count"], stats["start"], stats["end"]


@pytest.fixture(scope="module")
def some_topic(broker):
    """The topic exists (consumer.py waits for it before it reads its checkpoints)."""
    fresh_topic()


def send_january_then_count(run_program, folder, dates, decision, expected):
    """Send January `dates` to partition 1, consume it to its end: `decision` is logged, the
    year of the last date has (count, start, end) == expected, and p7check agrees."""
    send(reports("January", *dates), partition=1)
    consumer = consume_until_caught_up(run_program, folder, [1])
    assert decision in consumer.stderr
    assert counted_dates(year_stats(folder, 1, "January", dates[-1][:4])) == expected
    assert_exact(folder, [1])


# ---------------------------------------------------------------- poison dates

def test_the_issues_poison_dates_cost_no_reading(run_program, tmp_path):
    fresh_topic()
    sent = send(reports("December", "1990-12-01", "2999-12-31", "1990-12-02", "1990-12-03",
                        "1990-12-04")
                + reports("May", "1990-05-01", "1990-W20-1", "1990-05-02", "1990-05-03",
                          "1990-05-04"))
    december, may = sent[0][0], sent[5][0]
    assert december != may, "the reproduction needs the two months in two partitions"
    consumer = consume_until_caught_up(run_program, tmp_path, [december, may])
    assert counted_dates(year_stats(tmp_path, december, "December", "1990")) == \
        (4, "1990-12-01", "1990-12-04")
    assert "2999" not in load(tmp_path / f"partition-{december}.json")["December"]
    assert counted_dates(year_stats(tmp_path, may, "May", "1990")) == (4, "1990-05-01",
                                                                       "1990-05-04")
    assert f"partition {december} offset 1: skipped date 2999-12-31" in consumer.stderr
    assert f"partition {may} offset 1: skipped a malformed message: date '1990-W20-1'" \
        in consumer.stderr
    assert "Traceback" not in consumer.stderr
    assert_exact(tmp_path, [december, may])  # p7check applies the same rule, and survives W20


def test_a_genuine_jump_is_held_then_counted(run_program, tmp_path):
    fresh_topic()
    send(reports("January", "1990-01-01", "1990-01-02", "1990-01-03", "1990-01-04",
                 "1995-01-01", "1995-01-02"), partition=1)
    consumer = run_program("consumer.py", "1", "--dir", tmp_path)
    wait_until(lambda: "holding back date 1995-01-01" in consumer.stderr
               and counted_dates(year_stats(tmp_path, 1, "January", "1990") or
                                 {"count": 0, "start": "", "end": ""})[0] == 4, 60,
               "1990 to be counted and 1995-01-01 held back")
    assert consumer.stop() == 0, consumer.stderr
    # One reading after the jump is not yet enough: the checkpoint waits at the held date.
    held = load(tmp_path / "partition-1.json")
    assert held["offset"] == 4 and "1995" not in held["January"], held
    assert_exact(tmp_path, [1])

    send_january_then_count(run_program, tmp_path, ["1995-01-03", "1995-01-04"],
                            "offset 4: counted date 1995-01-01", (4, "1995-01-01", "1995-01-04"))


def test_kill_9_while_a_poison_is_held_stays_exact(run_program, tmp_path):
    fresh_topic()
    send(reports("January", "1990-01-01", "1990-01-02", "1990-01-03", "1990-01-04",
                 "2999-01-01", "2999-01-01", "1990-01-04"), partition=1)
    consumer = run_program("consumer.py", "1", "--dir", tmp_path)
    wait_until(lambda: "holding back date 2999-01-01" in consumer.stderr
               and offsets_in(tmp_path, [1])[1] == 4, 60, "the poison to be held back")
    consumer.process.send_signal(signal.SIGKILL)
    consumer.wait()
    assert_exact(tmp_path, [1])

    send_january_then_count(run_program, tmp_path, ["1990-01-05", "1990-01-06"],
                            "offset 4: skipped date 2999-01-01", (6, "1990-01-01", "1990-01-06"))


def test_poison_in_a_live_stream_costs_no_real_reading(run_program, tmp_path):
    producer = run_program("producer.py", "--seed", 3, delay=0.002)
    wait_until(lambda: "Topics:" in producer.stdout, 60, "the topic")
    consumer = run_program("consumer.py", "0", "1", "2", "3", "--dir", tmp_path)
    wait_until(lambda: sum(p7check.end_offsets().values()) > 400, 60, "some readings")
    injected = send(reports("December", "2999-12-31") + reports("March", "9999-03-31")
                    + reports("May", "1990-W20-1") + [(b"June", None)]
                    + reports("July", "1990-07-01", degrees=1e308))
    ends = {partition: offset + 200 for partition, offset in injected}
    wait_until(lambda: all(p7check.end_offsets([n])[n] > end for n, end in ends.items()), 120,
               "200 more readings after each injected message")
    assert producer.stop() == 0, producer.stderr
    wait_until(lambda: caught_up(tmp_path, range(4)), 120, "the consumer to catch up")
    assert consumer.stop() == 0, consumer.stderr
    assert "Traceback" not in consumer.stderr
    assert_exact(tmp_path, range(4))
    # Independently of the rule: every real date of a partition is counted exactly once.
    skipped = set(injected)
    for n in range(4):
        data = load(tmp_path / f"partition-{n}.json")
        real_dates = {p7check.decode(record)[1]
                      for record in p7check.read_partition(n, data["offset"])
                      if (n, record.offset) not in skipped}
        counted = sum(stats["count"] for month, years in data.items()
                      if month not in ("partition", "offset") for stats in years.values())
        assert counted == len(real_dates), f"partition {n}"


# ---------------------------------------------------------------- hostile values

def test_any_finite_degrees_count_and_files_stay_standard_json(run_program, tmp_path):
    fresh_topic()
    send(reports("January", "1990-01-01")
         + reports("January", "1990-01-02", degrees=250.5)
         + reports("January", "1990-01-03", degrees=-250.25)
         + reports("January", "1990-01-04", degrees=1e6)
         + reports("January", "1990-01-05", degrees=float("nan"))      # offset 4: malformed
         + reports("January", "1990-01-06", degrees=1e308)
         + reports("January", "1990-01-07", degrees=1e308)             # the sum would be inf
         + [(b"January", None)]                                        # offset 7: malformed
         + reports("January", "1990-02-30", "1990-01-08", "1990-01-09"), partition=1)
    consumer = consume_until_caught_up(run_program, tmp_path, [1])
    for offset in (4, 7, 8):
        assert f"partition 1 offset {offset}: skipped a malformed message" in consumer.stderr
    assert consumer.stderr.count("skipped a malformed message") == 3, consumer.stderr
    assert consumer.stderr.count("would no longer be a finite number") == 1, consumer.stderr
    assert "1990-01-07" in consumer.stderr
    text = (tmp_path / "partition-1.json").read_text()

    def refuse(constant):
        raise AssertionError(f"non-standard JSON constant {constant} in {text}")

    january = json.loads(text, parse_constant=refuse)["January"]["1990"]
    assert counted_dates(january) == (7, "1990-01-01", "1990-01-09")
    assert january["sum"] == 50.0 + 250.5 - 250.25 + 1e6 + 1e308 + 50.0 + 50.0
    assert_exact(tmp_path, [1])


STATS = '{"count": 2, "sum": 3.0, "avg": 1.5, "start": "1990-01-01", "end": "1990-01-02"}'


@pytest.mark.parametrize("stats, complaint", [
    (STATS.replace("2,", '"x",'), "count 'x' for January 1990"),
    (STATS.replace('"1990-01-02"', "null"), "end None"),
    (STATS.replace("3.0", "Infinity"), "sum inf"),
    (STATS.replace("1.5", "true"), "avg True"),
    (STATS.replace('"1990-01-02"', '"2999-12-31"'), "end '2999-12-31'"),
    (STATS.replace('"1990-01-01"', '"1990-W01-1"'), "start '1990-W01-1'"),
])
def test_wrong_value_types_in_a_checkpoint_are_refused(run_program, tmp_path, some_topic, stats,
                                                       complaint):
    assert_checkpoint_refused(run_program, tmp_path, complaint,
                              '{"partition": 1, "offset": 2, "January": {"1990": ' + stats + '}}')


# ---------------------------------------------------------------- a full disk

def test_a_file_that_cannot_be_written_is_named_and_leaves_no_temporary(produce, tmp_path):
    produce(1000)

    def limit_file_size():
        # EFBIG on the real write path, as a full disk gives ENOSPC; Python ignores SIGXFSZ.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    folder = tmp_path / "d"
    folder.mkdir()
    result = subprocess.run([sys.executable, str(FILES / "consumer.py"), "0", "--dir", folder,
                             "--iterations", "5"], capture_output=True, text=True, timeout=60,
                            preexec_fn=limit_file_size)
    assert result.returncode == 1, result.stderr
    line = assert_one_clean_sentence(result.stderr)
    assert f"could not write {folder / 'partition-0.json'} (File too large)" in line
    assert sorted(p.name for p in folder.iterdir()) == ["partition-0.json",
                                                       "partition-0.json.lock"]
    assert load(folder / "partition-0.json") == {"partition": 0, "offset": 0}


# ---------------------------------------------------------------- a second owner

def test_a_second_owner_is_refused_and_the_first_stays_exact(run_program, tmp_path):
    folder = tmp_path / "d"  # apart from the programs' output files
    folder.mkdir()
    producer = run_program("producer.py", "--seed", 4, delay=0.0005)
    wait_until(lambda: "Topics:" in producer.stdout, 60, "the topic")
    reader = ConcurrentReader(folder)  # the grader's too: every read parses, no file vanishes
    owner = run_program("consumer.py", "0", "1", "--dir", folder)
    wait_until(lambda: min(offsets_in(folder, [0, 1]).values()) > 0, 60, "the first owner")
    reader.start()
    try:
        for args in (["0", "1"], ["1", "2"], ["0", "--reset"], []):  # [] = the two rounds
            before = sorted(p.name for p in folder.iterdir() if not p.name.endswith(".tmp"))
            second = run_program("consumer.py", *args, "--dir", folder)
            assert second.wait(timeout=60) == 1, second.stderr
            line = assert_one_clean_sentence(second.stderr)
            assert "partition-" in line and f"kept by process {owner.process.pid}" in line, line
            after = sorted(p.name for p in folder.iterdir() if not p.name.endswith(".tmp"))
            assert after == before, f"consumer.py {args} created or deleted files"
        assert owner.running(), owner.stderr
        assert producer.stop() == 0
        wait_until(lambda: caught_up(folder, [0, 1]), 120, "the first owner to catch up")
        assert owner.stop() == 0, owner.stderr
    finally:
        reader.stop()
    assert not reader.failure_count, reader.failures
    assert reader.reads > 100, "the reader hardly ran"
    assert "Traceback" not in owner.stderr
    assert_exact(folder, [0, 1])


def test_a_killed_owner_does_not_lock_out_its_restart(run_program, tmp_path):
    fresh_topic()
    owner = run_program("consumer.py", "0", "1", "--dir", tmp_path)
    wait_until(lambda: "resuming at offsets" in owner.stderr, 60, "the first owner")
    owner.process.send_signal(signal.SIGKILL)
    owner.wait()
    restarted = run_program("consumer.py", "0", "1", "--dir", tmp_path)
    wait_until(lambda: "resuming at offsets" in restarted.stderr or not restarted.running(), 60,
               "the restarted owner")
    assert restarted.stop() == 0, restarted.stderr
    assert (tmp_path / "partition-0.json.lock").read_text().strip() == \
        str(restarted.process.pid)


def test_a_killed_two_round_owner_does_not_lock_out_its_restart(run_program, produce, tmp_path):
    """kill -9 of the two-round consumer.py alone: its workers (idle in a poll of up to 1 s)
    finish with the locks they inherited, and a restart started at once waits for them, then
    counts exactly."""
    produce(2000)
    owner = run_program("consumer.py", "--dir", tmp_path)
    wait_until(lambda: caught_up(tmp_path, range(4)) or not owner.running(), 90,
               "the first owner to catch up")
    os.kill(owner.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
    owner.wait()
    restarted = run_program("consumer.py", "--dir", tmp_path)
    wait_until(lambda: restarted.stderr.count("resuming at offsets") == 2
               or not restarted.running(), 90, "the restarted owner's two workers")
    assert restarted.running(), restarted.stderr
    assert restarted.stop() == 0, restarted.stderr
    assert_exact(tmp_path, range(4))


def test_special_files_are_refused_at_once_in_one_sentence(run_program, some_topic, tmp_path):
    # A FIFO as a partition file used to block consumer.py in open() for ever, deaf to SIGTERM;
    # a FIFO or a device as a lock file ended in a traceback from ftruncate.
    cases = [("partition-0.json", os.mkfifo, "is not a regular file but a FIFO"),
             ("partition-0.json", os.mkdir, "is not a regular file but a folder"),
             ("partition-0.json.lock", os.mkfifo, "is not a regular file but a FIFO"),
             ("partition-0.json.lock", lambda path: os.mknod(path, 0o600 | stat.S_IFCHR,
                                                              os.makedev(1, 3)),
              "is not a regular file but a character device")]
    for number, (name, make, complaint) in enumerate(cases):
        folder = tmp_path / str(number)
        folder.mkdir()
        make(folder / name)
        consumer = run_program("consumer.py", "0", "--dir", folder)
        assert consumer.wait(timeout=60) == 1, name
        line = assert_one_clean_sentence(consumer.stderr)
        assert f"{folder / name} {complaint}" in line, line
        assert "stop that one first" not in line, line  # nobody else keeps it


def test_a_partition_file_nested_too_deeply_is_refused(run_program, some_topic, tmp_path):
    assert_checkpoint_refused(run_program, tmp_path, "nested too deeply",
                              "[" * 200_000 + "]" * 200_000)


@pytest.mark.chaos  # a series of kill -9s, long by design
def test_ten_kill_9s_of_the_main_process_never_lock_out_the_restart(run_program,
                                                                    start_producer, tmp_path):
    """kill -9 of consumer.py's main process alone, ten times, each followed at once by a
    restart: the orphaned workers stop by themselves, the restart waits for them and is never
    refused, and the files stay exact."""
    rng = random.Random(10)
    # Paced rather than at full speed: a restart still finds readings waiting for it, and the
    # topic stays small enough for the exact check at the end to be quick.
    producer = start_producer(seed=4, delay=0.00002)
    owner = run_program("consumer.py", "--dir", tmp_path, "--birthday", "1990-03-15")
    for _ in range(10):
        progress = sum(offsets_in(tmp_path, range(4)).values())
        wait_until(lambda: sum(offsets_in(tmp_path, range(4)).values()) > progress
                   or not owner.running(), 60, "the consumer to make progress")
        time.sleep(rng.uniform(0, 3))  # any moment: mid-batch, mid-save, between the rounds
        assert owner.running(), owner.stderr
        os.kill(owner.pid, signal.SIGKILL)  # the parent only, as `kill -9 PID` does
        owner.wait()
        owner = run_program("consumer.py", "--dir", tmp_path, "--birthday", "1990-03-15")
        wait_until(lambda: owner.stderr.count("resuming at offsets") == 2
                   or not owner.running(), 120, "the restarted owner's two workers")
        assert owner.running(), owner.stderr
    assert producer.stop() == 0, producer.stderr
    wait_until(lambda: caught_up(tmp_path, range(4)), 120, "the last owner to catch up")
    assert owner.stop() == 0, owner.stderr
    assert_exact(tmp_path, range(4))


@pytest.mark.chaos  # a worker held stopped for longer than any fixed wait, by design
def test_a_restart_waits_as_long_as_the_killed_owners_workers_live(run_program, produce,
                                                                   tmp_path):
    """A worker of a killed consumer.py that takes long to stop (here: stopped with SIGSTOP for
    longer than any fixed wait) keeps its partitions; the restart waits for it, not refused."""
    produce(2000)
    owner = run_program("consumer.py", "--dir", tmp_path)
    wait_until(lambda: owner.stderr.count("resuming at offsets") == 2, 60, "the two workers")
    workers = subprocess.run(["pgrep", "-P", str(owner.pid)], capture_output=True,
                             text=True).stdout.split()
    assert len(workers) == 2, workers
    os.kill(int(workers[0]), signal.SIGSTOP)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait()
    restarted = run_program("consumer.py", "--dir", tmp_path)
    try:
        wait_until(lambda: "waiting for them to finish" in restarted.stderr, 60,
                   "the restart to say it waits")
        started = time.monotonic()
        wait_until(lambda: time.monotonic() - started > 35 or not restarted.running(), 60,
                   "35 s of waiting")
        assert restarted.running(), restarted.stderr
        assert restarted.stderr.count("waiting for them to finish") == 1, restarted.stderr
    finally:
        os.kill(int(workers[0]), signal.SIGCONT)
    wait_until(lambda: restarted.stderr.count("resuming at offsets") == 2
               or not restarted.running(), 90, "the restart's two workers")
    assert restarted.running(), restarted.stderr
    wait_until(lambda: caught_up(tmp_path, range(4)), 120, "the restart to catch up")
    assert restarted.stop() == 0, restarted.stderr
    assert_exact(tmp_path, range(4))


def test_symbolic_links_are_never_written_through(run_program, tmp_path):
    fresh_topic()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    os.symlink(victim, tmp_path / "partition-0.json.tmp")
    consumer = run_program("consumer.py", "0", "--iterations", "2", "--dir", tmp_path)
    assert consumer.wait(timeout=60) == 0, consumer.stderr
    assert load(tmp_path / "partition-0.json") == {"partition": 0, "offset": 0}
    assert not os.path.islink(tmp_path / "partition-0.json")

    os.symlink(victim, tmp_path / "partition-1.json.lock")
    consumer = run_program("consumer.py", "1", "--dir", tmp_path)
    assert consumer.wait(timeout=60) == 1
    line = assert_one_clean_sentence(consumer.stderr)
    assert "partition-1.json.lock is a symbolic link" in line
    assert "stop that one first" not in line, line  # nobody else keeps it
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "partition-1.json").exists()


def test_two_consumers_with_birthdays_in_one_folder_keep_one_birthday_json(produce,
                                                                           run_program,
                                                                           tmp_path):
    produce(3000)
    birthday = "1990-01-07"
    first = run_program("consumer.py", "0", "1", "--dir", tmp_path, "--birthday", birthday)
    wait_until(lambda: (tmp_path / "birthday.json.lock").exists(), 60, "the first subscriber")
    second = run_program("consumer.py", "2", "3", "--dir", tmp_path, "--birthday", birthday)
    wait_until(lambda: caught_up(tmp_path, range(4)), 120, "both to catch up")
    wait_until(lambda: (tmp_path / "birthday.json").exists()
               and load(tmp_path / "birthday.json") ==
               p7check.expected_birthdays(birthday, offsets_in(tmp_path, range(4))), 60,
               "birthday.json to take in both consumers' readings")
    assert first.stop() == 0, first.stderr
    assert second.stop() == 0, second.stderr
    assert "keeps no birthday.json" in second.stderr
    assert "Traceback" not in first.stderr + second.stderr
    assert_birthdays_exact(tmp_path, birthday)
    assert_exact(tmp_path, range(4))
