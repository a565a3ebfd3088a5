"""The pytest plugin's way to the engine: testcontainers' connection and session label, the lab's images,
your images built from a Dockerfile for the session, and the session's clean-up.

Built on testcontainers where it gives something: its ``DockerClient`` finds the engine as the user's
other container tests do (``DOCKER_HOST``, ``~/.testcontainers.properties``, registry auth), its
``DockerImage`` builds a v1 or v2 from a Dockerfile (tagged per session, untagged when it ends), and every
container and network of a run carries its session label, so a Ryuk reaper the suite started anyway
also removes what a killed pytest left. Errors come out as LabErrors; the plugin turns them into a failed
(or skipped) test.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import docker
import docker.errors

from lab.engines.base import LABEL
from lab.engines.docker.client import first_line, remove_labelled, unreachable
from lab.engines.docker.images import all_images, ensure_images
from lab.engines.docker.local import DockerEngine
from lab.engines.docker.swarm import SwarmEngine
from lab.errors import DockerUnavailable, LabError

Say = Callable[[str], None]


def session_id() -> str:
    from testcontainers.core.labels import SESSION_ID

    return str(SESSION_ID)


class SessionEngine:
    """One pytest session's engine connection, and the images it built."""

    def __init__(self) -> None:
        self.client: docker.DockerClient | None = None
        self.labels: dict[str, str] = {}
        self.built: dict[tuple[str, str, tuple[tuple[str, str], ...]], Any] = {}  # key -> DockerImage

    def connect(self) -> docker.DockerClient:
        """The engine, through testcontainers; DockerUnavailable with one line when there is none."""
        if self.client is not None:
            return self.client
        from testcontainers.core.docker_client import DockerClient
        from testcontainers.core.labels import LABEL_SESSION_ID, SESSION_ID

        problem = None
        try:
            client = DockerClient().client
            client.ping()
        except Exception as exc:  # docker's, requests' or a socket's: either way there is no engine
            problem = unreachable(exc)
        if problem is not None:  # outside the except: one line, not a chain
            raise DockerUnavailable(problem)
        self.client, self.labels = client, {LABEL_SESSION_ID: SESSION_ID}
        return client

    def ensure_lab_images(self, say: Say) -> None:
        client = self.connect()
        missing = [name for name in all_images() if not client.images.list(name=name)]
        if missing:
            say(f"building {', '.join(missing)} (the first build takes minutes)")
        try:
            ensure_images(client, log=say)
        except LabError as exc:
            raise LabError(f"the lab's images could not be built: {exc}") from None

    def engine(
        self, run_id: str, kind: str = "docker", stop_grace_s: float = 10.0
    ) -> DockerEngine | SwarmEngine:
        if kind == "swarm":
            return SwarmEngine(run_id, self.connect(), labels=self.labels, stop_grace_s=stop_grace_s)
        return DockerEngine(run_id, self.connect(), labels=self.labels)

    def build(self, path: Path, dockerfile: str, buildargs: Mapping[str, str], tag: str, say: Say) -> str:
        """Build an image with testcontainers' DockerImage, once per session; the tag to run it by."""
        from testcontainers.core.image import DockerImage

        self.connect()
        key = (str(path), dockerfile, tuple(sorted(buildargs.items())))
        if key not in self.built:
            image = DockerImage(
                path,
                tag=tag,
                dockerfile_path=dockerfile,
                buildargs=dict(buildargs),
                labels={LABEL: "1", "deploylab.pytest": "1"},
                forcerm=True,
            )
            say(f"building {tag} from {path / dockerfile}")
            try:
                image.build()
            except docker.errors.BuildError as exc:
                raise LabError(f"building {path / dockerfile} failed: {exc.msg}") from None
            except docker.errors.APIError as exc:
                reason = first_line(Exception(exc.explanation or exc))
                raise LabError(f"building {path / dockerfile} failed: {reason}") from None
            self.built[key] = image
        return str(self.built[key].tag)

    @staticmethod
    def image_tag(path: Path, dockerfile: str, buildargs: Mapping[str, str], slug: str) -> str:
        """The folder, Dockerfile and build args, and this session's id: another session on the engine
        (an xdist worker, a second CI job) building the same folder tags its own, and removing ours at
        the end leaves theirs."""
        key = (str(path), dockerfile, tuple(sorted(buildargs.items())))
        digest = hashlib.sha256(repr(key).encode()).hexdigest()[:12]
        return f"deploylab-pytest/{slug or 'app'}:{digest}-{session_id().replace('-', '')[:12]}"

    def close(self, say: Say) -> None:
        """The safety net: whatever this session's runs left (a run cleans up after itself), then the
        images it built."""
        if self.client is None:
            return
        removed = remove_labelled(self.client, self.labels)
        if removed.containers or removed.networks or removed.left:
            say(f"removed what runs left behind at the end of the session: {removed}")
        for image in self.built.values():
            # By tag, never forced: the engine deletes the image only once no other tag names it and
            # no container uses it, so an image another session also built stays theirs.
            try:
                self.client.images.remove(str(image.tag))
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                reason = first_line(Exception(exc.explanation or exc))
                say(f"left {image.tag} in place: {reason}")
            except Exception as exc:  # the next image must still go
                say(f"could not remove {image.tag}: {first_line(exc)}")
            finally:
                with contextlib.suppress(Exception):
                    image.get_docker_client().client.close()
