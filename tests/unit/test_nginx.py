"""Rendering nginx.conf: exact integer weights, what the config says, and that nginx itself accepts it."""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import jinja2
import pytest

from lab import strategies
from lab.model import Instance, Route, describe, fleet
from lab.targets.fleet import nginx
from lab.targets.fleet.nginx import ProxySettings, integer_weights, render_config, supported
from lab.targets.fleet.plan import Topology, walk

V1 = fleet("v1", 4)
V2 = fleet("v2", 4)
SERVER_LINE = re.compile(r"^\s*server (\S+) weight=(\d+) max_fails=(\d+) fail_timeout=(\d+)s;", re.MULTILINE)


def assert_exact_ratios(weights: dict[Instance, int], route: Route) -> None:
    """Every pair of weights stands in exactly the ratio of the route's shares, in lowest terms."""
    shares = {inst: Fraction(w) for inst, w in route.weights if w > 0}
    assert set(weights) == set(shares)
    assert all(isinstance(w, int) and w > 0 for w in weights.values())
    for a in shares:
        for b in shares:
            assert Fraction(weights[a], weights[b]) == shares[a] / shares[b], (a, b)
    assert math.gcd(*weights.values()) == 1


# ---------------------------------------------------------------------------------------------------
# integer_weights


def test_90_10_over_4_and_4_gives_9_to_1_per_instance() -> None:
    route = Route.split({V1: 90, V2: 10})  # 22.5 % per v1, 2.5 % per v2
    weights = integer_weights(route)
    assert weights == {**dict.fromkeys(V1, 9), **dict.fromkeys(V2, 1)}
    assert_exact_ratios(weights, route)


def test_an_even_route_gives_weight_1_each() -> None:
    assert integer_weights(Route.even(V1)) == dict.fromkeys(V1, 1)


@pytest.mark.parametrize(
    "route",
    [
        Route.even(fleet("v1", 3)),  # 100/3 each
        Route.split({fleet("v1", 3): 50, fleet("v2", 2): 50}),  # 50/3 and 25: 2:3
        Route.split({fleet("v1", 3): 1, fleet("v2", 7): 99}),  # 1/3 and 99/7
        Route(((V1[0], Fraction(100, 3)), (V1[1], Fraction(200, 3)))),
        Route(((V1[0], Fraction(1, 7)), (V1[1], Fraction(699, 7)))),
    ],
    ids=["thirds", "50-50-over-3-and-2", "1-99-over-3-and-7", "third-two-thirds", "sevenths"],
)
def test_shares_that_do_not_divide_evenly_keep_exact_ratios(route: Route) -> None:
    assert_exact_ratios(integer_weights(route), route)


def test_thirds_against_halves_by_hand() -> None:
    # v1: 50/3 each, v2: 25 each -> 50/3 : 25 = 2 : 3
    weights = integer_weights(Route.split({fleet("v1", 3): 50, fleet("v2", 2): 50}))
    assert sorted(weights.values()) == [2, 2, 2, 3, 3]
    assert {weights[i] for i in fleet("v2", 2)} == {3}


def test_zero_shares_are_left_out() -> None:
    route = Route(((V1[0], Fraction(0)), (V1[1], Fraction(100)), (V2[0], Fraction(0))))
    assert integer_weights(route) == {V1[1]: 1}
    assert integer_weights(Route(())) == {}


# ---------------------------------------------------------------------------------------------------
# render_config


def servers(config: str) -> dict[str, int]:
    return {m.group(1): int(m.group(2)) for m in SERVER_LINE.finditer(config)}


def test_every_routed_instance_is_a_server_with_its_weight() -> None:
    config = render_config(Route.split({V1: 90, V2: 10}))
    expected = {f"app-v1-{n}:8080": 9 for n in range(1, 5)} | {f"app-v2-{n}:8080": 1 for n in range(1, 5)}
    assert servers(config) == expected
    assert config.count("upstream app {") == 1
    assert "proxy_pass http://app;" in config


def test_an_instance_without_traffic_does_not_appear() -> None:
    route = Route(tuple((inst, Fraction(0)) for inst in V1) + tuple((inst, Fraction(25)) for inst in V2))
    config = render_config(route)
    assert set(servers(config)) == {f"{inst.name}:8080" for inst in V2}
    for inst in V1:
        assert inst.name not in config


