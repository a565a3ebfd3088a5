"""Experiments made of runs: repeats, comparisons in rounds, budgets, and the verdict as an exit code.

Out of the command line so a library user (or the pytest plugin) can repeat a run and gate on it the way
`lab run --repeat` does. Each experiment takes an `execute` callable that makes one run and returns its
record, analysis and folder (the CLI's adds the live view), and reports each run as it ends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.analysis.summary import Analysis
from lab.errors import EXIT_BUDGET, EXIT_COMMAND_FAILED, EXIT_ERROR, EXIT_OK, EXIT_ROLLED_BACK
from lab.options import RunOptions
from lab.output import compare as compare_rows
from lab.output import repeat as rep
from lab.output.journal import summary
from lab.record import RunRecord

Execute = Callable[[RunOptions, Path], tuple[RunRecord, Analysis, Path]]


@dataclass(frozen=True)
class Budgets:
    """What a deployment may cost its clients; exceeding one is exit 3."""

    max_downtime_ms: float | None = None
    max_failed: int | None = None

    def over(self, analysis: Analysis) -> list[str]:
        """What one run spent beyond the budgets, one phrase each; empty when within them."""
        over = []
        if self.max_downtime_ms is not None and analysis.downtime_ms > self.max_downtime_ms:
            over.append(f"downtime {analysis.downtime_ms:,.1f} ms > {self.max_downtime_ms:,.1f} ms")
        if self.max_failed is not None and analysis.requests_failed > self.max_failed:
            over.append(f"failed requests {analysis.requests_failed:,} > {self.max_failed:,}")
        return over


@dataclass(frozen=True)
class Verdict:
    code: int
    message: str | None = None  # the one line the CLI prints for a non-zero code, when there is one


def verdict(record: RunRecord, analysis: Analysis, budgets: Budgets) -> Verdict:
    """One run's exit code: a lab error, then a budget, then how the deployment ended."""
    if record.status == "failed":
        return Verdict(record.error_exit or EXIT_ERROR, record.error or "the run failed")
    if over := budgets.over(analysis):
        return Verdict(EXIT_BUDGET, "budget exceeded: " + "; ".join(over))
    if record.status == "rolled_back":
        return Verdict(EXIT_ROLLED_BACK)
    if record.status == "update_paused":  # Swarm stopped its update half way: not deployed either
        return Verdict(
            EXIT_ROLLED_BACK, "Swarm paused the update (failure_action=pause): v1 and v2 both still run"
        )
    if record.status == "command_failed":
        return Verdict(EXIT_COMMAND_FAILED, record.error)
    return Verdict(EXIT_OK)


# ---------------------------------------------------------------------------------------------------
# lab run --repeat


@dataclass
class Repeated:
    folder: Path
    name: str
    repeat: int
    runs: list[dict[str, Any]] = field(default_factory=list)  # each run's --json object, with its number
    over: list[str] = field(default_factory=list)  # "run 2: downtime 512.3 ms > 100.0 ms"
    over_runs: set[int] = field(default_factory=set)

    def document(self) -> dict[str, Any]:
        return {**rep.run_document(self.name, self.repeat, self.runs), "output": str(self.folder)}

    def verdict(self) -> Verdict:
        """Over every run: 1 if any failed, else 3 if any exceeded a budget (budgets apply to each run,
        not to the median: one bad deployment in N is the one a gate must catch), else 4 if any rolled
        back, else 5 if any deploy command failed."""
        failed = [r for r in self.runs if r["status"] == "failed"]
        if failed:
            return Verdict(
                EXIT_ERROR, "run(s) failed: " + "; ".join(f"run {r['run']}: {r['error']}" for r in failed)
            )
        if self.over:
            return Verdict(
                EXIT_BUDGET,
                f"budget exceeded in {len(self.over_runs)} of {self.repeat} runs: " + "; ".join(self.over),
            )
        if any(r["status"] in ("rolled_back", "update_paused") for r in self.runs):
            return Verdict(EXIT_ROLLED_BACK)
        if bad := [r for r in self.runs if r["status"] == "command_failed"]:
            return Verdict(
                EXIT_COMMAND_FAILED,
                "the deploy command failed in " + "; ".join(f"run {r['run']}: {r['error']}" for r in bad),
            )
        return Verdict(EXIT_OK)


def repeat_runs(
    options: RunOptions,
    repeat: int,
    out_dir: Path,
    execute: Execute,
    *,
    name: str | None = None,
    budgets: Budgets = Budgets(),  # noqa: B008  (frozen: one shared default is safe)
    before_run: Callable[[int], None] = lambda n: None,
    after_run: Callable[[int, dict[str, Any]], None] = lambda n, figures: None,
) -> Repeated:
    """`options` run `repeat` times, each in its own folder under one folder; repeat.json is rewritten after
    every run, so an interrupt keeps the runs measured before it."""
    name = name or options.strategy
    done = Repeated(out_dir / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-repeat-{name}", name, repeat)
    for n in range(1, repeat + 1):
        before_run(n)
        record, analysis, run_folder = execute(options, done.folder)
        figures = summary(record, analysis, run_folder)
        done.runs.append({"run": n, **figures})
        if record.status != "failed" and (phrases := budgets.over(analysis)):
            done.over += [f"run {n}: {phrase}" for phrase in phrases]
            done.over_runs.add(n)
        done.folder.mkdir(parents=True, exist_ok=True)
        (done.folder / "repeat.json").write_text(json.dumps(done.document(), indent=2) + "\n")
        after_run(n, figures)
    return done


# ---------------------------------------------------------------------------------------------------
# lab compare


@dataclass
class Comparison:
    specs: list[str]
    repeat: int
    rows: list[dict[str, Any]] = field(default_factory=list)

    def document(self) -> Any:
        # One run each: the rows as ever. Repeated: every run's row (with its round) and the aggregates.
        return self.rows if self.repeat == 1 else rep.compare_document(self.rows, self.specs, self.repeat)

    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] == "failed"]


def compare_rounds(
    configs: Sequence[tuple[str, RunOptions]],
    repeat: int,
    out_dir: Path,
    execute: Execute,
    *,
    before_run: Callable[[int, int, int, str], None] = lambda n, total, round_no, spec: None,
    after_run: Callable[[Comparison], None] = lambda comparison: None,
) -> Comparison:
    """Every configuration `repeat` times, round after round (A, B, C, then A, B, C again), not each N
    times in a row: drift (a warming laptop, a busy neighbour) then lands on every strategy alike instead of
    on whichever ran last. `after_run` sees the comparison after each run (to save it: a Ctrl-C in run 7
    keeps the table of runs 1 to 6)."""
    done = Comparison([spec for spec, _ in configs], repeat)
    total = len(configs) * repeat
    order = ((r, c) for r in range(1, repeat + 1) for c in configs)
    for n, (round_no, (spec, config)) in enumerate(order, start=1):
        before_run(n, total, round_no, spec)
        record, analysis, _ = execute(config, out_dir)
        row = compare_rows.row(record, analysis)
        done.rows.append({**row, "strategy": spec, **({"round": round_no} if repeat > 1 else {})})
        after_run(done)
    return done
