"""report.html, timeline.svg and timeline.png in a run folder; compare.html in a comparison's folder.

Everything is built from what the folder holds (journal.json, samples.csv, configs/), so a report is the
same whether it was written at the end of the run or rebuilt later by `lab report`. The HTML carries its
CSS and SVG inline and loads nothing: it opens the same offline, from a mail attachment or a CI artifact.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup
from rich.table import Table
from rich.text import Text

from lab.analysis import timeline
from lab.errors import BadInput
from lab.output import compare
from lab.output.chart import layout
from lab.output.chart.png import to_png
from lab.output.chart.svg import to_svg
from lab.output.run_folder import SavedRun, is_run, load
from lab.output.terminal import summary_rows, versions_of

_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(
        lambda name: resources.files("lab.output").joinpath("templates", name).read_text()
    ),
    undefined=jinja2.StrictUndefined,
    autoescape=True,
    keep_trailing_newline=True,
)


def write_run_report(folder: Path) -> Path:
    """Write timeline.svg, timeline.png and report.html into a run folder; returns report.html's path."""
    saved = load(folder)
    try:
        context = _run_context(saved)
    except (KeyError, TypeError, AttributeError) as exc:  # a journal of another shape: say so in one line
        raise BadInput(f"{folder / 'journal.json'} is not a journal this lab can read ({exc!r})") from None
    old, new = versions_of(saved.journal)
    testers = int((saved.journal["input"].get("probe") or {}).get("testers") or 0)
    built = timeline.build(
        saved.samples, saved.events, saved.capacity, old=old or "old", new=new or "new", testers=testers
    )
    drawing = layout.draw(built, context["title"])
    svg = to_svg(drawing)
    (folder / "timeline.svg").write_text(svg)
    (folder / "timeline.png").write_bytes(to_png(drawing))
    path = folder / "report.html"
    path.write_text(_ENV.get_template("report_run.html.j2").render(**context, svg=Markup(svg)))
    return path


def _meta(j: dict[str, Any], samples: int) -> str:
    scenario, probe = j["input"].get("scenario") or {}, j["input"].get("probe") or {}
    parts = [
        f"run {j['run_id']}",
        f"started {j.get('started_at') or '?'}",
        f"lab {j.get('lab_version') or '?'}",
    ]
    if scenario:
        parts.append(f"scenario {scenario.get('name')}, {scenario.get('fleet_size')} instances per version")
    if probe:
        parts.append(f"probe {probe.get('rate', 0):,g} req/s ({probe.get('mode')})")
    parts.append(f"{samples:,} samples")
    params = j["input"].get("params") or {}
    if params:
        parts.append(", ".join(f"{k}={v}" for k, v in params.items()))
    return " · ".join(parts)


def _run_context(saved: SavedRun) -> dict[str, Any]:
    j = saved.journal
    measured = (j.get("probe") or {}).get("started_s") is not None
    steps = [{**s, "verdict": {True: "pass", False: "fail"}.get(s.get("result"), "")} for s in j["steps"]]
    files = [
        name
        for name in ("journal.json", "samples.csv", "samples.jsonl", "timeline.svg", "timeline.png")
        if (saved.folder / name).exists() or name.startswith("timeline")
    ]
    return {
        "title": saved.title,
        "strategy": j["input"]["strategy"],
        "status": j["status"],
        "meta": _meta(j, len(saved.samples)),
        "error": j.get("error"),
        "rows": summary_rows(j, saved.samples) if measured else [],
        "measured": measured,
        "steps": steps,
        "notes": j.get("notes") or [],
        "configs": saved.configs,
        "files": files,
    }


# ---------------------------------------------------------------------------------------------------
# Comparisons.


def _table(table: Table) -> dict[str, Any]:
    """A rich Table's headers and cells as plain text: the HTML shows what the terminal shows."""
    headers = [str(c.header) for c in table.columns]
    columns = [
        [Text.from_markup(c).plain if isinstance(c, str) else str(c) for c in col.cells]
        for col in table.columns
    ]
    return {"headers": headers, "rows": [list(r) for r in zip(*columns, strict=True)]}


