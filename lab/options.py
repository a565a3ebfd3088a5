"""Every setting of a run, its default and its bounds, once.

The command line, scenario files, `lab compare`, the pytest plugin and library users all build one
`RunOptions` through `run_options`, so a default or a bound is written here and nowhere else, and a value
is checked the same way whichever door it came in by. Pure: no Docker, no network.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from lab.errors import BadInput
from lab.model import AppSpec

MODES = ("keepalive", "fresh")  # keepalive: each probe connection reused; fresh: a new one per request
ENGINES = ("docker", "swarm")  # lab/engines/: the local engine's containers, Swarm's services
DEFAULT_PORT = 8080  # the proxy's host port when it is free
# Set by the lab itself on every instance: an override would break version attribution or routing.
RESERVED_ENV = ("APP_VERSION", "APP_INSTANCE", "APP_PORT")


class Bounds(NamedTuple):
    low: float
    high: float
    low_ok: bool = True  # whether `low` itself is allowed

    def problem(self, value: float) -> str | None:
        """What is wrong with `value`, or None: finite, and inside the bounds."""
        above_low = self.low < value or (value == self.low and self.low_ok)
        if math.isfinite(value) and above_low and value <= self.high:
            return None
        lower = f"from {self.low:g}" if self.low_ok else f"above {self.low:g}"
        return f"must be {lower} up to {self.high:g}, got {value:g}"


# By the name of the setting they bound (the `lab run` parameter of the same name).
BOUNDS: dict[str, Bounds] = {
    "fleet_size": Bounds(1, 16),
    "rate": Bounds(0, 5000, low_ok=False),
    "baseline": Bounds(0, 600),
    "settle": Bounds(0, 600),
    "health_timeout": Bounds(0, 600, low_ok=False),
    "port": Bounds(1, 65535),
    "max_downtime_ms": Bounds(0, 1e9),
    "max_failed": Bounds(0, 1e12),
    "repeat": Bounds(1, 50),  # 50 runs of a 10 s deployment are already most of an hour on a laptop
    "duration": Bounds(0, 86400, low_ok=False),  # `lab measure` without a command: up to a day
    "timeout": Bounds(0, 60, low_ok=False),  # a probe request's connect, and its answer
    "clients": Bounds(1, 1000),  # each a connection of its own at least: a thousand is a big room
    "testers": Bounds(0, 1000),
}


def check_number(name: str, value: float, parameter: str) -> None:
    """`value` of the setting `parameter` within BOUNDS; BadInput naming it as `name` (`--fleet`)."""
    problem = BOUNDS[parameter].problem(value)
    if problem:
        raise BadInput(f"{name} {problem}")


# What nginx accepts in proxy_next_upstream (checked here so a typo is a clear error, not a dead proxy).
NEXT_UPSTREAM_TOKENS = frozenset(
    {
        "error",
        "timeout",
        "invalid_header",
        "http_500",
        "http_502",
        "http_503",
        "http_504",
        "http_403",
        "http_404",
        "http_429",
        "non_idempotent",
        "off",
    }
)


@dataclass(frozen=True)
class ProxySettings:
    """How the lab's nginx proxies: timeouts, retries, the old workers' grace at a reload."""

    listen_port: int = 80
    admin_port: int = 8081
    app_port: int = 8080
    worker_processes: int = 1
    upstream_keepalive: int = 32
    connect_timeout_s: float = 1.0
    read_timeout_s: float = 5.0
    # nginx's own default: on a connection error or timeout, try the next server. A GET that a stopped
    # instance refused is then answered by another one, which is what clients of such a proxy really see.
    next_upstream: str = "error timeout"
    next_upstream_tries: int = 0  # 0 = as many as there are servers
    max_fails: int = 1
    fail_timeout_s: int = 10
    resolver: str = "127.0.0.11"  # Docker's embedded DNS
    # How long an old worker keeps a kept-alive client connection through a reload (see the template).
    # Needs nginx >= 1.27.4; the runner drops it (None) for an older proxy and says so in the journal.
    keepalive_min_timeout_s: float | None = 1.0

    @property
    def old_workers_wait_s(self) -> float:
        """How long a reload waits for the previous config's workers to go: an idle kept-alive client may
        hold one for keepalive_min_timeout, an answer in flight for the read timeout, and a second more."""
        return (self.keepalive_min_timeout_s or 0.0) + self.read_timeout_s + 1.0

    def __post_init__(self) -> None:
        tokens = self.next_upstream.split()
        unknown = [t for t in tokens if t not in NEXT_UPSTREAM_TOKENS]
        if not tokens or unknown or ("off" in tokens and len(tokens) > 1):
            raise ValueError(
                f"next_upstream {self.next_upstream!r} is not valid: use 'off' or some of "
                + ", ".join(sorted(NEXT_UPSTREAM_TOKENS - {"off"}))
            )


# Request headers whose values are secrets: sent by the probe, never written to a run folder or a report.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key", "x-auth-token"})
OkRanges = tuple[tuple[int, int], ...]
# What a probe request asks for: `get` the page (`/`); `post` a write (`POST /write`: never resent by the
# proxy); `slow` a request the app holds (`GET /slow`); `stream` a long answer (`GET /stream`, server-sent
# events for seconds). The lab's sample app serves all four; `get` is what every service serves.
KINDS = ("get", "post", "slow", "stream")
Mix = tuple[tuple[str, int], ...]  # (kind, weight)


def parse_mix(text: str) -> Mix:
    """`--mix get=90,post=5,slow=3,stream=2`: what the probe's ticks ask for, by weight."""
    mix: list[tuple[str, int]] = []
    for part in text.split(","):
        kind, sep, weight = part.strip().partition("=")
        if not sep or kind not in KINDS:
            raise BadInput(
                f"--mix {text!r}: use KIND=WEIGHT with kinds {', '.join(KINDS)}, e.g. get=90,post=10"
            )
        if not weight.isdigit():
            raise BadInput(f"--mix {text!r}: the weight of {kind} must be a whole number, got {weight!r}")
        if any(kind == k for k, _ in mix):
            raise BadInput(f"--mix {text!r}: {kind} given twice")
        if int(weight):
            mix.append((kind, int(weight)))
    if not mix:
        raise BadInput(f"--mix {text!r}: every weight is 0")
    return tuple(mix)


