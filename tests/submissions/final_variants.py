"""Submissions of the course's FINAL version (shared/assignment-final.md), each a few lines
changed in a copy of final/ at test time, with the verdict each graded check must get.

VARIANTS[name] = Variant(changes, expect, only):
- `changes`: (file, old text, new text) replacements in files/, each old text found exactly once
  (so a change to final/ that breaks a variant fails loudly instead of grading final/ itself).
- `expect`: {check number: "PASS" or ("FAIL", (words the reason must hold, ...))}.
- `only`: what `autograde.py --version final --only` grades it with (the check and what it
  proves the point with; the grader pulls in what a check needs). Kept small: each graded run
  costs seconds of the test's budget.

Two kinds. CORRECT variants are other ways real students met the final assignment: every check
they are graded on must pass (tests/test_autograde_final.py asserts that of every graded check,
not only of those in `expect`). MUTANTS are the classic mistakes: each must fail the check that
names its mistake, with words a student can act on.

The reason words of the mutants follow grader/checks.py's final-version messages; one marked
GUESS is what the message should hold but did not when this corpus was written.
"""

from dataclasses import dataclass
from pathlib import Path

from .mutants import changed_copy

FINAL = Path(__file__).resolve().parent / "final"


@dataclass(frozen=True)
class Variant:
    changes: tuple
    expect: dict
    only: str

    @property
    def correct(self):
        return all(verdict == "PASS" for verdict in self.expect.values())


def fail(*words):
    return ("FAIL", words)


# The texts of final/files that the variants change, named once.
PARTITION_PATH = 'return f"/files/partition-{n}.json"'
PLOT_PATH = 'path = f"/files/partition-{n}.json"'
PLOT_SAVE = 'plt.savefig("/files/month.svg")'
SEEK = '        consumer.seek(tp, partitions[tp.partition]["offset"])\n'
LOAD_AND_SEEK = ("    for tp in topic_partitions:\n"
                 "        partitions[tp.partition] = load_partition(tp.partition)\n" + SEEK)
COUNT_CALL = ('                update_stats(data, message.key.decode("utf-8"), report.date, '
              'report.degrees)\n')
SAVE_BATCH = ('            data["offset"] = consumer.position(tp)\n'
              "            save_partition(data)\n")
DUMP = "        json.dump(data, f, indent=2)\n"
POLL_FOREVER = "    while True:\n        batch = consumer.poll(1000)\n"

# report_pb2.py regenerated (grpcio-tools 1.58.0, as in the course image) from the proto with
# the field numbers swapped: only the serialized descriptor differs from final/'s.
DESCRIPTOR_1_2 = (r"\x12\x0c\n\x04\x64\x61te\x18\x01 \x01(\t"
                  r"\x12\x0f\n\x07\x64\x65grees\x18\x02 \x01(\x01\x62\x06proto3")
DESCRIPTOR_2_1 = (r"\x12\x0f\n\x07\x64\x65grees\x18\x01 \x01(\x01"
                  r"\x12\x0c\n\x04\x64\x61te\x18\x02 \x01(\tb\x06proto3")

# The draft's two rounds, as a student who started from the draft's starter code kept them:
# with no arguments, round 1 (30 polls) then round 2 (forever) in threads; with partitions
# given, one consumer that runs forever, which is all the final version asks.
ROUNDS_MAIN = '''if __name__ == "__main__":
    if len(sys.argv) > 1:
        consume([int(n) for n in sys.argv[1:]])
    else:
        for max_iterations in (30, None):  # round 1, then round 2
            threads = [threading.Thread(target=consume, args=(group, max_iterations))
                       for group in ([0, 1], [2, 3])]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
'''

