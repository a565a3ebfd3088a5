"""Every check of the command line's inputs, and the options `run` and `compare` share."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lab import strategies
from lab.cli.app import err
from lab.errors import BadInput
from lab.model import AppSpec
from lab.options import check_number, proxy_settings

if TYPE_CHECKING:
    from lab.options import RunOptions


def parse_pairs(values: list[str] | None, what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values or []:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{what} {value!r} is not KEY=VALUE")
        if key.strip() in pairs and pairs[key.strip()] != val:
            # Which one was meant? A file's value under the command line's is a choice; two here a slip.
            raise BadInput(f"{what} {key.strip()} given twice: {pairs[key.strip()]!r} and {val!r}")
        pairs[key.strip()] = val
    return pairs


_proxy_settings = proxy_settings


def _strategy(name: str) -> strategies.Strategy:
    try:
        return strategies.get(name)
    except strategies.UnknownStrategy as exc:
        raise BadInput(str(exc)) from None


def _params(
    strategy: strategies.Strategy, values: list[str] | None, base: dict[str, Any] | None = None
) -> dict[str, Any]:
    try:
        return strategy.coerce({**(base or {}), **parse_pairs(values, "parameter")})
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

# A scenario file (--config) sets the defaults of the options it names (`ctx.default_map`), so an option
# given on the command line wins and the file's values go through the same checks as typed ones.
SCENARIO_FILE = "lab.scenario_file"


def _read_config(ctx: typer.Context, value: str | None) -> str | None:
    from lab.scenario_file import load

    if value is None:
        return None
    loaded = load(value)
    known = {p.name for p in ctx.command.params}
    # What `compare` leaves to each strategy on purpose; anything else a command cannot take is refused,
    # never dropped in silence.
    unused = set(loaded.options) - known - {"max_downtime_ms", "max_failed"}
    if unused:
        field = loaded.fields[min(unused)]
        raise BadInput(f"{value}: {field}: `lab {ctx.command.name}` has no option for it")
    ctx.default_map = {**(ctx.default_map or {}), **loaded.defaults()}
    ctx.meta[SCENARIO_FILE] = loaded
    return value


def _env_with_file(
    ctx: typer.Context, param: typer.CallbackParam, value: list[str] | None
) -> list[str] | None:
    """A file's env for this version first: the command line's pairs come later and win key by key."""
    loaded = ctx.meta.get(SCENARIO_FILE)
    if loaded is None or param.name is None:
        return value
    given = {pair.partition("=")[0].strip() for pair in value or []}
    pairs = loaded.env_pairs(param.name.removesuffix("_env"))
    from_file = [p for p in pairs if p.partition("=")[0] not in given]  # the command line's win
    return [*from_file, *(value or [])] or None


def file_params(ctx: typer.Context, strategy: strategies.Strategy) -> dict[str, Any]:
    """The file's [params], when they are this strategy's: another strategy gets only the command line's."""
    loaded = ctx.meta.get(SCENARIO_FILE)
    if loaded is None or not loaded.params:
        return {}
    if loaded.strategy != strategy.name:
        note = f"the parameters in {loaded.path} are {loaded.strategy}'s: not used for {strategy.name}"
        err.print(f"lab: note: {note}", markup=False, soft_wrap=True)
        return {}
    return dict(loaded.params)


ConfigOpt = Annotated[
    str | None,  # not a Path: typer would make "" the current folder, and the mistake a confusing one
    typer.Option(
        "--config",
        is_eager=True,
        callback=_read_config,
        show_default=False,
        help="A scenario file (.toml, .yaml): its values stand in for options not given on the command line "
        "(docs/config.md).",
    ),
]
V1EnvOpt = Annotated[
    list[str] | None,
    typer.Option("--v1-env", callback=_env_with_file, help="Env KEY=VALUE for v1 instances."),
]
V2EnvOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--v2-env",
        callback=_env_with_file,
        help="Env KEY=VALUE for v2 instances, e.g. APP_BOOT_DELAY_S=3 (wins over --scenario).",
    ),
]
ScenarioOpt = Annotated[str, typer.Option(help="A named release for v2: see `lab scenarios`.")]


def _out_folder(value: Path) -> Path:
    """A folder the run folders can be written under, checked before anything runs: a run's folder is
    written at its end, and a mistake found only then would lose what was measured."""
    import tempfile

    existing = value
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BadInput(f"--out {value}: {existing} is a file, not a folder")
    try:
        tempfile.TemporaryDirectory(dir=existing).cleanup()
    except OSError as exc:
        raise BadInput(f"--out {value}: cannot write in {existing} ({exc.strerror or exc})") from None
    return value


OutOpt = Annotated[
    Path, typer.Option("--out", callback=_out_folder, help="Folder under which the run folders are written.")
]
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

