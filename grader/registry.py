"""The checks: number, what each proves, its points, and its dependencies.

A check says what it depends on in two ways:
- needs: checks it cannot do without (check 9 judges the reader that check 7 started); they run
  first and `--only` pulls them in.
- after: checks that must come first when both run, because of what they do to the shared topic
  and folder (check 6 wants the topic before any producer, check 11 deletes the files that check
  9's reader watches). Neither is pulled in by `--only`.
The run order is the dependency order, lower numbers first where the dependencies leave a
choice.

The assignment has two versions (grader/CONTRACT.md has a column for each): the draft this
project implements (`shared/assignment.md`) and the course's final version
(`shared/assignment-final.md`), which its students submitted. A check is registered for the
versions it applies to; a number may have a different check in each (7 and 10 do).
"""

from dataclasses import dataclass

SKIPPED = None              # the `passed` value of a check that does not apply
VERSIONS = ("draft", "final")


class CheckFailed(Exception):
    """Raised inside a check: the check fails with this sentence as its reason."""


class EnvironmentProblem(CheckFailed):
    """A program died of something the course's image would have given it (a package it has):
    the grader's environment failed, not the student. The check is reported as ENVIRONMENT and
    counts neither for nor against the submission."""


class PlanError(Exception):
    """The checks asked for cannot be run as asked (an unknown number)."""


@dataclass(frozen=True)
class Check:
    number: int
    name: str
    points: int
    run: object                 # function(session) -> (passed, reason)
    needs_broker: bool = True
    needs: tuple = ()
    after: tuple = ()

    @property
    def title(self):
        return f"{self.number}. {self.name}"


CHECKS = {version: {} for version in VERSIONS}   # {version: {number: Check}}


def check(number, name, points, needs_broker=True, needs=(), after=(), versions=VERSIONS):
    """Register the decorated function as check `number` of each of `versions`."""
    def register(function):
        for version in versions:
            if number in CHECKS[version]:
                raise ValueError(f"check {number} of the {version} version is registered twice")
            CHECKS[version][number] = Check(number, name, points, function, needs_broker,
                                            tuple(needs), tuple(after))
        return function
    return register


def plan(only=None, checks=None, version="draft"):
    """The checks of `version` to run, in order: all of them, or those numbered in `only`
    together with what they need."""
    checks = CHECKS[version] if checks is None else checks
    wanted = set(checks) if not only else set()
    pending = list(only or ())
    while pending:
        number = pending.pop()
        if number not in checks:
            raise PlanError(f"there is no check {number} in the {version} version (its "
                            f"checks are {', '.join(map(str, sorted(checks)))})")
        if number not in wanted:
            wanted.add(number)
            pending.extend(checks[number].needs)
    order = []
    while len(order) < len(wanted):
        ready = [n for n in sorted(wanted - set(order))
                 if all(d in order for d in checks[n].needs + checks[n].after if d in wanted)]
        if not ready:
            raise PlanError("the checks' dependencies go round in a circle: "
                            f"{sorted(wanted - set(order))}")
        order.append(ready[0])
    return [checks[n] for n in order]


def require(condition, reason):
    if not condition:
        raise CheckFailed(reason)
