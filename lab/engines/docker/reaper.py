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
import threading
import time
from collections.abc import Mapping
from typing import Any

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
    """A started reaper, and this process's connection to it, made in a thread of its own: the container
    exists once `start_reaper` returns (and reaps after 30 s if no lab ever connects), so the run can start
    its fleet meanwhile; `ready` waits for the connection and says why there is none."""

    def __init__(self, container: Any):
        self.container = container
        self.sock: socket.socket | None = None
        self.error: str | None = None
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._connect, name="reaper-connect", daemon=True)
        self._thread.start()

    def _connect(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error = "no answer"
        while time.monotonic() < deadline and not self._closed.is_set():
            try:
                self.container.reload()
                bindings = (self.container.attrs["NetworkSettings"]["Ports"] or {}).get(f"{REAPER_PORT}/tcp")
                if bindings:
                    sock = socket.create_connection(("127.0.0.1", int(bindings[0]["HostPort"])), timeout=2)
                    if sock.recv(16).startswith(b"ready"):
                        sock.settimeout(None)
                        self.sock = sock
                        if self._closed.is_set():  # closed while connecting: let it go at once
                            sock.close()
                        return
                    sock.close()
            except docker.errors.NotFound:
                self.error = "the reaper exited at start: is the Docker socket mountable here?"
                return
            except (OSError, docker.errors.APIError) as exc:
                last_error = str(exc)
            time.sleep(0.05)
        self.error = f"the reaper did not answer within {START_TIMEOUT_S:g} s ({last_error})"

    def ready(self) -> None:
        """Wait until the lab holds its connection to the reaper; LabError (the reaper removed) if not."""
        self._thread.join(START_TIMEOUT_S + 5)
        if self.sock is None:
            with contextlib.suppress(docker.errors.APIError):
                self.container.remove(force=True)
            raise LabError(self.error or "the reaper did not answer")

    def release(self) -> None:
        """The run is kept (--keep): the reaper goes without removing anything."""
        self._thread.join(START_TIMEOUT_S + 5)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.sendall(b"done\n")
        self.close()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(5)
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.close()


@engine_errors
def start_reaper(client: docker.DockerClient, run_id: str, labels: Mapping[str, str]) -> Reaper:
    """Start the run's reaper and connect to it in the background; it reaps if this process goes away
    before `release`, or if no connection ever comes."""
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
    return Reaper(container)
