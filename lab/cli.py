"""The `lab` command: a thin layer over the runner, the planner and the runtime."""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from lab import strategies
from lab.errors import BadInput, LabError, PortInUse
from lab.model import Route, describe, fleet
from lab.nginx import ProxySettings, render_config
from lab.plan import PlanError, Topology, walk

if TYPE_CHECKING:  # the run's modules load lazily: `lab plan` and `lab strategies` need no Docker SDK
    from lab.analysis import Analysis
    from lab.runner import RunConfig, RunRecord

DEFAULT_PORT = 8080
MODES = ("keepalive", "fresh")
# What `lab compare` runs by default: every strategy (not the presets, which repeat them with vendors'
# timings), and rolling once more with a drain, so a hard stop and a drained one sit side by side.
DEFAULT_COMPARISON = [*(n for n in strategies.REGISTRY if n not in strategies.PRESETS), "rolling:drain_s=1"]
BASES = ("auto", "official", "debootstrap")

# Exit codes: the verdict of a run, so CI can gate on it.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_BUDGET, EXIT_ROLLED_BACK, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 130

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="A laptop lab that deploys a real fleet from v1 to v2 and measures what clients saw.",
)
images_app = typer.Typer(help="Build the app and proxy images (offline if no registry is reachable).")
err = Console(stderr=True, highlight=False)
out = Console(highlight=False)


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"lab: error: {message}", markup=False, soft_wrap=True)
    raise typer.Exit(code)


def parse_pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{what} {value!r} is not KEY=VALUE")
        pairs[key.strip()] = val
    return pairs


def _number(name: str, value: float, *, low: float, high: float, low_ok: bool = True) -> None:
    """One check for every number on the command line: finite, and inside its stated bounds."""
    if not math.isfinite(value) or value < low or (value == low and not low_ok) or value > high:
        lower = f"from {low:g}" if low_ok else f"above {low:g}"
        raise BadInput(f"{name} must be {lower} up to {high:g}, got {value:g}")


# Set by the lab itself: an override would break version attribution or routing.
RESERVED_ENV = ("APP_VERSION", "APP_INSTANCE", "APP_PORT")


def _env(values: list[str] | None, option: str) -> dict[str, str]:
    env = parse_pairs(values, option)
    reserved = sorted(set(env) & set(RESERVED_ENV))
    if reserved:
        raise BadInput(f"{option} cannot set {', '.join(reserved)}: the lab sets it")
    return env


def _proxy_settings(next_upstream: str) -> ProxySettings:
    try:
        return ProxySettings(next_upstream=next_upstream)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def _strategy(name: str) -> strategies.Strategy:
    try:
        return strategies.get(name)
    except strategies.UnknownStrategy as exc:
        raise BadInput(str(exc)) from None


def _params(strategy: strategies.Strategy, values: list[str] | None) -> dict[str, Any]:
    try:
        return strategy.coerce(parse_pairs(values, "parameter"))
    except ValueError as exc:
        raise BadInput(str(exc)) from None


FleetOpt = Annotated[int, typer.Option("--fleet", "-n", help="Instances per version.")]
ParamOpt = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="Strategy parameter KEY=VALUE (see `lab strategies`)."),
]


@app.command("strategies")
def list_strategies() -> None:
    """List the strategies, one line each, with their parameters."""
    width = max(len(name) for name in strategies.REGISTRY)
    for s in strategies.REGISTRY.values():
        params = ", ".join(f"{k}={v}" for k, v in s.defaults().items())
        out.print(
            f"{s.name:<{width}}  {s.summary}" + (f"  ({params})" if params else ""),
            markup=False,
            soft_wrap=True,
        )


@app.command("plan")
def plan_cmd(
    strategy: Annotated[str, typer.Argument(help="Strategy name, see `lab strategies`.")],
    fleet_size: FleetOpt = 4,
    param: ParamOpt = None,
    configs: Annotated[
        bool, typer.Option(help="Print the rendered nginx config of each routing step.")
    ] = True,
    next_upstream: Annotated[
        str, typer.Option(help="nginx proxy_next_upstream, as for `lab run`.")
    ] = "error timeout",
) -> None:
    """Print a strategy's steps and rendered nginx configs, assuming every health check passes. No Docker."""
    _number("--fleet", fleet_size, low=1, high=16)
    settings = _proxy_settings(next_upstream)
    chosen = _strategy(strategy)
    old, new = fleet("v1", fleet_size), fleet("v2", fleet_size)
    plan = chosen.plan(old, new, **_params(chosen, param))
    initial = Route.even(old)
    try:
        steps = walk(plan, Topology(frozenset(old), initial))
    except PlanError as exc:
        raise LabError(f"the plan is impossible: {exc}") from None
    out.print(f"# {chosen.name}: {chosen.summary}", markup=False, soft_wrap=True)
    out.print(f"# initial: {describe(initial)}", markup=False, soft_wrap=True)
    # Generations as the runner numbers them: 0 is the static config the proxy starts on, 1 the initial route.
    generation = 1
    if configs:
        config = render_config(initial, settings, generation=generation, title="initial")
        out.print(config, markup=False, soft_wrap=True)
    for planned in steps:
        out.print(f"{planned.index:>3}  {describe(planned.step)}", markup=False, soft_wrap=True)
        if configs and isinstance(planned.step, Route):
            generation += 1
            label = f"step {planned.index}: {describe(planned.step)}"
            config = render_config(planned.step, settings, generation=generation, title=label)
            out.print(config, markup=False, soft_wrap=True)


