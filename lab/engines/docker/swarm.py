"""Docker Swarm as an engine: each of the lab's instances a Swarm service of one task, on an attachable
overlay network the run creates; nginx in front is the local engine's proxy half, attached to that network.

Why a service per instance: the lab's plans start and stop named instances one by one (a rolling batch,
a canary's instances), and a one-task service is exactly that: created (Start), removed after its task
has stopped (Stop), with Swarm's own stop grace period, health through the proxy's admin port, and an
exit code of its own. A service of N replicas would leave which task goes to Swarm.

Each service is reached by the instance's name, a network alias, with `endpoint_mode: dnsrr`: Docker's DNS
answers with the task's own address. The default, a virtual IP, needs IPVS in the kernel (the routing
mesh too), and this lab's machine has none; dnsrr works everywhere, and it is what nginx in front wants
anyway: it balances itself.

The lab never initialises a swarm, nor leaves one: `preflight` says how to make the engine a manager.
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Mapping, Sequence
from typing import Any

import docker
import docker.errors
import docker.types

from lab.engines.base import TaskState, UpdateState
from lab.engines.docker.client import engine_errors
from lab.engines.docker.proxy import DockerProxy
from lab.engines.docker.run_engine import RunEngine
from lab.engines.names import PROXY_IMAGE
from lab.errors import ImagesMissing, LabError
from lab.model import Instance

APP_MEMORY = 128 * 1024 * 1024
# A task that ended: its container's exit code is final. (Swarm's own words for a task's state.)
ENDED = {"complete", "failed", "shutdown", "rejected", "orphaned", "remove"}
NOT_A_MANAGER = (
    "the Docker engine is not a swarm manager: `docker swarm init --advertise-addr 127.0.0.1` makes this "
    "one a single-node swarm (the lab never initialises or leaves a swarm itself), or point DOCKER_HOST at "
    "a manager of yours"
)


def swarm_state(client: docker.DockerClient) -> tuple[str, bool]:
    """(LocalNodeState, whether this node is a manager)."""
    swarm = client.info().get("Swarm") or {}
    return str(swarm.get("LocalNodeState") or "inactive"), bool(swarm.get("ControlAvailable"))


def require_manager(client: docker.DockerClient) -> None:
    state, manager = swarm_state(client)
    if state != "active" or not manager:
        raise LabError(NOT_A_MANAGER)


class SwarmFleet:
    """The instances of a run as one-task services on the run's overlay network."""

    def __init__(
        self,
        client: docker.DockerClient,
        run_id: str,
        network: str,
        labels: Mapping[str, str],
        *,
        stop_grace_s: float = 10.0,
    ):
        self.client, self.api = client, client.api
        self.run_id, self.network, self.labels = run_id, network, dict(labels)
        self.stop_grace_s = stop_grace_s

    def service(self, inst: Instance) -> str:
        return f"lab-{self.run_id}-{inst.name}"

    def _tasks(self, inst: Instance) -> list[dict]:
        try:
            return list(self.api.tasks(filters={"service": self.service(inst)}))
        except docker.errors.NotFound:
            return []

    @engine_errors
    def start_instance(self, inst: Instance, image: str, env: Mapping[str, str]) -> None:
        spec = docker.types.ContainerSpec(
            image,
            hostname=inst.name,
            env={**env, "APP_INSTANCE": inst.name},
            labels={**self.labels, "deploylab.role": "app", "deploylab.instance": inst.name},
            stop_grace_period=int(self.stop_grace_s * 1e9),
        )
        template = docker.types.TaskTemplate(
            container_spec=spec,
            # A task that exits stays down, as a container that exits does: a crash is the plan's to see.
            restart_policy=docker.types.RestartPolicy(condition="none"),
            resources=docker.types.Resources(mem_limit=APP_MEMORY),
            networks=[docker.types.NetworkAttachmentConfig(self.network, aliases=[inst.name])],
        )
        self.api.create_service(
            template,
            name=self.service(inst),
            labels={**self.labels, "deploylab.role": "app", "deploylab.instance": inst.name},
            mode=docker.types.ServiceMode("replicated", replicas=1),
            endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
        )

    @engine_errors
    def instance_ip(self, inst: Instance) -> str | None:
        for task in self._tasks(inst):
            if task.get("Status", {}).get("State") != "running":
                continue
            for attachment in task.get("NetworksAttachments") or []:
                if attachment.get("Network", {}).get("Spec", {}).get("Name") == self.network:
                    for address in attachment.get("Addresses") or []:
                        return str(address).split("/", 1)[0]
        return None

    @engine_errors
    def instance_exit(self, inst: Instance) -> int | None:
        tasks = self._tasks(inst)
        if not tasks:
            return -1 if not self._exists(inst) else None  # created, no task scheduled yet
        latest = max(tasks, key=lambda t: t.get("CreatedAt", ""))
        status = latest.get("Status", {})
        if status.get("State") not in ENDED:
            return None
        return int((status.get("ContainerStatus") or {}).get("ExitCode", -1))

    def _exists(self, inst: Instance) -> bool:
        try:
            self.api.inspect_service(self.service(inst))
        except docker.errors.NotFound:
            return False
        return True

    @engine_errors
    def stop_instance(self, inst: Instance, grace_s: float) -> None:
        """Scale to 0 and wait until the task has stopped (Swarm sends SIGTERM, then SIGKILL after the
        stop grace period), then remove the service: a Stop means what it means on the local engine."""
        name = self.service(inst)
        try:
            service = self.client.services.get(name)
        except docker.errors.NotFound:
            return
        service.scale(0)
        deadline = time.monotonic() + grace_s + 15.0
        while time.monotonic() < deadline:
            if all(t.get("Status", {}).get("State") in ENDED for t in self._tasks(inst)):
                break
            time.sleep(0.05)
        with contextlib.suppress(docker.errors.NotFound):
            service.remove()

    @engine_errors
    def instance_logs(self, inst: Instance, lines: int = 20) -> str:
        try:
            raw = self.api.service_logs(self.service(inst), stdout=True, stderr=True, tail=lines)
        except docker.errors.APIError:
            return ""
        return b"".join(raw).decode(errors="replace").strip()


