"""The interface between a fleet target and a container engine: a fleet half and a proxy half.

An engine runs the lab's instances (`Fleet`) and the nginx in front of them (`Proxy`) on a network of the
run's own. The local Docker engine fills both halves with containers on a bridge; a Swarm engine replaces
the fleet half (services on an overlay network) and keeps the proxy half. Health checks and the live
config generation are read over HTTP from the proxy's admin port, not from the engine, so they mean the
same on every engine.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from lab.model import Instance
from lab.record import Removed

LABEL = "deploylab"  # every object the lab makes carries it ...
RUN_LABEL = "deploylab.run"  # ... and the id of the run that made it
# Who ran it, when DEPLOYLAB_OWNER names someone (a CI job, a test worker sharing the engine with others):
# every object carries it, and `lab clean` then removes only that owner's.
OWNER_LABEL = "deploylab.owner"
OWNER_VARIABLE = "DEPLOYLAB_OWNER"


def owner_labels() -> dict[str, str]:
    owner = os.environ.get(OWNER_VARIABLE, "").strip()
    return {OWNER_LABEL: owner} if owner else {}


def run_labels(run_id: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """What every object of a run carries, on any engine: the caller's own labels (a test session's id),
    the owner's, the lab's and the run's; the lab's own win over a caller's of the same name."""
    return {**(extra or {}), **owner_labels(), LABEL: "1", RUN_LABEL: run_id}


@dataclass(frozen=True)
class ProxyEndpoints:
    url: str  # where clients (the probe) send traffic
    admin_url: str  # the lab's own port on the proxy: health by instance name, live config generation
    port: int  # the host port of `url`
    # The same listener at its address on the run's network, past Docker's userland proxy (docker-proxy,
    # which relays every published-port connection on 127.0.0.1 through a process of its own, on the
    # same cores: it halved the probe's ceiling). Reachable from the host only where the engine's bridge
    # is (Linux, not Docker Desktop, not a remote engine): whoever uses it checks. None: no such address.
    network_url: str | None = None
    network_admin_url: str | None = None  # the admin port there: the same nginx, as its generation says


class Fleet(Protocol):
    """The instances of a run."""

    def start_instance(self, inst: Instance, image: str, env: Mapping[str, str]) -> None:
        """Create and start the instance; return at once (the target waits for health over HTTP)."""

    def instance_ip(self, inst: Instance) -> str | None:
        """The instance's address on the run's network, as the proxy reaches it (and names it in
        X-Lab-Upstream); None when it has none, e.g. it has already exited."""

    def instance_exit(self, inst: Instance) -> int | None:
        """None while the instance runs; its exit code once it has stopped by itself."""

    def stop_instance(self, inst: Instance, grace_s: float) -> None:
        """SIGTERM, SIGKILL after `grace_s`, then remove it."""

    def instance_logs(self, inst: Instance, lines: int = 20) -> str: ...


class Applied(NamedTuple):
    """A config made live: how many `nginx -t` it took (more than 1: an instance's name did not resolve
    at first); how many workers of the previous config still ran when the wait for them ended, and how
    many ran at the reload (None: not waited for, or the engine could not tell; 0 before: none was seen,
    so the wait waited for nothing)."""

    checks: int
    old_workers: int | None = None
    workers_before: int | None = None


class Proxy(Protocol):
    """The nginx in front of the instances."""

    def nginx_version(self) -> tuple[int, ...] | None:
        """The proxy's nginx version, so the config uses only directives it knows; None if unknown."""

    def start(self, config: str, port: int | None, prefer: int | None = None) -> ProxyEndpoints:
        """Start nginx with `config`, published on `port` (None: `prefer` if it is free when bound, else
        any free port). The target starts it on an admin-only config (no client's port) and loads the
        first real one through `apply_config`, so every config it routes with has passed `nginx -t`."""

    def logs(self, lines: int = 20) -> str:
        """The proxy's last log lines, for error messages."""

    def apply_config(self, config: str, *, old_workers_s: float = 0.0) -> Applied:
        """Check `config` with `nginx -t` where the instance names resolve, then make it live with a
        graceful reload; with `old_workers_s`, wait up to that long until no nginx worker of the previous
        config is left (after a reload an old worker goes on serving its kept-alive clients with the old
        upstreams). On a failed check raise ConfigRejected and leave the running config alone."""


class Engine(Protocol):
    """One run's objects on one engine: its network, its fleet and its proxy."""

    @property
    def run_id(self) -> str: ...

    @property
    def fleet(self) -> Fleet: ...

    @property
    def proxy(self) -> Proxy: ...

    def preflight(self, images: Sequence[str] | None = None) -> None:
        """Raise a LabError when the engine is unreachable or an image the run needs is missing: the
        proxy's, and `images` (None: the lab's sample app at v1 and v2). Never pulls one."""

    def watch(self) -> None:
        """Start what removes this run's objects should the lab be killed (lab/engines/docker/reaper.py).
        Returns once it exists; the lab's connection to it is made meanwhile."""

    def watching(self) -> None:
        """Wait until the watch of `watch` holds; LabError if it cannot."""

    def release(self) -> None:
        """The run's objects are kept on purpose (--keep): stop watching without removing them."""

    def create_network(self) -> None: ...

    def cleanup(self) -> Removed:
        """Remove everything this run made. Safe to call more than once; never raises."""


@dataclass(frozen=True)
class TaskState:
    """One task of a replicated service, as the platform reports it."""

    id: str
    slot: int
    state: (
        str  # new, pending, assigned, accepted, preparing, starting, running, complete, failed, shutdown ...
    )
    desired: str  # running or shutdown
    image: str
    exit_code: int | None
    message: str


@dataclass(frozen=True)
class UpdateState:
    """The service's update as the platform reports it: None before any update."""

    state: str | None  # updating, paused, completed, rollback_started, rollback_paused, rollback_completed
    message: str


class Services(Protocol):
    """A platform that runs a replicated service and updates it itself (Swarm)."""

    def create_service(
        self,
        name: str,
        alias: str,
        image: str,
        env: Mapping[str, str],
        replicas: int,
        settings: object,
        health_path: str,
        port: int,
    ) -> None: ...

    def update_service(self, name: str, image: str, env: Mapping[str, str]) -> None: ...

    def update_state(self, name: str) -> UpdateState: ...

    def tasks(self, name: str) -> list[TaskState]: ...
