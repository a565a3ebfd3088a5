"""The local Docker engine: a run's containers on its own bridge network, nginx published on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import docker

from lab.engines.docker.client import engine_errors
from lab.engines.docker.containers import DockerFleet
from lab.engines.docker.images import all_images
from lab.engines.docker.proxy import DockerProxy
from lab.engines.docker.run_engine import RunEngine
from lab.engines.names import PROXY_IMAGE
from lab.errors import ImagesMissing


class DockerEngine(RunEngine):
    def __init__(
        self,
        run_id: str,
        client: docker.DockerClient | None = None,
        proxy_image: str = PROXY_IMAGE,
        labels: Mapping[str, str] | None = None,
    ):
        super().__init__(run_id, client, proxy_image, labels)
        self.fleet = DockerFleet(self.client, run_id, self.network, self.labels)
        # The run's bridge is reachable from this host only when the engine runs here: a unix socket
        # (docker-py names it http+docker://localhost), not tcp:// or ssh:// to another machine.
        local = str(self.client.api.base_url).startswith("http+docker://localhost")
        self.proxy = DockerProxy(self.client, run_id, self.network, self.labels, proxy_image, routable=local)

    @engine_errors
    def preflight(self, images: Sequence[str] | None = None) -> None:
        lab_images = {*all_images(), self.proxy_image}
        missing = self.absent_images(images)
        ours = [image for image in missing if image in lab_images]
        yours = [image for image in missing if image not in lab_images]
        problems = []
        if ours:
            problems.append(f"image(s) {', '.join(ours)} not found: run `lab images` first")
        if yours:  # the lab never pulls: a run must not wait on, or depend on, a registry
            problems.append(
                f"image(s) {', '.join(yours)} not found: build or pull it first (the lab never pulls)"
            )
        if problems:
            raise ImagesMissing("; ".join(problems))

    @engine_errors
    def create_network(self) -> None:
        self.client.networks.create(self.network, driver="bridge", labels=self.labels)


def open_engine(
    run_id: str, *, labels: Mapping[str, str] | None = None, stop_grace_s: float = 10.0
) -> DockerEngine:
    return DockerEngine(run_id, labels=labels)  # a container's grace is given at each stop
