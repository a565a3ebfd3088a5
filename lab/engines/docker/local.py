"""The local Docker engine: a run's containers on its own bridge network, nginx published on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import docker
import docker.errors

from lab.engines.base import RUN_LABEL, run_labels
from lab.engines.docker.client import connect, engine_errors, remove_labelled
from lab.engines.docker.containers import DockerFleet
from lab.engines.docker.images import all_images
from lab.engines.docker.proxy import DockerProxy
from lab.engines.docker.reaper import Reaper, start_reaper
from lab.engines.names import PROXY_IMAGE, REAPER_IMAGE, app_images
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
        self.labels = run_labels(run_id, labels)
        self.proxy_image = proxy_image
        self.reaper: Reaper | None = None
        self.fleet = DockerFleet(self.client, run_id, self.network, self.labels)
        # The run's bridge is reachable from this host only when the engine runs here: a unix socket
        # (docker-py names it http+docker://localhost), not tcp:// or ssh:// to another machine.
        local = str(self.client.api.base_url).startswith("http+docker://localhost")
        self.proxy = DockerProxy(self.client, run_id, self.network, self.labels, proxy_image, routable=local)

    @engine_errors
    def preflight(self, images: Sequence[str] | None = None) -> None:
        lab_images = {*all_images(), self.proxy_image}
        wanted = [*(app_images() if images is None else images), self.proxy_image, REAPER_IMAGE]
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

    def watch(self) -> None:
        self.reaper = start_reaper(self.client, self.run_id, self.labels)

    def watching(self) -> None:
        if self.reaper is not None:
            self.reaper.ready()

    def release(self) -> None:
        if self.reaper is not None:
            self.reaper.release()
            self.reaper = None

    def cleanup(self) -> Removed:
        """Everything the run made, the reaper too (removed, it reaps nothing)."""
        try:
            return remove_labelled(self.client, {RUN_LABEL: self.run_id})
        finally:
            if self.reaper is not None:
                self.reaper.close()
                self.reaper = None


def open_engine(
    run_id: str, *, labels: Mapping[str, str] | None = None, stop_grace_s: float = 10.0
) -> DockerEngine:
    return DockerEngine(run_id, labels=labels)  # a container's grace is given at each stop
