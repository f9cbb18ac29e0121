"""autograde.py's command line: which submission (or a class of them), natively or in Docker,
which checks."""

import argparse
import signal
import sys
import time
from pathlib import Path

from tools import harness, p7check

from . import checks  # noqa: F401  (registers the checks)
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
                                     description="Grade P7 submissions against a real Kafka "
                                                 "broker.")
    parser.add_argument("--docker", action="store_true",
                        help="build the submission's image from its Dockerfile (under a tag of "
                             "its own) and run every program in a container of it")
    parser.add_argument("--image", metavar="IMAGE", nargs="?", const="p7",
                        help="run the programs in a container of IMAGE (default p7, the image "
                             "this project's Dockerfile builds) with the submission's files/ "
                             "at /files, for a submission whose own Dockerfile cannot be built")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--files", metavar="DIR", default=str(harness.FILES),
                        help="the files folder to grade (default: files/ next to autograde.py); "
                             "its parent holds the Dockerfile")
    parser.add_argument("--batch", metavar="DIR",
                        help="grade every submission in DIR (a folder holding files/, or a "
                             "files folder itself), one after another; results in "
                             "DIR/autograde-results/")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                        help="with --batch: stop grading one submission after this long and "
                             "grade it as far as it got (default 900)")
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
    docker = args.docker or args.image is not None
    if docker and not harness.engine_answers():
        print("autograde.py: no Docker engine answers (`docker info` fails): start Docker, or "
              "grade natively without --docker and --image.", file=sys.stderr)
        return 2
    if args.image is not None:
        try:
            harness.docker("image", "inspect", args.image)
        except harness.DockerError:
            print(f"autograde.py: there is no Docker image {args.image}: build this project's "
                  "with `docker build . -t p7` in its folder, or name another with --image.",
                  file=sys.stderr)
            return 2
    if args.batch:
        from .batch import grade_class
        return grade_class(Path(args.batch), args, checks_to_run)
    if args.timeout is not None:
        print("autograde.py: --timeout goes with --batch.", file=sys.stderr)
        return 2
    files = Path(args.files).resolve()
    if not files.is_dir():
        print(f"autograde.py: {files} is not a folder: pass the submission's files folder with "
              "--files.", file=sys.stderr)
        return 2

    signal.signal(signal.SIGTERM, raise_system_exit)  # a stopped grader still cleans up
    started = time.monotonic()
    session = Session(files, docker=args.docker, image=args.image, keep=args.keep)
    where = f"docker, image {args.image}" if args.image else "docker" if args.docker \
        else f"native, Kafka at {p7check.bootstrap()}"
    print(f"grading {files} ({where})", flush=True)
    json_path = Path(args.json) if args.json else None
    try:
        results = grade(session, checks_to_run, json_path)
    except KeyboardInterrupt:
        print("\nautograde.py: interrupted; stopped every program it started.", file=sys.stderr)
        return 130
    finally:
        session.cleanup()
    print_table(results, time.monotonic() - started, partial=bool(args.only),
                notes=session.notes)
    if json_path:
        write_json(results, json_path, session.notes)
    return 0 if all_passed(results) else 1
