"""What the Docker engines check before a run touches anything: the images, and on Swarm a manager and a
registry's copy. A stand-in for the Docker SDK's client: no engine, no network."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import docker.errors
import pytest

from lab.engines.docker.local import DockerEngine
from lab.engines.docker.swarm import NOT_A_MANAGER, SwarmEngine
from lab.engines.names import PROXY_IMAGE, REAPER_IMAGE, app_image
from lab.errors import ImagesMissing, LabError

LAB_IMAGES = {app_image("v1"), app_image("v2"), PROXY_IMAGE, REAPER_IMAGE}


@dataclass
class Images:
    present: set[str]
    in_registry: set[str] = field(default_factory=set)
    registry_asked: list[str] = field(default_factory=list)

    def get(self, name: str) -> object:
        if name not in self.present:
            raise docker.errors.ImageNotFound(f"No such image: {name}")
        return object()

    def get_registry_data(self, name: str) -> object:
        self.registry_asked.append(name)
        if name not in self.in_registry:
            raise docker.errors.APIError(f"manifest for {name} not found")
        return object()


@dataclass
class Api:
    base_url: str = "http+docker://localhost"


@dataclass
class Client:
    images: Images
    swarm: dict[str, Any] = field(
        default_factory=lambda: {"LocalNodeState": "active", "ControlAvailable": True}
    )
    api: Api = field(default_factory=Api)

    def info(self) -> dict[str, Any]:
        return {"Swarm": self.swarm}


def local(present: set[str]) -> DockerEngine:
    return DockerEngine("run01", client=Client(Images(present)))  # type: ignore[arg-type]


def test_a_local_run_with_every_image_goes_ahead() -> None:
    local(LAB_IMAGES).preflight()
    # Yours replace the apps': the lab's app images need not be there.
    local({PROXY_IMAGE, REAPER_IMAGE, "myorg/shop:1.4"}).preflight(["myorg/shop:1.4"])


def test_a_missing_lab_image_says_to_build_them_and_a_missing_image_of_yours_that_the_lab_never_pulls() -> (
    None
):
    with pytest.raises(ImagesMissing) as raised:
        local(LAB_IMAGES - {PROXY_IMAGE}).preflight(["myorg/shop:1.4", "myorg/shop:1.5"])
    message = str(raised.value)
    assert message == (
        f"image(s) {PROXY_IMAGE} not found: run `lab images` first; "
        "image(s) myorg/shop:1.4, myorg/shop:1.5 not found: build or pull it first (the lab never pulls)"
    )
    assert "\n" not in message  # one line, as every error the user sees


def test_the_reaper_image_is_checked_too() -> None:
    with pytest.raises(ImagesMissing, match=REAPER_IMAGE):
        local(LAB_IMAGES - {REAPER_IMAGE}).preflight()


def swarm(images: Images, **state: Any) -> SwarmEngine:
    client = Client(images, swarm=state or {"LocalNodeState": "active", "ControlAvailable": True})
    return SwarmEngine("run01", client=client)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "state",
    [{"LocalNodeState": "inactive"}, {"LocalNodeState": "active", "ControlAvailable": False}],
    ids=["no swarm", "a worker"],
)
def test_a_swarm_run_needs_a_manager(state: dict[str, Any]) -> None:
    with pytest.raises(LabError) as raised:
        swarm(Images(LAB_IMAGES), **state).preflight()
    assert str(raised.value) == NOT_A_MANAGER


def test_a_swarm_run_takes_an_image_from_a_registry_when_this_node_has_none() -> None:
    pushed = [f"registry.example:5000/{image}" for image in (app_image("v1"), app_image("v2"))]
    images = Images({PROXY_IMAGE, REAPER_IMAGE}, in_registry=set(pushed))
    swarm(images).preflight(pushed)
    assert images.registry_asked == pushed  # asked for what this node lacks, without pulling


def test_a_swarm_run_without_the_image_here_or_in_a_registry_says_how_to_get_it() -> None:
    images = Images({PROXY_IMAGE, REAPER_IMAGE}, in_registry={"localhost:5000/shop:1"})
    with pytest.raises(ImagesMissing) as raised:
        swarm(images).preflight(["localhost:5000/shop:1", "localhost:5000/shop:2", "shop:3"])
    assert "localhost:5000/shop:2, shop:3 not found on this node" in str(raised.value)
    assert "lab images push REGISTRY" in str(raised.value)
    # A name with no registry host ("shop:3") is never looked up in one: Docker Hub is not asked.
    assert images.registry_asked == ["localhost:5000/shop:1", "localhost:5000/shop:2"]


@pytest.mark.parametrize(
    ("host", "cause"),
    [
        ("unix://{tmp}/no-engine.sock", "No such file or directory"),
        ("tcp://127.0.0.1:1", "Connection refused"),
    ],
)
def test_no_engine_is_one_line_naming_where_the_lab_looked_and_the_innermost_cause(
    host: str, cause: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lab.engines.docker.client import connect
    from lab.errors import DockerUnavailable

    where = host.format(tmp=tmp_path)
    monkeypatch.setenv("DOCKER_HOST", where)
    with pytest.raises(DockerUnavailable) as caught:
        connect()
    message = str(caught.value)
    assert message.startswith(f"Docker is not reachable at {where} (") and cause in message
    assert "\n" not in message and "Connection aborted" not in message  # not the wrappers' dump
