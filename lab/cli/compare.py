"""`lab compare`: the same scenario under several strategies, one table."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from lab.cli.app import app, default_comparison, err, fail, out
from lab.cli.execute import execute
from lab.cli.images import registry_name
from lab.cli.inputs import (
    BaselineOpt,
    ClientsOpt,
    ConfigOpt,
    EngineOpt,
    FleetOpt,
    HealthOpt,
    JsonOpt,
    LiveOpt,
    MixOpt,
    ModeOpt,
    NextUpstreamOpt,
    OutOpt,
    RateOpt,
    RegistryOpt,
    RepeatOpt,
    ScenarioOpt,
    SettleOpt,
    TestersOpt,
    V1EnvOpt,
    V2EnvOpt,
    _params,
    _strategy,
    repeat_count,
    run_config,
)
from lab.errors import EXIT_ERROR, BadInput
from lab.options import DEFAULT_MIX, ProxySettings, RunOptions, parse_mix

if TYPE_CHECKING:
    from lab.analysis.summary import Analysis
    from lab.experiments import Comparison
    from lab.record import RunRecord


@app.command("compare")
def compare_cmd(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Strategies to compare, each NAME or NAME:KEY=VALUE[:KEY=VALUE] "
            "(default: every strategy but the presets, and rolling:drain_s=1; with --engine swarm, "
            "Swarm's own update, swarm-rolling, too).",
            show_default=False,
        ),
    ] = None,
    fleet_size: FleetOpt = RunOptions.fleet_size,
    rate: RateOpt = RunOptions.rate,
    mode: ModeOpt = RunOptions.mode,
    v1_env: V1EnvOpt = None,
    v2_env: V2EnvOpt = None,
    scenario: ScenarioOpt = RunOptions.scenario,
    out_dir: OutOpt = Path("runs"),
    as_json: JsonOpt = False,
    live: LiveOpt = True,
    baseline: BaselineOpt = RunOptions.baseline_s,
    settle: SettleOpt = RunOptions.settle_s,
    health_timeout: HealthOpt = RunOptions.health_timeout_s,
    next_upstream: NextUpstreamOpt = ProxySettings.next_upstream,
    clients: ClientsOpt = RunOptions.clients,
    testers: TestersOpt = RunOptions.testers,
    mix: MixOpt = DEFAULT_MIX,
    engine: EngineOpt = RunOptions.engine,
    registry: RegistryOpt = None,
    repeat: RepeatOpt = 1,
    config_file: ConfigOpt = None,
) -> None:
    """Run each strategy on the same scenario, one after the other, and print one table.

    Every run's folder, the table (compare.txt) and its figures (compare.json) go under one folder.
    With --config FILE every strategy runs the file's scenario (fleet, versions, probe, proxy); options \
given on the command line win; the file's strategy, params and budgets are not used.
    With --repeat N the runs are interleaved (round 1 runs every strategy once, then round 2 ...), so a
    slow drift of the machine hits every strategy alike; the table shows each figure as median (min–max),
    compare.json keeps every run's figures and the aggregates, and lines under the table say whether
    neighbouring strategies' downtime can be told apart (exact rank-sum test, p < 0.05).
    Exit codes: 0 every run finished (deployed or rolled back), 1 a run failed, 2 bad input, 130 interrupted.
    """
    from lab.experiments import compare_rounds
    from lab.output import compare
    from lab.output import html as html_report
    from lab.output import repeat as rep

    repeat_count(repeat)
    configs = []
    for spec in names or default_comparison(engine):
        name, *pairs = spec.split(":")
        chosen = _strategy(name)
        try:
            params = _params(chosen, pairs)
        except BadInput as exc:  # several specs: say which one
            raise BadInput(f"{spec}: {exc}") from None
        config = run_config(
            chosen,
            params,
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
            clients=clients,
            testers=testers,
            mix=parse_mix(mix),
            engine=engine,
            registry=None if registry is None else registry_name(registry),
        )
        configs.append((spec, config))
    specs = [spec for spec, _ in configs]
    if repeat > 1 and (twice := sorted({spec for spec in specs if specs.count(spec) > 1})):
        # The runs are grouped by name: a name given twice would pool both groups' runs and compare it
        # with itself.
        raise BadInput(
            f"{', '.join(twice)} given twice: with --repeat each strategy already runs {repeat} times"
        )
    folder = out_dir / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-compare-{scenario}"
    title = f"{len(configs)} strategies, scenario {scenario}, {fleet_size} instances, {rate:g} req/s ({mode})"
    if repeat > 1:
        title += f", {repeat} interleaved runs each: median (min–max)"

    def show(console: Console, done: Comparison) -> None:
        rows = done.rows
        console.print(compare.table(rows, title) if repeat == 1 else rep.compare_table(rows, specs, title))
        for line in [] if repeat == 1 else [c.line for c in rep.downtime_comparisons(rows, specs)]:
            console.print(line, markup=False)

    def save(done: Comparison) -> None:
        (folder / "compare.json").write_text(json.dumps(done.document(), indent=2) + "\n")
        with (folder / "compare.txt").open("w") as fh:
            show(Console(file=fh, width=200), done)
        html_report.write_compare_report(folder, title)

    def before(n: int, total: int, round_no: int, spec: str) -> None:
        if not as_json:
            where = f"{n}/{total}" if repeat == 1 else f"{n}/{total} (round {round_no}/{repeat})"
            err.print(f"[bold]{where}: {escape(spec)}[/bold]")

    def one(options: RunOptions, out: Path) -> tuple[RunRecord, Analysis, Path]:
        return execute(options, out, quiet=as_json, live=live)

    done = compare_rounds(configs, repeat, folder, one, before_run=before, after_run=save)
    if as_json:
        print(json.dumps(done.document()))
    else:
        show(out, done)
        out.print(f"runs, compare.txt and compare.json: {folder}")
    if failed := done.failed():
        which = ", ".join(f"{r['strategy']} ({r['error']})" for r in failed)
        fail(f"run(s) failed: {which}", EXIT_ERROR)
