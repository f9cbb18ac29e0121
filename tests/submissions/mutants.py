"""The classic mistakes, each a few lines changed in a copy of plain/ at test time.

MUTANTS[name] = Mutant(changes, check, reason_words): `changes` are (file, old text, new text)
replacements, each old text found exactly once; `check` is the check that must fail, with a
reason that holds each of `reason_words` (what tells the student what to fix); `only` is what
autograde.py --only runs for it (the check and what it needs).
"""

import shutil
from dataclasses import dataclass
from pathlib import Path

PLAIN = Path(__file__).resolve().parent / "plain"


@dataclass(frozen=True)
class Mutant:
    changes: tuple
    check: int
    reason_words: tuple
    only: str


SEEK = '        consumer.seek(tp, partitions[tp.partition]["offset"])\n'

MUTANTS = {
    "counts_duplicates": Mutant(
        (("consumer.py", '    elif date <= years[year]["end"]:\n'
                         "        return  # a duplicate: this date was counted already\n", ""),),
        7, ("more than the topic holds", "duplicate"), "7"),
    "writes_in_place": Mutant(
        (("consumer.py", '    path2 = path + ".tmp"\n    with open(path2, "w") as f:\n'
                         "        json.dump(data, f, indent=2)\n    os.rename(path2, path)\n",
          '    with open(path, "w") as f:\n        json.dump(data, f, indent=2)\n'),),
        9, ("did not parse", ".tmp", "rename"), "9"),
    "seeks_to_zero_on_restart": Mutant(
        (("consumer.py", SEEK, "        consumer.seek(tp, 0)\n"),),
        11, ("messages before the saved offsets", "seek to its offset"), "11"),
    "never_seeks": Mutant(
        (("consumer.py", SEEK, ""),),
        11, ("miss messages after the saved offsets", "without a seek"), "11"),
    "offset_saved_before_its_batch_is_counted": Mutant(
        (("consumer.py", "            data = partitions[tp.partition]\n",
          "            data = partitions[tp.partition]\n"
          '            data["offset"] = consumer.position(tp)\n'
          "            save_dict_to_json(data)\n"),
         ("consumer.py", '                count(data, message.key.decode("utf-8"), report.date, '
                         'report.degrees)\n            data["offset"] = consumer.position(tp)\n'
                         "            save_dict_to_json(data)\n",
          '                count(data, message.key.decode("utf-8"), report.date, '
          'report.degrees)\n')),
        8, ("right after kill -9", "fewer", "together"), "8"),
    "date_as_key": Mutant(
        (("producer.py", 'key=month.encode("utf-8")', 'key=date.encode("utf-8")'),),
        4, ("key '19", "the key must be the month's name"), "4"),
    "acks_1": Mutant(
        (("producer.py", "retries=10, acks='all'", "retries=10, acks=1"),),
        3, ('acks="all"', "acks=1"), "3"),
    "topic_not_deleted": Mutant(
        (("producer.py", "from kafka.errors import UnknownTopicOrPartitionError",
          "from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError"),
         ("producer.py", '    admin_client.delete_topics(["temperatures"])\n',
          "    pass\n"),
         ("producer.py", "admin_client.create_topics([temperatures_topic])\n",
          "try:\n    admin_client.create_topics([temperatures_topic])\n"
          "except TopicAlreadyExistsError:\n    pass\n")),
        3, ("sent to the topic that was there before", "delete"), "3"),
}


def make(name, destination):
    """A copy of plain/ at `destination` with mutant `name`'s changes; returns its files/."""
    return changed_copy(PLAIN, MUTANTS[name].changes, destination, f"mutants.py's {name}")


def changed_copy(base, changes, destination, what):
    """A copy of the submission `base` at `destination` with `changes` ((file, old text, new
    text), each old text found exactly once) made in its files/; returns that files/."""
    shutil.copytree(base, destination, ignore=shutil.ignore_patterns("__pycache__"))
    files = destination / "files"
    for file, old, new in changes:
        path = files / file
        source = path.read_text()
        assert source.count(old) == 1, f"{what}: {old!r} is not once in {file}: update it"
        path.write_text(source.replace(old, new))
    return files
