"""The benchmark's verdict logic, on made-up measurements: no probe, no nginx."""

from __future__ import annotations

from lab.probe.bench import Measurement, format_table, sustained_rate


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
