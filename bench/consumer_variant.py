"""files/consumer.py with some of its stats workers' CONSUMER_CONFIG overridden, for comparisons.

    P7_BENCH_CONSUMER_KWARGS='{"max_poll_records": 500}' PYTHONPATH=files \
        python bench/consumer_variant.py 0 1 2 3 --dir D

Everything else is consumer.py itself (its main(), its files, its signals): bench.py uses it to
show what consumer.py's fetch settings are worth against kafka-python's defaults in the same run.
"""

import json
import os
import sys

import consumer  # files/consumer.py (PYTHONPATH=files, as bench.py sets it)

OVERRIDE = json.loads(os.environ.get("P7_BENCH_CONSUMER_KWARGS") or "{}")
consumer.CONSUMER_CONFIG.update(OVERRIDE)

if __name__ == "__main__":
    sys.exit(consumer.main(sys.argv[1:]))
