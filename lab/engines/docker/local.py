"""The local Docker backend: containers on a per-run bridge network, nginx published on 127.0.0.1."""

from __future__ import annotations

import functools
import io
import tarfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec, TypeVar

import docker
import docker.errors

from lab.engines.base import LABEL, RUN_LABEL, ProxyEndpoints, Removed
from lab.engines.docker.images import all_images, proxy_nginx_version
from lab.errors import ConfigRejected, DockerUnavailable, ImagesMissing, LabError, PortInUse
from lab.model import Instance
from lab.ports import port_is_free

PROXY_LISTEN = 80
PROXY_ADMIN = 8081
CONFIG_PATH = "/etc/nginx/nginx.conf"
CANDIDATE_PATH = "/etc/nginx/lab-candidate.conf"
# Counts nginx's worker processes from their titles; the command's own processes never match the anchor.
COUNT_WORKERS = r"cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' '\n' | grep -c '^nginx: worker process'"
# Small enough that a fleet of sixteen per version plus the proxy stays far inside a laptop's memory.
APP_MEMORY = "128m"
PROXY_MEMORY = "128m"

P = ParamSpec("P")
R = TypeVar("R")


def connect() -> docker.DockerClient:
    """A client for the local engine, or one clear line saying why there is none."""
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    # DockerException, or requests' ConnectionError underneath it: either way there is no engine to use.
    except Exception as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DockerUnavailable(f"Docker is not reachable ({reason}): is the engine running?") from None
    return client


def engine_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Docker's own exceptions become one-line LabErrors: the runner and CLI never see the SDK's types."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except LabError:
            raise
        except docker.errors.APIError as exc:
            detail = exc.explanation or str(exc)
            raise LabError(f"docker: {str(detail).splitlines()[0]}") from None
        except (docker.errors.DockerException, OSError) as exc:
            raise DockerUnavailable(f"Docker stopped answering ({str(exc).splitlines()[0]})") from None
        except Exception as exc:  # requests' ConnectionError and friends, under the SDK
            if type(exc).__module__.startswith(("requests", "urllib3")):
                raise DockerUnavailable(f"Docker stopped answering ({str(exc).splitlines()[0]})") from None
            raise

    return wrapper


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
    def __init__(
        self,
        run_id: str,
        client: docker.DockerClient | None = None,
        proxy_image: str = "",
        labels: Mapping[str, str] | None = None,
    ):
        self.run_id = run_id
        self.client = client or connect()
        self.api = self.client.api
        self.proxy_image = proxy_image
        self.network = f"lab-{run_id}"
        # `labels` go on every container and network too: a test session's id, so its own clean-up (or a
        # reaper such as testcontainers' Ryuk) finds what its runs made.
        self.labels = {**(labels or {}), LABEL: "1", RUN_LABEL: run_id}

    # -- names --------------------------------------------------------------------------------------
    def _container(self, inst: Instance) -> str:
        return f"lab-{self.run_id}-{inst.name}"

    @property
    def _proxy(self) -> str:
        return f"lab-{self.run_id}-proxy"

    # -- lifecycle ----------------------------------------------------------------------------------
    @engine_errors
    def preflight(self, images: Sequence[str] | None = None) -> None:
        lab_images = {*all_images(), self.proxy_image}
        wanted = [*(all_images()[:-1] if images is None else images), self.proxy_image]
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
    def proxy_nginx_version(self) -> tuple[int, ...] | None:
        return proxy_nginx_version(self.client, self.proxy_image)

    @engine_errors
    def create_network(self) -> None:
        self.client.networks.create(self.network, driver="bridge", labels=self.labels)

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

    @engine_errors
    def start_proxy(self, config: str, port: int | None) -> ProxyEndpoints:
        if port is not None and not port_is_free(port):
            raise PortInUse(f"port {port} is in use on 127.0.0.1")
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
                raise PortInUse(f"port {port} is in use on 127.0.0.1") from None
            raise
        ports = self._published_ports(container["Id"])
        return ProxyEndpoints(
            f"http://127.0.0.1:{ports[PROXY_LISTEN]}/",
            f"http://127.0.0.1:{ports[PROXY_ADMIN]}",
            ports[PROXY_LISTEN],
        )

    def _published_ports(self, container_id: str, timeout_s: float = 5.0) -> dict[int, int]:
        deadline = time.monotonic() + timeout_s
        while True:
            info = self.api.inspect_container(container_id)
            ports = info["NetworkSettings"]["Ports"] or {}
            if all(ports.get(f"{p}/tcp") for p in (PROXY_LISTEN, PROXY_ADMIN)):
                return {p: int(ports[f"{p}/tcp"][0]["HostPort"]) for p in (PROXY_LISTEN, PROXY_ADMIN)}
            if not info["State"].get("Running") or time.monotonic() > deadline:
                raise LabError(f"the proxy did not start: {self.proxy_logs(3) or 'no output'}")
            time.sleep(0.05)

    @engine_errors
    def proxy_logs(self, lines: int = 20) -> str:
        try:
            return str(self.api.logs(self._proxy, tail=lines).decode(errors="replace")).strip()
        except docker.errors.NotFound:
            return ""

    def _exec(self, cmd: list[str]) -> tuple[int, str]:
        exec_id = self.api.exec_create(self._proxy, cmd)["Id"]
        output = self.api.exec_start(exec_id).decode(errors="replace")
        return int(self.api.exec_inspect(exec_id)["ExitCode"]), output

    @engine_errors
    def proxy_workers(self) -> int | None:
        # nginx titles every worker "nginx: worker process" (an old one adds "is shutting down"); /proc is
        # read in the container, so it works wherever the engine runs, Docker Desktop included.
        _, output = self._exec(["sh", "-c", COUNT_WORKERS])
        text = output.strip()
        return int(text) if text.isdigit() else None

    @engine_errors
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
    """Remove every container and network carrying the lab's label (and `labels`, when given).

    Never raises for one object: it tries each, then tries the networks again once their containers are
    gone, and reports what could not be removed, so a clean-up in a `finally` always finishes.
    """
    filters = {"label": [LABEL] + [f"{k}={v}" for k, v in (labels or {}).items()]}

    def attempt(what: str, remove: Callable[[], None], problems: list[str]) -> bool:
        try:
            remove()
        except docker.errors.NotFound:
            pass
        except Exception as exc:  # the next object must still be tried
            problems.append(f"{what}: {str(exc).splitlines()[0]}")
            return False
        return True

    container_problems: list[str] = []
    network_problems: list[str] = []
    try:
        containers = client.containers.list(all=True, filters=filters)
        removed_containers = sum(
            attempt(c.name, functools.partial(c.remove, force=True), container_problems) for c in containers
        )
        removed_networks = 0
        for _ in range(3):  # a network refuses removal while an endpoint is still being torn down
            network_problems = []
            networks = client.networks.list(filters=filters)
            removed_networks += sum(attempt(n.name, n.remove, network_problems) for n in networks)
            if not network_problems:
                break
            time.sleep(0.5)
    except Exception as exc:
        return Removed(0, 0, [f"Docker did not answer ({str(exc).splitlines()[0]})"])
    return Removed(removed_containers, removed_networks, container_problems + network_problems)
