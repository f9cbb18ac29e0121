"""The P7 grader behind autograde.py.

- registry.py: the checks, their points and what each needs; the order they run in follows
  from that (no hand-kept list), and `--only 9` runs check 9 with what it needs.
- session.py: one grading session: the temporary copy of files/, the broker (local or in the
  submission's container), the programs it started, and what the topic holds.
- evidence.py: what the checks read besides the topic: partition files, a concurrent reader,
  the programs' sources.
- checks.py: the eleven checks.
- report.py: running a check, the PASS/FAIL table, the JSON results.
- cli.py: the command line (autograde.py hands over to it).

Only cli.py's importer needs to know that kafka-python may be missing: everything here imports
it freely.
"""