def mix_text(mix: Mix) -> str:
    return ",".join(f"{kind}={weight}" for kind, weight in mix)


DEFAULT_MIX = "get=1"  # every request a GET of the page, as before requests came in kinds


def check_population(clients: int, testers: int) -> None:
    check_number("--clients", clients, "clients")
    check_number("--testers", testers, "testers")
    if testers > clients:
        raise BadInput(
            f"--testers {testers} is more than --clients {clients}: testers are some of the clients"
        )


def ok_text(ranges: OkRanges) -> str:
    """`200-399`, `200,204`: as `--ok` takes it."""
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


def parse_ok(text: str) -> OkRanges:
    """`--ok 200-399` or `200,204,300-308`: the statuses that count as a good answer."""
    ranges = []
    for part in text.split(","):
        low, sep, high = part.strip().partition("-")
        try:
            lo, hi = int(low), int(high) if sep else int(low)
        except ValueError:
            raise BadInput(f"--ok {text!r}: use statuses and ranges like 200-399 or 200,204") from None
        if not (100 <= lo <= hi <= 599):
            raise BadInput(f"--ok {text!r}: {part.strip()} is not a range of HTTP statuses (100 to 599)")
        ranges.append((lo, hi))
    return tuple(ranges)


@dataclass(frozen=True)
class RequestOptions:
    """What every probe request carries, and how its answer is read."""

    headers: tuple[tuple[str, str], ...] = ()  # (name, value), sent as given (a Host for an ingress ...)
    insecure: bool = False  # accept any TLS certificate: a self-signed one in a test cluster
    ok: OkRanges = ((200, 399),)  # statuses that count as a good answer; any other is a failure
    version_header: str = "X-App-Version"  # the response header that names the version that answered
    version_from_body: str | None = None  # or a regular expression over the body: group 1, else the match

    def shown_headers(self) -> list[list[str]]:
        """The headers as a run folder may show them: a secret's value is never written."""
        return [
            [name, "<redacted>" if name.lower() in SECRET_HEADERS else value] for name, value in self.headers
        ]