# Your own app, per version (the names a scenario file's [versions.v1] image, port and health_path set).
_IMAGE_HELP = "Your own image as {v}, instead of the sample app. Never pulled: build or pull it first."
_PORT_HELP = "Port your {v} image listens on (default 8080). Needs --{v}-image."
_PATH_HELP = (
    "Path on your {v} image that answers 200 once ready for traffic (default /healthz). Needs --{v}-image."
)
V1ImageOpt = Annotated[
    str | None, typer.Option("--v1-image", show_default=False, help=_IMAGE_HELP.format(v="v1"))
]
V1PortOpt = Annotated[
    int | None, typer.Option("--v1-port", show_default=False, help=_PORT_HELP.format(v="v1"))
]
V1HealthPathOpt = Annotated[
    str | None, typer.Option("--v1-health-path", show_default=False, help=_PATH_HELP.format(v="v1"))
]
V2ImageOpt = Annotated[
    str | None, typer.Option("--v2-image", show_default=False, help=_IMAGE_HELP.format(v="v2"))
]
V2PortOpt = Annotated[
    int | None, typer.Option("--v2-port", show_default=False, help=_PORT_HELP.format(v="v2"))
]
V2HealthPathOpt = Annotated[
    str | None, typer.Option("--v2-health-path", show_default=False, help=_PATH_HELP.format(v="v2"))
]


def app_spec(
    version: str,
    image: str | None,
    port: int | None,
    health_path: str | None,
    serves: str | None = None,
) -> AppSpec:
    """What `--vN-image`, `--vN-port`, `--vN-health-path` and `--vN-serves` say version `version` runs."""
    flag = f"--{version}"
    if image is None:
        given = [
            f"{flag}-{name}"
            for name, value in (("port", port), ("health-path", health_path), ("serves", serves))
            if value is not None
        ]
        if given:
            raise BadInput(
                f"{' and '.join(given)} {'describe' if len(given) > 1 else 'describes'} your own image: "
                f"give {flag}-image too (the sample app listens on 8080 and answers /healthz)"
            )
        return AppSpec()
    if port is not None:
        check_number(f"{flag}-port", port, "port")
    try:
        AppSpec(image=image)
    except ValueError as exc:
        raise BadInput(f"{flag}-image: {exc}") from None
    if health_path is not None and not health_path.strip():
        raise BadInput(f"{flag}-health-path is empty: give the path that answers 200 when ready (/healthz)")
    try:
        AppSpec(health_path=health_path or "/healthz")
    except ValueError as exc:
        raise BadInput(f"{flag}-health-path: {exc}") from None
    kinds = None if serves is None else tuple(k.strip() for k in serves.split(",") if k.strip())
    try:
        AppSpec(serves=kinds)
    except ValueError as exc:
        raise BadInput(f"{flag}-serves: {exc}") from None
    return AppSpec(image, 8080 if port is None else port, health_path or "/healthz", kinds)


_SERVES_HELP = (
    "What your {v} image serves of --mix, e.g. get,post (default get: GET / only). Needs --{v}-image."
)
V1ServesOpt = Annotated[
    str | None, typer.Option("--v1-serves", show_default=False, help=_SERVES_HELP.format(v="v1"))
]
V2ServesOpt = Annotated[
    str | None, typer.Option("--v2-serves", show_default=False, help=_SERVES_HELP.format(v="v2"))
]
ClientsOpt = Annotated[
    int,
    typer.Option(
        help="Clients the probe's requests are spread over, each with its own connections and id (a "
        "cookie and X-Lab-Client).",
    ),
]
TestersOpt = Annotated[
    int, typer.Option(help="Of the clients, how many are testers: they send X-Canary: always.")
]
MixOpt = Annotated[
    str,
    typer.Option(
        help="What the requests ask for, by weight: get (GET /), post (POST /write, never resent by "
        "nginx), slow (held 1 s by the app), stream (3 s of server-sent events), e.g. "
        "get=80,post=10,slow=5,stream=5.",
    ),
]


EngineOpt = Annotated[
    str,
    typer.Option(
        help="Where the fleet runs: docker (the local engine's containers) or swarm (a service per "
        "instance on a swarm manager; docs/swarm.md).",
    ),
]


RegistryOpt = Annotated[
    str | None,
    typer.Option(
        show_default=False,
        help="With --engine swarm: run the lab's app images by this registry's names (pushed there with "
        "`lab images push REGISTRY`), so every node can pull them.",
    ),
]


RepeatOpt = Annotated[
    int,
    typer.Option(
        help="Run the experiment N times (1 to 50) and report each figure's median, spread and "
        "confidence interval; every run still writes its own folder."
    ),
]


def repeat_count(repeat: int) -> int:
    check_number("--repeat", repeat, "repeat")
    return repeat


def run_config(
    strategy: strategies.Strategy,
    params: dict[str, Any],
    *,
    v1_env: list[str] | None = None,
    v2_env: list[str] | None = None,
    **settings: Any,
) -> RunOptions:
    """The command line's values as RunOptions: KEY=VALUE pairs parsed here, every other check in
    lab/options.py, before anything touches Docker."""
    from lab.options import run_options

    return run_options(
        strategy.name,
        params,
        v1_env=parse_pairs(v1_env, "--v1-env"),
        v2_env=parse_pairs(v2_env, "--v2-env"),
        **settings,
    )
