"""files/consumer.py with some KafkaConsumer keyword arguments overridden, for comparisons.

    P7_BENCH_CONSUMER_KWARGS='{"max_poll_records": 500}' python bench/consumer_variant.py 0 1 2 3 --dir D

Everything else is consumer.py itself (its main(), its files, its signals): bench.py uses it to
show what consumer.py's fetch settings are worth against kafka-python's defaults in the same run.
"""

import json
import os
import sys


import consumer

OVERRIDE = json.loads(os.environ.get("P7_BENCH_CONSUMER_KWARGS") or "{}")
_KafkaConsumer = consumer.KafkaConsumer


def kafka_consumer_with_override(*args, **kwargs):
    kwargs.update(OVERRIDE)
    return _KafkaConsumer(*args, **kwargs)


consumer.KafkaConsumer = kafka_consumer_with_override

if __name__ == "__main__":
    sys.exit(consumer.main(sys.argv[1:]))