@dataclass(frozen=True)
class MeasureOptions:
    """`lab measure`: the user's service at `url`, moved by their own deploy `command`."""

    url: str
    command: tuple[str, ...] = ()  # empty: probe until --duration or Ctrl-C (a deploy done by hand)
    duration_s: float | None = None  # without a command: how long to probe after the baseline
    old_version: str | None = None  # the version that served before; None: the baseline's most answered


@dataclass(frozen=True)
class RunOptions:
    """One run: the lab's own fleet moved by `strategy` (`lab run`), or, with `measure`, the user's
    service moved by their own command (`lab measure`, strategy "measure"). The fleet's fields are unused
    then."""

    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    fleet_size: int = 4
    rate: float = 200.0  # probe requests per second
    mode: str = "keepalive"  # or "fresh": a new connection per probe request
    v1_env: Mapping[str, str] = field(default_factory=dict)
    v2_env: Mapping[str, str] = field(default_factory=dict)
    v1_app: AppSpec = AppSpec()  # what v1's instances run: the sample app, or the user's own image
    v2_app: AppSpec = AppSpec()
    scenario: str = "default"  # the named release v2_env came from (lab/scenarios.py)
    port: int | None = None  # host port of the proxy; None: DEFAULT_PORT if free when bound, else any
    baseline_s: float = 2.0  # probing before the first step: the "before" latency
    settle_s: float = 2.0  # probing after the last step: late failures and stragglers show up here
    health_timeout_s: float = 30.0
    stop_grace_s: float = 10.0
    probe_timeout_s: float = 2.0
    proxy: ProxySettings = ProxySettings()
    request: RequestOptions = RequestOptions()
    measure: MeasureOptions | None = None
    # The probe's population: its ticks spread over `clients`, each with its own connections and id; the
    # first `testers` of them send `X-Canary: always`. `mix`: what the ticks ask for (KINDS), by weight.
    # 32 by default: a population, not one connection (after a reload every kept-alive client of an old
    # nginx worker meets the old config once more, so what one connection sees understates what many
    # see); at the default 200 req/s each sends a request every 160 ms, a busy user's pace, and one
    # client's outage is measured to within that.
    clients: int = 32
    testers: int = 0
    mix: Mix = (("get", 1),)
    engine: str = "docker"  # where the fleet runs: the local engine's containers, or Swarm's services
    registry: str | None = None  # swarm: the lab's app images by this registry's names (lab images push)


def _env(values: Mapping[str, str] | None, option: str, app: AppSpec) -> dict[str, str]:
    env = dict(values or {})
    for key in env:
        if not key or any(c.isspace() or c == "=" for c in key):
            raise BadInput(f"{option} {key!r}: a variable's name holds no space and no '='")
    reserved = sorted(set(env) & set(RESERVED_ENV))
    if reserved:
        raise BadInput(f"{option} cannot set {', '.join(reserved)}: the lab sets it")
    if app.image is None and env:
        # The sample app's knobs, checked as the app will check them: a bad value is bad input now, not
        # a fleet whose every instance exits at start (imported only here: it loads http.server).
        from sample_app.app import Settings, SettingsError

        try:
            Settings.from_env(env, default_instance="check")
        except SettingsError as exc:
            raise BadInput(f"{option}: {exc}") from None
    return env


def proxy_settings(next_upstream: str) -> ProxySettings:
    try:
        return ProxySettings(next_upstream=next_upstream)
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise BadInput(f"--mode must be one of {', '.join(MODES)}, got {mode!r}")
    return mode


