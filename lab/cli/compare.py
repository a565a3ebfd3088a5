"""`lab compare`: the same scenario under several strategies, one table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from lab.cli.app import DEFAULT_COMPARISON, EXIT_ERROR, app, err, fail, out
from lab.cli.inputs import (
    BaselineOpt,
    FleetOpt,
    HealthOpt,
    JsonOpt,
    ModeOpt,
    NextUpstreamOpt,
    OutOpt,
    RateOpt,
    ScenarioOpt,
    SettleOpt,
    V1EnvOpt,
    V2EnvOpt,
    _params,
    _strategy,
    run_config,
)
from lab.cli.run import execute


@app.command("compare")
def compare_cmd(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Strategies to compare, each NAME or NAME:KEY=VALUE[:KEY=VALUE] "
            "(default: every strategy but the presets, and rolling:drain_s=1).",
            show_default=False,
        ),
    ] = None,
    fleet_size: FleetOpt = 4,
    rate: RateOpt = 200.0,
    mode: ModeOpt = "keepalive",
    v1_env: V1EnvOpt = None,
    v2_env: V2EnvOpt = None,
    scenario: ScenarioOpt = "default",
    out_dir: OutOpt = Path("runs"),
    as_json: JsonOpt = False,
    baseline: BaselineOpt = 2.0,
    settle: SettleOpt = 2.0,
    health_timeout: HealthOpt = 30.0,
    next_upstream: NextUpstreamOpt = "error timeout",
) -> None:
    """Run each strategy on the same scenario, one after the other, and print one table.

    Every run's folder, the table (compare.txt) and its figures (compare.json) go under one folder.
    Exit codes: 0 every run finished (deployed or rolled back), 1 a run failed, 2 bad input, 130 interrupted.
    """
    from lab import compare

    configs = []
    for spec in names or DEFAULT_COMPARISON:
        name, *pairs = spec.split(":")
        chosen = _strategy(name)
        config = run_config(
            chosen,
            _params(chosen, pairs),
            fleet_size=fleet_size,
            rate=rate,
            mode=mode,
            v1_env=v1_env,
            v2_env=v2_env,
            scenario=scenario,
            port=None,
            baseline=baseline,
            settle=settle,
            health_timeout=health_timeout,
            next_upstream=next_upstream,
        )
        configs.append((spec, config))
    folder = out_dir / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-compare-{scenario}"
    rows: list[dict[str, Any]] = []
    title = f"{len(configs)} strategies, scenario {scenario}, {fleet_size} instances, {rate:g} req/s ({mode})"

    def save() -> None:
        # After every run, not once at the end: a Ctrl-C in run 7 keeps the table of runs 1 to 6.
        (folder / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
        with (folder / "compare.txt").open("w") as fh:
            Console(file=fh, width=200).print(compare.table(rows, title))

    for n, (spec, config) in enumerate(configs, start=1):
        if not as_json:
            err.print(f"[bold]{n}/{len(configs)}: {escape(spec)}[/bold]")
        record, analysis, _ = execute(config, folder, quiet=as_json)
        rows.append({**compare.row(record, analysis), "strategy": spec})
        save()
    if as_json:
        print(json.dumps(rows))
    else:
        out.print(compare.table(rows, title))
        out.print(f"runs, compare.txt and compare.json: {folder}")
    if any(r["status"] == "failed" for r in rows):
        failed = ", ".join(f"{r['strategy']} ({r['error']})" for r in rows if r["status"] == "failed")
        fail(f"run(s) failed: {failed}", EXIT_ERROR)
