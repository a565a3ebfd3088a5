"""One row per strategy from the runs of `lab compare`: pure, so the table is tested without Docker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table

from lab.analysis.summary import Analysis
from lab.errors import BadInput
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


# ---------------------------------------------------------------------------------------------------
# Reading compare.json back (`lab report`). Checked here, once, against what table() and compare.html read:
# a file of another shape is one line of bad input, not a TypeError halfway through the page, nor an empty
# page.

_INT, _NUM, _STR = frozenset({"integer"}), frozenset({"integer", "number"}), frozenset({"string"})
_NULL = frozenset({"null"})
_COUNTS = "counts"  # an object of integers (failures per error class), or null
# An object's keys and what each holds; such an object may itself be null (no rollback, no clients).
_ROLLBACK = {"step": _INT, "traffic_back_s": _NUM | _NULL, "duration_s": _NUM, "reason": _STR}
_CLIENTS = {"count": _INT, "saw_failure": _INT, "flip_flopped": _INT}
# What table() reads from a row: null where the run measured nothing (row()).
_ROW: dict[str, Any] = {
    "strategy": _STR,
    "status": _STR,
    "requests_failed": _INT | _NULL,
    "failures_by_class": _COUNTS,
    "downtime_ms": _NUM | _NULL,
    "mixed_window_ms": _NUM | _NULL,
    "flip_flops": _INT | _NULL,
    "lowest_capacity": _INT | _NULL,
    "deploy_duration_s": _NUM | _NULL,
    "rollback": _ROLLBACK,
    "new_answers": _INT | _NULL,
    "blast_radius": _INT | _NULL,
    "clients": _CLIENTS,
    "wall_s": _NUM | _NULL,
}
_ROW_SINCE = {"clients", "wall_s"}  # figures a compare.json from an older lab lacks: shown as "-"
_EXPECTED = {
    _INT: "an integer",
    _NUM: "a number",
    _STR: "a string",
    _INT | _NULL: "an integer or null",
    _NUM | _NULL: "a number or null",
}
_A = {"integer": "an integer", "object": "an object", "array": "a list", "null": "null"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    for kind, types in (("boolean", bool), ("integer", int), ("number", float), ("string", str)):
        if isinstance(value, types):  # bool before int: True is no count
            return kind
    return "object" if isinstance(value, dict) else "array"


def _a(value: Any) -> str:
    kind = _kind(value)
    return _A.get(kind, f"a {kind}")


def _problem(value: Any, spec: Any, name: str) -> str | None:
    """Why `value` does not fit `spec` (a set of JSON types, _COUNTS, or an object's keys), or None."""
    if isinstance(spec, frozenset):
        return None if _kind(value) in spec else f"{name} is {_a(value)}, expected {_EXPECTED[spec]}"
    if value is None:
        return None
    if not isinstance(value, dict):
        return f"{name} is {_a(value)}, expected an object or null"
    if spec == _COUNTS:
        bad = [(k, v) for k, v in value.items() if _kind(v) != "integer"]
        return f"{name}.{bad[0][0]} is {_a(bad[0][1])}, expected an integer" if bad else None
    if missing := [k for k in spec if k not in value]:
        return f"{name} has no {missing[0]}"
    return next((why for k, s in spec.items() if (why := _problem(value[k], s, f"{name}.{k}"))), None)


def _row_problem(row: Any) -> str | None:
    if not isinstance(row, dict):
        return f" is {_a(row)}, expected an object (one run's figures)"
    if missing := [k for k in _ROW if k not in row and k not in _ROW_SINCE]:
        return f": no {missing[0]}"
    why = next((why for k, s in _ROW.items() if k in row and (why := _problem(row[k], s, k))), None)
    return why and f": {why}"


def _strategy_problem(strategy: Any) -> str | None:
    # compare.html shows any value a strategy holds (html._aggregate); only the shapes it walks matter.
    if not isinstance(strategy, dict):
        return f" is {_a(strategy)}, expected an object"
    aggregates = strategy.get("aggregates")
    ok = aggregates is None or isinstance(aggregates, dict)
    return None if ok else f": aggregates is {_a(aggregates)}, expected an object"


def read_document(path: Path) -> list[dict[str, Any]] | dict[str, Any]:
    """compare.json: the list of rows, or (`--repeat`) an object with every run's row under `runs`, one
    object per strategy under `strategies`, and sentences under other lists (html.compare_tables)."""
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise BadInput(f"{path.parent} holds no compare.json: not a comparison folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path} is not readable JSON: {exc}") from None
    if isinstance(document, dict):
        rows = document.get("runs")
        if not isinstance(rows, list) or not rows:
            got = "no `runs`" if "runs" not in document else f"`runs` as {_a(rows)}"
            got = "an empty `runs`" if rows == [] else got
            raise BadInput(f"{path}: expected an object with a non-empty list `runs`, got {got}")
        strategies = document.get("strategies") or []
        if not isinstance(strategies, list):
            raise BadInput(f"{path}: `strategies` is {_a(strategies)}, expected a list of objects")
        for n, strategy in enumerate(strategies, start=1):
            if why := _strategy_problem(strategy):
                raise BadInput(f"{path}: strategy {n}{why}")
    elif isinstance(document, list) and document:
        rows = document
    else:
        got = "an empty list" if document == [] else _a(document)
        raise BadInput(
            f"{path}: expected a non-empty list of runs, or an object with a list `runs`; got {got}"
        )
    for n, row in enumerate(rows, start=1):
        if why := _row_problem(row):
            raise BadInput(f"{path}: run {n}{why}")
    return document
