"""`lab run STRATEGY`: the lab's own fleet from v1 to v2, once or `--repeat N` times."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from lab.cli.app import app, err, out
from lab.cli.execute import execute, exit_with
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
    ParamOpt,
    RateOpt,
    RegistryOpt,
    RepeatOpt,
    ScenarioOpt,
    SettleOpt,
    TestersOpt,
    V1EnvOpt,
    V1HealthPathOpt,
    V1ImageOpt,
    V1PortOpt,
    V1ServesOpt,
    V2EnvOpt,
    V2HealthPathOpt,
    V2ImageOpt,
    V2PortOpt,
    V2ServesOpt,
    _params,
    _strategy,
    app_spec,
    file_params,
    repeat_count,
    run_config,
)
from lab.errors import BadInput
from lab.options import DEFAULT_MIX, DEFAULT_PORT, ProxySettings, RunOptions, check_number, parse_mix

if TYPE_CHECKING:  # the run's modules load lazily: `lab plan` and `lab strategies` start fast
    from lab.analysis.summary import Analysis
    from lab.experiments import Budgets
    from lab.record import RunRecord


@app.command("run")
def run_cmd(
    ctx: typer.Context,
    strategy: Annotated[
        str | None,
        typer.Argument(
            help="Strategy name, see `lab strategies` (optional with a --config that names one).",
            show_default=False,
        ),
    ] = None,
    fleet_size: FleetOpt = RunOptions.fleet_size,
    rate: RateOpt = RunOptions.rate,
    mode: ModeOpt = RunOptions.mode,
    v1_env: V1EnvOpt = None,
    v2_env: V2EnvOpt = None,
    scenario: ScenarioOpt = RunOptions.scenario,
    param: ParamOpt = None,
    port: Annotated[
        int | None,
        typer.Option(
            help=f"Host port of the proxy (default {DEFAULT_PORT}, or any free port if that is taken)."
        ),
    ] = None,
    out_dir: OutOpt = Path("runs"),
    keep: Annotated[
        bool, typer.Option(help="Leave the topology up after the run (remove it with `lab clean`).")
    ] = False,
    as_json: JsonOpt = False,
    live: LiveOpt = True,
    baseline: BaselineOpt = RunOptions.baseline_s,
    settle: SettleOpt = RunOptions.settle_s,
    health_timeout: HealthOpt = RunOptions.health_timeout_s,
    max_downtime_ms: Annotated[
        float | None, typer.Option(help="Budget: exit 3 if the longest downtime exceeds it.")
    ] = None,
    max_failed: Annotated[int | None, typer.Option(help="Budget: exit 3 if more requests failed.")] = None,
    next_upstream: NextUpstreamOpt = ProxySettings.next_upstream,
    v1_image: V1ImageOpt = None,
    v1_port: V1PortOpt = None,
    v1_health_path: V1HealthPathOpt = None,
    v2_image: V2ImageOpt = None,
    v2_port: V2PortOpt = None,
    v2_health_path: V2HealthPathOpt = None,
    v1_serves: V1ServesOpt = None,
    v2_serves: V2ServesOpt = None,
    clients: ClientsOpt = RunOptions.clients,
    testers: TestersOpt = RunOptions.testers,
    mix: MixOpt = DEFAULT_MIX,
    engine: EngineOpt = RunOptions.engine,
    registry: RegistryOpt = None,
    repeat: RepeatOpt = 1,
    config_file: ConfigOpt = None,
    save_config: Annotated[
        Path | None,
        typer.Option(
            show_default=False,
            help="Write the scenario these options describe to a .toml or .yaml file (overwritten) and "
            "stop: nothing runs, no Docker needed. Run it later with --config.",
        ),
    ] = None,
) -> None:
    """Deploy v1 -> v2 with STRATEGY on a real fleet while probing, and report what clients saw.

    With --config FILE (TOML or YAML, docs/config.md) the file fills every option not given on the command \
