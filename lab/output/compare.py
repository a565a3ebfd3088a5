"""One row per strategy from the runs of `lab compare`: pure, so the table is tested without Docker."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from lab.analysis.summary import Analysis
from lab.output.journal import timings
from lab.record import RunRecord

COLUMNS = (
    "strategy",
    "status",
    "failed",
    "downtime",
    "mixed window",
    "flip-flops",
    "clients hurt",
    "lowest capacity",
    "deploy",
    "wall",
    "rollback",
    "blast radius",
)


def row(record: RunRecord, analysis: Analysis) -> dict[str, Any]:
    """The figures `--json` gives for one strategy (the table shows the same, formatted)."""
    measured = record.probe_started is not None
    figures = analysis.to_dict(record.t0) if measured else {}
    return {
        "strategy": record.config.strategy,
        "status": record.status,
        "error": record.error,
        "requests_sent": figures.get("requests_sent"),
        "requests_failed": figures.get("requests_failed"),
        "failures_by_class": figures.get("failures_by_class"),
        "downtime_ms": figures.get("downtime_ms"),
        "mixed_window_ms": figures.get("mixed_window_ms"),
        "flip_flops": figures.get("flip_flops"),
        "lowest_capacity": figures.get("lowest_capacity"),
        "deploy_duration_s": figures.get("deploy_duration_s"),
        "rollback": figures.get("rollback"),
        "new_answers": figures.get("new_answers"),
        "blast_radius": figures.get("blast_radius"),
        "late_ticks": figures.get("late_ticks"),
        "clients": figures.get("clients"),
        "kinds": figures.get("kinds"),
        "wall_s": timings(record)["wall_s"],
    }


def _failed(r: dict[str, Any]) -> str:
    if r["requests_failed"] is None:
        return "-"
    text = f"{r['requests_failed']:,}"
    if r["failures_by_class"]:
        text += " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(r["failures_by_class"].items())) + ")"
    return text


def _num(value: float | None, unit: str, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f} {unit}"


def _clients(r: dict[str, Any]) -> str:
    """Clients that saw a failure, of all: `12 of 32`; with flip-flops, how many clients flipped."""
    c = r.get("clients")
    if not c:
        return "-"
    text = f"{c['saw_failure']:,} of {c['count']:,}"
    return text + (f", {c['flip_flopped']:,} flipped" if c["flip_flopped"] else "")


def _rollback(r: dict[str, Any]) -> str:
    rb = r["rollback"]
    if not rb:
        return "no"
    back = "" if rb["traffic_back_s"] is None else f"v1 back in {rb['traffic_back_s']:.2f} s, "
    return f"after step {rb['step']}, {back}done in {rb['duration_s']:.2f} s: {rb['reason']}"


def table(rows: list[dict[str, Any]], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for name in COLUMNS:
        t.add_column(name, overflow="fold")
    for r in rows:
        add_row(
            t,
            r["strategy"],
            r["status"],
            _failed(r),
            _num(r["downtime_ms"], "ms"),
            _num(r["mixed_window_ms"], "ms"),
            "-" if r["flip_flops"] is None else f"{r['flip_flops']:,}",
            _clients(r),
            "-" if r["lowest_capacity"] is None else f"{r['lowest_capacity']}",
            _num(r["deploy_duration_s"], "s", 2),
            _num(r.get("wall_s"), "s", 1),
            _rollback(r),
            "-" if r["blast_radius"] is None else f"{r['blast_radius']:,} / {r['new_answers']:,}",
        )
    return t


def add_row(t: Table, *cells: str) -> None:
    # Reasons quote nginx and the app ("[emerg] ..."): print them as text, not as rich markup.
    t.add_row(*(escape(c) for c in cells))
