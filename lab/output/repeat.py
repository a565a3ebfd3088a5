"""The same experiment run N times: each figure's median, spread and confidence interval over the runs,
and whether two strategies' downtime can be told apart. Pure: it reads the figures runs already give
(`journal.summary` for `lab run`, `compare.row` for `lab compare`), so it is tested without Docker.

A run that failed (status `failed`: a lab error, not a rollback) has no figures that describe the
deployment: it is kept in the per-run lists but left out of every aggregate, never counted as zero. Each
aggregate says over how many runs it was computed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.markup import escape
from rich.table import Table

from lab.analysis import stats


@dataclass(frozen=True)
class Figure:
    key: str  # its name in the aggregates
    label: str
    unit: str  # printed after the number; "" for counts
    digits: int
    path: tuple[str, ...]  # where a run's figures hold it

    def value(self, run: dict[str, Any]) -> float | None:
        value: Any = run
        for key in self.path:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, int | float) and not isinstance(value, bool) else None

    def text(self, value: float | None) -> str:
        if value is None:
            return "–"
        return f"{value:,.{self.digits}f}" + (f" {self.unit}" if self.unit else "")


def _figure(key: str, label: str, unit: str = "", digits: int = 0, path: tuple[str, ...] = ()) -> Figure:
    return Figure(key, label, unit, digits, path or (key,))


FAILED = _figure("requests_failed", "requests failed")
DOWNTIME = _figure("downtime_ms", "downtime (longest)", "ms", 1)
MIXED = _figure("mixed_window_ms", "mixed-version window", "ms", 1)
FLIP_FLOPS = _figure("flip_flops", "flip-flops")
CAPACITY = _figure("lowest_capacity", "lowest capacity (instances)")
DEPLOY = _figure("deploy_duration_s", "deploy duration", "s", 2)
BLAST = _figure("blast_radius", "blast radius (failed v2 answers)")
LATE = _figure("late_ticks", "late ticks")
WALL = _figure("wall_s", "the run's wall time", "s", 1)
CLIENTS_HURT = _figure("clients_saw_failure", "clients that saw a failure", path=("clients", "saw_failure"))
CLIENTS_FLIPPED = _figure(
    "clients_flip_flopped", "clients that flip-flopped", path=("clients", "flip_flopped")
)
CLIENT_OUTAGE = _figure(
    "client_longest_outage_ms", "longest outage of one client", "ms", 1, ("clients", "longest_outage_ms")
)

# `lab run --repeat`: the summary's main figures.
RUN_FIGURES = (
    FAILED,
    DOWNTIME,
    _figure("total_downtime_ms", "downtime (total)", "ms", 1),
    MIXED,
    FLIP_FLOPS,
    CLIENTS_HURT,
    CLIENTS_FLIPPED,
    CLIENT_OUTAGE,
    DEPLOY,
    CAPACITY,
    BLAST,
    _figure("p50_during_ms", "latency p50 during", "ms", 1, ("latency_ms", "during", "p50")),
    _figure("p99_during_ms", "latency p99 during", "ms", 1, ("latency_ms", "during", "p99")),
    _figure("probe_rate_achieved", "probe rate", "req/s", 1),
    LATE,
    _figure("wall_s", "the run's wall time", "s", 1, ("timings", "wall_s")),
)
# `lab compare --repeat`: the columns of the comparison table, as `compare.row` gives them.
COMPARE_FIGURES = (FAILED, DOWNTIME, MIXED, FLIP_FLOPS, CLIENTS_HURT, CAPACITY, DEPLOY, WALL, BLAST, LATE)


def measured(runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The runs whose figures count: every one that did not fail."""
    return [r for r in runs if r.get("status") != "failed"]


def aggregate(runs: Sequence[dict[str, Any]], figure: Figure) -> dict[str, Any] | None:
    """One figure over the runs: median, min, max, IQR, the median's confidence interval with the level
    it reaches, and `runs`: how many runs it was computed over (of `of`). None when no run measured it."""
    values = [v for r in measured(runs) if (v := figure.value(r)) is not None]
    s = stats.summary(values)
    if s is None:
        return None
    return {
        "median": _round(s.median),
        "min": s.min,
        "max": s.max,
        "iqr": None if s.iqr is None else [_round(q) for q in s.iqr],
        "ci": None if s.ci is None else {"low": s.ci.low, "high": s.ci.high, "level": round(s.ci.level, 4)},
        "runs": s.n,
        "of": len(runs),
        "unit": figure.unit or None,
    }


