"""The sample app's image on its own, started with testcontainers: health, version, drain on SIGTERM."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import wait_for_200
from testcontainers.core.container import DockerContainer

from lab.runtime import LABEL
from lab.runtime.images import app_image


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_image_answers_with_its_version(version: str) -> None:
    # Labelled like the lab's own objects, so the leak check would catch it if stop() failed.
    with DockerContainer(app_image(version), labels={LABEL: "1"}).with_exposed_ports(8080) as app:
        base = f"http://{app.get_container_host_ip()}:{app.get_exposed_port(8080)}"
        assert wait_for_200(f"{base}/healthz").status_code == 200
        response = httpx.get(base + "/")
        assert response.headers["X-App-Version"] == version
        assert response.json()["version"] == version


def test_drain_keeps_serving_then_exits_cleanly() -> None:
    container = (
        DockerContainer(app_image("v1"), labels={LABEL: "1"})
        .with_env("APP_DRAIN_S", "1")
        .with_exposed_ports(8080)
    )
    with container as app:
        base = f"http://{app.get_container_host_ip()}:{app.get_exposed_port(8080)}"
        wait_for_200(f"{base}/healthz")
        wrapped = app.get_wrapped_container()
        wrapped.kill(signal="SIGTERM")
        time.sleep(0.2)
        # Draining: no longer healthy, still serving.
        assert httpx.get(f"{base}/healthz").status_code == 503
        assert httpx.get(f"{base}/").status_code == 200
        result = wrapped.wait(timeout=10)
        assert result["StatusCode"] == 0