def test_address_and_settings_go_where_they_belong() -> None:
    settings = ProxySettings(
        listen_port=8000,
        admin_port=9001,
        app_port=5000,
        upstream_keepalive=7,
        connect_timeout_s=0.25,
        read_timeout_s=2.5,
        next_upstream="error timeout http_502",
        next_upstream_tries=3,
        max_fails=2,
        fail_timeout_s=4,
        resolver="10.0.0.2",
        worker_processes=3,
    )
    config = render_config(
        Route.even(V2[:2]), settings, address=lambda inst, s: f"10.1.0.{inst.slot}:{s.app_port}"
    )
    assert servers(config) == {"10.1.0.1:5000": 1, "10.1.0.2:5000": 1}
    assert [m.group(3, 4) for m in SERVER_LINE.finditer(config)] == [("2", "4")] * 2
    for line in [
        "worker_processes 3;",
        "listen 8000;",
        "listen 9001;",
        "keepalive 7;",
        "proxy_connect_timeout 250ms;",
        "proxy_read_timeout 2500ms;",
        "proxy_send_timeout 2500ms;",
        "proxy_next_upstream error timeout http_502;",
        "proxy_next_upstream_tries 3;",
        "resolver 10.0.0.2 valid=1s ipv6=off;",
        "proxy_pass http://$lab_target:5000/healthz;",
    ]:
        assert re.search(rf"^\s*{re.escape(line)}$", config, re.MULTILINE), line


def test_next_upstream_off_and_empty() -> None:
    assert "proxy_next_upstream off;" in render_config(Route.even(V1), ProxySettings(next_upstream="off"))
    with pytest.raises(ValueError, match="next_upstream"):
        render_config(Route.even(V1), ProxySettings(next_upstream="  "))


@pytest.mark.parametrize("generation", [0, 7, 123])
def test_the_generation_is_served_on_the_admin_port(generation: int) -> None:
    config = render_config(Route.even(V1), generation=generation, title="step 3")
    block = re.search(r"location = /lab/generation \{\s*return 200 \"(\d+)\\n\";\s*\}", config)
    assert block and int(block.group(1)) == generation
    assert f"# generation {generation}\n" in config
    assert "# Rendered by deploy lab: step 3\n" in config


def test_static_mode_has_no_upstream() -> None:
    config = render_config(None)
    assert "upstream" not in config
    assert "proxy_pass http://app" not in config
    assert not servers(config)
    assert 'return 200 "ok\\n";' in config
    assert "# Rendered by deploy lab: static" in config


def test_the_start_up_config_leaves_the_clients_port_closed(tmp_path: Path) -> None:
    config = render_config(None, for_host(), listen=False)
    assert "listen 80;" not in config and 'return 200 "ok' not in config
    assert "listen 8081;" in config and "location = /lab/generation" in config
    assert "# Rendered by deploy lab: start-up, clients' port closed" in config
    assert nginx_test(config, tmp_path).returncode == 0
    with pytest.raises(ValueError, match="no route"):
        render_config(Route.even(fleet("v1", 2)), listen=False)


def test_a_missing_template_variable_raises() -> None:
    template = nginx._ENV.get_template("nginx.conf.j2")
    with pytest.raises(jinja2.UndefinedError, match="generation"):
        template.render(servers=[], settings=ProxySettings(), title="t")
    with pytest.raises(jinja2.UndefinedError):
        template.render(servers=[], settings=object(), generation=1, title="t")


# ---------------------------------------------------------------------------------------------------
# nginx -t


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found:
        return found
    if os.environ.get("LAB_REQUIRE_NGINX") == "1":
        pytest.fail("nginx is not installed but LAB_REQUIRE_NGINX=1 (make system-deps installs it)")
    pytest.skip("no nginx binary: rendered configs not checked with nginx -t")


def nginx_test(config: str, folder: Path) -> subprocess.CompletedProcess[str]:
    path = folder / "nginx.conf"
    path.write_text(config)
    return subprocess.run(
        [nginx_binary(), "-t", "-q", "-e", "stderr", "-c", str(path)],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=30,
    )


