"""The Docker SDK behind the lab: one connection, its errors as one-line LabErrors, labelled clean-up."""

from __future__ import annotations

import functools
import io
import os
import tarfile
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import docker
import docker.errors

from lab.engines.base import LABEL
from lab.errors import DockerUnavailable, LabError
from lab.record import Removed

P = ParamSpec("P")
R = TypeVar("R")


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def root_cause(exc: BaseException) -> str:
    """The innermost exception's first line: `[Errno 111] Connection refused`, not the five wrappers."""
    seen = [exc]
    while (nxt := seen[-1].__cause__ or seen[-1].__context__) is not None and nxt not in seen:
        seen.append(nxt)
    return first_line(seen[-1])


def unreachable(exc: BaseException) -> str:
    """Why there is no engine, in one line that names where the lab looked."""
    where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
    return f"Docker is not reachable at {where} ({root_cause(exc)}): is the engine running?"


def connect() -> docker.DockerClient:
    """A client for the local engine, or one clear line saying why there is none."""
    problem = None
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    # DockerException, or requests' ConnectionError underneath it: either way there is no engine to use.
    except Exception as exc:
        problem = unreachable(exc)
    if problem is not None:  # outside the except: one line, not a chain
        raise DockerUnavailable(problem)
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


def tar_one(path: str, text: str) -> bytes:
    data = text.encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(path.lstrip("/").rsplit("/", 1)[-1])
        info.size = len(data)
        info.mode = 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def first_error_line(output: str) -> str:
    for line in output.splitlines():
        if "[emerg]" in line or "[alert]" in line:
            return line.split("] ", 1)[-1].split(": ", 1)[-1].strip()
    return output.strip().splitlines()[-1] if output.strip() else "nginx -t failed"


def remove_labelled(client: docker.DockerClient, labels: Mapping[str, str] | None = None) -> Removed:
    """Remove every Swarm service, container and network carrying the lab's label (and `labels`, when
    given): services first, so Swarm does not start a task again; then every container, a service's task
    too (forced: a clean-up does not wait out a stop grace period); then the networks.

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
    service_problems: list[str] = []
    try:
        removed_services = 0
        if _is_manager(client):
            services = client.services.list(filters=filters)
            removed_services = sum(attempt(s.name, s.remove, service_problems) for s in services)
        # Sparse: the list as the engine gave it. A full list inspects each container after listing it, and
        # one that went meanwhile (a reaper's --rm, another run's teardown) failed the whole list.
        containers = client.containers.list(all=True, filters=filters, sparse=True)
        # In parallel: each forced removal is a round trip of a few hundred milliseconds in the engine, and
        # a run's teardown is time every run pays.
        with ThreadPoolExecutor(max_workers=max(1, min(8, len(containers)))) as pool:
            removals = [
                pool.submit(
                    attempt, container_name(c), functools.partial(c.remove, force=True), container_problems
                )
                for c in containers
            ]
            removed_containers = sum(f.result() for f in removals)
        swarm = removed_services > 0
        removed_networks, network_problems = _remove_networks(client, filters, attempt, swarm=swarm)
        network_problems = [phantom_endpoint(client, problem) for problem in network_problems]
    except Exception as exc:
        return Removed(0, 0, [f"Docker did not answer ({str(exc).splitlines()[0]})"])
    left = service_problems + container_problems + network_problems
    return Removed(removed_containers, removed_networks, left, removed_services)


def _remove_networks(
    client: docker.DockerClient,
    filters: dict[str, Any],
    attempt: Callable[[str, Callable[[], None], list[str]], bool],
    *,
    swarm: bool,
) -> tuple[int, list[str]]:
    """Remove the labelled networks, and return once the engine lists none of them: how many were
    removed, and what could not be.

    A network refuses removal while an endpoint is still being torn down; an overlay's endpoints (a
    removed service's tasks) take longer than a bridge's. And a swarm's overlay is removed from the
    cluster at once but from this node's list a moment later (a swarm run's clean-up took 0.66 and
    0.68 s with this wait, 0.48 s without): a run that ended meanwhile left it listed, and a leftover
    check saw it (its name, then its ID, which the engine then said it did not know, with a 500). So a
    network counts as gone when the list no longer has it."""
    limit = 10.0 if swarm else 1.5
    deadline = time.monotonic() + limit
    removed: set[str] = set()
    while True:
        problems: list[str] = []
        listed = client.networks.list(filters=filters)
        just_removed = False
        for network in listed:
            if network.id not in removed and attempt(network.name, network.remove, problems):
                removed.add(network.id)
                just_removed = True
        if not listed or time.monotonic() > deadline:
            break
        # A bridge is off the list once its removal has answered: look again at once (a pause here was
        # 0.1 s of every run's tear-down, which takes 0.6 to 0.8 s in all). A swarm's overlay lingers
        # about 0.2 s: polled every 50 ms. A refusal (endpoints still going) is tried again after 0.5 s.
        if problems:
            time.sleep(0.5)
        elif not just_removed:
            time.sleep(0.05)
    lingering = [n.name for n in listed if n.id in removed]
    problems += [f"{name}: removed, but still listed by the engine {limit:g} s later" for name in lingering]
    return len(removed), problems


PHANTOM = "has active endpoints"


def phantom_endpoint(client: docker.DockerClient, problem: str) -> str:
    """A network Docker refuses to remove for an endpoint that no container holds any more, said so.

    Docker up to 28.0 keeps a count of each network's endpoints beside the endpoints themselves, and two
    endpoints deleted at the same moment (instances stopping together) can lose one decrement: the count
    stays at 1 with no endpoint left, and only a restart of the daemon repairs it (moby/moby#42119, fixed
    in 28.1 by counting the live endpoints). Seen once here, in one of two integration suites run two
    tests side by side on 2 cores (20.10.24); restarted, the daemon logged "Fixing inconsistent
    endpoint_cnt for network lab-d042bd. Expected=0, Actual=1"."""
    name = problem.split(":", 1)[0]
    if PHANTOM not in problem:
        return problem
    try:
        attrs = client.networks.get(name).attrs
    except Exception:  # it went meanwhile, or the engine cannot say: the engine's own words stand
        return problem
    # Only a local network's containers are all listed here: a swarm overlay's on other nodes are not.
    if attrs.get("Containers") or attrs.get("Scope", "local") != "local":
        return problem
    return (
        f"{name}: Docker counts an endpoint on it that no container holds (a Docker bug before 28.1, "
        "moby/moby#42119); restarting the Docker daemon lets it go"
    )


def container_name(container: Any) -> str:
    """A container's name, from a sparse list (`Names`) or an inspection (`Name`)."""
    names = container.attrs.get("Names") or [container.attrs.get("Name") or container.short_id]
    return str(names[0]).lstrip("/")


def _is_manager(client: docker.DockerClient) -> bool:
    """Services can only be listed on a swarm manager; elsewhere there are none of the lab's."""
    try:
        swarm = client.info().get("Swarm") or {}
    except Exception:  # an engine that cannot say is no manager of the lab's services
        return False
    return bool(swarm.get("ControlAvailable"))
