#!/usr/bin/env python3
"""Grade P7 submissions against a real Kafka broker, by what the assignment asks.

    python3 autograde.py                  # native: files/ next to this file, the launcher's broker
    python3 autograde.py --files DIR      # another submission's files folder
    python3 autograde.py --docker         # in a container of the submission's own image
    python3 autograde.py --image [IMAGE]  # in a container of IMAGE with files/ at /files (default:
                                          # this project's image with the course's packages)
    python3 autograde.py --version final  # the course's final version (default: told apart)
    python3 autograde.py --batch DIR      # every submission in DIR, one after another
    python3 autograde.py --json out.json  # also write the results (the course grader's shape)
    python3 autograde.py --only 9         # check 9 and the checks it needs (here 7)

What each check requires, item by item from either version of the assignment (the draft, or the
course's final version): grader/CONTRACT.md. The programs never run in the graded folder
itself: its sources are copied to a temporary folder (the committed sample outputs stay
untouched) and run there, from the folder that holds it as `docker exec` runs them, with the
course image's packages (a venv built once), or inside a container that mounts the copy as
/files. Every statistic is compared with what tools/p7check.py recomputes
from the messages in the topic, and every wait has a deadline. Exit status: 0 when every check
passes, 1 when one fails, 2 when grading is impossible here (no kafka-python, no Docker engine,
no files folder).

The grader itself is the grader/ package; this file only makes sure it runs with the project's
packages.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent

try:
    from grader import cli
except ImportError as import_error:
    cli = None
    MISSING_DEPENDENCY = import_error.name or "kafka-python"


def use_the_project_venv():
    """`python3 autograde.py`, as the assignment says, runs with whatever python3 is first on
    PATH: without the project's packages, hand over to the .venv that `make venv` made."""
    venv_python = ROOT / ".venv" / "bin" / "python"
    if venv_python.exists() and not os.environ.get("P7_AUTOGRADE_IN_VENV"):
        os.environ["P7_AUTOGRADE_IN_VENV"] = "1"
        os.execv(str(venv_python), [str(venv_python), str(Path(__file__).resolve()),
                                    *sys.argv[1:]])


def main(argv=None):
    if cli is None:
        use_the_project_venv()
        print(f"autograde.py needs kafka-python, protobuf and grpcio-tools, but {sys.executable} "
              f"cannot import {MISSING_DEPENDENCY}: run `make venv` and use "
              "`.venv/bin/python autograde.py`.", file=sys.stderr)
        return 2
    return cli.main(argv)


if __name__ == "__main__":
    sys.exit(main())