def _value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) >= 10 else f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _aggregate(agg: Any) -> str:
    """One aggregate as `median unit (min–max)`, as the repeat tables print it; other values as they are."""
    if not isinstance(agg, dict):
        return _value(agg)
    if "median" not in agg:  # a count per key, as `statuses`
        return ", ".join(f"{k} {_value(v)}" for k, v in agg.items())
    unit = f" {agg['unit']}" if agg.get("unit") else ""
    text = f"{_value(agg['median'])}{unit} ({_value(agg.get('min'))}–{_value(agg.get('max'))})"
    if agg.get("runs") is not None and agg.get("of") not in (None, agg["runs"]):
        text += f" over {agg['runs']}"
    return text


def _aggregates_table(strategies: list[dict[str, Any]]) -> dict[str, Any]:
    """Per strategy, every aggregate figure the document holds: built from its keys, not a fixed list."""
    keys = list(dict.fromkeys(k for s in strategies for k in (s.get("aggregates") or {})))
    scalars = list(dict.fromkeys(k for s in strategies for k in s if k not in ("strategy", "aggregates")))
    headers = ["strategy", *(k.replace("_", " ") for k in scalars), *(k.replace("_", " ") for k in keys)]
    rows = [
        [
            str(s.get("strategy")),
            *(_aggregate(s.get(k)) for k in scalars),
            *(_aggregate((s.get("aggregates") or {}).get(k)) for k in keys),
        ]
        for s in strategies
    ]
    return {"headers": headers, "rows": rows}


def compare_tables(
    document: list[dict[str, Any]] | dict[str, Any], title: str
) -> tuple[list[dict[str, Any]], list[str]]:
    """The tables and sentences of compare.json (as compare.read_document checked it): a list of rows (one
    run each), or a document with every run's rows under `runs`, aggregates under `strategies` and
    sentences (`line`) under any other list."""

    if isinstance(document, list):
        return [{"caption": "", **_table(compare.table(document, title))}], []
    tables = []
    if document.get("strategies"):
        tables.append(
            {
                "caption": "each strategy over its runs: median (min–max)",
                **_aggregates_table(document["strategies"]),
            }
        )
    tables.append({"caption": "every run", **_table(compare.table(document["runs"], title))})
    lines = [
        item["line"]
        for key, value in document.items()
        if key not in ("runs", "strategies") and isinstance(value, list)
        for item in value
        if isinstance(item, dict) and isinstance(item.get("line"), str)
    ]
    return tables, lines


def _inline_svg(run: Path, n: int) -> Markup | None:
    """A run's timeline.svg, with an id of its own so several fit in one page."""
    path = run / "timeline.svg"
    if not path.is_file():
        return None
    return Markup(path.read_text().replace('id="timeline"', f'id="timeline-{n}"', 1))


def _compare_title(txt: Path) -> str:
    # compare.txt only lends the page its title: one that cannot be read costs the title, not the page.
    try:
        first = txt.read_text().strip().splitlines()[:1]
    except (OSError, UnicodeDecodeError):
        first = []
    return first[0].strip() if first else "comparison"


def write_compare_report(
    folder: Path, title: str | None = None, document: list[dict[str, Any]] | dict[str, Any] | None = None
) -> Path:
    """compare.html from compare.json and the run folders beside it. `title` defaults to compare.txt's
    first line, so a rebuilt page keeps the table's title; `document` is compare.json as the caller
    already read and checked it (compare.read_document), else it is read here."""
    if document is None:
        document = compare.read_document(folder / "compare.json")
    if title is None:
        title = _compare_title(folder / "compare.txt")
    tables, lines = compare_tables(document, title)
    runs = []
    for n, run in enumerate(sorted(p for p in folder.iterdir() if is_run(p)), start=1):
        try:
            j = json.loads((run / "journal.json").read_text())
            label = f"{j['input']['strategy']} · {j['status']} · run {j['run_id']}"
            params = ", ".join(f"{k}={v}" for k, v in (j["input"].get("params") or {}).items())
        except (OSError, ValueError, KeyError, TypeError):
            label, params = f"{run.name} (journal unreadable)", ""
        runs.append(
            {
                "name": run.name,
                "label": label,
                "params": params,
                "svg": _inline_svg(run, n),
                "report": (run / "report.html").is_file(),
            }
        )
    out = folder / "compare.html"
    out.write_text(
        _ENV.get_template("report_compare.html.j2").render(title=title, tables=tables, lines=lines, runs=runs)
    )
    return out
