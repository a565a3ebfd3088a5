"""The proxy half: nginx in a container on the run's network, published on 127.0.0.1. Every engine uses
it; on Swarm it joins the run's attachable overlay network."""

from __future__ import annotations

import contextlib
import re
import shlex
import time
from collections.abc import Mapping

import docker
import docker.errors

from lab.engines.base import Applied, ProxyEndpoints
from lab.engines.docker.client import engine_errors, first_error_line, tar_one
from lab.engines.docker.images import proxy_nginx_version
from lab.errors import ConfigRejected, LabError, PortInUse
from lab.ports import port_is_free

PROXY_LISTEN = 80
PROXY_ADMIN = 8081
CONFIG_PATH = "/etc/nginx/nginx.conf"
CANDIDATE_PATH = "/etc/nginx/lab-candidate.conf"
WORKER_TITLE = "nginx: worker process"  # nginx's title for a worker; an old one adds "is shutting down"
PROXY_MEMORY = "128m"
DNS_CHECKS = 3  # nginx -t of one config, at most, while an instance name does not resolve
DNS_RECHECK_S = 0.3
OLD_WORKERS = re.compile(r"^old workers: (\d+) before, (\d+) left$")  # a reload's last line, when it waited
NEW_WORKER_S = 2.0  # for the new config's first worker: none means the master did not take the reload
# A config rides in the exec's command line up to this size (Linux takes 128 KiB per argument; a fleet
# of 16 per version renders about 5 KB); a larger one is uploaded first.
INLINE_CONFIG_MAX = 100_000


def worker_pids_script(title: str = WORKER_TITLE) -> str:
    """A shell loop printing the PID of every nginx worker, old ones shutting down included (their
    title goes on with "is shutting down"); it prints nothing, and exits 1, when there is none."""
    return f"for p in /proc/[0-9]*; do grep -qa '^{title}' $p/cmdline 2>/dev/null && echo ${{p#/proc/}}; done"


def reload_script(old_workers_s: float, title: str = WORKER_TITLE, config: str | None = None) -> str:
    """Write `config` as the candidate (when given; else it was uploaded), check it, make it live with a
    graceful reload, check that a worker of the new config appeared and, for up to `old_workers_s` (when
    more than 0), wait until every nginx worker that ran before the reload has exited, then say how many
    ran before and how many are left.

    One exec for all of it: an exec is three round trips to the engine and a process start (about 70 ms
    here), and so is an upload; carrying the config in the script saves one. The workers are told apart
    by their PIDs, taken before the reload: counting titles after it cannot tell the old workers from the
    new ones the master has not started yet. A PID counts as long as its process still has the worker's
    title (a zombie's /proc/PID/cmdline is empty). `nginx -s reload` only signals the master and exits 0
    even when the master then fails to load the config (a name that stopped resolving): no old worker
    would be told to go, so a worker of the new config must appear within NEW_WORKER_S first. Exit 3: the
    candidate was rejected; 4: it could not be written or the reload failed; 5: the master did not take
    it."""
    titled = f"grep -qa '^{title}'"
    workers = worker_pids_script(title)
    write = ""
    if config is not None:  # an empty one too: written empty, so an earlier candidate cannot pass for it
        write = f"{{ printf '%s' {shlex.quote(config)} > {CANDIDATE_PATH}; }} 2>&1 || exit 4; "
    script = (
        f"{write}old=$({workers}); export old; "
        f"nginx -t -q -e stderr -c {CANDIDATE_PATH} 2>&1 || exit 3; "
        f"cp {CANDIDATE_PATH} {CONFIG_PATH} && nginx -s reload 2>&1 || exit 4"
    )
    new = f'until [ -n "$({workers} | grep -vxF "$old")" ]; do sleep 0.02; done'
    # Without a wait for the old workers too: a refused reload must not pass for one that took.
    script = f"{script}; timeout {NEW_WORKER_S:.2f} sh -c {shlex.quote(new)} || exit 5"
    if old_workers_s <= 0:
        return script
    alive = f"for p in $old; do {titled} /proc/$p/cmdline 2>/dev/null && echo $p; done"
    gone = f'while [ -n "$({alive})" ]; do sleep 0.02; done'
    return (
        f"{script}; timeout {max(old_workers_s, 0.05):.2f} sh -c {shlex.quote(gone)}; "
        f'echo "old workers: $(echo "$old" | grep -c .) before, $({alive} | wc -l) left"'
    )


