"""The grader's registry in process, no broker: each version's checks keep their points, and
the plan runs every dependency first and pulls in only what --only needs."""

import pytest

from grader import checks  # noqa: F401  (registers the checks)
from grader.registry import CHECKS, VERSIONS, Check, PlanError, plan

POINTS = {
    "draft": {1: 5, 2: 5, 3: 15, 4: 10, 5: 10, 6: 10, 7: 15, 8: 10, 9: 5, 10: 5, 11: 10, 12: 0},
    "final": {1: 5, 2: 5, 3: 15, 4: 10, 5: 10, 6: 10, 7: 15, 8: 10, 9: 5, 10: 5, 11: 10},
}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_checks_keep_their_points(version):
    assert {n: c.points for n, c in CHECKS[version].items()} == POINTS[version]
    assert sum(POINTS[version].values()) == 100


def test_the_versions_differ_where_the_assignment_does():
    differ = {n for n in CHECKS["draft"]
              if CHECKS["final"].get(n) is None or CHECKS["final"][n].run is not
              CHECKS["draft"][n].run}
    # The file list, the consumers (rounds or not), the plot, and the draft's birthday part.
    assert differ == {1, 7, 10, 12}


@pytest.mark.parametrize("version", VERSIONS)
def test_the_plan_runs_every_dependency_first(version):
    order = [check.number for check in plan(version=version)]
    registered = CHECKS[version]
    assert sorted(order) == sorted(registered)
    for position, number in enumerate(order):
        for earlier in registered[number].needs + registered[number].after:
            assert earlier in order[:position], f"{earlier} must run before {number}: {order}"
    # What the checks share: 6 needs the topic before any producer (3 starts the first), 9's
    # reader runs from 7 through 8, 11 deletes the files that reader watches.
    assert order.index(6) < order.index(3)
    assert order.index(7) < order.index(8) < order.index(9) < order.index(11)
    if version == "final":   # 10 writes the files itself, once 9's reader is done
        assert order.index(9) < order.index(10) < order.index(11)


def test_only_pulls_in_what_a_check_needs_and_nothing_else():
    assert [check.number for check in plan([9])] == [7, 9]
    assert [check.number for check in plan([11, 6])] == [6, 11]
    assert [check.number for check in plan([4, 3, 5])] == [3, 5, 4]
    assert [check.number for check in plan([10], version="final")] == [10]
    with pytest.raises(PlanError, match="no check 13"):
        plan([13])
    with pytest.raises(PlanError, match="no check 12 in the final version"):
        plan([12], version="final")


def test_a_circle_of_needs_is_refused():
    def nothing(session):
        return True, ""
    circle = {1: Check(1, "one", 1, nothing, needs=(2,)), 2: Check(2, "two", 1, nothing,
                                                                    needs=(1,))}
    with pytest.raises(PlanError, match="circle"):
        plan(checks=circle)
