"""autograde.py's command line: which submission (or a class of them), natively or in Docker,
which checks."""

import argparse
import signal
import sys
import time
from pathlib import Path

from tools import harness, p7check

from . import checks  # noqa: F401  (registers the checks)
from . import version
from .registry import VERSIONS, PlanError, plan
from .report import all_passed, grade, print_table, write_json
from .session import COURSE_IMAGE, ENVIRONMENTS, Session


def check_numbers(text):
    """`7` or `2,3,7`: the checks --only asks for."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of check "
                                         "numbers, like 7 or 2,3,7") from None


def positive_number(text):
    """--jobs: a whole number from 1 up."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="autograde.py",
                                     description="Grade P7 submissions against a real Kafka "
                                                 "broker.")
    parser.add_argument("--docker", action="store_true",
                        help="build the submission's image from its Dockerfile (under a tag of "
                             "its own) and run every program in a container of it")
    parser.add_argument("--image", metavar="IMAGE", nargs="?", const=COURSE_IMAGE,
                        help="run the programs in a container of IMAGE with the submission's "
                             "files/ at /files, for a submission whose own Dockerfile cannot be "
                             "built; without IMAGE, the course's environment: this project's "
                             "Dockerfile built once with the course image's packages "
                             "(p7 names this project's own image)")
    parser.add_argument("--env", choices=ENVIRONMENTS, default=None,
                        help="natively, the packages the programs run with: the course "
                             "image's (grader/course.lock, a venv built once; the default) or "
                             "this project's (requirements.txt; the default for this project's "
                             "own files/)")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--files", metavar="DIR", default=str(harness.FILES),
                        help="the files folder to grade (default: files/ next to autograde.py); "
                             "its parent holds the Dockerfile")
    parser.add_argument("--native", action="store_true",
                        help="run the programs on this machine, in the native sandbox (the "
                             "default for one submission; --batch needs it when no Docker "
                             "engine answers)")
    parser.add_argument("--batch", metavar="DIR",
                        help="grade every submission in DIR (a folder holding files/, or a "
                             "files folder itself); each in a container of the course's "
                             "environment when a Docker engine answers, else with --native; "
                             "results in DIR/autograde-results/. Ctrl-C or SIGTERM stops it "
                             "cleanly: the table of what was graded, the rest listed as not "
                             "graded, exit code 130 or 143")
    parser.add_argument("--jobs", metavar="N", type=positive_number, default=1,
                        help="with --batch: grade N submissions at once, each with a broker "
                             "of its own (default 1)")
    parser.add_argument("--timeout", metavar="SECONDS", type=float, default=None,
                        help="with --batch: stop grading one submission after this long and "
                             "grade it as far as it got (default 900)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary grading folder (copies and program logs); "
                             "with --batch, each submission's as "
                             "DIR/autograde-results/NAME-logs/")
    parser.add_argument("--version", choices=(version.AUTO, *VERSIONS), default=version.AUTO,
                        help="which version of the assignment to grade: the draft "
                             "(shared/assignment.md) or the course's final version "
                             "(shared/assignment-final.md); auto (the default) tells them apart "
                             "by the submission's files and says why")
    parser.add_argument("--only", metavar="N[,N...]", type=check_numbers,
                        help="run only these checks and the checks they need (e.g. --only 9 "
                             "runs 7 and 9)")
    return parser.parse_args(argv)


def raise_system_exit(signum, frame):
    raise SystemExit(128 + signum)


def main(argv=None):
    args = parse_args(argv)
    # --only must make sense in the version asked for (with auto: in one of them).
    candidates = VERSIONS if args.version == version.AUTO else [args.version]
    plans, refusals = {}, []
    for candidate in candidates:
        try:
            plans[candidate] = plan(args.only, version=candidate)
        except PlanError as err:
            refusals.append(err)
    if not plans:
        print(f"autograde.py: {refusals[0]}.", file=sys.stderr)
        return 2
    checks_to_run = plans[candidates[-1]] if candidates[-1] in plans else next(iter(
        plans.values()))
    docker = args.docker or args.image is not None
    if args.native and docker:
        print("autograde.py: --native grades without Docker: drop --docker and --image, or "
              "--native.", file=sys.stderr)
        return 2
    if args.batch and not docker and not args.native:
        # A class is graded in containers unless asked otherwise: the native sandbox keeps a
        # submission from the grader and the others, but it runs on this machine.
        if not harness.engine_answers():
            print("autograde.py: no Docker engine answers (`docker info` fails), and --batch "
                  "grades each submission in a container: start Docker, or pass --native to "
                  "grade the class on this machine (in the native sandbox).", file=sys.stderr)
            return 2
        args.image = COURSE_IMAGE
        docker = True
        print("grading each submission in a container of the course's environment (a Docker "
              "engine answers; --native grades on this machine)", flush=True)
    if args.jobs != 1 and not args.batch:
        print("autograde.py: --jobs goes with --batch.", file=sys.stderr)
        return 2
    if docker and not harness.engine_answers():
        print("autograde.py: no Docker engine answers (`docker info` fails): start Docker, or "
              "grade natively without --docker and --image.", file=sys.stderr)
        return 2
    if args.image not in (None, COURSE_IMAGE):
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

    if args.version == version.AUTO:
        graded, why = version.detect(files)
        why = f"told apart by {why}"
    else:
        graded, why = args.version, "asked for with --version"
    if graded not in plans:
        print(f"autograde.py: the submission is graded as the {graded} version ({why}), which "
              f"has no such check: {refusals[0]}; pass --version.", file=sys.stderr)
        return 2
    checks_to_run = plans[graded]

    signal.signal(signal.SIGTERM, raise_system_exit)  # a stopped grader still cleans up
    started = time.monotonic()
    # This project's own files/ are written for its own pins (the p7 image's), a student's for
    # the course image's.
    environment = args.env or ("project" if files == harness.FILES.resolve() else "course")
    image = args.image
    if image == COURSE_IMAGE and environment == "project":
        image = "p7"
    session = Session(files, docker=args.docker, image=image, keep=args.keep,
                      version=graded, environment=environment)
    where = f"docker, image {image}" if image else "docker" if args.docker \
        else f"native, Kafka at {p7check.bootstrap()}, {environment} packages"
    print(f"grading {files} ({where})", flush=True)
    print(f"version: the {graded} version of P7 ({why})", flush=True)
    session.version_reason = why
    json_path = Path(args.json) if args.json else None
    try:
        results = grade(session, checks_to_run, json_path)
    except KeyboardInterrupt:
        print("\nautograde.py: interrupted; stopped every program it started.", file=sys.stderr)
        return 130
    finally:
        session.cleanup()
    print_table(results, time.monotonic() - started, partial=bool(args.only),
                notes=session.notes, summary=session.summary())
    if json_path:
        write_json(results, json_path, session.notes, session.summary())
    return 0 if all_passed(results) else 1
