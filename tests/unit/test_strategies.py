"""The strategy contract, checked for every strategy in the registry, plus each plan's defining property.

Plans are driven twice: by lab.plan.walk (the same bookkeeping that guards the real runner) and by hand
with next()/.send() against this file's own bookkeeping, so a bug in walk cannot hide a bad plan.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from fractions import Fraction

import pytest

from lab import strategies
from lab.model import Check, Instance, Pause, Route, Start, Step, Stop, fleet
from lab.plan import PlanError, PlannedStep, Topology, walk
from lab.strategies.base import Plan, Strategy

STRATEGIES = sorted(strategies.REGISTRY)
FLEET_SIZES = [1, 3, 4]

Verdict = Callable[[Step], bool]


def fleets(size: int) -> tuple[tuple[Instance, ...], tuple[Instance, ...]]:
    return fleet("v1", size), fleet("v2", size)


def all_pass(step: Step) -> bool:
    return True


def v2_start_fails(step: Step) -> bool:
    """Every Start that includes a v2 instance reports unhealthy; everything else passes."""
    return not (isinstance(step, Start) and any(inst.version == "v2" for inst in step.instances))


def assert_route_valid(route: Route, running: set[Instance] | frozenset[Instance]) -> None:
    weights = [w for _, w in route.weights]
    assert all(isinstance(w, int | Fraction) for w in weights), route  # exact arithmetic, no floats
    assert sum(weights) == 100, f"weights sum to {sum(weights)}: {route}"
    assert all(w >= 0 for w in weights), route
    routed = {inst for inst, w in route.weights if w > 0}
    assert routed, f"route sends traffic nowhere: {route}"
    assert routed <= running, f"routes to {sorted(i.name for i in routed - running)}, not running"


def drive_by_hand(
    plan: Plan, old: tuple[Instance, ...], verdict: Verdict, limit: int = 1000
) -> tuple[list[Step], set[Instance], Route]:
    """Run `plan` with next()/.send(), keeping track of what runs and where traffic goes."""
    running: set[Instance] = set(old)
    route = Route.even(old)
    steps: list[Step] = []
    step = next(plan)
    while True:
        steps.append(step)
        assert len(steps) <= limit, "plan does not finish"
        answer: bool | None = None
        match step:
            case Start(instances):
                assert instances, "starts nothing"
                assert not running & set(instances), f"starts {instances} twice"
                running |= set(instances)
                answer = verdict(step)
            case Stop(instances):
                assert instances, "stops nothing"
                assert set(instances) <= running, f"stops {instances}, not all running"
                running -= set(instances)
            case Route():
                assert_route_valid(step, running)
                route = step
            case Pause(seconds):
                assert seconds >= 0
            case Check():
                answer = verdict(step)
            case _:
                pytest.fail(f"not a step: {step!r}")
        try:
            step = plan.send(answer)
        except StopIteration:
            break
    return steps, running, route


def walked(name: str, size: int, verdict: Verdict, **params: object) -> list[PlannedStep]:
    old, new = fleets(size)
    plan = strategies.REGISTRY[name].plan(old, new, **params)
    return walk(plan, Topology(frozenset(old), Route.even(old)), verdict)


def assert_on_v2(running: set[Instance] | frozenset[Instance], route: Route, size: int) -> None:
    old, new = fleets(size)
    assert route.share_by_version() == {"v2": 100}
    assert set(route.instances) == set(new), "the whole v2 fleet serves"
    assert set(running) == set(new), "every v1 stopped, every v2 running"


def assert_on_v1(running: set[Instance] | frozenset[Instance], route: Route, size: int) -> None:
    old, new = fleets(size)
    assert route.share_by_version() == {"v1": 100}
    assert set(route.instances) == set(old)
    assert not set(running) & set(new), "no v2 instance left running"
    assert set(running) == set(old)


# ---------------------------------------------------------------------------------------------------
# The contract, for every registered strategy.


@pytest.mark.parametrize("size", FLEET_SIZES)
@pytest.mark.parametrize("name", STRATEGIES)
def test_contract_all_checks_pass_ends_on_v2(name: str, size: int) -> None:
    old, new = fleets(size)
    hand_steps, running, route = drive_by_hand(strategies.REGISTRY[name].plan(old, new), old, all_pass)
    assert_on_v2(running, route, size)

    planned = walked(name, size, all_pass)
    assert [p.step for p in planned] == hand_steps
    for p in planned:
        if isinstance(p.step, Route):
            assert_route_valid(p.step, p.after.running)
    assert_on_v2(planned[-1].after.running, planned[-1].after.route, size)


@pytest.mark.parametrize("size", FLEET_SIZES)
@pytest.mark.parametrize("name", STRATEGIES)
def test_contract_failed_v2_start_rolls_back_to_v1(name: str, size: int) -> None:
    old, new = fleets(size)
    hand_steps, running, route = drive_by_hand(strategies.REGISTRY[name].plan(old, new), old, v2_start_fails)
    assert any(isinstance(s, Start) and set(s.instances) & set(new) for s in hand_steps), "never starts v2"
    assert_on_v1(running, route, size)

    planned = walked(name, size, v2_start_fails)
    assert [p.step for p in planned] == hand_steps
    # walk sent False back for the v2 start
    assert any(p.result is False for p in planned if isinstance(p.step, Start))
    assert_on_v1(planned[-1].after.running, planned[-1].after.route, size)


def verdict_sequence(answers: tuple[bool, ...]) -> Verdict:
    """Answer the n-th Start/Check with answers[n], then True."""
    it: Iterator[bool] = iter(answers)
    return lambda step: next(it, True)


@pytest.mark.parametrize("size", FLEET_SIZES)
@pytest.mark.parametrize("name", STRATEGIES)
def test_contract_any_verdicts_end_cleanly(name: str, size: int) -> None:
    """Whatever the health checks say, the plan finishes fully on v2 or fully back on v1."""
    old, new = fleets(size)
    for answers in itertools.product([True, False], repeat=4):
        plan = strategies.REGISTRY[name].plan(old, new)
        _, running, route = drive_by_hand(plan, old, verdict_sequence(answers))
        if route.share_by_version() == {"v2": 100}:
            assert_on_v2(running, route, size)
        else:
            assert_on_v1(running, route, size)


def test_walk_raises_for_a_plan_that_routes_to_a_stopped_instance() -> None:
    old, new = fleets(2)

    def bad() -> Plan:
        yield Stop(old)
        yield Route.even(old)

    with pytest.raises(PlanError, match="app-v1-1"):
        walk(bad(), Topology(frozenset(old), Route.even(old)))


def test_walk_raises_for_a_plan_that_routes_to_an_instance_never_started() -> None:
    old, new = fleets(2)

    def bad() -> Plan:
        yield Route.split({old: 50, new: 50})

    with pytest.raises(PlanError, match="app-v2-1"):
        walk(bad(), Topology(frozenset(old), Route.even(old)))


def test_walk_raises_for_a_plan_whose_weights_do_not_sum_to_100() -> None:
    old, new = fleets(2)

    def bad() -> Plan:
        healthy = yield Start(new)
        assert healthy
        yield Route.split({old: 50, new: 40})

    with pytest.raises(PlanError, match="90"):
        walk(bad(), Topology(frozenset(old), Route.even(old)))


# ---------------------------------------------------------------------------------------------------
# Each plan's defining property.


def instances_of(step: Step, kind: type[Start] | type[Stop]) -> tuple[Instance, ...]:
    return step.instances if isinstance(step, kind) else ()


def first_index(planned: list[PlannedStep], pred: Callable[[Step], bool]) -> int:
    return next(p.index for p in planned if pred(p.step))


@pytest.mark.parametrize("size", FLEET_SIZES)
def test_in_place_stops_every_v1_before_any_v2_starts_on_the_same_slots(size: int) -> None:
    old, new = fleets(size)
    planned = walked("in-place", size, all_pass)
    first_v2_start = first_index(planned, lambda s: bool(set(instances_of(s, Start)) & set(new)))
    stopped_before = {inst for p in planned[:first_v2_start] for inst in instances_of(p.step, Stop)}
    assert stopped_before == set(old)
    assert not planned[first_v2_start - 1].after.running, "nothing runs when v2 starts"

    started_v2 = [inst for p in planned for inst in instances_of(p.step, Start)]
    assert sorted(inst.slot for inst in started_v2) == list(range(1, size + 1))
    assert {inst.slot for inst in started_v2} == {inst.slot for inst in old}


@pytest.mark.parametrize("window", [0.0, 0.5, 7.0])
@pytest.mark.parametrize("size", FLEET_SIZES)
def test_blue_green_starts_green_routes_keeps_blue_for_the_window(size: int, window: float) -> None:
    old, new = fleets(size)
    planned = walked("blue-green", size, all_pass, rollback_window_s=window)
    first_start = first_index(planned, lambda s: isinstance(s, Start))
    first_route = first_index(planned, lambda s: isinstance(s, Route))
    stop_blue = first_index(planned, lambda s: bool(set(instances_of(s, Stop)) & set(old)))

    assert set(instances_of(planned[first_start].step, Start)) == set(new), "the whole green fleet at once"
    assert first_start < first_route
    route = planned[first_route].step
    assert isinstance(route, Route) and route.share_by_version() == {"v2": 100}, "one switch, all traffic"

    pauses = [p for p in planned[first_route + 1 : stop_blue] if isinstance(p.step, Pause)]
    assert [p.step.seconds for p in pauses if isinstance(p.step, Pause)] == [window]
    assert set(old) <= pauses[0].after.running, "blue still runs during the rollback window"

    assert first_route < stop_blue
    assert set(instances_of(planned[stop_blue].step, Stop)) == set(old)
    assert all(set(old) <= p.after.running for p in planned[:stop_blue]), "blue never stopped earlier"


def test_blue_green_window_parameter_from_the_command_line_is_honoured() -> None:
    old, new = fleets(2)
    plan = strategies.REGISTRY["blue-green"].plan(old, new, rollback_window_s="3")
    steps, _, _ = drive_by_hand(plan, old, all_pass)
    assert [s for s in steps if isinstance(s, Pause)] == [Pause(3.0, "blue kept for rollback")]


# ---------------------------------------------------------------------------------------------------
# Strategy.coerce


NUMERIC = [
    (s, key, default)
    for s in strategies.REGISTRY.values()
    for key, default in s.defaults().items()
    if isinstance(default, int | float) and not isinstance(default, bool)
]
NUMERIC_PARAMS = [pytest.param(s, key, id=f"{s.name}:{key}") for s, key, _ in NUMERIC]
FLOAT_PARAMS = [pytest.param(s, key, id=f"{s.name}:{key}") for s, key, d in NUMERIC if isinstance(d, float)]


def test_there_are_numeric_parameters_to_check() -> None:
    assert NUMERIC_PARAMS and FLOAT_PARAMS  # blue-green's rollback_window_s at least


@pytest.mark.parametrize("name", STRATEGIES)
def test_coerce_rejects_an_unknown_parameter_by_name(name: str) -> None:
    with pytest.raises(ValueError, match="no_such_knob"):
        strategies.REGISTRY[name].coerce({"no_such_knob": "1"})


@pytest.mark.parametrize(("strategy", "key"), NUMERIC_PARAMS)
@pytest.mark.parametrize("value", ["abc", "", "1e", [1], None, True])
def test_coerce_rejects_a_value_of_the_wrong_type(strategy: Strategy, key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        strategy.coerce({key: value})


@pytest.mark.parametrize(("strategy", "key"), NUMERIC_PARAMS)
@pytest.mark.parametrize("value", ["-1", "-0.5", -1, -0.001, "nan", "inf", float("inf")])
def test_coerce_rejects_negative_or_non_finite_values(strategy: Strategy, key: str, value: object) -> None:
    with pytest.raises(ValueError, match=key):
        strategy.coerce({key: value})


@pytest.mark.parametrize(("strategy", "key"), FLOAT_PARAMS)
def test_coerce_turns_a_string_into_the_float_of_the_default(strategy: Strategy, key: str) -> None:
    coerced = strategy.coerce({key: "3"})
    assert coerced == {key: 3.0} and type(coerced[key]) is float
    assert strategy.coerce({key: 2}) == {key: 2}  # an int from Python is a fine float
    assert strategy.coerce({}) == {}


def _toy(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    n: int = 1,
    f: float = 0.5,
    flag: bool = False,
    label: str = "x",
) -> Plan:
    yield Pause(f)


TOY = Strategy("toy", "for coerce", _toy)


def test_coerce_converts_to_each_defaults_type() -> None:
    assert TOY.defaults() == {"n": 1, "f": 0.5, "flag": False, "label": "x"}
    assert TOY.coerce({"n": "3", "f": "0.25", "flag": "yes", "label": "abc"}) == {
        "n": 3,
        "f": 0.25,
        "flag": True,
        "label": "abc",
    }
    assert TOY.coerce({"flag": "false"}) == {"flag": False}
    for bad in ({"n": "2.5"}, {"n": 2.5}, {"flag": "maybe"}, {"label": 3}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            TOY.coerce(bad)
    with pytest.raises(ValueError, match="parameters: n, f, flag, label"):
        TOY.coerce({"m": "1"})


def test_plan_coerces_its_parameters() -> None:
    old, new = fleets(1)
    assert next(TOY.plan(old, new, f="4")) == Pause(4.0)
    with pytest.raises(ValueError, match="f"):
        TOY.plan(old, new, f="-4")


def test_get_unknown_strategy_names_the_known_ones() -> None:
    with pytest.raises(strategies.UnknownStrategy) as info:
        strategies.get("canary-ish")
    for name in STRATEGIES:
        assert name in str(info.value)
    assert strategies.get(STRATEGIES[0]) is strategies.REGISTRY[STRATEGIES[0]]
