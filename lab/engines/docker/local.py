"""The local Docker engine: a run's containers on its own bridge network, nginx published on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import docker
import docker.errors

from lab.engines.base import LABEL, RUN_LABEL
from lab.engines.docker.client import connect, engine_errors, remove_labelled
from lab.engines.docker.containers import DockerFleet
from lab.engines.docker.images import all_images
from lab.engines.docker.proxy import DockerProxy
from lab.engines.names import PROXY_IMAGE
from lab.errors import ImagesMissing
from lab.record import Removed


class DockerEngine:
    def __init__(
        self,
        run_id: str,
        client: docker.DockerClient | None = None,
        proxy_image: str = PROXY_IMAGE,
        labels: Mapping[str, str] | None = None,
    ):
        self.run_id = run_id
        self.client = client or connect()
        self.network = f"lab-{run_id}"
        # `labels` go on every container and network too: a test session's id, so its own clean-up (or a
        # reaper such as testcontainers' Ryuk) finds what its runs made.
        self.labels = {**(labels or {}), LABEL: "1", RUN_LABEL: run_id}
        self.proxy_image = proxy_image
        self.fleet = DockerFleet(self.client, run_id, self.network, self.labels)
        self.proxy = DockerProxy(self.client, run_id, self.network, self.labels, proxy_image)

    @engine_errors
    def preflight(self, images: Sequence[str] | None = None) -> None:
        lab_images = {*all_images(), self.proxy_image}
        wanted = [*(all_images()[:-1] if images is None else images), self.proxy_image]
        missing = []
        for image in dict.fromkeys(wanted):
            try:
                self.client.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
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

    def cleanup(self) -> Removed:
        return remove_labelled(self.client, {RUN_LABEL: self.run_id})


def open_engine(
    run_id: str, *, labels: Mapping[str, str] | None = None, stop_grace_s: float = 10.0
) -> DockerEngine:
    return DockerEngine(run_id, labels=labels)  # a container's grace is given at each stop