RateOpt = Annotated[float, typer.Option(help="Probe requests per second (open loop).")]
ModeOpt = Annotated[
    str, typer.Option(help="Probe connections: keepalive (reused) or fresh (one per request).")
]
V1EnvOpt = Annotated[list[str] | None, typer.Option("--v1-env", help="Env KEY=VALUE for v1 instances.")]
V2EnvOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--v2-env", help="Env KEY=VALUE for v2 instances, e.g. APP_BOOT_DELAY_S=3 (wins over --scenario)."
    ),
]
ScenarioOpt = Annotated[str, typer.Option(help="A named release for v2: see `lab scenarios`.")]
OutOpt = Annotated[Path, typer.Option("--out", help="Folder under which the run folders are written.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON on stdout, nothing else.")]
BaselineOpt = Annotated[float, typer.Option(help="Seconds of probing before the first step.")]
SettleOpt = Annotated[float, typer.Option(help="Seconds of probing after the last step.")]
HealthOpt = Annotated[float, typer.Option(help="Seconds a new instance gets to become healthy.")]
NextUpstreamOpt = Annotated[
    str, typer.Option(help="nginx proxy_next_upstream: when the proxy tries another instance ('off': never).")
]


def run_config(
    strategy: strategies.Strategy,
    params: dict[str, Any],
    *,
    fleet_size: int,
    rate: float,
    mode: str,
    v1_env: list[str] | None,
    v2_env: list[str] | None,
    scenario: str,
    port: int | None,
    baseline: float,
    settle: float,
    health_timeout: float,
    next_upstream: str,
) -> RunConfig:
    """Every check of `run`'s and `compare`'s inputs, before anything touches Docker."""
    from lab.runner import RunConfig
    from lab.runtime.docker_local import port_is_free
    from lab.scenarios import scenario as named

    _number("--fleet", fleet_size, low=1, high=16)
    _number("--rate", rate, low=0, high=5000, low_ok=False)
    _number("--baseline", baseline, low=0, high=600)
    _number("--settle", settle, low=0, high=600)
    _number("--health-timeout", health_timeout, low=0, high=600, low_ok=False)
    if mode not in MODES:
        raise BadInput(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    try:
        release = named(scenario)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    if port is not None:
        _number("--port", port, low=1, high=65535)
        if not port_is_free(port):  # before any container exists, so nothing has to be undone
            raise PortInUse(f"port {port} is in use on 127.0.0.1: pick another with --port")
    return RunConfig(
        strategy=strategy.name,
        params=params,
        fleet_size=fleet_size,
        rate=rate,
        mode=mode,
        v1_env=_env(v1_env, "--v1-env"),
        v2_env={**release.v2_env, **_env(v2_env, "--v2-env")},
        scenario=release.name,
        port=port if port is not None else (DEFAULT_PORT if port_is_free(DEFAULT_PORT) else None),
        baseline_s=baseline,
        settle_s=settle,
        health_timeout_s=health_timeout,
        proxy=_proxy_settings(next_upstream),
    )


@app.command("run")
def run_cmd(
    strategy: Annotated[str, typer.Argument(help="Strategy name, see `lab strategies`.")],
    fleet_size: FleetOpt = 4,
    rate: RateOpt = 200.0,
    mode: ModeOpt = "keepalive",
    v1_env: V1EnvOpt = None,
    v2_env: V2EnvOpt = None,
    scenario: ScenarioOpt = "default",
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
    baseline: BaselineOpt = 2.0,
    settle: SettleOpt = 2.0,
    health_timeout: HealthOpt = 30.0,
    max_downtime_ms: Annotated[
        float | None, typer.Option(help="Budget: exit 3 if the longest downtime exceeds it.")
    ] = None,
    max_failed: Annotated[int | None, typer.Option(help="Budget: exit 3 if more requests failed.")] = None,
    next_upstream: NextUpstreamOpt = "error timeout",
) -> None:
    """Deploy v1 -> v2 with STRATEGY on a real fleet while probing, and report what clients saw.

    Exit codes: 0 deployed, 1 lab error, 2 bad input, 3 budget exceeded, 4 rolled back, 130 interrupted.
    """
    from lab import report

    chosen = _strategy(strategy)
    if max_downtime_ms is not None:
        _number("--max-downtime-ms", max_downtime_ms, low=0, high=1e9)
    if max_failed is not None:
        _number("--max-failed", max_failed, low=0, high=1e12)
    config = run_config(
        chosen,
        _params(chosen, param),
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
    )
    record, analysis, folder = execute(config, out_dir, keep=keep, quiet=as_json)
    if as_json:
        print(json.dumps(report.summary(record, analysis, folder)))
    elif record.probe_started is not None:  # a run that failed before probing measured nothing to show
        report.print_summary(out, record, analysis, folder)
        if keep and record.endpoints:
            out.print(f"kept: proxy at {record.endpoints.url} (remove with `lab clean`)")

    if record.status == "failed":
        fail(record.error or "the run failed", EXIT_ERROR)
    over = []
    if max_downtime_ms is not None and analysis.downtime_ms > max_downtime_ms:
        over.append(f"downtime {analysis.downtime_ms:,.1f} ms > {max_downtime_ms:,.1f} ms")
    if max_failed is not None and analysis.requests_failed > max_failed:
        over.append(f"failed requests {analysis.requests_failed:,} > {max_failed:,}")
    if over:
        fail("budget exceeded: " + "; ".join(over), EXIT_BUDGET)
    if record.status == "rolled_back":
        raise typer.Exit(EXIT_ROLLED_BACK)


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


@app.command("scenarios")
def list_scenarios() -> None:
    """List the named releases that --scenario accepts."""
    from lab.scenarios import SCENARIOS

    for sc in SCENARIOS.values():
        env = " ".join(f"{k}={v}" for k, v in sc.v2_env.items())
        out.print(f"{sc.name:<16} {sc.summary}" + (f"  ({env})" if env else ""), markup=False, soft_wrap=True)


def execute(
    config: RunConfig, out_dir: Path, *, keep: bool = False, quiet: bool = False
) -> tuple[RunRecord, Analysis, Path]:
    """One run from start to clean-up, its folder written under `out_dir`. Ctrl-C ends the command."""
    from lab import report
    from lab.analysis import summarize
    from lab.runner import Runner
    from lab.runtime.docker_local import DockerRuntime
    from lab.runtime.images import PROXY_IMAGE

    run_id = secrets.token_hex(3)
    stamp = f"{datetime.now(UTC):%Y%m%d-%H%M%S}"

    def progress(line: str, _event: object) -> None:
        if not quiet:
            err.print(f"[dim]{escape(line)}[/dim]")

    runner = Runner(config, DockerRuntime(run_id, proxy_image=PROXY_IMAGE), keep=keep, hook=progress)
    try:
        record = runner.run()
    except KeyboardInterrupt:
        removed = runner.record.removed
        fail(f"interrupted; removed {removed}" if removed else "interrupted", EXIT_INTERRUPTED)
    analysis = summarize(record.samples, record.events, target_rate=config.rate, fleet_size=config.fleet_size)
    folder = out_dir / f"{stamp}-{config.strategy}-{run_id}"
    report.write_run(record, analysis, folder)
    return record, analysis, folder


@images_app.callback(invoke_without_command=True)
def images_cmd(
    ctx: typer.Context,
    rebuild: Annotated[bool, typer.Option(help="Build again even if the images exist.")] = False,
    base: Annotated[
        str, typer.Option(help="auto (official if pullable, else debootstrap), official, debootstrap.")
    ] = "auto",
) -> None:
    """Build the app (v1, v2) and proxy images; say which base path was taken."""
    if ctx.invoked_subcommand:
        return
    if base not in BASES:
        raise BadInput(f"--base must be one of {', '.join(BASES)}, got {base!r}")
    from lab.runtime.docker_local import connect
    from lab.runtime.images import ensure_images

    report = ensure_images(
        connect(), rebuild=rebuild, base=base, log=lambda line: err.print(line, markup=False)
    )
    for name in report.built:
        out.print(f"built   {name}", markup=False)
    for name in report.present:
        out.print(f"present {name}", markup=False)
    out.print(f"base: {report.path}", markup=False)


app.add_typer(images_app, name="images")


@app.command("clean")
def clean_cmd(
    images: Annotated[
        bool, typer.Option("--images", help="Also remove the lab's images (not the base).")
    ] = False,
) -> None:
    """Remove every container and network any lab run left behind."""
    from lab.runtime.docker_local import connect, remove_labelled
    from lab.runtime.images import remove_images

    client = connect()
    removed = remove_labelled(client)
    out.print(f"removed {removed}", markup=False)
    if removed.left:
        raise LabError(f"could not remove everything: {'; '.join(removed.left)}")
    if images:
        for name in remove_images(client):
            out.print(f"removed image {name}", markup=False)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # The first Ctrl-C (or a CI job's SIGTERM) starts the clean-up; later ones must not cut it short and
    # leave containers behind, so both are ignored from here on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(standalone_mode=False)
    except LabError as exc:
        err.print(f"lab: error: {exc}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("lab: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # usage errors: a bad option value, a missing argument
        if exc.format_message():  # empty when no command was given: the help was printed instead
            err.print(f"lab: error: {exc.format_message()}", markup=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    except KeyboardInterrupt:
        err.print("lab: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # a bug: still one line; LAB_DEBUG=1 shows the traceback
        if os.environ.get("LAB_DEBUG") == "1":
            raise
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        err.print(f"lab: error: internal error: {message} (LAB_DEBUG=1 for details)", markup=False)
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
