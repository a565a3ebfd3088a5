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
from lab.model import Check, Instance, Judge, Pause, Route, Start, Step, Stop, fleet
from lab.strategies.base import Batch, Plan, Strategy
from lab.targets.fleet.plan import PlanError, PlannedStep, Topology, walk

STRATEGIES = sorted(strategies.REGISTRY)
FLEET_SIZES = [1, 3, 4]

# The contract holds for every strategy with its defaults, and for these other shapes of plan too.
VARIANTS: list[tuple[str, dict[str, object]]] = [
    ("rolling", {"batch": "2"}),
    ("rolling", {"batch": "50%", "drain_s": "0.5"}),
    ("rolling", {"batch": "100%"}),
    ("rolling-batch", {"batch": "2", "drain_s": 0.5}),
    ("blue-green", {"overlap_s": 0}),
    ("canary", {"by": "instances"}),
    ("canary", {"by": "instances", "percents": "10,50"}),
    ("canary", {"percents": "25"}),
    ("linear", {"step_percent": 30}),
    ("blue-green-canary", {"percents": "5,20,60"}),
    ("blue-green-linear", {"step_percent": 50}),
]
CASES = [pytest.param(name, {}, id=name) for name in STRATEGIES] + [
    pytest.param(name, params, id=f"{name}:{','.join(f'{k}={v}' for k, v in params.items())}")
    for name, params in VARIANTS
]

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
            case Check() | Judge():
                answer = verdict(step)
            case _:
                pytest.fail(f"not a step: {step!r}")
        try:
            step = plan.send(answer)
        except StopIteration:
            break
    return steps, running, route


def by_hand(
    name: str, size: int, verdict: Verdict, **params: object
) -> tuple[list[Step], set[Instance], Route]:
    old, new = fleets(size)
    return drive_by_hand(strategies.REGISTRY[name].plan(old, new, **params), old, verdict)


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
@pytest.mark.parametrize(("name", "params"), CASES)
def test_contract_all_checks_pass_ends_on_v2(name: str, params: dict[str, object], size: int) -> None:
    hand_steps, running, route = by_hand(name, size, all_pass, **params)
    assert_on_v2(running, route, size)

    planned = walked(name, size, all_pass, **params)
    assert [p.step for p in planned] == hand_steps
    for p in planned:
        if isinstance(p.step, Route):
            assert_route_valid(p.step, p.after.running)
    assert_on_v2(planned[-1].after.running, planned[-1].after.route, size)


@pytest.mark.parametrize("size", FLEET_SIZES)
@pytest.mark.parametrize(("name", "params"), CASES)
def test_contract_failed_v2_start_rolls_back_to_v1(name: str, params: dict[str, object], size: int) -> None:
    hand_steps, running, route = by_hand(name, size, v2_start_fails, **params)
    starts_v2 = (isinstance(s, Start) and any(i.version == "v2" for i in s.instances) for s in hand_steps)
    assert any(starts_v2), "never starts v2"
    assert_on_v1(running, route, size)

    planned = walked(name, size, v2_start_fails, **params)
    assert [p.step for p in planned] == hand_steps
    # walk sent False back for the v2 start
    assert any(p.result is False for p in planned if isinstance(p.step, Start))
    assert_on_v1(planned[-1].after.running, planned[-1].after.route, size)


def nth_judge_fails(n: int) -> Verdict:
    """The n-th Judge (from 0) says no; every other verdict passes."""
    seen = itertools.count()
    return lambda step: not (isinstance(step, Judge) and next(seen) == n)


@pytest.mark.parametrize("size", FLEET_SIZES)
@pytest.mark.parametrize(("name", "params"), CASES)
def test_contract_a_failed_judge_anywhere_rolls_back_to_v1(
    name: str, params: dict[str, object], size: int
) -> None:
    judges = [s for s in by_hand(name, size, all_pass, **params)[0] if isinstance(s, Judge)]
    assert all(j.version == "v2" for j in judges), "a strategy judges the release it deploys"
    for n in range(len(judges)):
        hand_steps, running, route = by_hand(name, size, nth_judge_fails(n), **params)
        assert_on_v1(running, route, size)
        assert sum(isinstance(s, Judge) for s in hand_steps) == n + 1, "stops judging after the first no"

        planned = walked(name, size, nth_judge_fails(n), **params)
        assert [p.step for p in planned] == hand_steps
        assert_on_v1(planned[-1].after.running, planned[-1].after.route, size)


