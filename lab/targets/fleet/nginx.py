"""Rendering the proxy's nginx.conf from a routing table. Pure: no Docker, no files."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from importlib import resources

import jinja2

from lab.model import AppSpec, Instance, Route
from lab.options import ProxySettings

KEEPALIVE_MIN_TIMEOUT_SINCE = (1, 27, 4)
RESOLVE_SINCE = (1, 27, 3)  # `server NAME resolve` in an upstream, in nginx's open source version
_DEFAULT_SETTINGS = ProxySettings()


def supported(
    settings: ProxySettings, nginx_version: tuple[int, ...] | None
) -> tuple[ProxySettings, list[str]]:
    """Settings the proxy's nginx can load, and a note for each one dropped."""
    if settings.keepalive_min_timeout_s and (
        nginx_version is None or nginx_version < KEEPALIVE_MIN_TIMEOUT_SINCE
    ):
        shown = ".".join(map(str, nginx_version)) if nginx_version else "of unknown version"
        note = (
            f"nginx {shown} has no keepalive_min_timeout: clients on kept-alive connections may get a "
            "reset at each reload"
        )
        return dataclasses.replace(settings, keepalive_min_timeout_s=None), [note]
    return settings, []


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    weight: int
    share: str


_ENV = jinja2.Environment(
    loader=jinja2.FunctionLoader(lambda name: resources.files(__package__).joinpath(name).read_text()),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def integer_weights(route: Route) -> dict[Instance, int]:
    """nginx wants whole, positive weights: scale the exact shares and drop zeros (weight=0 is invalid)."""
    shares = {inst: Fraction(w) for inst, w in route.weights if w > 0}
    if not shares:
        return {}
    scale = math.lcm(*(f.denominator for f in shares.values()))
    whole = {inst: int(f * scale) for inst, f in shares.items()}
    common = math.gcd(*whole.values())
    return {inst: w // common for inst, w in whole.items()}


def _percent(share: Fraction) -> str:
    """A share as split_clients takes it: at most two decimals, `12.5%`, `33.33%`, `50%`."""
    return f"{float(share):.2f}".rstrip("0").rstrip(".") + "%"


@dataclass(frozen=True)
class Group:
    """One nginx upstream: its name, what it is for, its servers."""

    name: str
    what: str
    servers: tuple[Server, ...]


@dataclass(frozen=True)
class HealthRoute:
    version: str
    port: int
    path: str
    what: str  # the image, for the reader of the config


def default_address(inst: Instance, settings: ProxySettings) -> str:
    return f"{inst.name}:{settings.app_port}"


def render_config(
    route: Route | None,
    settings: ProxySettings = _DEFAULT_SETTINGS,
    *,
    generation: int = 0,
    title: str = "",
    address: Callable[[Instance, ProxySettings], str] | None = None,
    apps: Mapping[str, AppSpec] | None = None,
    follow: str | None = None,
    listen: bool = True,
) -> str:
    """nginx.conf for `route`; with no route, a static `200 ok` server (the probe benchmark's target).

    `listen=False` (no route only): the admin port alone, nothing on the clients' port. A run's proxy
    starts on it, so that its first real config needs no wait for the start-up workers: they never held
    the clients' port, and a client can only reach a worker of the new config (one that still ran the
    static page answered the first requests of a run with it, when the first route did not wait).

    `apps` says what each version runs: its instances are reached on that app's port, and the admin
    port's `/lab/health/<instance>` asks that app's health path. Versions it does not name use
    `settings.app_port` and `/healthz`, the sample app's. `address` overrides where a server is reached.
    `follow` ("app:8080"), instead of a route: one upstream that follows that DNS name's addresses as they
    change, every task of a Swarm service (nginx >= 1.27.3).
    """
    apps = dict(apps or {})
    for version in apps:
        if not version.isalnum() or not version.islower():  # it becomes part of a location's regex
            raise ValueError(f"version {version!r} must be lower-case letters and digits")

    def where(inst: Instance) -> str:
        if address is not None:
            return address(inst, settings)
        port = apps[inst.version].port if inst.version in apps else settings.app_port
        return f"{inst.name}:{port}"

    groups: list[Group] = []
    split: list[tuple[str, str]] = []
    canary = main = target = ""
    if follow is not None:
        name = follow.split(":", 1)[0]
        server = Server(name, f"{follow} resolve", 1, "100")
        groups.append(Group("app", f"every task behind the name {name}, as DNS names them", (server,)))
        main = target = "app"
    if not listen and (route is not None or follow is not None):
        raise ValueError("only a config with no route may leave the clients' port closed")
    if route is not None:
        shares = dict(route.weights)

        def group(name: str, what: str, weights: Mapping[Instance, int]) -> Group:
            servers = [
                Server(inst.name, where(inst), weight, f"{float(shares.get(inst, 0)):.4g}")
                for inst, weight in sorted(weights.items())
            ]
            return Group(name, what, tuple(servers))

        if route.by == "client":
            by_version = route.share_by_version()
            # The newest version first: its region of the hash space starts at 0 and only grows.
            versions = sorted((v for v, pct in by_version.items() if pct > 0), reverse=True)
            for version in versions:
                mine = Route.split({tuple(i for i in route.instances if i.version == version): 100})
                groups.append(group(f"app_{version}", f"{version}, chosen by client", integer_weights(mine)))
            split = [
                (f"{float(by_version[v]):.2f}".rstrip("0").rstrip(".") + "%", f"app_{v}") for v in versions
            ]
            split[-1] = ("*", split[-1][1])
            main = "$lab_split"
        else:
            groups.append(group("app", "every request by weight", integer_weights(route)))
            main = "app"
        if route.canary:
            groups.append(group("app_canary", "X-Canary: always", dict.fromkeys(route.canary, 1)))
            canary = "app_canary"
        target = "$lab_pool" if canary else main
    health = [
        HealthRoute(version, app.port, app.health_path, app.image or "the lab's sample app")
        for version, app in sorted(apps.items())
    ]
    return _ENV.get_template("nginx.conf.j2").render(
        groups=groups,
        follow=follow,
        split=split,
        canary=canary,
        main=main,
        target=target,
        settings=settings,
        generation=generation,
        title=title or ("static" if listen else "start-up, clients' port closed"),
        health=health,
        listen=listen,
    )
