"""Integration tests run real containers. Each test must leave nothing labelled by the lab behind."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterator

import docker
import docker.errors
import httpx
import pytest

# The reaper image (ryuk) cannot be pulled where there is no registry; our own fixtures clean up instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")

from lab.analysis import summarize  # noqa: E402
from lab.runner import RunConfig, Runner, RunRecord  # noqa: E402
from lab.runtime import LABEL  # noqa: E402
from lab.runtime.docker_local import (
    DockerRuntime,  # noqa: E402
    connect,  # noqa: E402
)
from lab.runtime.images import (
    PROXY_IMAGE,  # noqa: E402
    all_images,  # noqa: E402
)


def run(strategy: str, **overrides: object) -> tuple[RunRecord, dict]:
    settings: dict = {"fleet_size": 4, "rate": 200.0, "baseline_s": 1.0, "settle_s": 1.0}
    settings.update(overrides)
    config = RunConfig(strategy=strategy, **settings)
    record = Runner(config, DockerRuntime(secrets.token_hex(3), proxy_image=PROXY_IMAGE)).run()
    analysis = summarize(record.samples, record.events, target_rate=config.rate, fleet_size=config.fleet_size)
    return record, analysis.to_dict()


def wait_for_200(url: str, timeout_s: float = 15.0) -> httpx.Response:
    """Poll `url` until it answers 200 (a container still booting refuses or answers 503)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout_s} s")
        time.sleep(0.05)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = connect()  # fails with one clear line when the engine is not running
    missing = [name for name in all_images() if not client.images.list(name=name)]
    if missing:
        pytest.fail(f"images missing ({', '.join(missing)}): run `make images` first")
    return client


def _labelled(client: docker.DockerClient) -> set[str]:
    containers = {c.name for c in client.containers.list(all=True, filters={"label": LABEL})}
    networks = {n.name for n in client.networks.list(filters={"label": LABEL})}
    return containers | networks


@pytest.fixture(autouse=True)
def nothing_left_behind(docker_client: docker.DockerClient) -> Iterator[None]:
    # Only what appeared during the test counts: a lab run of someone else's on the same engine is theirs.
    before = _labelled(docker_client)
    yield
    left = _labelled(docker_client) - before
    for name in sorted(left):  # remove the leak, so it does not fail every later test too
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(name).remove(force=True)
    for name in sorted(left):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.networks.get(name).remove()
    assert not left, f"the test left lab objects behind: {sorted(left)}"
