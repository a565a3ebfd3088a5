"""The fleet half on the local engine: each instance a container on the run's bridge network, reached by
its name (a network alias)."""

from __future__ import annotations

from collections.abc import Mapping

import docker
import docker.errors

from lab.engines.docker.client import engine_errors
from lab.model import Instance

# Small enough that a fleet of sixteen per version plus the proxy stays far inside a laptop's memory.
APP_MEMORY = "128m"


class DockerFleet:
    def __init__(self, client: docker.DockerClient, run_id: str, network: str, labels: Mapping[str, str]):
        self.client, self.api = client, client.api
        self.run_id, self.network, self.labels = run_id, network, dict(labels)

    def _container(self, inst: Instance) -> str:
        return f"lab-{self.run_id}-{inst.name}"

    @engine_errors
    def start_instance(self, inst: Instance, image: str, env: Mapping[str, str]) -> None:
        host_config = self.api.create_host_config(network_mode=self.network, mem_limit=APP_MEMORY)
        # The alias is the instance's name, so the rendered nginx config can name it on the network.
        networking = self.api.create_networking_config(
            {self.network: self.api.create_endpoint_config(aliases=[inst.name])}
        )
        container = self.api.create_container(
            image,
            name=self._container(inst),
            hostname=inst.name,
            environment={**env, "APP_INSTANCE": inst.name},
            labels={**self.labels, "deploylab.role": "app", "deploylab.instance": inst.name},
            host_config=host_config,
            networking_config=networking,
        )
        self.api.start(container["Id"])

    @engine_errors
    def instance_ip(self, inst: Instance) -> str | None:
        try:
            networks = self.api.inspect_container(self._container(inst))["NetworkSettings"]["Networks"]
        except docker.errors.NotFound:
            return None
        return (networks or {}).get(self.network, {}).get("IPAddress") or None

    @engine_errors
    def instance_exit(self, inst: Instance) -> int | None:
        try:
            state = self.api.inspect_container(self._container(inst))["State"]
        except docker.errors.NotFound:
            return -1
        if state.get("Running") or state.get("Status") in {"created", "restarting"}:
            return None
        return int(state.get("ExitCode", -1))

    @engine_errors
    def stop_instance(self, inst: Instance, grace_s: float) -> None:
        name = self._container(inst)
        try:
            self.api.stop(name, timeout=max(0, round(grace_s)))
            self.api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass

    @engine_errors
    def instance_logs(self, inst: Instance, lines: int = 20) -> str:
        try:
            raw = self.api.logs(self._container(inst), tail=lines)
        except docker.errors.NotFound:
            return ""
        return str(raw.decode(errors="replace")).strip()
