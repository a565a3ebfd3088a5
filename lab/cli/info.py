"""Commands that need no Docker: `strategies`, `plan`, `scenarios`."""

from __future__ import annotations

from typing import Annotated

import typer

from lab import strategies
from lab.cli.app import app, out
from lab.cli.inputs import FleetOpt, ParamOpt, _params, _strategy
from lab.errors import BadInput, LabError
from lab.model import Route, describe, fleet
from lab.options import ProxySettings, RunOptions, check_number, proxy_settings
from lab.targets.fleet.nginx import render_config
from lab.targets.fleet.plan import PlanError, Topology, walk


@app.command("strategies")
def list_strategies() -> None:
    """List the strategies, one line each, with their parameters."""
    width = max(len(name) for name in strategies.EVERY)
    for s in strategies.EVERY.values():
        params = ", ".join(f"{k}={v}" for k, v in s.defaults().items())
        out.print(
            f"{s.name:<{width}}  {s.summary}" + (f"  ({params})" if params else ""),
            markup=False,
            soft_wrap=True,
        )


@app.command("plan")
def plan_cmd(
    strategy: Annotated[str, typer.Argument(help="Strategy name, see `lab strategies`.")],
    fleet_size: FleetOpt = RunOptions.fleet_size,
    param: ParamOpt = None,
    configs: Annotated[
        bool, typer.Option(help="Print the rendered nginx config of each routing step.")
    ] = True,
    next_upstream: Annotated[
        str, typer.Option(help="nginx proxy_next_upstream, as for `lab run`.")
    ] = ProxySettings.next_upstream,
) -> None:
    """Print a strategy's steps and rendered nginx configs, assuming every health check passes. No Docker."""
    check_number("--fleet", fleet_size, "fleet_size")
    settings = proxy_settings(next_upstream)
    chosen = _strategy(strategy)
    if chosen.runs_on is not None:
        raise BadInput(
            f"{chosen.name} is {chosen.runs_on}'s own update: the lab has no plan of it; it sets the "
            f"service up, asks {chosen.runs_on} to update it and watches (lab run {chosen.name} "
            f"--engine {chosen.runs_on})"
        )
    old, new = fleet("v1", fleet_size), fleet("v2", fleet_size)
    plan = chosen.plan(old, new, **_params(chosen, param))
    initial = Route.even(old)
    try:
        steps = walk(plan, Topology(frozenset(old), initial))
    except PlanError as exc:
        raise LabError(f"the plan is impossible: {exc}") from None
    out.print(f"# {chosen.name}: {chosen.summary}", markup=False, soft_wrap=True)
    out.print(f"# initial: {describe(initial)}", markup=False, soft_wrap=True)
    # Generations as the runner numbers them: 0 is the admin-only config the proxy starts on, 1 the
    # initial route.
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


@app.command("scenarios")
def list_scenarios() -> None:
    """List the named releases that --scenario accepts."""
    from lab.scenarios import SCENARIOS

    for sc in SCENARIOS.values():
        env = " ".join(f"{k}={v}" for k, v in sc.v2_env.items())
        out.print(f"{sc.name:<16} {sc.summary}" + (f"  ({env})" if env else ""), markup=False, soft_wrap=True)
