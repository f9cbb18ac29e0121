import json
import os
import sys

from kafka import KafkaConsumer, TopicPartition

import report_pb2

broker = 'localhost:9092'


def partition_path(n):
    return f"/files/partition-{n}.json"


def save_partition(data):
    # write a new version next to the file, then rename it over the old one (atomic)
    path = partition_path(data["partition"])
    path2 = path + ".tmp"
    with open(path2, "w") as f:
        json.dump(data, f, indent=2)
    os.rename(path2, path)


def load_partition(n):
    if not os.path.exists(partition_path(n)):
        save_partition({"partition": n, "offset": 0})
    with open(partition_path(n)) as f:
        return json.load(f)


def update_stats(data, month, date, degrees):
    year = date[:4]
    if month not in data:
        data[month] = {}
    if year not in data[month]:
        data[month][year] = {"count": 0, "sum": 0, "avg": 0, "start": date, "end": date}
    elif date <= data[month][year]["end"]:
        return  # duplicate (a retried send): already counted
    stats = data[month][year]
    stats["count"] += 1
    stats["sum"] += degrees
    stats["avg"] = stats["sum"] / stats["count"]
    stats["end"] = date


def main():
    partition_nums = [int(n) for n in sys.argv[1:]]
    consumer = KafkaConsumer(bootstrap_servers=[broker])
    topic_partitions = [TopicPartition("temperatures", n) for n in partition_nums]
    consumer.assign(topic_partitions)

    partitions = {}  # partition number -> that partition's dict
    for tp in topic_partitions:
        partitions[tp.partition] = load_partition(tp.partition)
        consumer.seek(tp, partitions[tp.partition]["offset"])

    while True:
        batch = consumer.poll(1000)
        for tp, messages in batch.items():
            data = partitions[tp.partition]
            for message in messages:
                report = report_pb2.Report.FromString(message.value)
                update_stats(data, message.key.decode("utf-8"), report.date, report.degrees)
            data["offset"] = consumer.position(tp)
            save_partition(data)


if __name__ == "__main__":
    main()