def run_options(
    strategy: str,
    params: Mapping[str, Any],
    *,
    fleet_size: int = RunOptions.fleet_size,
    rate: float = RunOptions.rate,
    mode: str = RunOptions.mode,
    v1_env: Mapping[str, str] | None = None,
    v2_env: Mapping[str, str] | None = None,
    scenario: str = RunOptions.scenario,
    port: int | None = None,
    baseline: float = RunOptions.baseline_s,
    settle: float = RunOptions.settle_s,
    health_timeout: float = RunOptions.health_timeout_s,
    next_upstream: str = ProxySettings.next_upstream,
    v1_app: AppSpec | None = None,
    v2_app: AppSpec | None = None,
    clients: int = RunOptions.clients,
    testers: int = RunOptions.testers,
    mix: Mix = RunOptions.mix,
    engine: str = RunOptions.engine,
    registry: str | None = None,
) -> RunOptions:
    """Every check of a run's settings, before anything touches Docker; BadInput names the command line's
    option (`--fleet must be from 1 up to 16, got 20`). `strategy` and `params` are already checked (the
    strategy's own `coerce`). A `port` must be free now; without one, the default port when it is free."""
    from lab.ports import port_is_free
    from lab.scenarios import scenario as named

    check_number("--fleet", fleet_size, "fleet_size")
    check_number("--rate", rate, "rate")
    check_number("--baseline", baseline, "baseline")
    check_number("--settle", settle, "settle")
    check_number("--health-timeout", health_timeout, "health_timeout")
    check_mode(mode)
    try:
        release = named(scenario)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    v1_app, v2_app = v1_app or AppSpec(), v2_app or AppSpec()
    if release.v2_env and v2_app.image is not None:
        raise BadInput(
            f"--scenario {release.name} sets the sample app's knobs, which your own v2 image "
            f"({v2_app.image}) does not read: make the release bad in the image itself, or with --v2-env"
        )
    check_population(clients, testers)
    if engine not in ENGINES:
        raise BadInput(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    from lab import strategies

    runs_on = strategies.get(strategy).runs_on if strategy in strategies.EVERY else None
    if runs_on is not None and engine != runs_on:
        raise BadInput(f"{strategy} is {runs_on}'s own update: run it with --engine {runs_on}")
    if registry is not None and engine != "swarm":
        raise BadInput("--registry names the images a swarm's nodes pull: it needs --engine swarm")
    for version, app in (("v1", v1_app), ("v2", v2_app)):
        unserved = [kind for kind, _ in mix if kind not in app.kinds]
        if unserved:
            raise BadInput(
                f"--mix asks for {', '.join(unserved)}, which your {version} image ({app.image}) does not "
                f"serve: it serves {', '.join(app.kinds)} (--{version}-serves)"
            )
    if port is not None:
        check_number("--port", port, "port")
        if not port_is_free(port):  # before any container exists, so nothing has to be undone
            from lab.errors import PortInUse

            raise PortInUse(f"port {port} is in use on 127.0.0.1: pick another with --port")
    return RunOptions(
        strategy=strategy,
        params=dict(params),
        fleet_size=fleet_size,
        rate=rate,
        mode=mode,
        v1_env=_env(v1_env, "--v1-env", v1_app),
        v2_env={**release.v2_env, **_env(v2_env, "--v2-env", v2_app)},
        v1_app=v1_app,
        v2_app=v2_app,
        scenario=release.name,
        port=port,  # None: the default port if it is free when the proxy binds it, else any (the target)
        baseline_s=baseline,
        settle_s=settle,
        health_timeout_s=health_timeout,
        proxy=proxy_settings(next_upstream),
        clients=clients,
        testers=testers,
        mix=mix,
        engine=engine,
        registry=registry,
    )


# ---------------------------------------------------------------------------------------------------
# lab measure

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110's token: what a header name may be


def parse_url(url: str) -> str:
    import httpx

    shown = _masked(url)  # a password is not echoed
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        reason = str(exc) if shown == url else "not a valid URL"  # httpx's may quote the password
        raise BadInput(f"{shown!r} is not a URL: {reason}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadInput(f"{shown!r} is not an http or https URL (e.g. http://127.0.0.1:8089/)")
    if any(c.isspace() for c in url):
        raise BadInput(f"{shown!r} is not a URL: it holds a space (write it as %20)")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise BadInput(f"{shown!r}: port {parsed.port} is not a TCP port (1 to 65535)")
    return url


def _masked(url: str) -> str:
    """The URL with its password, if it holds one, as `***`: everything between the user's `:` and the
    authority's last `@` (a password may hold an unescaped `@` or `/`)."""
    scheme, sep, rest = url.partition("://")
    at = rest.rfind("@", 0, len(rest) if "?" not in rest else rest.index("?"))
    if not sep or at < 0:
        return url
    user = rest[:at].partition(":")[0]
    return f"{scheme}://{user}:***@{rest[at + 1:]}" if ":" in rest[:at] else url


def split_credentials(url: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """`http://user:secret@host/` as the URL without them and the Basic `Authorization` header they
    stand for. The probe sends through httpx's transport, which applies no credentials of a URL's, and
    the URL is written to the journal and report, where a header's secret is redacted and a URL's is not."""
    import base64
    from urllib.parse import unquote

    import httpx

    parsed = httpx.URL(url)
    if not parsed.userinfo:
        return url, ()
    user, _, password = parsed.userinfo.decode("ascii").partition(":")
    token = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    return str(parsed.copy_with(username=None, password=None)), (("Authorization", f"Basic {token}"),)


def parse_headers(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    headers = []
    for value in values or []:
        name, sep, text = value.partition(":")
        if not sep or not _TOKEN.fullmatch(name.strip()):
            raise BadInput(f"--header {value!r} is not 'Name: value' (e.g. --header 'Host: shop.example')")
        if "\r" in text or "\n" in text:
            raise BadInput(f"--header {name.strip()}: a value cannot hold a line break")
        headers.append((name.strip(), text.strip()))
    return tuple(headers)


def parse_pattern(pattern: str | None) -> str | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise BadInput(f"--version-from-body {pattern!r} is not a regular expression: {exc}") from None
    if compiled.groups > 1:
        raise BadInput(
            f"--version-from-body {pattern!r}: one group at most (the version), got {compiled.groups}"
        )
    return pattern


def measure_options(
    url: str,
    command: Sequence[str] = (),
    *,
    rate: float = RunOptions.rate,
    mode: str = RunOptions.mode,
    baseline: float = RunOptions.baseline_s,
    settle: float | None = None,
    duration: float | None = None,
    timeout: float = RunOptions.probe_timeout_s,
    headers: tuple[tuple[str, str], ...] = (),
    insecure: bool = False,
    ok: str = "200-399",
    version_header: str = RequestOptions.version_header,
    version_from_body: str | None = None,
    old: str | None = None,
    clients: int = RunOptions.clients,
    testers: int = RunOptions.testers,
) -> RunOptions:
    """Every check of `lab measure`'s settings (the command line's and the plugin's), before anything is
    probed; BadInput names the command line's option. `settle` None: 2 s after a command, 0 without."""
    argv = tuple(command)
    check_number("--rate", rate, "rate")
    check_number("--baseline", baseline, "baseline")
    check_mode(mode)
    if settle is not None:
        check_number("--settle", settle, "settle")
    if duration is not None:
        if argv:
            raise BadInput(
                "--duration is for a deploy by hand: with a command, the command's end ends the run"
            )
        check_number("--duration", duration, "duration")
    check_number("--timeout", timeout, "timeout")
    check_population(clients, testers)
    if not version_header.strip() or not _TOKEN.fullmatch(version_header):
        raise BadInput(f"--version-header {version_header!r} is not a header name")
    url, credentials = split_credentials(parse_url(url))
    if credentials and any(name.lower() == "authorization" for name, _ in headers):
        raise BadInput("the URL holds credentials and an Authorization header is given too: give one")
    request = RequestOptions(
        headers=(*headers, *credentials),
        insecure=insecure,
        ok=parse_ok(ok),
        version_header=version_header,
        version_from_body=parse_pattern(version_from_body),
    )
    return RunOptions(
        "measure",
        rate=rate,
        mode=mode,
        baseline_s=baseline,
        settle_s=settle if settle is not None else (RunOptions.settle_s if argv else 0.0),
        probe_timeout_s=timeout,
        request=request,
        measure=MeasureOptions(url, argv, duration, old),
        clients=clients,
        testers=testers,
    )