JUDGED = {
    "canary",
    "linear",
    "blue-green-all-at-once",
    "blue-green-canary",
    "blue-green-linear",
    "codedeploy-canary10-5min",
    "codedeploy-linear10-1min",
    "codedeploy-all-at-once",
    "eb-traffic-splitting",
}


def test_the_strategies_with_a_judgement_step_are_the_ones_expected() -> None:
    judging = {
        name for name in STRATEGIES if any(isinstance(s, Judge) for s in by_hand(name, 3, all_pass)[0])
    }
    assert judging == JUDGED


def verdict_sequence(answers: tuple[bool, ...]) -> Verdict:
    """Answer the n-th Start/Check/Judge with answers[n], then True."""
    it: Iterator[bool] = iter(answers)
    return lambda step: next(it, True)


@pytest.mark.parametrize("size", FLEET_SIZES)
@pytest.mark.parametrize(("name", "params"), CASES)
def test_contract_any_verdicts_end_cleanly(name: str, params: dict[str, object], size: int) -> None:
    """Whatever the health checks and judgements say, the plan finishes fully on v2 or fully back on v1."""
    for answers in itertools.product([True, False], repeat=4):
        _, running, route = by_hand(name, size, verdict_sequence(answers), **params)
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


@pytest.mark.parametrize("overlap", [0.0, 1.5])
@pytest.mark.parametrize("window", [0.0, 0.5, 7.0])
@pytest.mark.parametrize("size", FLEET_SIZES)
def test_blue_green_starts_green_lets_both_serve_switches_keeps_blue_for_the_window(
    size: int, window: float, overlap: float
) -> None:
    old, new = fleets(size)
    planned = walked("blue-green", size, all_pass, rollback_window_s=window, overlap_s=overlap)
    first_start = first_index(planned, lambda s: isinstance(s, Start))
    switch = first_index(planned, lambda s: isinstance(s, Route) and s.share_by_version() == {"v2": 100})
    stop_blue = first_index(planned, lambda s: bool(set(instances_of(s, Stop)) & set(old)))

    assert set(instances_of(planned[first_start].step, Start)) == set(new), "the whole green fleet at once"
    routes = [p for p in planned if isinstance(p.step, Route)]
    if overlap:
        # Both fleets serve, half the traffic each, for overlap_s: the mixed window red/black does not have.
        both, full = routes
        assert isinstance(both.step, Route) and both.step.share_by_version() == {"v1": 50, "v2": 50}
        assert set(both.step.instances) == set(old) | set(new)
        assert planned[both.index + 1].step == Pause(overlap, "blue and green both serve, v2 at 50%")
        assert first_start < both.index < switch
    else:
        (full,) = routes
    assert full.index == switch

    pauses = [p for p in planned[switch + 1 : stop_blue] if isinstance(p.step, Pause)]
    assert [p.step.seconds for p in pauses if isinstance(p.step, Pause)] == [window]
    assert set(old) <= pauses[0].after.running, "blue still runs during the rollback window"
    assert isinstance(planned[stop_blue - 1].step, Check), "green checked again before blue goes"

    assert switch < stop_blue
    assert set(instances_of(planned[stop_blue].step, Stop)) == set(old)
    assert all(set(old) <= p.after.running for p in planned[:stop_blue]), "blue never stopped earlier"


def test_blue_green_parameters_from_the_command_line_are_honoured() -> None:
    old, new = fleets(2)
    plan = strategies.REGISTRY["blue-green"].plan(old, new, rollback_window_s="3", overlap_s="0.5")
    steps, _, _ = drive_by_hand(plan, old, all_pass)
    assert [s for s in steps if isinstance(s, Pause)] == [
        Pause(0.5, "blue and green both serve, v2 at 50%"),
        Pause(3.0, "blue kept for rollback"),
    ]


