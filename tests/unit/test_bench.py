"""The benchmark's verdict logic, on made-up measurements: no probe, no nginx."""

from __future__ import annotations

from lab.options import RunOptions
from lab.probe.bench import (
    DEFAULT_RATES,
    TARGETS,
    Measurement,
    format_table,
    sustained_rate,
    target_for,
    verdict,
)
from lab.probe.config import DRIVERS


def fake(rate: float, ok: bool, late: int = 0) -> Measurement:
    return Measurement(
        mode="fresh",
        rate=rate,
        processes=1,
        scheduled=5000,
        sent=5000,
        late=late,
        saturated=0,
        warmup_late=0,
        failed=0,
        achieved=rate,
        p50_ms=0.8,
        p99_ms=12.5,
        probe_cpu=0.5,
        sustained=ok,
    )


def scripted(results: dict[float, list[bool]]):
    calls: list[float] = []

    def measure(url: str, mode: str, rate: float, seconds: float) -> Measurement:
        calls.append(rate)
        return fake(rate, results[rate].pop(0))

    return measure, calls


def test_a_rate_needs_two_of_three_attempts_and_every_attempt_is_kept() -> None:
    measure, calls = scripted({250: [True, True], 500: [False, True, True], 1000: [True, False, False]})
    best, measurements = sustained_rate("u", "fresh", (250, 500, 1000), measure_fn=measure)
    assert best == 500
    assert calls == [250, 250, 500, 500, 500, 1000, 1000, 1000]  # stops asking once the verdict is known
    assert [m["sustained"] for m in measurements] == [True, True, False, True, True, True, False, False]


def test_the_search_stops_at_the_first_rate_not_sustained() -> None:
    measure, calls = scripted({250: [False, False], 500: [True, True]})
    best, _ = sustained_rate("u", "fresh", (500, 250), measure_fn=measure)
    assert best is None and calls == [250, 250]


def test_the_table_carries_units_and_the_verdict() -> None:
    table = format_table([fake(1000, True, late=5), fake(1500, False, late=900)])
    assert "1,000 req/s" in table and "12 ms" in table and "0.8 ms" in table and "50% of a core" in table
    assert "ok (0.10% late)" in table and "NOT sustained (18.00% late)" in table


def test_the_verdict_says_whether_the_target_is_met() -> None:
    assert verdict("keepalive", 6000, 6000, 8000).endswith("sustained 6,000 req/s; target 6,000 req/s: met")
    assert verdict("fresh", 2500, 3000, 4000).endswith("target 3,000 req/s: NOT met")
    assert verdict("fresh", None, 3000, 4000) == "fresh: no rate sustained; target 3,000 req/s: NOT met"
    assert "target" not in verdict("keepalive", 6000, None, 8000)  # another URL or population: no target


def test_a_ladder_that_stops_short_of_the_target_gives_no_verdict_on_it() -> None:
    line = verdict("keepalive", 2000, 6000, 2000)  # --rates 1000 2000: 6,000 never tried
    assert line.endswith("target 6,000 req/s: not tried") and "NOT met" not in line
    assert verdict("keepalive", None, 6000, 2000).endswith("not tried")


def test_a_ladder_passed_to_its_top_says_so() -> None:
    assert "the highest rate tried" in verdict("keepalive", 8000, 6000, 8000)
    assert "the highest rate tried" not in verdict("keepalive", 7000, 6000, 8000)


def test_each_modes_default_ladder_climbs_past_its_target() -> None:
    for mode, target in TARGETS.items():
        ladder = DEFAULT_RATES[mode]
        assert list(ladder) == sorted(ladder) and target in ladder and max(ladder) > target


def test_only_the_run_the_target_is_set_for_is_judged() -> None:
    usual = {"driver": DRIVERS[0], "clients": RunOptions.clients, "direct": True}
    assert target_for("keepalive", **usual) == TARGETS["keepalive"]
    assert target_for("fresh", **usual) == TARGETS["fresh"]
    assert target_for("keepalive", **{**usual, "direct": False}) is None  # through Docker's userland proxy
    assert target_for("keepalive", **{**usual, "clients": RunOptions.clients + 1}) is None
    for other in DRIVERS[1:]:
        assert target_for("keepalive", **{**usual, "driver": other}) is None
