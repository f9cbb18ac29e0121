import json
import time

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt

target_month = "January"


def find_partition_file(month):
    for n in range(4):
        try:
            with open(f"/files/partition-{n}.json") as f:
                if month in json.load(f):
                    return f"/files/partition-{n}.json"
        except (OSError, ValueError):
            pass
    return None


partition_file_with_tgt = None

fig, ax = plt.subplots()
while True:
    time.sleep(5)

    try:
        if partition_file_with_tgt is None:
            partition_file_with_tgt = find_partition_file(target_month)
        with open(partition_file_with_tgt) as f:
            years = json.load(f)[target_month]
        x = sorted(years)
        y = [years[year]["avg"] for year in x]
    except Exception as e:
        print("Failed reading partition for January, retrying...")
        continue

    ax.clear()
    ax.bar(x, y)
    ax.set_xlabel('Year')
    ax.set_ylabel('Avg. Max Temperature for January')
    ax.set_title('Avg. Max Temperatures per year')
    plt.xticks(rotation=90)
    plt.tight_layout()

    plt.savefig('/files/yearly_trends.png')
    print("Refreshed Graph")
