"""The comparison table, from hand-made rows: no Docker."""

from __future__ import annotations

import io

from rich.console import Console

from lab.output.compare import table


def row(strategy: str, **figures: object) -> dict[str, object]:
    base: dict[str, object] = {
        "strategy": strategy,
        "status": "completed",
        "error": None,
        "requests_sent": 1000,
        "requests_failed": 0,
        "failures_by_class": {},
        "downtime_ms": 0.0,
        "mixed_window_ms": 0.0,
        "flip_flops": 0,
        "lowest_capacity": 4,
        "deploy_duration_s": 4.2,
        "rollback": None,
        "new_answers": 500,
        "blast_radius": 0,
        "late_ticks": 0,
    }
    return {**base, **figures}


def render(rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    Console(file=buf, width=250).print(table(rows, "title"))
    return buf.getvalue()


def test_a_row_per_strategy_with_units() -> None:
    text = render(
        [
            row(
                "in-place",
                requests_failed=357,
                failures_by_class={"http_5xx": 357},
                downtime_ms=1784.9,
                lowest_capacity=0,
            ),
            row(
                "canary",
                status="rolled_back",
                blast_radius=12,
                new_answers=60,
                rollback={
                    "traffic_back_s": 0.31,
                    "step": 2,
                    "duration_s": 1.25,
                    "reason": "v2 failed: error rate 20.00% > 1.00%",
                    "decided_at_s": 9.0,
                },
            ),
        ]
    )
    assert "357 (http_5xx 357)" in text and "1,784.9 ms" in text
    assert "after step 2, v1 back in 0.31 s, done in 1.25 s: v2 failed: error rate 20.00% > 1.00%" in text
    assert "12 / 60" in text and "rolled_back" in text


def test_a_run_that_measured_nothing_shows_dashes_not_zeros() -> None:
    empty = row(
        "red-black",
        status="failed",
        requests_failed=None,
        downtime_ms=None,
        mixed_window_ms=None,
        flip_flops=None,
        lowest_capacity=None,
        deploy_duration_s=None,
        blast_radius=None,
    )
    line = next(li for li in render([empty]).splitlines() if "red-black" in li)
    assert "0.0 ms" not in line and line.count("-") >= 5


def test_reasons_are_printed_as_text_not_markup() -> None:
    text = render(
        [
            row(
                "canary",
                rollback={
                    "step": 1,
                    "duration_s": 0.5,
                    "traffic_back_s": None,
                    "reason": "[emerg] bad [/x]",
                    "decided_at_s": 1.0,
                },
            )
        ]
    )
    assert "[emerg] bad [/x]" in text
