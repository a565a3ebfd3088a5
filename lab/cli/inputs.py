"""Every check of the command line's inputs, and the options `run` and `compare` share."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lab import strategies
from lab.cli.app import DEFAULT_PORT, MODES
from lab.errors import BadInput, PortInUse
from lab.nginx import ProxySettings

if TYPE_CHECKING:
    from lab.runner import RunConfig


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
LiveOpt = Annotated[
    bool,
    typer.Option(
        "--live/--no-live",
        help="Draw a live view on stderr while a run goes, when stderr is a terminal; with --no-live, or "
        "TERM=dumb, or stderr not a terminal: a plain status line every 2 s. Nothing under --json.",
    ),
]
BaselineOpt = Annotated[float, typer.Option(help="Seconds of probing before the first step.")]
SettleOpt = Annotated[float, typer.Option(help="Seconds of probing after the last step.")]
HealthOpt = Annotated[float, typer.Option(help="Seconds a new instance gets to become healthy.")]
NextUpstreamOpt = Annotated[
    str, typer.Option(help="nginx proxy_next_upstream: when the proxy tries another instance ('off': never).")
]
RepeatOpt = Annotated[
    int,
    typer.Option(
        help="Run the experiment N times (1 to 50) and report each figure's median, spread and "
        "confidence interval; every run still writes its own folder."
    ),
]


def repeat_count(repeat: int) -> int:
    from lab.repeat import MAX_REPEAT

    _number("--repeat", repeat, low=1, high=MAX_REPEAT)
    return repeat


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
