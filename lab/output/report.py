"""What a run leaves behind: the journal, the samples, the rendered configs, and the terminal summary.

The journal borrows the shape of Chaos Toolkit's: the input, one timed record per step, the analysis
and one overall status, written once at the end. Times in it are seconds since the run began
(`clock.origin_monotonic`), on the clock that stamped both the probe's samples and the steps.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab import __version__
from lab.analysis.rollout import capacity_timeline
from lab.analysis.summary import Analysis, version_share
from lab.model import Sample
from lab.record import RunRecord

SHARE_BIN_S = 0.5
SAMPLE_COLUMNS = [
    "seq",
    "scheduled_s",
    "sent_s",
    "finished_s",
    "latency_ms",
    "status",
    "version",
    "instance",
    "error",
    "late",
    "upstream",  # nginx's X-Lab-Upstream: every server tried, the last one answered
]


def _rel(t: float | None, origin: float) -> float | None:
    return None if t is None else round(t - origin, 6)


# Columns computed from a Sample rather than copied from its field of the same name.
_DERIVED: dict[str, Callable[[Sample, float], Any]] = {
    "scheduled_s": lambda s, t0: _rel(s.scheduled, t0),
    "sent_s": lambda s, t0: _rel(s.sent, t0),
    "finished_s": lambda s, t0: _rel(s.finished, t0),
    "latency_ms": lambda s, t0: None if s.finished is None else round((s.finished - s.scheduled) * 1000, 3),
    "error": lambda s, t0: s.error.value if s.error else None,
}


def sample_record(s: Sample, t0: float) -> dict[str, Any]:
    """One sample as every export writes it, in SAMPLE_COLUMNS order: None where nothing was measured.
    A column not derived above is the Sample field of that name, so a new field needs only its column."""
    return {name: _DERIVED[name](s, t0) if name in _DERIVED else getattr(s, name) for name in SAMPLE_COLUMNS}


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    return int(value) if isinstance(value, bool) else value


def journal(record: RunRecord, analysis: Analysis) -> dict[str, Any]:
    cfg = record.config
    origin = record.t0
    return {
        "lab_version": __version__,
        "run_id": record.run_id,
        "started_at": record.started_at,
        "clock": {"origin_monotonic": origin, "unit": "s"},
        "input": {
            "strategy": cfg.strategy,
            # A parsed value (a Batch) as it is written on the command line: `2`, `25%`.
            "params": {
                key: value if isinstance(value, int | float | str | tuple | list | None) else str(value)
                for key, value in cfg.params.items()
            },
            "scenario": {
                "name": cfg.scenario,
                "fleet_size": cfg.fleet_size,
                "v1_env": dict(cfg.v1_env),
                "v2_env": dict(cfg.v2_env),
                "v1_app": dataclasses.asdict(cfg.v1_app),
                "v2_app": dataclasses.asdict(cfg.v2_app),
            },
            "probe": {
                "rate": cfg.rate,
                "mode": cfg.mode,
                "timeout_s": cfg.probe_timeout_s,
                "baseline_s": cfg.baseline_s,
                "settle_s": cfg.settle_s,
            },
            "proxy": dataclasses.asdict(record.proxy or cfg.proxy),
        },
        "probe": {
            "started_s": _rel(record.probe_started, origin),
            "stopped_s": _rel(record.probe_stopped, origin),
        },
        "steps": [
            {
                "index": e.index,
                "kind": e.kind,
                "detail": e.detail,
                "start_s": _rel(e.started, origin),
                "end_s": _rel(e.ended, origin),
                "duration_s": round(e.ended - e.started, 4),
                "result": e.result,
                "error": e.error,
                "in_service": e.in_service,
            }
            for e in record.events
        ],
        "analysis": analysis.to_dict(origin),
        # Bins of scheduled time from the probe's first tick: what each half second of clients got.
        "version_share": [b.to_dict(origin) for b in version_share(record.samples, bin_s=SHARE_BIN_S)],
        # Instances routed with traffic, as planned: from the first step, then after each step.
        "capacity": [
            {"at_s": round(t - origin, 4), "in_service": n}
            for t, n in capacity_timeline(record.events, cfg.fleet_size)
        ],
        "status": record.status,
        "error": record.error,
        "error_detail": record.error_detail,
        "notes": record.notes,
    }


def summary(record: RunRecord, analysis: Analysis, out_dir: Path | None) -> dict[str, Any]:
    """The `--json` object: the analysis's figures first, then where to find the rest. A run that failed
    before the probe started measured nothing: its figures are null, not zero."""
    figures = analysis.to_dict(record.t0)
    if record.probe_started is None:
        figures = dict.fromkeys(figures)
    return {
        "strategy": record.config.strategy,
        **figures,
        "status": record.status,
        "error": record.error,
        "notes": record.notes,
        "run_id": record.run_id,
        "output": str(out_dir) if out_dir else None,
    }


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:60]


def write_run(record: RunRecord, analysis: Analysis, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "journal.json").write_text(json.dumps(journal(record, analysis), indent=2) + "\n")
    rows = [sample_record(s, record.t0) for s in record.samples]
    with (out_dir / "samples.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(SAMPLE_COLUMNS)
        writer.writerows([_csv_cell(row[name]) for name in SAMPLE_COLUMNS] for row in rows)
    with (out_dir / "samples.jsonl").open("w") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    configs = out_dir / "configs"
    configs.mkdir(exist_ok=True)
    for n, (label, text) in enumerate(record.configs):
        (configs / f"{n:02d}-{_slug(label)}.conf").write_text(text)
    _write_html(record, analysis, out_dir)
    return out_dir


def _write_html(record: RunRecord, analysis: Analysis, out_dir: Path) -> None:
    """report.html and the timeline images, last: they are built from the files written above, and a
    failure here must not lose the run. It becomes a note, in the journal and the summary."""
    from lab.output.html import write_run_report

    try:
        write_run_report(out_dir)
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        record.notes.append(f"report.html not written: {why} (retry with `lab report {out_dir}`)")
        (out_dir / "journal.json").write_text(json.dumps(journal(record, analysis), indent=2) + "\n")


def capacity_line(record: RunRecord) -> str:
    """Instances in service whenever it changed, e.g. `4 at 2.1 s, 3 at 2.4 s, 4 at 3.9 s`."""
    return capacity_text(
        [(t - record.t0, n) for t, n in capacity_timeline(record.events, record.config.fleet_size)]
    )


def capacity_text(points: Sequence[tuple[float, int]]) -> str:
    """`points` are (seconds since the start, instances in service); only the changes are shown."""
    changes: list[tuple[float, int]] = []
    for t, n in points:
        if not changes or changes[-1][1] != n:
            changes.append((t, n))
    return ", ".join(f"{n} at {t:,.1f} s" for t, n in changes) or "no steps"


def v2_share_line(record: RunRecord, new: str = "v2") -> str:
    return share_line(record.samples, new)


def share_line(samples: Sequence[Sample], new: str = "v2") -> str:
    """The share of answers from `new` in each second of probing, e.g. `0 0 0 38 100 100 %`; `-` marks a
    second in which nothing was answered."""
    bins = version_share(samples, bin_s=1.0)
    cells = [f"{b.share(new) * 100:.0f}" if b.answered else "-" for b in bins]
    return (" ".join(cells) + " %") if cells else "no answers"


def _rollback_text(rb: dict[str, Any] | None) -> str:
    if rb is None:
        return "no"
    back = (
        "v2 never had traffic"
        if rb["traffic_back_s"] is None
        else f"traffic back on v1 in {rb['traffic_back_s']:,.2f} s"
    )
    return (
        f"decided at {rb['decided_at_s']:,.2f} s (step {rb['step']}): {rb['reason']}; {back}, "
        f"all undone in {rb['duration_s']:,.2f} s"
    )


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.1f} ms"


def summary_rows(j: dict[str, Any], samples: Sequence[Sample]) -> list[tuple[str, str]]:
    """The summary's (figure, value) rows from a journal and its samples: the terminal and report.html
    show the same, and a report rebuilt from an old folder shows what was measured then."""
    a = j["analysis"]
    failed = f"{a['requests_failed']:,} of {a['requests_sent']:,}"
    if a["failures_by_class"]:
        failed += " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(a["failures_by_class"].items())) + ")"
    latency = a["latency_ms"]
    capacity = [(c["at_s"], c["in_service"]) for c in j.get("capacity", [])]
    return [
        ("requests failed", failed),
        ("downtime (longest)", _ms(a["downtime_ms"])),
        ("downtime (total)", f"{_ms(a['total_downtime_ms'])} in {len(a['downtime_windows'])} window(s)"),
        ("mixed-version window", _ms(a["mixed_window_ms"])),
        ("versions seen", ", ".join(f"{v} {n:,}" for v, n in sorted(a["versions_seen"].items())) or "none"),
        ("flip-flops (v1 after v2)", f"{a['flip_flops']:,}"),
        ("deploy duration", f"{a['deploy_duration_s']:,.2f} s"),
        (
            "lowest capacity",
            "–" if a.get("lowest_capacity") is None else f"{a['lowest_capacity']} instance(s) in service",
        ),
        ("capacity over time", capacity_text(capacity)),
        ("rollback", _rollback_text(a.get("rollback"))),
        ("blast radius", f"{a.get('blast_radius', 0):,} failed of {a.get('new_answers', 0):,} v2 answers"),
        ("latency p50 / p99 before", f"{_ms(latency['before']['p50'])} / {_ms(latency['before']['p99'])}"),
        ("latency p50 / p99 during", f"{_ms(latency['during']['p50'])} / {_ms(latency['during']['p99'])}"),
        (
            "probe rate",
            f"{a['probe_rate_achieved']:,.1f} of {a['probe_rate_target']:,.1f} req/s "
            f"({j['input']['probe']['mode']})",
        ),
        (
            "late ticks",
            f"{a['late_ticks']:,} (sent late {a['late_sent']:,}, not sent {a['client_saturated']:,})",
        ),
        ("v2 share, per second", share_line(samples)),
    ]


def print_summary(console: Console, record: RunRecord, analysis: Analysis, out_dir: Path | None) -> None:
    title = f"{record.config.strategy}: {record.status}"
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column("figure", style="bold")
    table.add_column("value")
    rows = summary_rows(journal(record, analysis), record.samples)
    for name, value in rows:
        table.add_row(name, escape(value))
    console.print(table)
    if record.error:
        console.print(f"[red]error:[/red] {escape(record.error)}")
    for note in record.notes:
        console.print(f"note: {escape(note)}")
    for e in record.events:
        if e.error:
            console.print(f"step {e.index} ({e.detail}): {e.error}", markup=False)
    if out_dir:
        console.print(f"journal, samples and configs: {out_dir}", markup=False)
