"""Clean-up's words for a network the engine refuses to remove: an endpoint no container holds (Docker's
lost count, moby/moby#42119) is said to be Docker's, and how to clear it; any other refusal stays as the
engine said it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import docker.errors
import pytest

from lab.engines.docker import client as client_module
from lab.engines.docker.client import phantom_endpoint, remove_labelled

REFUSED = (
    "lab-d042bd: 403 Client Error for http+docker://localhost/v1.41/networks/e5b7: Forbidden "
    '("error while removing network: network lab-d042bd id e5b7 has active endpoints")'
)


class Networks:
    def __init__(self, containers: dict[str, Any] | None, gone: bool = False, scope: str = "local") -> None:
        self.containers, self.gone, self.scope, self.asked = containers, gone, scope, []

    def get(self, name: str) -> SimpleNamespace:
        self.asked.append(name)
        if self.gone:
            raise docker.errors.NotFound("no such network")
        return SimpleNamespace(attrs={"Containers": self.containers, "Scope": self.scope})


def client(networks: Networks) -> Any:
    return SimpleNamespace(networks=networks)


def test_an_endpoint_no_container_holds_is_dockers_and_a_restart_clears_it() -> None:
    networks = Networks({})
    said = phantom_endpoint(client(networks), REFUSED)
    assert networks.asked == ["lab-d042bd"]
    assert said.startswith("lab-d042bd: Docker counts an endpoint on it that no container holds")
    assert "moby/moby#42119" in said and "restarting the Docker daemon" in said


def test_a_container_still_on_the_network_is_the_engines_words() -> None:
    networks = Networks({"abc": {"Name": "lab-d042bd-app-v1-1"}})
    assert phantom_endpoint(client(networks), REFUSED) == REFUSED


def test_a_swarm_overlay_lists_only_this_nodes_containers_so_the_engines_words_stand() -> None:
    assert phantom_endpoint(client(Networks({}, scope="swarm")), REFUSED) == REFUSED


def test_a_network_gone_meanwhile_or_another_refusal_is_left_as_it_was() -> None:
    assert phantom_endpoint(client(Networks({}, gone=True)), REFUSED) == REFUSED
    other = "lab-d042bd: 500 Server Error: device or resource busy"
    networks = Networks({})
    assert phantom_endpoint(client(networks), other) == other and networks.asked == []


# -- a removed network counts as gone once the engine no longer lists it -------------------------------


class Overlay:
    """A network as the engine's list gives it: removed at once, listed on for `lingers` more lists."""

    def __init__(self, name: str, lingers: int = 0, refusals: int = 0) -> None:
        self.id, self.name, self.lingers, self.refusals = f"id-{name}", name, lingers, refusals
        self.removed = False
        self.removals = 0

    def remove(self) -> None:
        self.removals += 1
        if self.removed:  # Docker 20.10 on a swarm network removed meanwhile: a 500, "not found"
            raise docker.errors.APIError(f"network {self.id} not found")
        if self.refusals:
            self.refusals -= 1
            raise docker.errors.APIError("error while removing network: has active endpoints")
        self.removed = True


class Listing:
    def __init__(self, *networks: Overlay) -> None:
        self.networks, self.lists = list(networks), 0

    def list(self, filters: dict[str, Any]) -> list[Overlay]:
        self.lists += 1
        shown = []
        for network in self.networks:
            if not network.removed:
                shown.append(network)
            elif network.lingers > 0:
                network.lingers -= 1
                shown.append(network)
        return shown


def engine(networks: Listing, *, services: int) -> Any:
    service = SimpleNamespace(name="lab-abc-app", remove=lambda: None)
    return SimpleNamespace(
        info=lambda: {"Swarm": {"ControlAvailable": services > 0}},
        services=SimpleNamespace(list=lambda filters: [service] * services),
        containers=SimpleNamespace(list=lambda **kwargs: []),
        networks=networks,
    )


def test_a_swarm_network_still_listed_after_its_removal_is_waited_for_not_removed_twice() -> None:
    overlay = Overlay("lab-abc", lingers=3)
    listing = Listing(overlay)
    removed = remove_labelled(engine(listing, services=1))
    assert removed.networks == 1 and removed.left == []
    assert overlay.removals == 1  # once: asked again, the engine answers 500 "not found"
    assert listing.lists == 5  # listed until it was gone: its removal, three lingering lists, the empty one


def test_a_network_that_stays_listed_is_said_to_be_left() -> None:
    overlay = Overlay("lab-abc", lingers=10**6)
    removed = remove_labelled(engine(Listing(overlay), services=0))
    assert removed.left == ["lab-abc: removed, but still listed by the engine 1.5 s later"]


def test_a_network_refused_while_its_endpoints_go_is_tried_again() -> None:
    overlay = Overlay("lab-abc", refusals=1)
    removed = remove_labelled(engine(Listing(overlay), services=0))
    assert removed.networks == 1 and removed.left == [] and overlay.removals == 2


def test_a_bridge_gone_from_the_list_once_removed_costs_no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", pauses.append)
    listing = Listing(Overlay("lab-abc"))
    removed = remove_labelled(engine(listing, services=0))
    assert removed.networks == 1 and removed.left == []
    assert listing.lists == 2 and pauses == []  # its removal, then the empty list at once


def test_a_lingering_overlay_is_polled_briefly_and_a_refusal_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", pauses.append)
    remove_labelled(engine(Listing(Overlay("lab-abc", lingers=3)), services=1))
    assert pauses == [0.05] * 3  # removed, at once listed again: three lists show it, each then a pause
    pauses.clear()
    remove_labelled(engine(Listing(Overlay("lab-abc", refusals=2)), services=0))
    assert pauses == [0.5, 0.5]  # refused twice, tried again each time after the endpoints had a moment