def host_nginx_version() -> tuple[int, ...]:
    result = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, timeout=30)
    match = re.search(r"nginx/(\d+(?:\.\d+)+)", result.stderr + result.stdout)
    assert match, result.stderr
    return tuple(int(part) for part in match.group(1).split("."))


def for_host(settings: ProxySettings | None = None) -> ProxySettings:
    """What the runner does for the proxy's nginx, done for the host's (Debian stable's is older)."""
    return supported(settings or ProxySettings(), host_nginx_version())[0]


def on_host(inst: Instance, settings: ProxySettings) -> str:
    return "127.0.0.1:9"  # the lab's names only resolve on the lab network


def plan_routes() -> list[object]:
    """Every routing table any registered strategy produces, so a new strategy's configs are checked too;
    by client, and with a preview, where the strategy can route so."""
    cases: list[object] = []
    for name, strategy in sorted(strategies.REGISTRY.items()):
        known = strategy.defaults()
        variants: list[dict[str, object]] = [{}]
        if "route_by" in known:
            variants.append({"route_by": "client"})
        if "preview_s" in known:
            variants.append({"preview_s": 1.0})
        for params in variants:
            old, new = fleet("v1", 3), fleet("v2", 3)
            plan = strategy.plan(old, new, **strategy.coerce(params))
            steps = walk(plan, Topology(frozenset(old), Route.even(old)))
            label = "".join(f"-{k}={v}" for k, v in params.items())
            for p in steps:
                if isinstance(p.step, Route):
                    cases.append(pytest.param(p.step, id=f"{name}{label}-step-{p.index}"))
    return cases


@pytest.mark.parametrize(
    "route",
    [
        pytest.param(None, id="static"),
        pytest.param(Route.even(V1), id="even"),
        pytest.param(Route.split({V1: 90, V2: 10}), id="90-10"),
        pytest.param(Route.split({fleet("v1", 3): 1, fleet("v2", 7): 99}), id="thirds-sevenths"),
        *plan_routes(),
    ],
)
def test_nginx_accepts_the_rendered_config(route: Route | None, tmp_path: Path) -> None:
    config = render_config(route, for_host(), generation=3, title="test", address=on_host)
    result = nginx_test(config, tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("next_upstream", ["off", "error timeout http_502 http_503 non_idempotent"])
def test_nginx_accepts_other_settings(next_upstream: str, tmp_path: Path) -> None:
    settings = for_host(ProxySettings(next_upstream=next_upstream, connect_timeout_s=0.2, worker_processes=2))
    result = nginx_test(render_config(Route.even(V1), settings, address=on_host), tmp_path)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("proxy_next_upstream_tries", "proxy_next_upstream_trys"),  # unknown directive
        ("weight=1", "weight=0"),  # nginx refuses a zero weight
        ("keepalive_requests 1000000;", "keepalive_requests 1000000"),  # missing semicolon
    ],
)
def test_nginx_rejects_a_broken_config(old: str, new: str, tmp_path: Path) -> None:
    config = render_config(Route.even(V1), for_host(), address=on_host)
    assert old in config
    result = nginx_test(config.replace(old, new), tmp_path)
    assert result.returncode != 0
    assert "emerg" in result.stderr


def test_without_nginx_the_check_skips_unless_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    monkeypatch.delenv("LAB_REQUIRE_NGINX", raising=False)
    with pytest.raises(pytest.skip.Exception):
        nginx_binary()
    monkeypatch.setenv("LAB_REQUIRE_NGINX", "1")
    with pytest.raises(pytest.fail.Exception, match="LAB_REQUIRE_NGINX"):
        nginx_binary()


# ---------------------------------------------------------------------------------------------------
# Settings an older nginx cannot load


@pytest.mark.parametrize(
    ("version", "kept"),
    [((1, 22, 1), False), ((1, 27, 3), False), ((1, 27, 4), True), ((1, 30, 6), True), (None, False)],
)
def test_keepalive_min_timeout_only_where_nginx_has_it(version: tuple[int, ...] | None, kept: bool) -> None:
    settings, notes = supported(ProxySettings(keepalive_min_timeout_s=1.5), version)
    config = render_config(Route.even(V1), settings)
    assert ("keepalive_min_timeout 1500ms;" in config) is kept
    assert bool(notes) is not kept
    if notes:
        assert "reset" in notes[0]


