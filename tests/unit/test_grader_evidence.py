"""What the grader reads from a submission's source, without running it: the KafkaProducer's
settings, written as keywords (the assignment's snippet) or kept as data (files/producer.py)."""

import os

from grader.evidence import calls_to
from tools import p7check
from tools.harness import FILES
from tools.partition_files import read_json

KEYWORDS = '''
from kafka import KafkaProducer
producer = KafkaProducer(bootstrap_servers=["localhost:9092"], retries=10, acks="all")
'''

AS_DATA = '''
import kafka
CONFIG = {"acks": "all", "retries": 10, "linger_ms": 5}
def make():
    return kafka.KafkaProducer(bootstrap_servers=["x:1"], **CONFIG)
'''


def settings(tmp_path, source):
    path = tmp_path / "producer.py"
    path.write_text(source)
    return list(calls_to(path, "KafkaProducer"))


def test_keywords_are_read(tmp_path):
    assert settings(tmp_path, KEYWORDS) == [{"bootstrap_servers": ["localhost:9092"],
                                             "retries": 10, "acks": "all"}]


def test_a_module_level_settings_dict_counts_as_keywords(tmp_path):
    assert settings(tmp_path, AS_DATA) == [{"bootstrap_servers": ["x:1"], "acks": "all",
                                            "retries": 10, "linger_ms": 5}]


def test_an_unknown_name_adds_nothing(tmp_path):
    found = settings(tmp_path, AS_DATA.replace("**CONFIG", "**OTHER"))
    assert found == [{"bootstrap_servers": ["x:1"]}]


def test_the_reference_producer_asks_for_acks_all_and_10_retries():
    found = list(calls_to(FILES / "producer.py", "KafkaProducer"))
    assert any(kw.get("acks") == "all" and kw.get("retries") == 10 for kw in found), found


def test_a_partition_file_that_is_no_regular_file_reads_as_nothing_at_once(tmp_path):
    # open() of a FIFO would wait for a writer for ever: the grader would hang on it.
    fifo = tmp_path / "partition-0.json"
    os.mkfifo(fifo)
    deep = tmp_path / "partition-1.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    assert read_json(fifo) is None and read_json(deep) is None and read_json(tmp_path) is None
    assert p7check.partition_offsets(tmp_path, [0, 1]) == {0: -1, 1: -1}
