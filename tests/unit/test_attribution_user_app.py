"""The user's own app: its spec, the nginx config that reaches it, and the `lab run` options naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_nginx import for_host, nginx_test, on_host

from lab import strategies
from lab.cli.inputs import app_spec, run_config
from lab.errors import BadInput
from lab.model import AppSpec, Route, fleet
from lab.options import run_options
from lab.targets.fleet.nginx import render_config

V1, V2 = fleet("v1", 2), fleet("v2", 2)
SHOP = {
    "v1": AppSpec("myorg/shop:1.4", 8000, "/ready"),
    "v2": AppSpec("myorg/shop:1.5", 9000, "/live?deep=1"),
}


# -- AppSpec ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"port": 0}, "port must be a whole number from 1 to 65535, got 0"),
        ({"port": 65536}, "got 65536"),
        ({"port": True}, "got True"),
        ({"port": "8080"}, "got '8080'"),
        ({"health_path": "ready"}, "must start with /"),
        ({"health_path": "/ready; return 200"}, "must start with /"),
        ({"health_path": "/$host"}, "must start with /"),
        ({"health_path": "/a b"}, "must start with /"),
        ({"image": ""}, "is not an image reference"),
        ({"image": "my app"}, "is not an image reference"),
        # What Docker's reference grammar refuses, refused before a fleet starts: a name in capitals, an
        # empty tag or name, a leading separator, a registry with an underscore, a tag beyond ASCII.
        ({"image": "NGINX"}, "'NGINX' is not an image reference"),
        ({"image": "nginx::"}, "is not an image reference"),
        ({"image": ":latest"}, "is not an image reference"),
        ({"image": "-nginx"}, "is not an image reference"),
        ({"image": "shop:"}, "is not an image reference"),
        ({"image": "my_host.com/shop"}, "is not an image reference"),
        ({"image": "shop:Tag_\u00dc"}, "is not an image reference"),
        ({"image": "shop@sha256:xyz"}, "is not an image reference"),
    ],
)
def test_an_app_spec_refuses_what_nginx_or_docker_could_not_take(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("?", r"\?").replace("$", r"\$")):
        AppSpec(**fields)


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "shop:1.4",
        "deploylab/app:v1",
        "team/shop_api:v1.2-rc.1",
        "127.0.0.1:5000/team/shop:1.4",
        "localhost/shop",
        "Registry.Example:5000/shop",
        "MyRegistry/shop:1",  # a capital makes the first part a registry, as Docker splits it
        "[::1]:5000/shop:1",
        "registry.example/shop@sha256:" + "a" * 64,
    ],
)
def test_an_app_spec_takes_every_form_of_image_reference(image: str) -> None:
    assert AppSpec(image=image).image == image


def test_the_default_app_spec_is_the_sample_app() -> None:
    assert AppSpec() == AppSpec(None, 8080, "/healthz")
    assert AppSpec(health_path="/ready?deep=1&x=%20").health_path == "/ready?deep=1&x=%20"


# -- nginx -----------------------------------------------------------------------------------------


def test_each_version_is_reached_on_its_own_port_and_health_path() -> None:
    config = render_config(Route.split({V1: 50, V2: 50}), apps=SHOP)
    assert "server app-v1-1:8000 " in config and "server app-v2-2:9000 " in config
    assert "v1 8000;  # myorg/shop:1.4" in config and "v2 9000;  # myorg/shop:1.5" in config
    assert "v1 /ready;" in config and "v2 /live?deep=1;" in config
    assert "proxy_pass http://$lab_target:$lab_health_port$lab_health_path;" in config


def test_without_apps_the_config_is_the_sample_apps_as_before() -> None:
    config = render_config(Route.even(V1))
    assert "map $lab_version" not in config and "server app-v1-1:8080 " in config
    assert "proxy_pass http://$lab_target:8080/healthz;" in config
    # The sample app described explicitly reaches the same ports and path.
    explicit = render_config(Route.even(V1), apps={"v1": AppSpec(), "v2": AppSpec()})
    assert "server app-v1-1:8080 " in explicit and "v1 /healthz;" in explicit


def test_a_version_name_that_cannot_go_into_the_config_is_refused() -> None:
    with pytest.raises(ValueError, match="lower-case letters and digits"):
        render_config(None, apps={"v1;": AppSpec()})


@pytest.mark.parametrize("route", [None, Route.even(V1), Route.split({V1: 10, V2: 90})])
def test_nginx_accepts_a_config_with_user_apps(route: Route | None, tmp_path: Path) -> None:
    config = render_config(route, for_host(), generation=2, title="user apps", address=on_host, apps=SHOP)
    result = nginx_test(config, tmp_path)
    assert result.returncode == 0, result.stderr


# -- the command line ------------------------------------------------------------------------------


def test_app_options_build_the_spec_with_the_sample_apps_defaults() -> None:
    assert app_spec("v1", None, None, None) == AppSpec()
    assert app_spec("v2", "shop:2", None, None) == AppSpec("shop:2", 8080, "/healthz")
    assert app_spec("v2", "shop:2", 8000, "/ready") == AppSpec("shop:2", 8000, "/ready")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("v1", None, 8000, None), "--v1-port describes your own image: give --v1-image too"),
        (("v2", None, 8000, "/ready"), "--v2-port and --v2-health-path describe your own image"),
        (("v1", "shop:1", 0, None), "--v1-port must be from 1 up to 65535, got 0"),
        (("v2", "shop:2", 70000, None), "--v2-port must be from 1 up to 65535, got 70000"),
        (("v2", "shop:2", None, "ready"), "--v2-health-path: health path 'ready' must start with /"),
        (("v1", "my shop", None, None), "--v1-image: image 'my shop' is not an image reference"),
    ],
)
def test_bad_app_options_are_bad_input_naming_the_option(args: tuple, message: str) -> None:
    with pytest.raises(BadInput) as caught:
        app_spec(*args)
    assert str(caught.value).startswith(message)


def _config(**overrides: object) -> object:
    settings: dict = dict(
        fleet_size=2,
        rate=100.0,
        mode="keepalive",
        v1_env=None,
        v2_env=["GREETING=hi"],
        scenario="default",
        port=None,
        baseline=1.0,
        settle=1.0,
        health_timeout=5.0,
        next_upstream="error timeout",
    )
    settings.update(overrides)
    return run_config(strategies.get("rolling"), {}, **settings)


def test_run_config_carries_the_apps_and_refuses_a_sample_app_scenario_on_a_user_image() -> None:
    config = _config(v1_app=SHOP["v1"], v2_app=SHOP["v2"])
    assert (config.v1_app, config.v2_app, config.v2_env) == (SHOP["v1"], SHOP["v2"], {"GREETING": "hi"})
    assert _config().v2_app == AppSpec()
    with pytest.raises(BadInput, match="--scenario errors sets the sample app's knobs"):
        _config(scenario="errors", v2_app=SHOP["v2"])
    assert _config(scenario="errors", v1_app=SHOP["v1"]).v2_env["APP_FAIL_RATE"] == "0.2"


def test_lab_run_turns_a_bad_app_option_into_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": "tcp://127.0.0.1:1", "NO_COLOR": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "lab", "run", "rolling", "--v2-port", "8000"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lab: error: --v2-port describes your own image: give --v2-image too (the sample app listens on "
        "8080 and answers /healthz)"
    ]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"APP_FAIL_RATE": "abc"}, "--v2-env: APP_FAIL_RATE='abc' is invalid: must be a number from 0 to 1"),
        ({"APP_FAIL_RATE": "5"}, "--v2-env: APP_FAIL_RATE='5' is invalid"),
        ({"APP_BOOT_DELAY_S": "-3"}, "--v2-env: APP_BOOT_DELAY_S='-3' is invalid"),
        ({"APP_FAIL_AT_START": "maybe"}, "--v2-env: APP_FAIL_AT_START='maybe' is invalid"),
        ({"BAD KEY": "1"}, "--v2-env 'BAD KEY': a variable's name holds no space"),
    ],
)
def test_the_sample_apps_knobs_are_checked_as_the_app_checks_them(env: dict, message: str) -> None:
    # Before: accepted, and every v2 instance exited at start with the app's own error in its log.
    with pytest.raises(BadInput) as caught:
        run_options("blue-green", {}, v2_env=env)
    assert str(caught.value).startswith(message)


def test_an_image_of_your_own_reads_any_value_and_the_sample_app_takes_good_ones() -> None:
    mine = run_options("blue-green", {}, v2_env={"APP_FAIL_RATE": "abc"}, v2_app=AppSpec(image="shop:2"))
    assert mine.v2_env == {"APP_FAIL_RATE": "abc"}  # not the sample app: its knobs mean nothing there
    good = run_options("blue-green", {}, v2_env={"APP_FAIL_RATE": "0.2", "APP_FAIL_AT_START": "1"})
    assert good.v2_env == {"APP_FAIL_RATE": "0.2", "APP_FAIL_AT_START": "1"}
    with pytest.raises(BadInput, match="--v1-env: APP_LATENCY_MS='fast'"):
        run_options("blue-green", {}, v1_env={"APP_LATENCY_MS": "fast"})
