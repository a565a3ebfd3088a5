"""Clean-up's words for a network the engine refuses to remove: an endpoint no container holds (Docker's
lost count, moby/moby#42119) is said to be Docker's, and how to clear it; any other refusal stays as the
engine said it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import docker.errors

from lab.engines.docker.client import phantom_endpoint

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