VARIANTS = {
    # ---------------------------------------------------------------- correct submissions

    # Paths relative to the working directory, right where the programs run from the folder
    # that holds files/ (`docker exec` runs them from /).
    "relative_paths": Variant(
        (("consumer.py", PARTITION_PATH, 'return f"files/partition-{n}.json"'),
         ("plot.py", PLOT_PATH, 'path = f"files/partition-{n}.json"'),
         ("plot.py", PLOT_SAVE, 'plt.savefig("files/month.svg")')),
        {6: "PASS", 10: "PASS"}, "6,10"),
    # "It could be in a consumer group named debug": could. Without a group kafka-python
    # assigns itself every partition of the subscribed topic and prints the same dicts.
    "groupless_debug": Variant(
        (("debug.py", 'KafkaConsumer(bootstrap_servers=[broker], group_id="debug")',
          "KafkaConsumer(bootstrap_servers=[broker])"),),
        {5: "PASS"}, "5"),
    # kafka.errors.NoBrokersAvailable is in kafka-python 2.0.2 (the course image's) and not in
    # the 3.x this project's own .venv has: graded with the course's packages, this passes;
    # with the project's, producer.py dies at its import.
    "kafka_python_2_only": Variant(
        (("producer.py", "from kafka.errors import UnknownTopicOrPartitionError",
          "from kafka.errors import NoBrokersAvailable, UnknownTopicOrPartitionError"),
         ("producer.py", "admin_client = KafkaAdminClient(bootstrap_servers=[broker])\n",
          "while True:\n"
          "    try:\n"
          "        admin_client = KafkaAdminClient(bootstrap_servers=[broker])\n"
          "        break\n"
          "    except NoBrokersAvailable:\n"
          '        print("Kafka is not up yet, retrying")\n'
          "        time.sleep(1)\n")),
        {3: "PASS"}, "3"),
    # A save after every message, with that message's next offset: slow, but every file still
    # holds its offset together with the statistics of every message before it.
    "per_message_rewrite": Variant(
        (("consumer.py", COUNT_CALL + SAVE_BATCH,
          COUNT_CALL + '                data["offset"] = message.offset + 1\n'
                       "                save_partition(data)\n"),),
        {8: "PASS"}, "8"),
    "join_files_path": Variant(
        (("consumer.py", PARTITION_PATH, 'return os.path.join("/files", f"partition-{n}.json")'),
         ("plot.py", PLOT_PATH, 'path = os.path.join("/files", f"partition-{n}.json")'),
         ("plot.py", PLOT_SAVE, 'plt.savefig(os.path.join("/files", "month.svg"))')),
        {6: "PASS", 10: "PASS"}, "6,10"),
    # The assignment names the fields and their types, never their numbers: a Report whose
    # degrees is field 1 and date field 2 is as right, and every message of the topic says so
    # on the wire. A grader that decodes by field number alone fails checks 4 and 7 here.
    "swapped_field_numbers": Variant(
        (("report.proto", "    string date = 1;     // YYYY-MM-DD\n"
                          "    double degrees = 2;  // max temperature that day\n",
          "    double degrees = 1;  // max temperature that day\n"
          "    string date = 2;     // YYYY-MM-DD\n"),
         ("report_pb2.py", DESCRIPTOR_1_2, DESCRIPTOR_2_1)),
        {2: "PASS", 4: "PASS", 7: "PASS"}, "2,4,7"),
    # The draft's rounds kept for no arguments; `consumer.py 0 2` runs forever.
    "rounds_in_threads": Variant(
        (("consumer.py", "import sys\n", "import sys\nimport threading\n"),
         ("consumer.py", "def main():\n    partition_nums = [int(n) for n in sys.argv[1:]]\n",
          "def consume(partition_nums, max_iterations=None):\n"),
         ("consumer.py", POLL_FOREVER,
          "    iterations = 0\n"
          "    while max_iterations is None or iterations < max_iterations:\n"
          "        iterations += 1\n"
          "        batch = consumer.poll(1000)\n"),
         ("consumer.py", 'if __name__ == "__main__":\n    main()\n', ROUNDS_MAIN)),
        {6: "PASS", 7: "PASS"}, "6,7"),

    # ---------------------------------------------------------------- mutants

    # The assignment's own snippet renames inside the `with`: the file is renamed while the end
    # of its text is still in Python's buffer, so a reader can find it empty or cut off (3.7%
    # of a tight reader's reads here). The statistics stay exact: checks 7 and 11 compare the
    # files once the consumers are idle (producer paused). Check 8 is left out on purpose: a
    # kill -9 during a write leaves the file cut off for good (6 of 40 random kills here), a
    # real failure of 8 by the same mistake, so its verdict is down to where the kill lands.
    "rename_inside_with": Variant(
        (("consumer.py", DUMP + "    os.rename(path2, path)\n",
          DUMP + "        os.rename(path2, path)\n"),),
        {7: "PASS", 9: fail("a rename before it was completely written", "after the `with`"),
         11: "PASS"},
        "9,11"),
    "counts_duplicates": Variant(
        (("consumer.py", '    elif date <= data[month][year]["end"]:\n'
                         "        return  # duplicate (a retried send): already counted\n", ""),),
        {7: fail("more than the topic holds", "duplicate")}, "7"),
    # Without a seek, an assigned partition with no committed offset starts at its end: with
    # the producer paused in check 11 it never reads a message, so its files stay at the
    # offsets the grader wrote. The reason must still name the missing seek.
    "never_seeks": Variant(
        (("consumer.py", SEEK, ""),),
        {11: fail("without a seek")}, "11"),  # GUESS
    "seeks_to_zero": Variant(
        (("consumer.py", SEEK, "        consumer.seek(tp, 0)\n"),),
        {11: fail("messages before the saved offsets", "seek to its offset")}, "11"),
    # The position (the end of the batch just polled) saved before the batch is counted: a
    # kill -9 before the next save leaves a file whose offset is past what it counted.
    "offset_saved_before_batch_counted": Variant(
        (("consumer.py", "            data = partitions[tp.partition]\n",
          "            data = partitions[tp.partition]\n" + SAVE_BATCH),
         ("consumer.py", COUNT_CALL + SAVE_BATCH, COUNT_CALL)),
        {8: fail("right after kill -9", "fewer", "together")}, "8"),
    "degrees_truncated": Variant(
        (("consumer.py", COUNT_CALL,
          COUNT_CALL.replace("report.degrees)", "int(report.degrees))")),),
        {7: fail("cut to whole numbers", "int()")}, "7"),
    # Load in one loop, seek in another with the loop variable the first one left behind:
    # every partition seeks to the offset of the last file loaded (partition 3's with 0 1 2 3).
    "seeks_all_to_last_partition_offset": Variant(
        (("consumer.py", LOAD_AND_SEEK,
          "    for tp in topic_partitions:\n"
          "        data = load_partition(tp.partition)\n"
          "        partitions[tp.partition] = data\n"
          "    for tp in topic_partitions:\n"
          '        consumer.seek(tp, data["offset"])\n'),),
        {11: fail("the offset in partition-3.json", "its own file")}, "11"),
    # The starter's hard-coded Series (numbers of its own here) left in place of the one built
    # from the files, which are still read.
    "plot_hardcoded": Variant(
        (("plot.py", "month_series = pd.Series(averages)\n",
          "month_series = pd.Series({\n"
          "    'March-1994': 43.21,\n"
          "    'February-1995': 30.46,\n"
          "    'January-1995': 25.87\n"
          "})\n"),),
        {10: fail("with all four partition files", "no bar shows")}, "10"),
    "plot_earliest_year": Variant(
        (("plot.py", "max(partition[month], key=int)", "min(partition[month], key=int)"),),
        {10: fail("with all four partition files", "latest January, February and March",
                  "no bar shows")}, "10"),
    # Opens partition-0..3.json unconditionally: FileNotFoundError once one is missing (the
    # grader's second run has no partition-3.json, which holds none of the three months).
    "plot_needs_every_file": Variant(
        (("plot.py", "    if not os.path.exists(path):\n        continue\n", ""),),
        {10: fail("with partition-3.json missing", "FileNotFoundError")}, "10"),
    "date_as_key": Variant(
        (("producer.py", 'key=month.encode("utf-8")', 'key=date.encode("utf-8")'),),
        {4: fail("key '19", "the key must be the month's name")}, "4"),
    "acks_1": Variant(
        (("producer.py", 'retries=10, acks="all"', "retries=10, acks=1"),),
        {3: fail('acks="all"', "acks=1")}, "3"),
    # The draft's round 1 left as the whole program: `consumer.py 0 2` polls 30 times (well
    # under a second while the producer runs) and exits, instead of running until killed.
    "consumer_exits": Variant(
        (("consumer.py", POLL_FOREVER,
          "    for i in range(30):\n        batch = consumer.poll(1000)\n"),),
        {7: fail("exited with 0")}, "7"),  # whichever of the two is seen first
}


def make(name, destination):
    """A copy of final/ at `destination` with variant `name`'s changes; returns its files/."""
    return changed_copy(FINAL, VARIANTS[name].changes, destination, f"final_variants.py's {name}")
