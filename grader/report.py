"""Running the planned checks one after the other, and reporting them: a line per check as it
runs (with its seconds), then the PASS/FAIL table with points, and the results as JSON in the
course grader's shape ({"score", "full_score", "tests": {check: "PASS (n/n)" or why not}}),
with each check's details and the notes on the grading copy beside it."""

import json
import textwrap
import time

from tools.harness import DockerError, ProgramTimeout

from .registry import SKIPPED, CheckFailed, EnvironmentProblem

ENVIRONMENT = "environment"     # the `passed` value of a check the grader's environment failed


def run_check(session, check):
    """The result of one check; whatever goes wrong inside fails that check alone."""
    started = time.monotonic()
    print(f"[{check.number:2}] {check.name} ...", end=" ", flush=True)
    if check.needs_broker and session.setup_error:
        prefix = "not graded" if session.setup_refused else "no broker"
        passed, reason = False, f"{prefix}: {session.setup_error}"
    else:
        try:
            passed, reason = check.run(session)
        except EnvironmentProblem as err:
            passed, reason = ENVIRONMENT, str(err)
        except (CheckFailed, AssertionError, ProgramTimeout) as err:  # and wait_until's deadlines
            passed, reason = False, str(err)
        except Exception as err:  # noqa: BLE001  (a crashing check fails alone)
            passed, reason = False, f"the check crashed: {err.__class__.__name__}: {err}"
    if passed is False:
        try:
            session.require_container_running()
        except DockerError as err:  # the likely reason: say it with the container's log
            reason = f"{reason}; {err}"
    status = "SKIPPED" if passed is SKIPPED else "ENVIRONMENT" if passed == ENVIRONMENT \
        else "PASS" if passed else "FAIL"
    print(f"{status} ({time.monotonic() - started:.1f} s)", flush=True)
    # Neither a check that does not apply nor one the environment failed counts in the total.
    counts = status in ("PASS", "FAIL")
    return {"number": check.number, "check": check.title, "status": status,
            "passed": passed is True, "points": check.points if passed is True else 0,
            "max_points": check.points if counts else 0, "reason": reason}


def grade(session, checks, json_path=None):
    """Run `checks` in their planned order; the results in the order of their numbers. The
    broker comes up before the first check that needs it. With `json_path`, the results so far
    are written after every check, so that a grading stopped from outside leaves them."""
    results = []
    for check in checks:
        if check.needs_broker and session.admin is None and session.setup_error is None:
            session.setup()
        results.append(run_check(session, check))
        if json_path is not None:
            write_json(sorted(results, key=lambda r: r["number"]), json_path, session.notes,
                       session.summary())
    return sorted(results, key=lambda result: result["number"])


def print_table(results, elapsed, partial=False, notes=(), summary=None):
    print()
    print(f"{'#':>2}  {'check':<66} {'result':<11} {'points':>7}")
    for result in results:
        print(f"{result['number']:>2}  {result['check'][len(str(result['number'])) + 2:]:<66} "
              f"{result['status']:<11} {result['points']:>3}/{result['max_points']:<3}")
        if result["status"] != "PASS" and result["reason"]:
            for line in textwrap.wrap(result["reason"], 88):
                print(f"      {line}")
    for note in notes:
        print(textwrap.fill(f"note: {note}", 92, subsequent_indent="      "))
    for name, text in (summary or {}).get("lines", {}).items():
        print(textwrap.fill(f"{name}: {text}", 92, subsequent_indent="      "))
    score, total = totals(results)
    failed = [r["number"] for r in results if r["status"] == "FAIL"]
    verdict = "all checks pass" if not failed else f"failed: {', '.join(map(str, failed))}"
    if partial:
        verdict = f"only checks {', '.join(str(r['number']) for r in results)}; {verdict}"
    print(f"\nscore: {score}/{total} ({verdict}; {elapsed:.0f} s)")


def totals(results):
    return sum(r["points"] for r in results), sum(r["max_points"] for r in results)


def outcome(result):
    """The course grader's word on one check: "PASS (n/n)", or why it did not pass."""
    if result["status"] == "PASS":
        return f"PASS ({result['points']}/{result['max_points']})"
    return f"{result['status']} (0/{result['max_points']}): {result['reason']}"


def course_json(results, notes=(), summary=None):
    """The course grader's shape, then what this grader adds: the version graded and why, the
    consumers' measured throughput, the notes and each check's details."""
    score, total = totals(results)
    found = {key: value for key, value in (summary or {}).items() if key != "lines"}
    return {"score": score, "full_score": total,
            "tests": {result["check"]: outcome(result) for result in results},
            **found, "notes": list(notes), "checks": results}


def write_json(results, path, notes=(), summary=None):
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(course_json(results, notes, summary), indent=2) + "\n")
    temporary.replace(path)


def all_passed(results):
    return all(r["status"] != "FAIL" for r in results)
