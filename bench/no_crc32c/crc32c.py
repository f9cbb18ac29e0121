"""Hides the crc32c package: bench.py puts this folder first on a child's PYTHONPATH, the import
fails, and kafka-python falls back to its pure-Python CRC32C (kafka/record/util.py tries
`from crc32c import crc32c` and catches the ImportError). Nothing is uninstalled."""

raise ImportError("the crc32c package is hidden for this benchmark run (bench/no_crc32c)")
