import json
import multiprocessing
import os
import sys

from kafka import KafkaConsumer, TopicPartition

import report_pb2

broker = 'localhost:9092'


def partition_path(n):
    return f"/files/partition-{n}.json"


def save_dict_to_json(data):
    path = partition_path(data["partition"])
    path2 = path + ".tmp"
    with open(path2, "w") as f:
        json.dump(data, f, indent=2)
    os.rename(path2, path)


def load_partition(n):
    if not os.path.exists(partition_path(n)):
        save_dict_to_json({"partition": n, "offset": 0})
    with open(partition_path(n)) as f:
        return json.load(f)


def count(data, month, date, degrees):
    year = date[:4]
    years = data.setdefault(month, {})
    if year not in years:
        years[year] = {"count": 0, "sum": 0, "avg": 0, "end": date, "start": date}
    elif date <= years[year]["end"]:
        return  # a duplicate: this date was counted already
    stats = years[year]
    stats["count"] += 1
    stats["sum"] += degrees
    stats["avg"] = stats["sum"] / stats["count"]
    stats["end"] = date


def consume(partition_nums_to_consume, max_iterations):
    consumer = KafkaConsumer(bootstrap_servers=[broker])
    topic_partitions = [TopicPartition("temperatures", n) for n in partition_nums_to_consume]
    consumer.assign(topic_partitions)

    partitions = {}
    for tp in topic_partitions:
        partitions[tp.partition] = load_partition(tp.partition)
        consumer.seek(tp, partitions[tp.partition]["offset"])

    iteration_count = 0
    while max_iterations is None or iteration_count < max_iterations:
        batch = consumer.poll(1000) # 1s timeout
        for tp, messages in batch.items():
            data = partitions[tp.partition]
            for message in messages:
                report = report_pb2.Report.FromString(message.value)
                count(data, message.key.decode("utf-8"), report.date, report.degrees)
            data["offset"] = consumer.position(tp)
            save_dict_to_json(data)
        if max_iterations is not None: iteration_count += 1

    print("exiting")


def run_round(groups, max_iterations, wait):
    processes = [multiprocessing.Process(target=consume, args=(group, max_iterations))
                 for group in groups]
    for process in processes:
        process.start()
    if wait:
        for process in processes:
            process.join()


if __name__ == "__main__":
    # `consumer.py 0 2`: one consumer for partitions 0 and 2; no arguments: two consumers
    # sharing the four partitions. Either way the two rounds: 30 iterations, then forever.
    if len(sys.argv) > 1:
        groups = [[int(n) for n in sys.argv[1:]]]
    else:
        groups = [[0, 1], [2, 3]]
    run_round(groups, 30, wait=True)     # round 1: the consumers stop (as if they died)
    run_round(groups, None, wait=False)  # round 2: they pick up where round 1 left off