@pytest.mark.parametrize("size", FLEET_SIZES)
def test_blue_green_goes_back_to_blue_when_green_fails_its_second_check(size: int) -> None:
    old, new = fleets(size)
    planned = walked("blue-green", size, lambda step: not isinstance(step, Check))
    assert [type(p.step) for p in planned[-3:]] == [Check, Route, Stop]
    assert planned[-2].step == Route.even(old) and planned[-1].step == Stop(new)


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


WAIT_PARAMS = [p for p in NUMERIC_PARAMS if str(p.values[1]).endswith("_s")]


def test_there_are_waits_to_bound() -> None:
    assert len(WAIT_PARAMS) >= 10  # bakes, windows, drains, intervals, swarm's delays and timeouts


@pytest.mark.parametrize(("strategy", "key"), WAIT_PARAMS)
def test_a_wait_is_at_most_an_hour(strategy: Strategy, key: str) -> None:
    # 1e300 once passed: the run then failed with an overflow in its sleep, its fleet already up.
    for value in ["3600.001", "1e300", 1e9]:
        with pytest.raises(ValueError, match=f"{key}=.*at most 3600 s"):
            strategy.coerce({key: value})
    assert strategy.coerce({key: "3600"}) == {key: 3600.0}


def test_a_presets_time_scale_may_not_make_a_wait_over_an_hour() -> None:
    preset = strategies.get("codedeploy-canary10-5min")  # waits 300 s nominal
    assert preset.coerce({"time_scale": "12"}) == {"time_scale": 12.0}  # 3,600 s
    with pytest.raises(ValueError, match="time_scale=13 makes a wait of 3900 s"):
        preset.coerce({"time_scale": "13"})


@pytest.mark.parametrize(("strategy", "key"), FLOAT_PARAMS)
def test_coerce_turns_a_string_into_the_float_of_the_default(strategy: Strategy, key: str) -> None:
    # An error rate is a fraction (0 to 1); every other float here is a duration or a limit.
    text, number, whole = ("0.5", 0.5, 1) if key == "max_error_rate" else ("3", 3.0, 2)
    coerced = strategy.coerce({key: text})
    assert coerced == {key: number} and type(coerced[key]) is float
    assert strategy.coerce({key: whole}) == {key: whole}  # an int from Python is a fine float
    assert strategy.coerce({}) == {}


@pytest.mark.parametrize("name", ["canary", "linear", "blue-green-canary"])
def test_an_error_rate_above_one_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match="max_error_rate"):
        strategies.get(name).coerce({"max_error_rate": "5"})


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


# ---------------------------------------------------------------------------------------------------
# Parameters beyond plain numbers: tuples, optional numbers, words, batch sizes, the factory's own checks.


def test_coerce_reads_a_tuple_parameter_as_comma_separated_numbers() -> None:
    canary = strategies.REGISTRY["canary"]
    assert canary.coerce({"percents": "10,50,100"}) == {"percents": (10, 50, 100)}
    assert canary.coerce({"percents": " 5 , 25 "}) == {"percents": (5, 25)}
    assert canary.coerce({"percents": "(10, 50, 100)"}) == {"percents": (10, 50, 100)}  # as listed
    assert canary.coerce({"percents": "(10,)"}) == {"percents": (10,)}
    assert canary.coerce({"percents": [10, 50]}) == {"percents": (10, 50)}  # from Python


@pytest.mark.parametrize(
    "value", ["", "10,,50", "10,abc", "10,-5", "10,150", "0,50", "12.5", "nan", "10,inf", 5, [10, True], None]
)
def test_coerce_rejects_a_bad_tuple_by_name(value: object) -> None:
    with pytest.raises(ValueError, match="percents"):
        strategies.REGISTRY["canary"].coerce({"percents": value})


def test_coerce_rejects_percents_that_go_down_through_the_factory() -> None:
    with pytest.raises(ValueError, match="percents=50,10"):
        strategies.REGISTRY["canary"].coerce({"percents": "50,10"})