class DockerProxy:
    def __init__(
        self,
        client: docker.DockerClient,
        run_id: str,
        network: str,
        labels: Mapping[str, str],
        image: str,
        *,
        routable: bool = False,
    ):
        self.client, self.api = client, client.api
        self.network, self.labels, self.image = network, dict(labels), image
        # Whether the host may reach the proxy at its address on `network`: a bridge on this engine's
        # host, yes (when the lab runs there: the caller still checks); a swarm's overlay, never.
        self.routable = routable
        self.name = f"lab-{run_id}-proxy"

    @engine_errors
    def nginx_version(self) -> tuple[int, ...] | None:
        return proxy_nginx_version(self.client, self.image)

    @engine_errors
    def start(self, config: str, port: int | None, prefer: int | None = None) -> ProxyEndpoints:
        """`port` must be free (PortInUse otherwise); without one, `prefer` when it is free at the moment
        of binding, else any free port. A check before binding alone cannot do: two runs started in the
        same second both saw 8080 free, and the second failed to bind it."""
        if port is None and prefer is not None:
            try:
                return self.start(config, prefer)
            except PortInUse:
                pass  # taken, before our check or between it and the bind: any free port will do
        if port is not None and not port_is_free(port):
            raise PortInUse(f"port {port} is in use on 127.0.0.1")
        host_config = self.api.create_host_config(
            network_mode=self.network,
            mem_limit=PROXY_MEMORY,
            port_bindings={PROXY_LISTEN: ("127.0.0.1", port), PROXY_ADMIN: ("127.0.0.1", None)},
        )
        container = self.api.create_container(
            self.image,
            name=self.name,
            hostname="proxy",
            command=["nginx", "-g", "daemon off;"],
            ports=[PROXY_LISTEN, PROXY_ADMIN],
            labels={**self.labels, "deploylab.role": "proxy"},
            host_config=host_config,
        )
        self.api.put_archive(container["Id"], "/etc/nginx", tar_one(CONFIG_PATH, config))
        try:
            self.api.start(container["Id"])
        except docker.errors.APIError as exc:
            if "allocated" in str(exc) or "in use" in str(exc):
                # The container was created but never started: it goes, so a retry can take its name.
                with contextlib.suppress(docker.errors.APIError):
                    self.api.remove_container(container["Id"], force=True)
                raise PortInUse(f"port {port} is in use on 127.0.0.1") from None
            raise
        ports, address = self._published_ports(container["Id"])
        direct = f"http://{address}" if address and self.routable else None
        return ProxyEndpoints(
            f"http://127.0.0.1:{ports[PROXY_LISTEN]}/",
            f"http://127.0.0.1:{ports[PROXY_ADMIN]}",
            ports[PROXY_LISTEN],
            direct and f"{direct}:{PROXY_LISTEN}/",
            direct and f"{direct}:{PROXY_ADMIN}",
        )

    def _published_ports(self, container_id: str, timeout_s: float = 5.0) -> tuple[dict[int, int], str]:
        """The host ports of the proxy's two listeners, and its address on the run's network ("" when
        it has none)."""
        deadline = time.monotonic() + timeout_s
        while True:
            info = self.api.inspect_container(container_id)
            ports = info["NetworkSettings"]["Ports"] or {}
            if all(ports.get(f"{p}/tcp") for p in (PROXY_LISTEN, PROXY_ADMIN)):
                network = (info["NetworkSettings"].get("Networks") or {}).get(self.network) or {}
                published = {p: int(ports[f"{p}/tcp"][0]["HostPort"]) for p in (PROXY_LISTEN, PROXY_ADMIN)}
                return published, str(network.get("IPAddress") or "")
            if not info["State"].get("Running") or time.monotonic() > deadline:
                raise LabError(f"the proxy did not start: {self.logs(3) or 'no output'}")
            time.sleep(0.05)

    @engine_errors
    def logs(self, lines: int = 20) -> str:
        try:
            return str(self.api.logs(self.name, tail=lines).decode(errors="replace")).strip()
        except docker.errors.NotFound:
            return ""

    def _exec(self, cmd: list[str]) -> tuple[int, str]:
        exec_id = self.api.exec_create(self.name, cmd)["Id"]
        output = self.api.exec_start(exec_id).decode(errors="replace")
        return int(self.api.exec_inspect(exec_id)["ExitCode"]), output

    @engine_errors
    def apply_config(self, config: str, *, old_workers_s: float = 0.0) -> Applied:
        # The candidate is checked in the proxy, where Docker's DNS resolves the instance names that
        # nginx looks up at load time. Only a config that passes becomes nginx.conf, and the reload and
        # the wait for the old workers follow in the same exec as the config itself (reload_script).
        script = reload_script(old_workers_s, config=config)
        if len(script) > INLINE_CONFIG_MAX:
            self.api.put_archive(self.name, "/etc/nginx", tar_one(CANDIDATE_PATH, config))
            script = reload_script(old_workers_s)
        for attempt in range(1, DNS_CHECKS + 1):
            code, output = self._exec(["sh", "-c", script])
            # Docker's embedded DNS has been seen to answer "no such name" for a running instance when
            # other runs churn containers on the engine (3 runs side by side, once in ~60): the same
            # check a moment later passes. A name that never resolves still fails, after DNS_CHECKS.
            if code == 3 and "host not found" in output and attempt < DNS_CHECKS:
                time.sleep(DNS_RECHECK_S)
                continue
            break
        if code == 3:
            raise ConfigRejected(f"nginx -t rejected the new config: {first_error_line(output)}")
        if code == 5:
            logs = self.logs(3).replace("\n", " | ")
            raise LabError(
                f"nginx did not take the new config: no worker of it within {NEW_WORKER_S:g} s"
                + (f" (proxy log: {logs})" if logs else "")
            )
        if code != 0:
            raise LabError(f"nginx reload failed: {first_error_line(output)}")
        if old_workers_s <= 0:
            return Applied(attempt)
        before, left = old_workers(output)
        return Applied(attempt, left, before)


def old_workers(output: str) -> tuple[int | None, int | None]:
    """How many workers ran before the reload and how many of them were left, as `reload_script` said
    last; (None, None) if it said nothing (the engine cut the exec short)."""
    lines = output.strip().splitlines()
    said = OLD_WORKERS.match(lines[-1].strip()) if lines else None
    return (int(said.group(1)), int(said.group(2))) if said else (None, None)
