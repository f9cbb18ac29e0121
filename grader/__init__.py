"""The P7 grader behind autograde.py. What it requires of a submission, item by item from the
assignment, with the check that tests each: CONTRACT.md.

- registry.py: the checks, their points and what each needs; the order they run in follows
  from that (no hand-kept list), and `--only 9` runs check 9 with what it needs.
- submission.py: the grading copy of files/ (where /files and the broker are, weather.py's pace)
  and pristine_weather.py, the stand-in for a provided weather.py that ignores the pace.
- session.py: one grading session: the copy, the broker (local, or in a container of the
  submission's image or of a given one), the programs it started, and what the topic holds.
- programs.py: the programs as processes or `docker exec`, and a watch on consumer.py's workers.
- evidence.py: what the checks read besides the topic and the partition files: the PNG, the
  folder's files, the programs' sources. The partition files and the concurrent reader that
  parses them while they are replaced are tools/partition_files.py's.
- checks.py: the checks.
- report.py: running a check, the PASS/FAIL table, the JSON results in the course's shape.
- batch.py: --batch, a class of submissions one after another.
- cli.py: the command line (autograde.py hands over to it).

Only cli.py's importer needs to know that kafka-python may be missing: everything here imports
it freely.
"""
