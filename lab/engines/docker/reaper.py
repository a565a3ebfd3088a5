"""The lab's side of the reaper (reaper_app.py): start it beside a run, hold a connection to it for the
whole run, let it go when the run cleaned up by itself.

Nothing outlives a run: the run removes what it made in a `finally`, a Ctrl-C included. A `kill -9` of the
lab (an OOM kill, a CI job killed at its timeout, a closed laptop) runs no `finally`; then the reaper, a
container of the run's own that watches the lab's connection, removes everything labelled with the run's
id a couple of seconds after the connection drops, and itself with it. testcontainers' Ryuk does the
same for a test session; its image cannot be pulled here, and the lab builds its own from its base.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Mapping

import docker
import docker.errors

from lab.engines.docker.client import engine_errors
from lab.engines.names import REAPER_IMAGE
from lab.errors import LabError

REAPER_PORT = 8080
START_TIMEOUT_S = 15.0


def daemon_socket() -> str:
    """The engine's socket as the engine itself sees it (what the reaper mounts): DOCKER_HOST's path when
    it names a unix socket, else the usual one (the engine's host for a tcp:// or ssh:// DOCKER_HOST)."""
    host = os.environ.get("DOCKER_HOST", "")
    return host.removeprefix("unix://") if host.startswith("unix://") else "/var/run/docker.sock"


class Reaper:
    def __init__(self, container_id: str, sock: socket.socket):
        self.container_id, self.sock = container_id, sock

    def release(self) -> None:
        """The run is kept (--keep): the reaper goes without removing anything."""
        with contextlib.suppress(OSError):
            self.sock.sendall(b"done\n")
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


@engine_errors
def start_reaper(client: docker.DockerClient, run_id: str, labels: Mapping[str, str]) -> Reaper:
    """Start the run's reaper and connect to it; it reaps if this process goes away before `release`."""
    container = client.containers.run(
        REAPER_IMAGE,
        [run_id],
        name=f"lab-{run_id}-reaper",
        detach=True,
        auto_remove=True,
        labels={**labels, "deploylab.role": "reaper"},
        volumes={daemon_socket(): {"bind": "/var/run/docker.sock", "mode": "rw"}},
        ports={f"{REAPER_PORT}/tcp": ("127.0.0.1", None)},
        mem_limit="64m",
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    last_error = "no answer"
    while time.monotonic() < deadline:
        try:
            container.reload()
            bindings = (container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{REAPER_PORT}/tcp")
            if bindings:
                sock = socket.create_connection(("127.0.0.1", int(bindings[0]["HostPort"])), timeout=2)
                if sock.recv(16).startswith(b"ready"):
                    sock.settimeout(None)
                    return Reaper(container.id, sock)
                sock.close()
        except docker.errors.NotFound:
            raise LabError("the reaper exited at start: is the Docker socket mountable here?") from None
        except OSError as exc:
            last_error = str(exc)
        time.sleep(0.1)
    with contextlib.suppress(docker.errors.APIError):
        container.remove(force=True)
    raise LabError(f"the reaper did not answer within {START_TIMEOUT_S:g} s ({last_error})")