def test_keepalive_min_timeout_can_be_turned_off() -> None:
    settings, notes = supported(ProxySettings(keepalive_min_timeout_s=None), (1, 30, 6))
    assert "keepalive_min_timeout" not in render_config(Route.even(V1), settings) and notes == []


# -- by client, and X-Canary: always ---------------------------------------------------------------------


def test_a_route_by_client_splits_by_the_clients_cookie_newest_version_first() -> None:
    old, new = fleet("v1", 2), fleet("v2", 3)
    config = render_config(Route.split({old: 90, new: 10}, by="client", canary=new))
    split = config[config.index("split_clients") :].split("\n    }", 1)[0]
    assert '"${cookie_lab_client}" $lab_split' in split
    assert re.findall(r"^\s+(\S+) (app_v\d);$", split, re.MULTILINE) == [("10%", "app_v2"), ("*", "app_v1")]
    upstreams = dict(re.findall(r"upstream (app_\w+) \{(.*?)\n    \}", config, re.DOTALL))
    assert set(upstreams) == {"app_v1", "app_v2", "app_canary"}
    assert re.findall(r"server (app-v2-\d):", upstreams["app_v2"]) == ["app-v2-1", "app-v2-2", "app-v2-3"]
    assert "always app_canary;" in config and "default $lab_split;" in config
    assert "proxy_pass http://$lab_pool;" in config


def test_shares_by_client_keep_the_new_versions_region_growing_from_zero() -> None:
    # split_clients hands out the hash space in order: v2's region is its share from 0, so the clients
    # in it at 10% are still in it at 50%, and a rollback to v1 moves them all back at once.
    old, new = fleet("v1", 3), fleet("v2", 3)
    regions = []
    for pct in (10, 33, 50, 99):
        config = render_config(Route.split({old: 100 - pct, new: pct}, by="client"))
        first = re.search(r"split_clients .* \{\n\s+(\S+) (\S+);", config)
        assert first is not None and first.group(2) == "app_v2"
        regions.append(first.group(1))
    assert regions == ["10%", "33%", "50%", "99%"]
    assert "split_clients" not in render_config(Route.even(new, canary=()), ProxySettings())


def test_a_preview_sends_testers_to_instances_without_traffic() -> None:
    old, new = fleet("v1", 2), fleet("v2", 2)
    route = Route.even(old, canary=new)
    config = render_config(route)
    main = config[config.index("upstream app {") :].split("}", 1)[0]
    assert "app-v2" not in main  # everyone else: blue only
    assert re.search(r"upstream app_canary \{.*server app-v2-1:8080.*server app-v2-2:8080", config, re.DOTALL)
    assert "always app_canary;" in config and "default app;" in config
    assert describe(route).endswith("; X-Canary: always to app-v2-1, app-v2-2")


def test_a_plain_route_renders_as_before() -> None:
    config = render_config(Route.even(fleet("v1", 2)))
    assert "proxy_pass http://app;" in config and "map $http_x_canary" not in config


def test_following_a_dns_name_is_one_upstream_with_a_zone_and_a_resolver(tmp_path: Path) -> None:
    config = render_config(None, ProxySettings(), generation=2, title="swarm", follow="app:8080")
    upstream = config[config.index("upstream app {") :].split("\n    }", 1)[0]
    assert "zone app 64k;" in upstream and "server app:8080 resolve " in upstream
    assert "resolver 127.0.0.11 valid=1s ipv6=off;" in config.split("upstream app {")[0]
    assert "proxy_pass http://app;" in config
    if host_nginx_version() < nginx.RESOLVE_SINCE:
        pytest.skip("the host's nginx is older than 1.27.3: it has no `server ... resolve` to check")
    result = nginx_test(render_config(None, for_host(), follow="127.0.0.1:9", generation=2), tmp_path)
    assert result.returncode == 0, result.stderr
