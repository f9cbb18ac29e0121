import json
import os

import pandas as pd
import matplotlib.pyplot as plt

months = ["January", "February", "March"]
averages = {}

# partitions are 0-3; look for the three months in whichever files exist
for n in range(4):
    path = f"/files/partition-{n}.json"
    if not os.path.exists(path):
        continue
    with open(path) as f:
        partition = json.load(f)
    for month in months:
        if month in partition:
            latest = max(partition[month], key=int)  # the most recent year
            averages[f"{month}-{latest}"] = partition[month][latest]["avg"]

month_series = pd.Series(averages)

fig, ax = plt.subplots()
month_series.plot.bar(ax=ax)
ax.set_ylabel('Avg. Max Temperature')
plt.tight_layout()
plt.savefig("/files/month.svg")
