"""The local Docker backend: containers on a per-run bridge network, nginx published on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import socket
import tarfile
from collections.abc import Mapping

import docker
import docker.errors

from lab.errors import ConfigRejected, DockerUnavailable, ImagesMissing, LabError, PortInUse
from lab.model import Instance
from lab.runtime.base import LABEL, RUN_LABEL, ProxyEndpoints, Removed

PROXY_LISTEN = 80
PROXY_ADMIN = 8081
CONFIG_PATH = "/etc/nginx/nginx.conf"
CANDIDATE_PATH = "/etc/nginx/lab-candidate.conf"
# Small enough that a fleet of eight plus the proxy stays far inside a laptop's memory.
APP_MEMORY = "128m"
PROXY_MEMORY = "128m"


def connect() -> docker.DockerClient:
    """A client for the local engine, or one clear line saying why there is none."""
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except (
        Exception
    ) as exc:  # DockerException, or requests' ConnectionError underneath it: either way, no engine
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DockerUnavailable(f"Docker is not reachable ({reason}): is the engine running?") from None
    return client


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _tar_one(path: str, text: str) -> bytes:
    data = text.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(path.lstrip("/").rsplit("/", 1)[-1])
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _first_error_line(output: str) -> str:
    for line in output.splitlines():
        if "[emerg]" in line or "[alert]" in line:
            return line.split("] ", 1)[-1].split(": ", 1)[-1].strip()
    return output.strip().splitlines()[-1] if output.strip() else "nginx -t failed"


class DockerRuntime:
    def __init__(self, run_id: str, client: docker.DockerClient | None = None, proxy_image: str = ""):
        self.run_id = run_id
        self.client = client or connect()
        self.api = self.client.api
        self.proxy_image = proxy_image
        self.network = f"lab-{run_id}"
        self.labels = {LABEL: "1", RUN_LABEL: run_id}

    # -- names --------------------------------------------------------------------------------------
    def _container(self, inst: Instance) -> str:
        return f"lab-{self.run_id}-{inst.name}"

    @property
    def _proxy(self) -> str:
        return f"lab-{self.run_id}-proxy"

    # -- lifecycle ----------------------------------------------------------------------------------
    def preflight(self, images: list[str]) -> None:
        missing = []
        for image in images:
            try:
                self.client.images.get(image)
            except docker.errors.ImageNotFound:
                missing.append(image)
        if missing:
            raise ImagesMissing(f"image(s) {', '.join(missing)} not found: run `lab images` first")

    def proxy_nginx_version(self) -> tuple[int, ...] | None:
        from lab.runtime.images import proxy_nginx_version

        return proxy_nginx_version(self.client, self.proxy_image)

    def create_network(self) -> None:
        self.client.networks.create(self.network, driver="bridge", labels=self.labels)

    def start_instance(self, inst: Instance, image: str, env: Mapping[str, str]) -> None:
        name = self._container(inst)
        host_config = self.api.create_host_config(network_mode=self.network, mem_limit=APP_MEMORY)
        # The alias is the instance's name, so the rendered nginx config can name it on the network.
        networking = self.api.create_networking_config(
            {self.network: self.api.create_endpoint_config(aliases=[inst.name])}
        )
        container = self.api.create_container(
            image,
            name=name,
            hostname=inst.name,
            environment={"APP_INSTANCE": inst.name, **env},
            labels={**self.labels, "deploylab.role": "app", "deploylab.instance": inst.name},
            host_config=host_config,
            networking_config=networking,
        )
        self.api.start(container["Id"])

    def instance_exit(self, inst: Instance) -> int | None:
        try:
            state = self.api.inspect_container(self._container(inst))["State"]
        except docker.errors.NotFound:
            return -1
        if state.get("Running") or state.get("Status") in {"created", "restarting"}:
            return None
        return int(state.get("ExitCode", -1))

    def stop_instance(self, inst: Instance, grace_s: float) -> None:
        name = self._container(inst)
        try:
            self.api.stop(name, timeout=max(0, round(grace_s)))
            self.api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass

    def instance_logs(self, inst: Instance, lines: int = 20) -> str:
        try:
            raw = self.api.logs(self._container(inst), tail=lines)
        except docker.errors.NotFound:
            return ""
        return raw.decode(errors="replace").strip()

    def start_proxy(self, config: str, port: int | None) -> ProxyEndpoints:
        if port is not None and not port_is_free(port):
            raise PortInUse(f"port {port} is in use on 127.0.0.1: pick another with --port")
        host_config = self.api.create_host_config(
            network_mode=self.network,
            mem_limit=PROXY_MEMORY,
            port_bindings={PROXY_LISTEN: ("127.0.0.1", port), PROXY_ADMIN: ("127.0.0.1", None)},
        )
        container = self.api.create_container(
            self.proxy_image,
            name=self._proxy,
            hostname="proxy",
            command=["nginx", "-g", "daemon off;"],
            ports=[PROXY_LISTEN, PROXY_ADMIN],
            labels={**self.labels, "deploylab.role": "proxy"},
            host_config=host_config,
        )
        self.api.put_archive(container["Id"], "/etc/nginx", _tar_one(CONFIG_PATH, config))
        try:
            self.api.start(container["Id"])
        except docker.errors.APIError as exc:
            if "allocated" in str(exc) or "in use" in str(exc):
                raise PortInUse(f"port {port} is in use: pick another with --port") from None
            raise
        ports = self.api.inspect_container(container["Id"])["NetworkSettings"]["Ports"]
        host_port = int(ports[f"{PROXY_LISTEN}/tcp"][0]["HostPort"])
        admin_port = int(ports[f"{PROXY_ADMIN}/tcp"][0]["HostPort"])
        return ProxyEndpoints(f"http://127.0.0.1:{host_port}/", f"http://127.0.0.1:{admin_port}", host_port)

    def proxy_exit(self) -> int | None:
        state = self.api.inspect_container(self._proxy)["State"]
        return None if state.get("Running") else int(state.get("ExitCode", -1))

    def proxy_logs(self, lines: int = 20) -> str:
        return self.api.logs(self._proxy, tail=lines).decode(errors="replace").strip()

    def _exec(self, cmd: list[str]) -> tuple[int, str]:
        exec_id = self.api.exec_create(self._proxy, cmd)["Id"]
        output = self.api.exec_start(exec_id).decode(errors="replace")
        return int(self.api.exec_inspect(exec_id)["ExitCode"]), output

    def apply_config(self, config: str) -> None:
        # The candidate is checked in the proxy, where Docker's DNS resolves the instance names that
        # nginx looks up at load time. Only a config that passes becomes nginx.conf.
        self.api.put_archive(self._proxy, "/etc/nginx", _tar_one(CANDIDATE_PATH, config))
        code, output = self._exec(["nginx", "-t", "-q", "-e", "stderr", "-c", CANDIDATE_PATH])
        if code != 0:
            raise ConfigRejected(f"nginx -t rejected the new config: {_first_error_line(output)}")
        self.api.put_archive(self._proxy, "/etc/nginx", _tar_one(CONFIG_PATH, config))
        code, output = self._exec(["nginx", "-s", "reload"])
        if code != 0:
            raise LabError(f"nginx reload failed: {_first_error_line(output)}")

    def cleanup(self) -> Removed:
        return remove_labelled(self.client, {RUN_LABEL: self.run_id})


def remove_labelled(client: docker.DockerClient, labels: Mapping[str, str] | None = None) -> Removed:
    """Remove every container and network carrying the lab's label (and `labels`, when given)."""
    filters = [LABEL] + [f"{k}={v}" for k, v in (labels or {}).items()]
    containers = client.containers.list(all=True, filters={"label": filters})
    for container in containers:
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)
    networks = client.networks.list(filters={"label": filters})
    for network in networks:
        with contextlib.suppress(docker.errors.NotFound):
            network.remove()
    return Removed(len(containers), len(networks))
