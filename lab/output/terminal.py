"""The run's summary on a terminal, and the rows report.html shows the same figures in."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lab.analysis.rollout import capacity_timeline
from lab.analysis.summary import Analysis, ShareBin, version_share
from lab.analysis.windows import is_new
from lab.model import Sample
from lab.output.journal import journal
from lab.record import RunRecord


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


def share_line(samples: Sequence[Sample], new: str | None = "v2", old: str | None = None) -> str:
    """The share of answers from `new` in each second of probing, e.g. `0 0 0 38 100 100 %`; `-` marks a
    second in which nothing was answered. `new` None: every version but `old`."""
    bins = version_share(samples, bin_s=1.0)

    def share(b: ShareBin) -> float:
        if new is not None:
            return b.share(new)
        return sum(n for v, n in b.versions.items() if is_new(v, old, None)) / b.answered

    cells = [f"{share(b) * 100:.0f}" if b.answered else "-" for b in bins]
    return (" ".join(cells) + " %") if cells else "no answers"


def clients_text(c: dict[str, Any] | None) -> str:
    """`32: 12 saw a failure, 32 both versions, 0 flip-flopped; longest outage 160.0 ms (c007)`."""
    if not c:
        return "–"
    text = (
        f"{c['count']:,}: {c['saw_failure']:,} saw a failure, {c['saw_both_versions']:,} both versions, "
        f"{c['flip_flopped']:,} flip-flopped"
    )
    if c["worst_client"] is not None:
        text += f"; longest outage {c['longest_outage_ms']:,.1f} ms (c{c['worst_client']:03d})"
    return text


def testers_text(c: dict[str, Any] | None) -> str | None:
    """When testers and everyone else first got a new version; None without testers."""
    if not c or not c["testers"]["count"]:
        return None

    def first(group: dict[str, Any]) -> str:
        return "never" if group["first_new_s"] is None else f"from {group['first_new_s']:,.2f} s"

    return (
        f"{c['testers']['count']:,} testers: a new version {first(c['testers'])}; "
        f"the other {c['others']['count']:,} {first(c['others'])}"
    )


def kinds_text(kinds: dict[str, Any]) -> str | None:
    """`get 1,600 (0 failed), post 200 (3 failed: http_5xx 3)`; None when every request was a GET."""
    if not kinds or set(kinds) == {"get"}:
        return None
    parts = []
    for kind, k in kinds.items():
        failed = f"{k['failed']:,} failed"
        if k["failures_by_class"]:
            failed += ": " + ", ".join(f"{c} {n:,}" for c, n in sorted(k["failures_by_class"].items()))
        if k.get("cut_by_step"):
            failed += "; cut at step " + ", ".join(f"{s} ({n:,})" for s, n in k["cut_by_step"].items())
        parts.append(f"{kind} {k['sent']:,} ({failed})")
    return ", ".join(parts)


def versions_of(j: dict[str, Any]) -> tuple[str | None, str | None]:
    """The old and the new version of a journal (a journal from before `versions` was written: v1, v2)."""
    versions = j.get("versions") or {"old": "v1", "new": "v2"}
    return versions.get("old"), versions.get("new")


def _command_text(j: dict[str, Any]) -> str:
    command = j.get("command") or {}
    argv = " ".join(command.get("argv") or [])
    if not argv:
        return "none: deployed by hand while the lab watched"
    code = command.get("exit_code")
    step = next((s for s in j["steps"] if s["kind"] == "Command"), None)
    took = f" after {step['duration_s']:,.2f} s" if step else ""
    ended = "did not end (interrupted)" if code is None else f"exited with code {code}{took}"
    return f"{argv}: {ended}"


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


def wall_text(t: dict[str, Any]) -> str:
    """The run's wall time against its floor, and where the rest went."""
    if t.get("wall_s") is None:
        return "–"
    text = f"{t['wall_s']:,.1f} s, of which {t['waited_s']:,.1f} s asked-for waits (baseline, pauses, settle)"
    parts = [(name, t.get(key)) for name, key in (("set-up", "setup_s"), ("tear-down", "teardown_s"))]
    shown = ", ".join(f"{name} {value:,.1f} s" for name, value in parts if value is not None)
    return text + (f"; {shown}" if shown else "")


def summary_rows(j: dict[str, Any], samples: Sequence[Sample]) -> list[tuple[str, str]]:
    """The summary's (figure, value) rows from a journal and its samples: the terminal and report.html
    show the same, and a report rebuilt from an old folder shows what was measured then."""
    a = j["analysis"]
    failed = f"{a['requests_failed']:,} of {a['requests_sent']:,}"
    if a["failures_by_class"]:
        failed += " (" + ", ".join(f"{k} {v:,}" for k, v in sorted(a["failures_by_class"].items())) + ")"
    latency = a["latency_ms"]
    capacity = [(c["at_s"], c["in_service"]) for c in j.get("capacity", [])]
    old, new = versions_of(j)
    measured_any = (j["input"].get("measure") or None) is not None
    # `lab measure` takes every version but the old one as new; its name for the rows is the one most seen.
    newer = new or "a new version"
    rows = [
        ("requests failed", failed),
        ("downtime (longest)", _ms(a["downtime_ms"])),
        ("downtime (total)", f"{_ms(a['total_downtime_ms'])} in {len(a['downtime_windows'])} window(s)"),
        ("mixed-version window", _ms(a["mixed_window_ms"])),
        ("versions seen", ", ".join(f"{v} {n:,}" for v, n in sorted(a["versions_seen"].items())) or "none"),
        (f"flip-flops ({old or 'old'} after {newer})", f"{a['flip_flops']:,}"),
        ("clients", clients_text(a.get("clients"))),
        ("deploy duration", f"{a['deploy_duration_s']:,.2f} s"),
        ("wall time", wall_text(j.get("timings") or {})),
        (
            "lowest capacity",
            "–" if a.get("lowest_capacity") is None else f"{a['lowest_capacity']} instance(s) in service",
        ),
        ("capacity over time", capacity_text(capacity)),
        ("rollback", _rollback_text(a.get("rollback"))),
        (
            "blast radius",
            f"{a.get('blast_radius', 0):,} failed of {a.get('new_answers', 0):,} "
            + (f"{new} answers" if new else "answers from a new version"),
        ),
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
        (
            f"{new or 'new'} share, per second",
            share_line(samples, None if measured_any else new, old),
        ),
    ]
    if (testers := testers_text(a.get("clients"))) is not None:
        rows.insert(rows.index(("clients", clients_text(a.get("clients")))) + 1, ("testers", testers))
    if (kinds := kinds_text(a.get("kinds") or {})) is not None:
        rows.insert(1, ("by kind", kinds))
    if measured_any:  # no fleet of the lab's: its capacity and rollback rows say nothing
        skip = {"lowest capacity", "capacity over time", "rollback"}
        rows = [("deploy command", _command_text(j)), *(r for r in rows if r[0] not in skip)]
    return rows


def print_summary(console: Console, record: RunRecord, analysis: Analysis, out_dir: Path | None) -> None:
    measure = record.config.measure
    title = f"{record.config.strategy}: {record.status}" + (f" ({measure.url})" if measure else "")
    # A URL may hold brackets (`/[/x]`): shown as written, never read as markup.
    table = Table(title=escape(title), show_header=False, title_justify="left")
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
        what = "journal, samples and command output" if measure else "journal, samples and configs"
        console.print(f"{what}: {out_dir}", markup=False)
