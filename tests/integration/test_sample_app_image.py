"""The sample app's image on its own, started with testcontainers: health, version, drain on SIGTERM."""

from __future__ import annotations

import time

import httpx
import pytest
from conftest import wait_for_200
from testcontainers.core.container import DockerContainer

from lab.engines import LABEL
from lab.engines.base import owner_labels
from lab.engines.docker.images import app_image


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_image_answers_with_its_version(version: str) -> None:
    # Labelled like the lab's own objects, so the leak check would catch it if stop() failed.
    with DockerContainer(app_image(version), labels={LABEL: "1", **owner_labels()}).with_exposed_ports(
        8080
    ) as app:
        base = f"http://{app.get_container_host_ip()}:{app.get_exposed_port(8080)}"
        assert wait_for_200(f"{base}/healthz").status_code == 200
        response = httpx.get(base + "/")
        assert response.headers["X-App-Version"] == version
        assert response.json()["version"] == version


def test_drain_keeps_serving_then_exits_cleanly() -> None:
    container = (
        DockerContainer(app_image("v1"), labels={LABEL: "1", **owner_labels()})
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


def _blocked(status: str) -> int:
    """The SigBlk mask from a /proc/<pid>/task/<tid>/status text."""
    line = next(line for line in status.splitlines() if line.startswith("SigBlk:"))
    return int(line.split()[1], 16)


def test_only_the_main_thread_can_take_sigterm_while_connections_are_open() -> None:
    # A SIGTERM delivered to a connection's thread waited until the main thread next woke: now and then a
    # stopped instance kept answering until Docker's SIGKILL. With the signals blocked in every other
    # thread, the kernel can only hand them to the main thread.
    with DockerContainer(app_image("v1"), labels={LABEL: "1", **owner_labels()}).with_exposed_ports(
        8080
    ) as app:
        base = f"http://{app.get_container_host_ip()}:{app.get_exposed_port(8080)}"
        wait_for_200(f"{base}/healthz")
        with httpx.Client() as a, httpx.Client() as b:  # two kept-alive connections: two handler threads
            a.get(base + "/")
            b.get(base + "/")
            wrapped = app.get_wrapped_container()
            listing = wrapped.exec_run(["sh", "-c", "for t in /proc/1/task/*; do cat $t/status; done"])
            tasks = listing.output.decode().split("Name:")[1:]
            assert len(tasks) >= 4, "main, accept loop and two connection threads"
            term = 1 << (15 - 1)  # SIGTERM is signal 15: bit 14 of the mask
            masks = {int(t.split("Pid:")[1].split()[0]): _blocked(t) for t in tasks}
            assert not masks.pop(1) & term, "the main thread must take SIGTERM"
            assert all(mask & term for mask in masks.values()), masks
            # And so a SIGTERM with connections open ends the app at once, not after Docker's grace.
            started = time.monotonic()
            wrapped.kill(signal="SIGTERM")
            assert wrapped.wait(timeout=10)["StatusCode"] == 0
            assert time.monotonic() - started < 5
