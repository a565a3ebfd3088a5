"""What the local engine (local.py) and the Swarm engine (swarm.py) share: one run's identity on a Docker
engine (its id, labels and network name), its reaper, and the removal of everything labelled with it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import docker

from lab.engines.base import RUN_LABEL, run_labels
from lab.engines.docker.client import connect, remove_labelled
from lab.engines.docker.images import image_exists
from lab.engines.docker.reaper import Reaper, start_reaper
from lab.engines.names import PROXY_IMAGE, REAPER_IMAGE, app_images
from lab.record import Removed


class RunEngine:
    """A run on a Docker engine; subclasses add its fleet, its proxy and `create_network`."""

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
        # `labels` go on every container, service and network too: a test session's id, so its own
        # clean-up (or a reaper such as testcontainers' Ryuk) finds what its runs made.
        self.labels = run_labels(run_id, labels)
        self.proxy_image = proxy_image
        self.reaper: Reaper | None = None

    def absent_images(self, images: Sequence[str] | None) -> list[str]:
        """Which of the run's images (the apps', by default the lab's own; the proxy's; the reaper's) this
        engine does not have."""
        wanted = [*(app_images() if images is None else images), self.proxy_image, REAPER_IMAGE]
        return [image for image in dict.fromkeys(wanted) if not image_exists(self.client, image)]

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
