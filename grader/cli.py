"""autograde.py's command line: which submission, natively or in Docker, which checks."""

import argparse
import signal
import sys
import time
from pathlib import Path

from tools import harness, p7check

from . import checks  # noqa: F401  (registers the eleven checks)
from .registry import PlanError, plan
from .report import all_passed, grade, print_table, write_json
from .session import Session

def check_numbers(text):
    """`7` or `2,3,7`: the checks --only asks for."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of check "
                                         "numbers, like 7 or 2,3,7") from None


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="autograde.py",
                                     description="Grade the P7 programs against a real Kafka "
                                                 "broker.")
    parser.add_argument("--docker", action="store_true",
                        help="build the submission's image (under a tag of its own) and run every "
                             "program in a container of it with `docker exec`")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--files", metavar="DIR", default=str(harness.FILES),
                        help="the files folder to grade (default: files/ next to autograde.py); "
                             "its parent holds the Dockerfile")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary grading folder (copies and program logs)")
    parser.add_argument("--only", metavar="N[,N...]", type=check_numbers,
                        help="run only these checks and the checks they need (e.g. --only 9 "
                             "runs 7 and 9)")
    return parser.parse_args(argv)


def raise_system_exit(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(argv)
    try:
        checks_to_run = plan(args.only)
    except PlanError as err:
        print(f"autograde.py: {err}.", file=sys.stderr)
        return 2
    files = Path(args.files).resolve()
    if not files.is_dir():
        print(f"autograde.py: {files} is not a folder: pass the submission's files folder with "
              "--files.", file=sys.stderr)
        return 2
    if args.docker and not harness.engine_answers():
        print("autograde.py: no Docker engine answers (`docker info` fails): start Docker, or "
              "grade natively without --docker.", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, raise_system_exit)  # a stopped grader still cleans up
    started = time.monotonic()
    session = Session(files, docker=args.docker, keep=args.keep)
    where = "docker" if args.docker else f"native, Kafka at {p7check.bootstrap()}"
    print(f"grading {files} ({where})", flush=True)
    try:
        results = grade(session, checks_to_run)
    except KeyboardInterrupt:
        print("\nautograde.py: interrupted; stopped every program it started.", file=sys.stderr)
        return 130
    finally:
        session.cleanup()
    print_table(results, time.monotonic() - started, partial=bool(args.only))
    if args.json:
        write_json(results, Path(args.json))
    return 0 if all_passed(results) else 1