class SwarmEngine(RunEngine):
    """One run on a swarm: an attachable overlay network, one-task services, the proxy container."""

    def __init__(
        self,
        run_id: str,
        client: docker.DockerClient | None = None,
        proxy_image: str = PROXY_IMAGE,
        labels: Mapping[str, str] | None = None,
        *,
        stop_grace_s: float = 10.0,
    ):
        super().__init__(run_id, client, proxy_image, labels)
        self.fleet = SwarmFleet(self.client, run_id, self.network, self.labels, stop_grace_s=stop_grace_s)
        self.proxy = DockerProxy(self.client, run_id, self.network, self.labels, proxy_image)

    @engine_errors
    def preflight(self, images: Sequence[str] | None = None) -> None:
        require_manager(self.client)
        missing = [image for image in self.absent_images(images) if not self._in_registry(image)]
        if missing:
            raise ImagesMissing(
                f"image(s) {', '.join(missing)} not found on this node: run `lab images` (on a swarm of "
                "several nodes, `lab images push REGISTRY` and run with the registry's names)"
            )

    # -- one replicated service, updated by Swarm itself (swarm-rolling) ------------------------------
    def service_name(self, name: str) -> str:
        return f"lab-{self.run_id}-{name}"

    @engine_errors
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
    ) -> None:
        s: Any = settings  # lab/strategies/swarm_rolling.py's SwarmUpdate
        update = docker.types.UpdateConfig(
            parallelism=s.parallelism,
            delay=int(s.delay_s * 1e9),
            failure_action=s.failure_action,
            monitor=int(s.monitor_s * 1e9),
            max_failure_ratio=s.max_failure_ratio,
            order=s.order,
        )
        # A rollback goes as the update came, but never rolls back itself.
        rollback = docker.types.RollbackConfig(
            parallelism=s.parallelism,
            delay=int(s.delay_s * 1e9),
            failure_action="pause",
            monitor=int(s.monitor_s * 1e9),
            max_failure_ratio=s.max_failure_ratio,
            order=s.order,
        )
        labels = {**self.labels, "deploylab.role": "app"}
        template = docker.types.TaskTemplate(
            container_spec=self._container_spec(image, env, s, health_path, port, labels),
            resources=docker.types.Resources(mem_limit=APP_MEMORY),
            networks=[docker.types.NetworkAttachmentConfig(self.network, aliases=[alias])],
        )
        self.client.api.create_service(
            template,
            name=self.service_name(name),
            labels=labels,
            mode=docker.types.ServiceMode("replicated", replicas=replicas),
            update_config=update,
            rollback_config=rollback,
            endpoint_spec=docker.types.EndpointSpec(mode="dnsrr"),
        )

    @staticmethod
    def _container_spec(
        image: str, env: Mapping[str, str], s: Any, health_path: str, port: int, labels: Mapping[str, str]
    ) -> docker.types.ContainerSpec:
        if s.healthcheck:
            # The app's image is Python: one GET over a raw socket, under `-I -S` (no site, no user paths),
            # costs a few ms of CPU per check; urllib would import http.client and email, ten times that,
            # twice a second per task on a machine that also runs the probe.
            path = s.health_path or health_path
            probe = (
                "import socket,sys;"
                f"c=socket.create_connection(('127.0.0.1',{port}),1);c.settimeout(1);"
                f"c.sendall(b'GET {path} HTTP/1.0\\r\\nHost: health\\r\\n\\r\\n');"
                "sys.exit(0 if c.recv(16)[9:12]==b'200' else 1)"
            )
            health = docker.types.Healthcheck(
                test=["CMD", "python3", "-I", "-S", "-c", probe],
                interval=int(s.health_interval_s * 1e9),
                timeout=int(1e9),
                retries=s.health_retries,
                # Failures before the first success do not count for this long: a slow boot is not a
                # failed task. Once a check passed, every failure counts.
                start_period=int(s.health_start_s * 1e9),
            )
        else:
            health = docker.types.Healthcheck(test=["NONE"])
        return docker.types.ContainerSpec(
            image,
            hostname="app-{{.Task.Slot}}",
            # Each task names itself by its slot (Swarm fills the template): the answer's X-Instance.
            env={**env, "APP_INSTANCE": "slot-{{.Task.Slot}}"},
            labels=dict(labels),
            stop_grace_period=int(s.stop_grace_s * 1e9),
            healthcheck=health,
        )

    @engine_errors
    def update_service(self, name: str, image: str, env: Mapping[str, str]) -> None:
        """`docker service update --image IMAGE --env-add ...`: Swarm moves the tasks by itself."""
        attrs = self.client.api.inspect_service(self.service_name(name))
        # The whole task template as it is, with the new image and env: the SDK's Service.update would
        # build a template of only what it is given, dropping the healthcheck, the network, the limits.
        template = copy.deepcopy(attrs["Spec"]["TaskTemplate"])
        spec = template["ContainerSpec"]
        merged = {**dict(item.split("=", 1) for item in spec.get("Env") or []), **env}
        spec["Image"] = image
        spec["Env"] = [f"{k}={v}" for k, v in merged.items()]
        self.client.api.update_service(
            attrs["ID"], attrs["Version"]["Index"], task_template=template, fetch_current_spec=True
        )

    @engine_errors
    def update_state(self, name: str) -> UpdateState:
        attrs = self.client.api.inspect_service(self.service_name(name))
        status = attrs.get("UpdateStatus") or {}
        return UpdateState(status.get("State"), str(status.get("Message") or ""))

    @engine_errors
    def tasks(self, name: str) -> list[TaskState]:
        found = []
        for task in self.client.api.tasks(filters={"service": self.service_name(name)}):
            status = task.get("Status") or {}
            container = status.get("ContainerStatus") or {}
            spec = task.get("Spec", {}).get("ContainerSpec", {})
            exited = status.get("State") in ENDED and "ExitCode" in container
            found.append(
                TaskState(
                    id=str(task.get("ID", ""))[:12],
                    slot=int(task.get("Slot") or 0),
                    state=str(status.get("State") or ""),
                    desired=str(task.get("DesiredState") or ""),
                    image=str(spec.get("Image", "")).split("@", 1)[0],
                    exit_code=int(container["ExitCode"]) if exited else None,
                    message=str(status.get("Err") or status.get("Message") or ""),
                )
            )
        return found

    def _in_registry(self, image: str) -> bool:
        """Whether a registry holds `image` (its manifest, asked without pulling): a swarm's nodes pull it."""
        first = image.split("/", 1)[0]
        if "/" not in image or not ("." in first or ":" in first or first == "localhost"):
            return False
        try:
            self.client.images.get_registry_data(image)
        except docker.errors.APIError:
            return False
        return True

    @engine_errors
    def create_network(self) -> None:
        self.client.networks.create(
            self.network, driver="overlay", attachable=True, labels=self.labels, scope="swarm"
        )


def open_engine(
    run_id: str, *, labels: Mapping[str, str] | None = None, stop_grace_s: float = 10.0
) -> SwarmEngine:
    return SwarmEngine(run_id, labels=labels, stop_grace_s=stop_grace_s)