line: an option given wins; -p, --v1-env and --v2-env win key by key over the file's params and env; a \
STRATEGY other than the file's drops the file's params. --save-config FILE writes the scenario and runs \
nothing.

    Exit codes: 0 deployed, 1 lab error, 2 bad input, 3 budget exceeded, 4 rolled back, 130 interrupted.
    With --repeat N the verdict covers every run: 1 if any run failed, else 3 if any run exceeded a budget
    (budgets apply to each run, not to the median: one bad deployment in N is the one a gate must catch),
    else 4 if any rolled back. The runs' folders and repeat.json go under one folder.
    """
    from lab.experiments import Budgets, verdict
    from lab.output import journal, terminal

    if strategy is None:
        raise BadInput("give a STRATEGY (`lab strategies` lists them), or a --config that names one")
    chosen = _strategy(strategy)
    repeat_count(repeat)
    if repeat > 1 and keep:
        raise BadInput("--keep leaves one run's topology up: it cannot be combined with --repeat")
    if max_downtime_ms is not None:
        check_number("--max-downtime-ms", max_downtime_ms, "max_downtime_ms")
    if max_failed is not None:
        check_number("--max-failed", max_failed, "max_failed")
    config = run_config(
        chosen,
        _params(chosen, param, file_params(ctx, chosen)),
        fleet_size=fleet_size,
        rate=rate,
        mode=mode,
        v1_env=v1_env,
        v2_env=v2_env,
        scenario=scenario,
        port=port,
        baseline=baseline,
        settle=settle,
        health_timeout=health_timeout,
        next_upstream=next_upstream,
        v1_app=app_spec("v1", v1_image, v1_port, v1_health_path, v1_serves),
        v2_app=app_spec("v2", v2_image, v2_port, v2_health_path, v2_serves),
        clients=clients,
        testers=testers,
        mix=parse_mix(mix),
        engine=engine,
        registry=None if registry is None else registry_name(registry),
    )
    if save_config is not None:
        from lab.scenario_file import save

        save(save_config, config, max_downtime_ms=max_downtime_ms, max_failed=max_failed)
        shown = f"scenario written to {save_config}; run it with: lab run --config {save_config}"
        err.print(shown, markup=False, soft_wrap=True)
        return
    budgets = Budgets(max_downtime_ms, max_failed)
    if repeat > 1:
        _run_repeated(config, repeat, out_dir, as_json=as_json, budgets=budgets, live=live)
        return
    record, analysis, folder = execute(config, out_dir, keep=keep, quiet=as_json, live=live)
    if as_json:
        print(json.dumps(journal.summary(record, analysis, folder)))
    elif record.probe_started is not None:  # a run that failed before probing measured nothing to show
        terminal.print_summary(out, record, analysis, folder)
        if keep and (record.published_url or record.url):
            out.print(f"kept: proxy at {record.published_url or record.url} (remove with `lab clean`)")
    exit_with(verdict(record, analysis, budgets))


def _run_repeated(
    config: RunOptions, repeat: int, out_dir: Path, *, as_json: bool, budgets: Budgets, live: bool
) -> None:
    """Each run's one-line result as it ends, then the figures' medians and spreads."""
    from lab.experiments import repeat_runs
    from lab.output import repeat as rep

    def before(n: int) -> None:
        if not as_json:
            err.print(f"[bold]run {n}/{repeat}: {escape(config.strategy)}[/bold]")

    def after(n: int, figures: dict[str, Any]) -> None:
        if not as_json:
            out.print(rep.run_line(n, repeat, figures), markup=False)

    def one(options: RunOptions, folder: Path) -> tuple[RunRecord, Analysis, Path]:
        return execute(options, folder, quiet=as_json, live=live)

    done = repeat_runs(config, repeat, out_dir, one, budgets=budgets, before_run=before, after_run=after)
    if as_json:
        print(json.dumps(done.document()))
    else:
        title = f"{config.strategy}: {repeat} runs ({rep.status_text(done.runs)}), median and spread"
        out.print(rep.run_table(done.runs, title))
        out.print(f"runs and repeat.json: {done.folder}", markup=False)
    exit_with(done.verdict())
