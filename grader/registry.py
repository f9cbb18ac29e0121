"""The checks: number, what each proves, its points, and its dependencies.

A check says what it depends on in two ways:
- needs: checks it cannot do without (check 9 judges the reader that check 7 started); they run
  first and `--only` pulls them in.
- after: checks that must come first when both run, because of what they do to the shared topic
  and folder (check 6 wants the topic before any producer, check 11 deletes the files that check
  9's reader watches). Neither is pulled in by `--only`.
The run order is the dependency order, lower numbers first where the dependencies leave a
choice.
"""

from dataclasses import dataclass

SKIPPED = None              # the `passed` value of a check that does not apply


class CheckFailed(Exception):
    """Raised inside a check: the check fails with this sentence as its reason."""


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


CHECKS = {}


def check(number, name, points, needs_broker=True, needs=(), after=()):
    """Register the decorated function as check `number`."""
    def register(function):
        if number in CHECKS:
            raise ValueError(f"check {number} is registered twice")
        CHECKS[number] = Check(number, name, points, function, needs_broker, tuple(needs),
                               tuple(after))
        return function
    return register


def plan(only=None, checks=None):
    """The checks to run, in order: all of them, or those numbered in `only` together with
    what they need."""
    checks = CHECKS if checks is None else checks
    wanted = set(checks) if not only else set()
    pending = list(only or ())
    while pending:
        number = pending.pop()
        if number not in checks:
            raise PlanError(f"there is no check {number} (the checks are numbered "
                            f"1 to {max(checks)})")
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
