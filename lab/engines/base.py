"""The one interface between the lab and a container engine.

The runner speaks only to this protocol. The local Docker backend fills it today; a Docker Swarm backend
(services instead of containers, an overlay network instead of a bridge) can fill it without touching
strategies, runner or analysis. Health checks and the live config generation are read over HTTP from the
proxy's admin port, not from the engine, so they work the same on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from lab.model import Instance
from lab.record import Removed

LABEL = "deploylab"  # every object the lab makes carries it ...
RUN_LABEL = "deploylab.run"  # ... and the id of the run that made it


@dataclass(frozen=True)
class ProxyEndpoints:
    url: str  # where clients (the probe) send traffic
    admin_url: str  # the lab's own port on the proxy: health by instance name, live config generation
    port: int  # the host port of `url`


class Runtime(Protocol):
    run_id: str

    def preflight(self, images: Sequence[str] | None = None) -> None:
        """Raise a LabError when the engine is unreachable or an image the run needs is missing: the
        proxy's, and `images` (None: the lab's sample app at v1 and v2). Never pulls one."""

    def create_network(self) -> None: ...

    def proxy_nginx_version(self) -> tuple[int, ...] | None:
        """The proxy's nginx version, so the config uses only directives it knows; None if unknown."""

    def start_instance(self, inst: Instance, image: str, env: Mapping[str, str]) -> None:
        """Create and start the instance; return at once (the runner waits for health over HTTP)."""

    def instance_ip(self, inst: Instance) -> str | None:
        """The instance's address on the lab network, as the proxy reaches it (and names it in
        X-Lab-Upstream); None when it has none, e.g. it has already exited."""

    def instance_exit(self, inst: Instance) -> int | None:
        """None while the instance runs; its exit code once it has stopped by itself."""

    def stop_instance(self, inst: Instance, grace_s: float) -> None:
        """SIGTERM, SIGKILL after `grace_s`, then remove it."""

    def instance_logs(self, inst: Instance, lines: int = 20) -> str: ...

    def start_proxy(self, config: str, port: int | None) -> ProxyEndpoints:
        """Start nginx with `config`, published on `port` (None: any free port). The runner starts it on
        a static config and loads the first real one through `apply_config`, so every config it routes
        with has passed `nginx -t`."""

    def proxy_workers(self) -> int | None:
        """How many nginx worker processes run in the proxy, old ones still shutting down after a reload
        included; None if the backend cannot tell."""

    def proxy_logs(self, lines: int = 20) -> str:
        """The proxy's last log lines, for error messages."""

    def apply_config(self, config: str) -> None:
        """Check `config` with `nginx -t` where the instance names resolve, then make it live with a
        graceful reload. On a failed check raise ConfigRejected and leave the running config alone."""

    def cleanup(self) -> Removed:
        """Remove everything this run made. Safe to call more than once; never raises."""
