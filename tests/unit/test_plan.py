"""Topology.apply's rules and walk's bookkeeping, on hand-made steps and plans."""

from __future__ import annotations

from fractions import Fraction

import pytest

from lab.model import Check, Instance, Pause, Route, Start, Step, Stop, fleet
from lab.strategies.base import Plan
from lab.targets.fleet.plan import PlanError, Topology, check_route, walk

OLD = fleet("v1", 2)
NEW = fleet("v2", 2)
A1, A2 = OLD
B1, B2 = NEW


def initial() -> Topology:
    return Topology(frozenset(OLD), Route.even(OLD))


# ---------------------------------------------------------------------------------------------------
# Topology.apply


def test_start_adds_and_stop_removes_instances() -> None:
    t = initial().apply(Start(NEW))
    assert t.running == {A1, A2, B1, B2}
    t = t.apply(Stop((A1,)))
    assert t.running == {A2, B1, B2}
    assert t.route == Route.even(OLD), "starting and stopping leave the route alone"


def test_route_replaces_the_routing_table() -> None:
    route = Route.split({OLD: 90, NEW: 10})
    t = initial().apply(Start(NEW)).apply(route)
    assert t.route == route
    assert t.running == {A1, A2, B1, B2}


@pytest.mark.parametrize("step", [Pause(1.5, "bake"), Check(OLD), Check(NEW)])
def test_pause_and_check_change_nothing(step: Step) -> None:
    assert initial().apply(step) == initial()


def test_starting_a_running_instance_is_refused() -> None:
    with pytest.raises(PlanError, match="app-v1-2.*already running"):
        initial().apply(Start((B1, A2)))


def test_stopping_an_instance_that_is_not_running_is_refused() -> None:
    with pytest.raises(PlanError, match="app-v2-1.*not running"):
        initial().apply(Stop((A1, B1)))
    with pytest.raises(PlanError, match="app-v1-1"):
        initial().apply(Stop(OLD)).apply(Stop((A1,)))


def test_routing_to_a_stopped_instance_is_refused() -> None:
    with pytest.raises(PlanError, match="app-v2-1, app-v2-2, not running"):
        initial().apply(Route.even(NEW))
    stopped = initial().apply(Start(NEW)).apply(Stop((B2,)))
    with pytest.raises(PlanError, match="app-v2-2"):
        stopped.apply(Route.split({OLD: 50, NEW: 50}))
    assert stopped.apply(Route.split({OLD: 50, (B1,): 50})).route.instances == (A1, A2, B1)


def test_a_zero_weight_on_a_stopped_instance_is_not_traffic() -> None:
    t = initial().apply(Stop((A2,)))
    route = Route(((A1, Fraction(100)), (A2, Fraction(0))))
    assert t.apply(route).route == route


@pytest.mark.parametrize(
    "weights",
    [
        ((A1, Fraction(50)), (A2, Fraction(40))),  # 90
        ((A1, Fraction(100)), (A2, Fraction(1, 1000))),  # a hair over 100
        ((A1, Fraction(100, 3)), (A2, Fraction(100, 3))),  # 66.67: thirds must add up exactly
    ],
)
def test_weights_not_summing_to_100_are_refused(weights: tuple[tuple[Instance, Fraction], ...]) -> None:
    with pytest.raises(PlanError, match="not 100"):
        initial().apply(Route(weights))


def test_a_negative_weight_is_refused_even_when_the_sum_is_100() -> None:
    with pytest.raises(PlanError, match="negative"):
        initial().apply(Route(((A1, Fraction(150)), (A2, Fraction(-50)))))


def test_an_empty_route_is_refused() -> None:
    with pytest.raises(PlanError):
        initial().apply(Route(()))
    with pytest.raises(PlanError):
        check_route(Route.split({OLD: 0, NEW: 0}))


def test_a_route_over_thirds_is_exactly_100() -> None:
    three = fleet("v1", 3)
    check_route(Route.even(three))  # 100/3 three times: exact with Fractions
    assert Topology(frozenset(three), Route.even(three)).apply(Route.even(three)).route == Route.even(three)


def test_apply_refuses_something_that_is_not_a_step() -> None:
    with pytest.raises(PlanError, match="not a step"):
        initial().apply("start everything")  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------
# walk


def test_walk_sends_the_verdict_back_and_records_each_step() -> None:
    received: list[bool | None] = []

    def plan() -> Plan:
        received.append((yield Start(NEW)))
        received.append((yield Check(NEW)))
        received.append((yield Route.even(NEW)))
        received.append((yield Pause(1)))
        received.append((yield Stop(OLD)))

    answers = {Start: False, Check: True}
    steps = walk(plan(), initial(), verdict=lambda s: answers[type(s)])
    assert received == [False, True, None, None, None]
    assert [p.index for p in steps] == [0, 1, 2, 3, 4]
    assert [p.result for p in steps] == [False, True, None, None, None]
    assert steps[0].after.running == {A1, A2, B1, B2}
    assert steps[2].after.route == Route.even(NEW)
    assert steps[-1].after == Topology(frozenset(NEW), Route.even(NEW))


def test_walk_of_an_empty_plan_is_empty() -> None:
    def nothing() -> Plan:
        return
        yield Pause(0)  # unreachable: makes this a generator

    assert walk(nothing(), initial()) == []


def forever() -> Plan:
    while True:
        yield Pause(0.1, "waiting for ever")


def test_walk_stops_an_infinite_plan() -> None:
    with pytest.raises(PlanError, match="50 steps"):
        walk(forever(), initial(), max_steps=50)


def pauses(n: int) -> Plan:
    for _ in range(n):
        yield Pause(0)


def test_walk_allows_exactly_max_steps() -> None:
    assert len(walk(pauses(50), initial(), max_steps=50)) == 50
    with pytest.raises(PlanError):
        walk(pauses(51), initial(), max_steps=50)


def test_walk_stops_at_the_first_impossible_step() -> None:
    def plan() -> Plan:
        yield Stop(OLD)
        yield Route.even(OLD)
        pytest.fail("walk went on after an impossible step")

    with pytest.raises(PlanError, match="not running"):
        walk(plan(), initial())
