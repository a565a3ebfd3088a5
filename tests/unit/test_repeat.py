"""lab.output.repeat: aggregates over rows of runs, their text, the downtime sentences, on made-up rows."""

from __future__ import annotations

from typing import Any

import pytest
from rich.console import Console

from lab.output import repeat as rep


def row(strategy: str, downtime: float | None, status: str = "completed", **more: Any) -> dict[str, Any]:
    measured = downtime is not None
    return {
        "strategy": strategy,
        "status": status,
        "error": None if status != "failed" else "docker went away",
        "requests_sent": 1000 if measured else None,
        "requests_failed": int(downtime // 5) if measured else None,
        "downtime_ms": downtime,
        "mixed_window_ms": 10.0 if measured else None,
        "flip_flops": 0 if measured else None,
        "lowest_capacity": 4 if measured else None,
        "deploy_duration_s": 2.0 if measured else None,
        "rollback": None,
        "blast_radius": 0 if measured else None,
        "late_ticks": 3 if measured else None,
        **more,
    }


def render(table: Any) -> str:
    console = Console(width=250, record=True)
    console.print(table)
    return console.export_text()


def test_aggregate_leaves_failed_runs_out_and_says_over_how_many() -> None:
    runs = [row("x", 10.0), row("x", None, "failed"), row("x", 30.0), row("x", 20.0)]
    agg = rep.aggregate(runs, rep.DOWNTIME)
    assert agg is not None
    assert (agg["median"], agg["min"], agg["max"]) == (20.0, 10.0, 30.0)  # not 15.0: no zero for the failure
    assert (agg["runs"], agg["of"]) == (3, 4)
    assert agg["ci"] == {"low": 10.0, "high": 30.0, "level": 0.75}
    assert agg["iqr"] is None and agg["unit"] == "ms"
    assert rep.spread_text(agg, rep.DOWNTIME) == "20.0 ms (10.0–30.0) over 3"


def test_a_failed_run_with_figures_is_still_left_out() -> None:
    # A run that failed after the probe started has numbers, but they describe a broken run.
    runs = [row("x", 0.0), row("x", 900.0, "failed"), row("x", 0.0)]
    agg = rep.aggregate(runs, rep.DOWNTIME)
    assert agg is not None and agg["max"] == 0.0 and agg["runs"] == 2


def test_aggregate_of_nothing_measured_is_none() -> None:
    assert rep.aggregate([row("x", None, "failed")], rep.DOWNTIME) is None
    assert rep.spread_text(None, rep.DOWNTIME) == "–"


def test_aggregate_of_five_runs_has_an_iqr_and_a_nested_figure() -> None:
    runs = [row("x", float(d), latency_ms={"during": {"p99": float(d) / 10}}) for d in (5, 1, 4, 2, 3)]
    agg = rep.aggregate(runs, rep.DOWNTIME)
    assert agg is not None and agg["iqr"] == [2.0, 4.0] and agg["ci"]["level"] == 0.9375
    p99 = next(f for f in rep.RUN_FIGURES if f.key == "p99_during_ms")
    agg = rep.aggregate(runs, p99)
    assert agg is not None and agg["median"] == pytest.approx(0.3)


def test_rolled_back_runs_count_and_statuses_are_tallied() -> None:
    runs = [row("x", 5.0, "rolled_back", rollback={"step": 2}), row("x", 0.0), row("x", None, "failed")]
    assert rep.statuses(runs) == {"completed": 1, "failed": 1, "rolled_back": 1}
    assert rep.status_text(runs) == "completed 1, failed 1, rolled_back 1"
    assert rep.aggregate(runs, rep.DOWNTIME)["median"] == 2.5  # type: ignore[index]


def test_run_line_shows_the_result_or_the_error() -> None:
    line = rep.run_line(2, 5, row("x", 15.0))
    assert (
        line == "run 2/5: completed, 3 of 1,000 failed, downtime 15.0 ms, mixed window 10.0 ms, deploy 2.00 s"
    )
    assert rep.run_line(3, 5, row("x", None, "failed")) == "run 3/5: failed: docker went away"


def test_run_table_shows_median_spread_and_the_level_reached() -> None:
    runs = [row("x", 0.0), row("x", 512.3), row("x", 0.0)]
    text = render(rep.run_table(runs, "x: 3 runs"))
    line = next(li for li in text.splitlines() if "downtime (longest)" in li)
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells == ["downtime (longest)", "0.0 ms", "0.0–512.3 ms", "–", "0.0–512.3 ms (75%)", "3 of 3"]


def test_downtime_lines_cover_identical_unprovable_and_told_apart() -> None:
    rows = [
        *(row("in-place", d) for d in (1785.5, 2215.0, 2305.0)),
        *(row("blue-green", 0.0) for _ in range(3)),
        *(row("rolling", 0.0) for _ in range(3)),
    ]
    specs = ["in-place", "blue-green", "rolling"]
    first, second = rep.downtime_comparisons(rows, specs)
    # ranked by median downtime, ties in the given order: blue-green, rolling, in-place
    assert (first.a, first.b, second.a, second.b) == ("blue-green", "rolling", "rolling", "in-place")
    assert (
        first.line
        == "blue-green and rolling: downtime cannot be told apart: 0.0 ms in every run of both (N=3 each)"
    )
    assert second.line == (
        "rolling and in-place: downtime cannot be told apart (0.0–0.0 ms vs 1,785.5–2,305.0 ms, N=3 each): "
        "no test of N=3 each can reach p < 0.05 (the smallest p is 0.1), though every rolling run was lower"
    )
    assert not second.verdict.apart

    more = [
        *(row("in-place", d) for d in (1785.5, 2215.0, 2305.0, 1990.0)),
        *(row("rolling", 0.0) for _ in range(4)),
    ]
    (c,) = rep.downtime_comparisons(more, ["in-place", "rolling"])
    assert (
        c.line == "rolling's downtime is lower than in-place's (0.0–0.0 ms vs 1,785.5–2,305.0 ms, N=4 each, "
        "p = 0.029)"
    )
    assert c.to_dict()["lower"] == "rolling" and c.to_dict()["told_apart"] is True


def test_downtime_line_when_a_test_could_tell_but_does_not() -> None:
    c = rep.downtime_line("a", "b", [0.0, 10.0, 20.0, 30.0, 40.0], [5.0, 15.0, 25.0, 35.0, 45.0])
    assert c.line.startswith(
        "a and b: downtime cannot be told apart (0.0–40.0 ms vs 5.0–45.0 ms, N=5 each, p = "
    )
    c = rep.downtime_line("a", "b", [0.0, 0.0], [0.0, 3.0, 0.0])
    assert "N=2 and 3" in c.line


def test_compare_document_keeps_every_run_and_the_aggregates() -> None:
    rows = [
        row("a", 0.0, round=1),
        row("b", None, "failed", round=1),
        row("a", 5.0, round=2),
        row("b", 7.0, round=2),
    ]
    doc = rep.compare_document(rows, ["a", "b"], 2)
    assert doc["runs"] == rows and doc["repeat"] == 2 and doc["order"] == "interleaved"
    a, b = doc["strategies"]
    assert a["strategy"] == "a" and a["aggregates"]["downtime_ms"]["median"] == 2.5
    assert b["statuses"] == {"completed": 1, "failed": 1} and b["aggregates"]["downtime_ms"]["runs"] == 1
    (pair,) = doc["downtime"]
    assert (pair["a"], pair["b"], pair["runs_a"], pair["runs_b"]) == ("a", "b", 2, 1)


def test_compare_table_shows_median_and_range_with_units() -> None:
    rows = [row("a", d, round=n) for n, d in enumerate((0.0, 12.5, 3.0), start=1)]
    text = render(rep.compare_table(rows, ["a", "b"], "title"))
    line = next(li for li in text.splitlines() if li.startswith("│ a "))
    cells = [c.strip() for c in line.split("│")[1:-1]]
    assert cells[:5] == ["a", "3", "completed 3", "0 (0–2)", "3.0 ms (0.0–12.5)"]
    assert cells[7] == "–"  # no clients figures in these rows (a folder from before clients)
    assert cells[9] == "2.00 s (2.00–2.00)" and cells[10] == "–" and cells[11] == "no"  # no wall time
    assert "│ b " not in text  # a strategy without runs yet (an interrupt) has no row
