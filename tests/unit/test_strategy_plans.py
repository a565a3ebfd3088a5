"""Each new strategy's defining property, on plans walked without Docker (test_strategies.py holds the
contract every strategy keeps, in-place's and blue/green's own properties, and parameter parsing).

Instances in service at a point are the instances of the route then in force with a weight above 0.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from lab import strategies
from lab.cli import app
from lab.errors import BadInput
from lab.model import Instance, Judge, Pause, Route, Start, Step, Stop, fleet
from lab.strategies.base import Batch
from lab.targets.fleet.plan import PlannedStep, Topology, walk


def all_pass(step: Step) -> bool:
    return True


def walked(name: str, size: int, **params: object) -> list[PlannedStep]:
    old, new = fleet("v1", size), fleet("v2", size)
    plan = strategies.REGISTRY[name].plan(old, new, **params)
    return walk(plan, Topology(frozenset(old), Route.even(old)), all_pass)


def steps_of(name: str, size: int, **params: object) -> list[Step]:
    return [p.step for p in walked(name, size, **params)]


def in_service(planned: list[PlannedStep]) -> list[int]:
    """The number of instances in service after each step, starting with the initial route."""
    size = len(planned[0].after.route.instances) if planned else 0
    first = [size] if not isinstance(planned[0].step, Route) else []
    return first + [len(p.after.route.instances) for p in planned]


def v2_shares(steps: list[Step]) -> list[float]:
    return [float(s.share_by_version().get("v2", 0)) for s in steps if isinstance(s, Route)]


def routed_to_stopped(planned: list[PlannedStep]) -> list[tuple[int, set[Instance]]]:
    return [
        (p.index, set(p.after.route.instances) - p.after.running)
        for p in planned
        if not set(p.after.route.instances) <= p.after.running
    ]


# ---------------------------------------------------------------------------------------------------
# Rolling

ROLLING = [
    (size, batch)
    for size in (2, 3, 4, 6)
    for batch in ("1", "2", "25%", "50%")
    if Batch.parse(batch).of(size) < size
]


@pytest.mark.parametrize(("size", "batch"), ROLLING)
def test_rolling_never_routes_to_a_stopped_instance(size: int, batch: str) -> None:
    planned = walked("rolling", size, batch=batch)
    assert routed_to_stopped(planned) == []


@pytest.mark.parametrize(("size", "batch"), ROLLING)
def test_rolling_in_service_dips_by_exactly_one_batch(size: int, batch: str) -> None:
    counts = in_service(walked("rolling", size, batch=batch))
    assert min(counts) == size - Batch.parse(batch).of(size), counts
    assert max(counts) == size and counts[-1] == size, "no spare instance, and full capacity at the end"


@pytest.mark.parametrize(("size", "batch"), ROLLING)
def test_rolling_takes_each_batch_out_before_stopping_it_and_replaces_it_on_the_same_slots(
    size: int, batch: str
) -> None:
    planned = walked("rolling", size, batch=batch)
    stops = [p for p in planned if isinstance(p.step, Stop)]
    assert [len(p.step.instances) for p in stops if isinstance(p.step, Stop)][:-1] == [
        Batch.parse(batch).of(size)
    ] * (len(stops) - 1)
    for stop in stops:
        assert isinstance(stop.step, Stop)
        before = planned[stop.index - 1].after.route
        assert not set(stop.step.instances) & set(before.instances), "out of the proxy before it stops"
        start = planned[stop.index + 1].step
        assert isinstance(start, Start)
        assert [(i.version, i.slot) for i in start.instances] == [("v2", i.slot) for i in stop.step.instances]


@pytest.mark.parametrize("drain", [0.0, 0.5])
def test_rolling_drains_each_batch_only_when_asked(drain: float) -> None:
    steps = steps_of("rolling", 3, drain_s=drain)
    pauses = [s for s in steps if isinstance(s, Pause)]
    if not drain:
        assert pauses == [], "a hard stop by default"
        return
    assert [p.seconds for p in pauses] == [drain] * 3
    for i, step in enumerate(steps):
        if isinstance(step, Stop):
            assert steps[i - 1] == Pause(drain, f"drain {step.instances[0].name}")
            assert isinstance(steps[i - 2], Route)


@pytest.mark.parametrize(("size", "batch"), [(1, "1"), (3, "3"), (3, "100%"), (2, "5")])
def test_rolling_a_batch_that_is_the_whole_fleet_is_in_place(size: int, batch: str) -> None:
    """Nothing is left to send traffic to: the proxy keeps pointing at the stopped fleet (downtime)."""
    old, new = fleet("v1", size), fleet("v2", size)
    assert steps_of("rolling", size, batch=batch) == [Stop(old), Start(new), Route.even(new)]


def test_rolling_rolls_back_every_replaced_slot_when_a_later_batch_fails() -> None:
    old, new = fleet("v1", 4), fleet("v2", 4)
    starts = iter([True, False])  # the first v2 batch comes up, the second does not
    verdict = lambda step: next(starts, True) if isinstance(step, Start) else True  # noqa: E731
    plan = strategies.REGISTRY["rolling"].plan(old, new)
    planned = walk(plan, Topology(frozenset(old), Route.even(old)), verdict)
    assert (
        [p.step for p in planned[-4:]]
        == [
            Stop(new[1:2]),  # the bad batch, which never got traffic
            Start(old[:2]),  # v1 back on every slot it left
            Route.even(old),
            Stop(new[:1]),  # the good v2 batch, once v1 serves again
        ]
    )
    assert routed_to_stopped(planned) == []


# ---------------------------------------------------------------------------------------------------
# Rolling with an additional batch


@pytest.mark.parametrize("drain", [0.0, 0.5])
@pytest.mark.parametrize(("size", "batch"), [(1, "1"), (3, "1"), (4, "2"), (4, "25%"), (5, "2"), (3, "3")])
def test_rolling_batch_never_has_fewer_than_the_fleet_in_service(size: int, batch: str, drain: float) -> None:
    planned = walked("rolling-batch", size, batch=batch, drain_s=drain)
    counts = in_service(planned)
    assert min(counts) == size, counts
    assert max(counts) == size + Batch.parse(batch).of(size), "one extra batch at most"
    assert routed_to_stopped(planned) == []


@pytest.mark.parametrize(("size", "batch"), [(1, "1"), (4, "2"), (5, "2")])
def test_rolling_batch_starts_the_extra_batch_on_new_slots_first_and_removes_it_at_the_end(
    size: int, batch: str
) -> None:
    count = Batch.parse(batch).of(size)
    extra = fleet("v2", count, first_slot=size + 1)
    steps = steps_of("rolling-batch", size, batch=batch)
    assert steps[:2] == [Start(extra), Route.even(fleet("v1", size) + extra)], "in service before any stop"
    assert steps[-2:] == [Route.even(fleet("v2", size)), Stop(extra)], "as Elastic Beanstalk ends it"


# ---------------------------------------------------------------------------------------------------
# Red/black and blue/green: the mixed-version window


def mixed_routes(steps: list[Step]) -> list[Route]:
    return [s for s in steps if isinstance(s, Route) and len(s.share_by_version()) > 1]


@pytest.mark.parametrize("size", [1, 3, 4])
def test_red_black_never_routes_to_both_fleets_and_has_no_window(size: int) -> None:
    old, new = fleet("v1", size), fleet("v2", size)
    steps = steps_of("red-black", size)
    assert mixed_routes(steps) == []
    assert steps == [Start(new), Route.even(new), Stop(old)], "one switch, v1 stopped at once"


@pytest.mark.parametrize("size", [1, 3, 4])
def test_blue_green_has_one_step_where_both_fleets_serve(size: int) -> None:
    (both,) = mixed_routes(steps_of("blue-green", size))
    assert both.share_by_version() == {"v1": 50, "v2": 50}
    assert mixed_routes(steps_of("blue-green", size, overlap_s=0)) == [], "overlap_s=0 leaves it out"


# ---------------------------------------------------------------------------------------------------
# Canary and linear


@pytest.mark.parametrize(
    ("percents", "shares"),
    [("10,50,100", [10, 50, 100]), ("10,50", [10, 50, 100]), ("1", [1, 100]), ("100", [100])],
)
@pytest.mark.parametrize("size", [1, 4])
def test_canary_by_weight_follows_percents_with_a_bake_and_a_judgement_after_each(
    size: int, percents: str, shares: list[int]
) -> None:
    steps = steps_of("canary", size, percents=percents, bake_s=4, max_error_rate=0.05, max_p99_ms=300)
    assert steps[0] == Start(fleet("v2", size)), "the whole v2 fleet, so every share is exact"
    assert v2_shares(steps) == shares
    routes = [i for i, s in enumerate(steps) if isinstance(s, Route)]
    judged = [int(p) for p in percents.split(",")]
    for i, share in zip(routes, shares, strict=True):
        if share in judged:
            assert steps[i + 1] == Pause(4, f"canary bake, v2 at {share}%")
            assert steps[i + 2] == Judge("v2", 0.05, 300)
        else:  # the promotion after the last canary step: no bake of its own
            assert steps[i + 1 :] == [Stop(fleet("v1", size))]
    assert steps[-1] == Stop(fleet("v1", size)), "v1 stops only after v2 has all the traffic"


@pytest.mark.parametrize(
    ("size", "percents", "shares"),
    [
        (4, "10,50,100", [25, 50, 100]),
        (4, "10,20,60", [25, 75, 100]),
        (3, "50", [200 / 3, 100]),
        (1, "10", [100]),
    ],
)
def test_canary_by_instances_replaces_instances_in_the_rotation(
    size: int, percents: str, shares: list[float]
) -> None:
    planned = walked("canary", size, by="instances", percents=percents)
    assert v2_shares([p.step for p in planned]) == pytest.approx(shares)
    assert min(in_service(planned)) == size, "each v2 instance stands in for a v1 instance"
    started = [len(p.step.instances) for p in planned if isinstance(p.step, Start)]
    assert sum(started) == size, "v2 started a part at a time"
    assert routed_to_stopped(planned) == []


@pytest.mark.parametrize(
    ("step", "shares"),
    [(10, list(range(10, 101, 10))), (30, [30, 60, 90, 100]), (25, [25, 50, 75, 100]), (100, [100])],
)
def test_linear_shares_rise_by_step_percent_every_interval(step: int, shares: list[int]) -> None:
    steps = steps_of("linear", 3, step_percent=step, interval_s=0.25)
    assert v2_shares(steps) == shares
    rises = [b - a for a, b in zip([0, *shares], shares, strict=False)]
    assert all(r == step for r in rises[:-1]) and 0 < rises[-1] <= step
    assert [s.seconds for s in steps if isinstance(s, Pause)] == [0.25] * (len(shares) - 1)
    assert sum(isinstance(s, Judge) for s in steps) == len(shares) - 1, "judged after each interval"


# ---------------------------------------------------------------------------------------------------
# Blue/green with traffic shifting


@pytest.mark.parametrize(
    ("name", "params", "shares"),
    [
        ("blue-green-all-at-once", {}, [100]),
        ("blue-green-canary", {}, [10, 100]),
        ("blue-green-canary", {"percents": "5,30"}, [5, 30, 100]),
        ("blue-green-linear", {"step_percent": 40}, [40, 80, 100]),
    ],
)
def test_blue_green_shifting_moves_traffic_between_two_full_fleets_then_keeps_blue(
    name: str, params: dict[str, object], shares: list[int]
) -> None:
    old, new = fleet("v1", 3), fleet("v2", 3)
    planned = walked(name, 3, rollback_window_s=1.5, **params)
    steps = [p.step for p in planned]
    assert steps[0] == Start(new), "green whole and healthy before any traffic"
    assert v2_shares(steps) == shares
    # After the last switch: blue kept for the window, green checked and judged, then blue goes.
    assert steps[-4] == Pause(1.5, "blue kept for rollback")
    assert isinstance(steps[-2], Judge) and steps[-1] == Stop(old)
    assert all(set(old) <= p.after.running for p in planned[:-1])


# ---------------------------------------------------------------------------------------------------
# Presets

PRESETS = [
    name for name in sorted(strategies.REGISTRY) if "time_scale" in strategies.REGISTRY[name].defaults()
]


def test_the_presets_are_the_ones_people_know() -> None:
    expected = sorted(
        [
            "codedeploy-all-at-once",
            "codedeploy-canary10-5min",
            "codedeploy-linear10-1min",
            "eb-all-at-once",
            "eb-immutable",
            "eb-rolling",
            "eb-rolling-batch",
            "eb-traffic-splitting",
        ]
    )
    assert expected == PRESETS == sorted(strategies.PRESETS)
    for name in PRESETS:
        assert strategies.REGISTRY[name].defaults() == {"time_scale": 0.01}, "time_scale is the only knob"


def pauses(name: str, **params: object) -> list[float]:
    return [s.seconds for s in steps_of(name, 4, **params) if isinstance(s, Pause)]


@pytest.mark.parametrize("name", PRESETS)
def test_presets_scale_every_duration_by_time_scale(name: str) -> None:
    real = pauses(name, time_scale=1)
    assert pauses(name) == pytest.approx([s * 0.01 for s in real])
    assert pauses(name, time_scale=0.5) == pytest.approx([s * 0.5 for s in real])
    no_time = [s for s in steps_of(name, 4, time_scale=1) if not isinstance(s, Pause)]
    assert [s for s in steps_of(name, 4) if not isinstance(s, Pause)] == no_time, "only durations change"


@pytest.mark.parametrize(
    ("name", "shares", "real_pauses"),
    [
        ("codedeploy-canary10-5min", [10, 100], [300, 300]),
        ("codedeploy-linear10-1min", list(range(10, 101, 10)), [60] * 9 + [300]),
        ("codedeploy-all-at-once", [100], [300]),
        ("eb-all-at-once", [100], []),
        ("eb-immutable", [50, 100], [60, 300]),
        ("eb-traffic-splitting", [10, 100], [300]),
    ],
)
def test_presets_map_to_their_strategy_with_the_named_numbers(
    name: str, shares: list[int], real_pauses: list[float]
) -> None:
    assert v2_shares(steps_of(name, 4, time_scale=1)) == shares
    assert pauses(name, time_scale=1) == real_pauses


def test_the_eb_rolling_presets_move_a_quarter_of_the_fleet_at_a_time_drained() -> None:
    assert min(in_service(walked("eb-rolling", 4))) == 3
    assert pauses("eb-rolling", time_scale=1) == [300] * 4
    assert pauses("eb-rolling-batch", time_scale=1) == [300] * 5, "each batch and the extra one drained"
    counts = in_service(walked("eb-rolling-batch", 4))
    assert min(counts) == 4 and max(counts) == 5


# ---------------------------------------------------------------------------------------------------
# From the command line


@pytest.mark.parametrize("name", sorted(strategies.REGISTRY))
def test_lab_plan_prints_every_strategy_with_its_configs(name: str) -> None:
    result = CliRunner().invoke(app, ["plan", name, "--fleet", "3"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"# {name}: ")
    assert result.output.count("# generation ") == 1 + sum(isinstance(s, Route) for s in steps_of(name, 3)), (
        "one nginx config per routing step, plus the initial one"
    )


def test_lab_plan_takes_tuple_and_word_parameters() -> None:
    cmd = ["plan", "canary", "-n", "4", "--no-configs", "-p", "percents=25,75", "-p", "by=instances"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, result.output
    assert "route v1 75%, v2 25% over app-v1-2, app-v1-3, app-v1-4, app-v2-1" in result.output
    assert "route v1 25%, v2 75% over app-v1-4, app-v2-1, app-v2-2, app-v2-3" in result.output


@pytest.mark.parametrize(
    ("param", "fragment"),
    [
        ("percents=10,150", "percents"),
        ("percents=50,10", "percents"),
        ("by=weights", "by"),
        ("max_p99_ms=fast", "max_p99_ms"),
    ],
)
def test_lab_plan_rejects_a_bad_parameter_as_bad_input(param: str, fragment: str) -> None:
    result = CliRunner().invoke(app, ["plan", "canary", "-p", param])
    assert isinstance(result.exception, BadInput), result.output
    assert fragment in str(result.exception)