def _round(value: float) -> float:
    return round(value, 4)


def aggregates(runs: Sequence[dict[str, Any]], figures: Sequence[Figure]) -> dict[str, Any]:
    return {f.key: aggregate(runs, f) for f in figures}


def statuses(runs: Sequence[dict[str, Any]]) -> dict[str, int]:
    return dict(sorted(Counter(r.get("status") or "unknown" for r in runs).items()))


def status_text(runs: Sequence[dict[str, Any]]) -> str:
    return ", ".join(f"{status} {n}" for status, n in statuses(runs).items())


# ---------------------------------------------------------------------------------------------------
# Text


def spread_text(agg: dict[str, Any] | None, figure: Figure) -> str:
    """`median (min–max)` with the unit once, e.g. `12.0 ms (5.0–20.0)`; `over 2` when runs failed."""
    if agg is None:
        return "–"
    text = f"{figure.text(agg['median'])} ({_bare(agg['min'], figure)}–{_bare(agg['max'], figure)})"
    return text if agg["runs"] == agg["of"] else f"{text} over {agg['runs']}"


def _bare(value: float, figure: Figure) -> str:
    return f"{value:,.{figure.digits}f}"


def range_text(agg: dict[str, Any], figure: Figure) -> str:
    return f"{_bare(agg['min'], figure)}–{figure.text(agg['max'])}"


def ci_text(agg: dict[str, Any] | None, figure: Figure) -> str:
    if agg is None or agg["ci"] is None:
        return "–"
    ci = agg["ci"]
    return f"{_bare(ci['low'], figure)}–{figure.text(ci['high'])} ({ci['level'] * 100:.4g}%)"


def run_line(n: int, total: int, run: dict[str, Any]) -> str:
    """One run's result as it comes, e.g. `run 2/5: completed, 0 of 2,094 failed, downtime 0.0 ms, ...`."""
    head = f"run {n}/{total}: {run.get('status')}"
    if run.get("requests_sent") is None:
        return f"{head}: {run.get('error') or 'nothing measured'}"
    parts = [
        f"{run['requests_failed']:,} of {run['requests_sent']:,} failed",
        f"downtime {DOWNTIME.text(DOWNTIME.value(run))}",
        f"mixed window {MIXED.text(MIXED.value(run))}",
        f"deploy {DEPLOY.text(DEPLOY.value(run))}",
    ]
    if run.get("error"):
        parts.append(f"error: {run['error']}")
    return f"{head}, " + ", ".join(parts)


def run_table(runs: Sequence[dict[str, Any]], title: str) -> Table:
    """`lab run --repeat`: a row per figure with its median, spread, IQR and confidence interval."""
    t = Table(title=title, title_justify="left")
    for name in ("figure", "median", "min–max", "IQR", "CI of the median", "runs"):
        t.add_column(name, overflow="fold")
    for f in RUN_FIGURES:
        agg = aggregate(runs, f)
        if agg is None:
            t.add_row(f.label, "–", "–", "–", "–", f"0 of {len(runs)}")
            continue
        iqr = "–" if agg["iqr"] is None else f"{_bare(agg['iqr'][0], f)}–{f.text(agg['iqr'][1])}"
        t.add_row(
            f.label,
            f.text(agg["median"]),
            range_text(agg, f),
            iqr,
            ci_text(agg, f),
            f"{agg['runs']} of {agg['of']}",
        )
    return t


def run_document(strategy: str, repeat: int, runs: list[dict[str, Any]]) -> dict[str, Any]:
    """What `lab run --repeat --json` prints and repeat.json holds: every run's figures and the aggregates."""
    return {
        "strategy": strategy,
        "repeat": repeat,
        "runs_done": len(runs),
        "statuses": statuses(runs),
        "aggregates": aggregates(runs, RUN_FIGURES),
        "runs": runs,
    }


# ---------------------------------------------------------------------------------------------------
# lab compare --repeat


