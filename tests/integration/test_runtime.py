"""The local Docker engine on its own: config checks, ports, clean-up."""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import httpx
import pytest
from conftest import wait_for_200

from lab.engines.docker.local import DockerEngine
from lab.engines.names import app_image
from lab.errors import ConfigRejected, PortInUse
from lab.model import Route, fleet
from lab.targets.fleet.nginx import render_config


@pytest.fixture
def runtime() -> Iterator[DockerEngine]:
    rt = DockerEngine(secrets.token_hex(3))
    try:
        yield rt
    finally:
        rt.cleanup()


def test_rejected_config_keeps_the_old_one_serving(runtime: DockerEngine) -> None:
    v1 = fleet("v1", 1)
    runtime.create_network()
    runtime.fleet.start_instance(v1[0], app_image("v1"), {})
    endpoints = runtime.proxy.start(render_config(Route.even(v1)), None)
    assert wait_for_200(endpoints.url).headers["X-App-Version"] == "v1"

    # Names an instance that does not exist: nginx -t fails on the unresolvable host.
    bad = render_config(Route.even(fleet("v2", 1)), generation=1)
    with pytest.raises(ConfigRejected, match="host not found"):
        runtime.proxy.apply_config(bad)

    assert httpx.get(f"{endpoints.admin_url}/lab/generation").text.strip() == "0"
    assert wait_for_200(endpoints.url).headers["X-App-Version"] == "v1"


def test_port_in_use_is_a_clear_error(runtime: DockerEngine) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        taken = sock.getsockname()[1]
        runtime.create_network()
        with pytest.raises(PortInUse, match=str(taken)):
            runtime.proxy.start(render_config(None), taken)


def test_cleanup_removes_everything_and_is_idempotent(runtime: DockerEngine) -> None:
    runtime.create_network()
    for inst in fleet("v1", 2):
        runtime.fleet.start_instance(inst, app_image("v1"), {})
    removed = runtime.cleanup()
    assert (removed.containers, removed.networks) == (2, 1)
    again = runtime.cleanup()
    assert (again.containers, again.networks) == (0, 0)
