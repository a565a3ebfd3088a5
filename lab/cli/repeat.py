"""`lab run STRATEGY --repeat N`: the same run N times, each in its own folder, then the figures' medians."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from lab.cli.app import EXIT_BUDGET, EXIT_ERROR, EXIT_ROLLED_BACK, err, fail, out
from lab.cli.run import execute, over_budget

if TYPE_CHECKING:
    from lab.options import RunOptions


def run_repeated(
    config: RunOptions,
    repeat: int,
    out_dir: Path,
    *,
    as_json: bool,
    budgets: tuple[float | None, int | None],
    **options: Any,
) -> None:
    """Run `config` `repeat` times; repeat.json is rewritten after every run, so an interrupt keeps the
    runs measured before it (the interrupted run itself is removed by `execute`). `options` go to
    `execute` as they are (e.g. `live`)."""
    from lab.output import repeat as rep
    from lab.output.journal import summary

    folder = out_dir / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-repeat-{config.strategy}"
    runs: list[dict[str, Any]] = []
    over: list[str] = []  # every budget a run exceeded, "run 2: downtime 512.3 ms > 100.0 ms"
    over_runs: set[int] = set()

    def document() -> dict[str, Any]:
        return {**rep.run_document(config.strategy, repeat, runs), "output": str(folder)}

    for n in range(1, repeat + 1):
        if not as_json:
            err.print(f"[bold]run {n}/{repeat}: {escape(config.strategy)}[/bold]")
        record, analysis, run_folder = execute(config, folder, quiet=as_json, **options)
        figures = summary(record, analysis, run_folder)
        runs.append({"run": n, **figures})
        if record.status != "failed" and (phrases := over_budget(analysis, *budgets)):
            over += [f"run {n}: {phrase}" for phrase in phrases]
            over_runs.add(n)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "repeat.json").write_text(json.dumps(document(), indent=2) + "\n")
        if not as_json:
            out.print(rep.run_line(n, repeat, figures), markup=False)

    if as_json:
        print(json.dumps(document()))
    else:
        title = f"{config.strategy}: {repeat} runs ({rep.status_text(runs)}), median and spread"
        out.print(rep.run_table(runs, title))
        out.print(f"runs and repeat.json: {folder}", markup=False)

    failed = [r for r in runs if r["status"] == "failed"]
    if failed:
        fail("run(s) failed: " + "; ".join(f"run {r['run']}: {r['error']}" for r in failed), EXIT_ERROR)
    if over:
        fail(f"budget exceeded in {len(over_runs)} of {repeat} runs: " + "; ".join(over), EXIT_BUDGET)
    if any(r["status"] == "rolled_back" for r in runs):
        raise typer.Exit(EXIT_ROLLED_BACK)