def grouped(rows: Sequence[dict[str, Any]], specs: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Each strategy's runs, in the order the strategies were given."""
    return {spec: [r for r in rows if r["strategy"] == spec] for spec in specs}


def _rollback_text(runs: Sequence[dict[str, Any]]) -> str:
    done = measured(runs)
    rolled = sum(1 for r in done if r.get("rollback"))
    return "no" if not rolled else f"{rolled} of {len(done)}"


def compare_table(rows: Sequence[dict[str, Any]], specs: Sequence[str], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    columns = (
        "strategy",
        "runs",
        "status",
        "failed",
        "downtime",
        "mixed window",
        "flip-flops",
        "clients hurt",
    )
    for name in (*columns, "lowest capacity", "deploy", "wall", "rollback", "blast radius"):
        t.add_column(name, overflow="fold")
    for spec, runs in grouped(rows, specs).items():
        if not runs:
            continue
        cells = [
            spread_text(aggregate(runs, f), f) for f in (FAILED, DOWNTIME, MIXED, FLIP_FLOPS, CLIENTS_HURT)
        ]
        tail = [spread_text(aggregate(runs, f), f) for f in (CAPACITY, DEPLOY, WALL)]
        blast = spread_text(aggregate(runs, BLAST), BLAST)
        row = [spec, str(len(runs)), status_text(runs), *cells, *tail, _rollback_text(runs), blast]
        t.add_row(*(escape(c) for c in row))
    return t


def _each(n: int, m: int) -> str:
    return f"N={n} each" if n == m else f"N={n} and {m}"


@dataclass(frozen=True)
class DowntimeComparison:
    a: str
    b: str
    n_a: int
    n_b: int
    verdict: stats.Verdict
    line: str

    def to_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "a": self.a,
            "b": self.b,
            "runs_a": self.n_a,
            "runs_b": self.n_b,
            "told_apart": v.apart,
            "lower": {"a": self.a, "b": self.b}.get(v.lower or ""),
            "identical": v.identical,
            "p_value": round(v.p, 6),
            "smallest_p": round(v.smallest_p, 6),
            "alpha": stats.ALPHA,
            "line": self.line,
        }


def downtime_line(a: str, b: str, values_a: Sequence[float], values_b: Sequence[float]) -> DowntimeComparison:
    """One honest sentence on two strategies' longest downtime over their runs."""
    v = stats.told_apart(values_a, values_b)
    n, m = len(values_a), len(values_b)
    fa = {"min": min(values_a), "max": max(values_a)}
    fb = {"min": min(values_b), "max": max(values_b)}
    ranges = f"{range_text(fa, DOWNTIME)} vs {range_text(fb, DOWNTIME)}, {_each(n, m)}"
    if v.identical:
        line = (
            f"{a} and {b}: downtime cannot be told apart: "
            f"{DOWNTIME.text(values_a[0])} in every run of both ({_each(n, m)})"
        )
    elif v.apart:
        low, high = (a, b) if v.lower == "a" else (b, a)
        line = f"{low}'s downtime is lower than {high}'s ({ranges}, p = {v.p:.2g})"
    elif v.smallest_p >= stats.ALPHA:
        line = (
            f"{a} and {b}: downtime cannot be told apart ({ranges}): "
            f"no test of {_each(n, m)} can reach p < {stats.ALPHA:g} (the smallest p is {v.smallest_p:.2g})"
        )
        if v.all_lower:
            line += f", though every {a if v.all_lower == 'a' else b} run was lower"
    else:
        line = f"{a} and {b}: downtime cannot be told apart ({ranges}, p = {v.p:.2g})"
    return DowntimeComparison(a, b, n, m, v, line)


def downtime_comparisons(rows: Sequence[dict[str, Any]], specs: Sequence[str]) -> list[DowntimeComparison]:
    """Strategies in order of median downtime (ties keep the given order), each against the next one: whether
    the ranking between neighbours is real. A strategy none of whose runs measured downtime is left out."""
    values = {
        spec: [v for r in measured(runs) if (v := DOWNTIME.value(r)) is not None]
        for spec, runs in grouped(rows, specs).items()
    }
    ranked = sorted((spec for spec in specs if values[spec]), key=lambda s: stats.median(values[s]))
    return [downtime_line(a, b, values[a], values[b]) for a, b in zip(ranked, ranked[1:], strict=False)]


def compare_document(rows: list[dict[str, Any]], specs: Sequence[str], repeat: int) -> dict[str, Any]:
    """`lab compare --repeat --json` and compare.json: every run's row, then per strategy the aggregates,
    then the downtime comparisons."""
    return {
        "repeat": repeat,
        "order": "interleaved",
        "runs": rows,
        "strategies": [
            {
                "strategy": spec,
                "runs": len(runs),
                "statuses": statuses(runs),
                "rolled_back": sum(1 for r in measured(runs) if r.get("rollback")),
                "aggregates": aggregates(runs, COMPARE_FIGURES),
            }
            for spec, runs in grouped(rows, specs).items()
        ],
        "downtime": [c.to_dict() for c in downtime_comparisons(rows, specs)],
    }