def _floats(
    old: tuple[Instance, ...], new: tuple[Instance, ...], *, scales: tuple[float, ...] = (0.5, 1.0)
) -> Plan:
    yield Pause(scales[0])


def test_coerce_bounds_only_parameters_named_percent_to_100() -> None:
    toy = Strategy("floats", "tuple of floats", _floats)
    assert toy.coerce({"scales": "0.25,1e3,0"}) == {"scales": (0.25, 1000.0, 0.0)}
    for bad in ("-1", "inf", "x"):
        with pytest.raises(ValueError, match="scales"):
            toy.coerce({"scales": bad})
    assert strategies.REGISTRY["linear"].coerce({"step_percent": "100"}) == {"step_percent": 100}
    for bad in ("0", "101"):
        with pytest.raises(ValueError, match="step_percent"):
            strategies.REGISTRY["linear"].coerce({"step_percent": bad})


def test_coerce_reads_an_optional_number_from_its_annotation() -> None:
    canary = strategies.REGISTRY["canary"]
    assert canary.defaults()["max_p99_ms"] is None
    assert canary.coerce({"max_p99_ms": "250"}) == {"max_p99_ms": 250.0}
    assert canary.coerce({"max_p99_ms": 250}) == {"max_p99_ms": 250}
    assert canary.coerce({"max_p99_ms": "none"}) == {"max_p99_ms": None}
    assert canary.coerce({"max_p99_ms": "None"}) == {"max_p99_ms": None}
    for bad in ("abc", "-1", "inf", [1]):
        with pytest.raises(ValueError, match="max_p99_ms"):
            canary.coerce({"max_p99_ms": bad})


def test_coerce_accepts_only_the_words_a_literal_lists() -> None:
    canary = strategies.REGISTRY["canary"]
    assert canary.coerce({"by": "instances"}) == {"by": "instances"}
    for bad in ("x", "Weight", 3):
        with pytest.raises(ValueError, match="by"):
            canary.coerce({"by": bad})


def test_coerce_reads_a_batch_as_a_count_or_a_percentage() -> None:
    rolling = strategies.REGISTRY["rolling"]
    assert rolling.coerce({"batch": "25%"}) == {"batch": Batch(Fraction(25), percent=True)}
    assert rolling.coerce({"batch": "12.5%"}) == {"batch": Batch(Fraction(25, 2), percent=True)}
    assert rolling.coerce({"batch": "2"}) == {"batch": Batch(Fraction(2))}
    assert rolling.coerce({"batch": 3}) == {"batch": Batch(Fraction(3))}
    for bad in ("0", "1.5", "0%", "150%", "abc", "-1", "", 2.5, True, None):
        with pytest.raises(ValueError, match="batch"):
            rolling.coerce({"batch": bad})


@pytest.mark.parametrize(
    ("spec", "size", "count"),
    [("1", 4, 1), ("3", 2, 2), ("25%", 4, 1), ("50%", 4, 2), ("50%", 3, 1), ("10%", 4, 1), ("100%", 3, 3)],
)
def test_a_batch_share_rounds_down_but_moves_at_least_one_instance(spec: str, size: int, count: int) -> None:
    batch = Batch.parse(spec)
    assert batch.of(size) == count
    assert str(batch) == spec and Batch.parse(str(batch)) == batch


@pytest.mark.parametrize("name", [n for n in STRATEGIES if "time_scale" in strategies.REGISTRY[n].defaults()])
def test_a_preset_time_scale_must_be_above_zero(name: str) -> None:
    with pytest.raises(ValueError, match="time_scale"):
        strategies.REGISTRY[name].coerce({"time_scale": "0"})


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_default_reads_back_as_lab_strategies_prints_it(name: str) -> None:
    strategy = strategies.REGISTRY[name]
    printed = {
        key: f"{value}" for key, value in strategy.defaults().items()
    }  # as `lab strategies` shows them
    assert strategy.coerce(printed) == strategy.defaults()
