"""Integration tests run real containers. Each test must leave nothing labelled by the lab behind."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator

import docker
import docker.errors
import httpx
import pytest

# The reaper image (ryuk) cannot be pulled where there is no registry; our own fixtures clean up instead.
os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
# The engine may be shared (pytest-xdist's workers, your own runs on a laptop, another CI job): each session
# owns what its runs make (DEPLOYLAB_OWNER, read by the lab in this process and by every `lab` it starts),
# so "nothing left behind" and `lab clean` in one session never see, nor remove, anyone else's objects.
os.environ["DEPLOYLAB_OWNER"] = f"pytest-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}"

from lab.compose_files import COMPOSE_FILE, PORT_VARIABLE, ROOT  # noqa: E402
from lab.engines import LABEL  # noqa: E402
from lab.engines.base import owner_labels  # noqa: E402
from lab.engines.docker.client import connect, container_name  # noqa: E402
from lab.engines.docker.local import DockerEngine  # noqa: E402
from lab.engines.names import all_images  # noqa: E402
from lab.options import RunOptions  # noqa: E402
from lab.pipeline import run_once  # noqa: E402
from lab.ports import port_is_free  # noqa: E402
from lab.record import RunRecord  # noqa: E402
from lab.targets.fleet.target import FleetTarget  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """Tests of one xdist_group share state (the swarm a session makes and leaves) and must run on one
    worker. On pytest 9.2 pytest-xdist's loadgroup silently stops grouping (pytest-xdist#1386): say so
    rather than let two workers make and leave the same swarm under each other."""
    if config.getoption("dist", "no") == "loadgroup" and pytest.version_tuple[:2] >= (9, 2):
        raise pytest.UsageError(
            f"pytest {pytest.__version__}: pytest-xdist's --dist loadgroup does not group tests on it "
            "(pytest-xdist#1386); install the dev extra's pytest (pip install -e '.[dev]') or run without -n"
        )


def run(strategy: str, **overrides: object) -> tuple[RunRecord, dict]:
    """One run of the lab's fleet through the pipeline, no folder written: its record and figures."""
    settings: dict = {"fleet_size": 4, "rate": 200.0, "baseline_s": 1.0, "settle_s": 1.0}
    settings.update(overrides)
    options = RunOptions(strategy=strategy, **settings)
    run_id = secrets.token_hex(3)
    done = run_once(options, FleetTarget(options, DockerEngine(run_id)), out_dir=None, run_id=run_id)
    return done.record, done.analysis.to_dict()


def run_lab(
    args: list[str],
    *,
    timeout: float,
    env: dict[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    module: str = "lab",
) -> subprocess.CompletedProcess[str]:
    """`python -m <module> *args` to its end. Past `timeout` it gets SIGINT, the lab's Ctrl-C, so it
    removes what it created (pytest ends its session cleanly); a kill only if it is still there 60 s
    later. `subprocess.run(timeout=)` kills at once, which orphans the run's containers."""
    cmd = [sys.executable, "-m", module, *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cwd)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stdout, stderr, how = _interrupt(proc)
        pytest.fail(
            f"{' '.join(cmd)}\nstill running after {timeout:g} s: {how} (exit {proc.returncode})\n"
            f"--- stdout (end)\n{stdout[-4000:]}\n--- stderr (end)\n{stderr[-4000:]}",
            pytrace=False,
        )
    except BaseException as exc:  # this session interrupted: the child still cleans up
        # A Ctrl-C at the terminal reached the child too; a second one could cut its clean-up short.
        _interrupt(proc, signal_it=not isinstance(exc, KeyboardInterrupt))
        raise
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _interrupt(
    proc: subprocess.Popen[str], grace_s: float = 60.0, *, signal_it: bool = True
) -> tuple[str, str, str]:
    """SIGINT, then SIGKILL past `grace_s`; the whole output (communicate keeps what it read before)."""
    how = "interrupted (SIGINT)"
    if signal_it:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
    try:
        stdout, stderr = proc.communicate(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
        how = f"killed: SIGINT did not end it within {grace_s:g} s"
    return stdout or "", stderr or "", how


def wait_for_200(url: str, timeout_s: float = 15.0) -> httpx.Response:
    """Poll `url` until it answers 200 (a container still booting refuses or answers 503)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            response = httpx.get(url, timeout=1.0)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{url} did not answer 200 within {timeout_s} s")
        time.sleep(0.05)


# The longest items first (measured 2 December 2026, alone): the workshop (about 200 s; 95 s in two
# lanes on 3 December), the swarm tests (about 160 s; serial, so in a session of their own under make
# test), the plugin's docs example (66 s).
# Side by side on two workers (make integration JOBS=2), one long item started last would leave the other
# worker idle for its length.
LONGEST_FIRST = ("test_workshop.py::", "test_swarm.py::", "test_plugin.py::test_the_docs_example")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.docker)

    def rank(item: pytest.Item) -> int:
        return next((i for i, key in enumerate(LONGEST_FIRST) if key in item.nodeid), len(LONGEST_FIRST))

    items.sort(key=rank)  # stable: within a rank, the order of collection


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = connect()  # fails with one clear line when the engine is not running
    missing = [name for name in all_images() if not client.images.list(name=name)]
    if missing:
        pytest.fail(f"images missing ({', '.join(missing)}): run `make images` first")
    return client


def _labelled(client: docker.DockerClient) -> set[str]:
    return labelled_objects(client)


@pytest.fixture(autouse=True)
def nothing_left_behind(docker_client: docker.DockerClient) -> Iterator[None]:
    # Only what appeared during the test counts: a lab run of someone else's on the same engine is theirs.
    before = _labelled(docker_client)
    yield
    left = _labelled(docker_client) - before
    for name in sorted(left):  # remove the leak, so it does not fail every later test too
        with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
            docker_client.services.get(name).remove()
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(name).remove(force=True)
    for name in sorted(left):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.networks.get(name).remove()
    assert not left, f"the test left lab objects behind: {sorted(left)}"


# -- the compose/ projects, for the tests that bring one up ---------------------------------------------


def compose_command() -> list[str]:
    """Compose v2 (`docker compose`) where it is installed, else v1 (`docker-compose`)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.skip("neither `docker compose` nor `docker-compose` is installed")


def free_port() -> int:
    # A range of 20 per xdist worker: two workers that both saw 18088 free raced to bind it.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = 18088 + 20 * (int(worker) if worker.isdigit() else 0)
    for port in range(first, first + 20):
        if port_is_free(port):
            return port
    raise AssertionError(f"no free port from {first} to {first + 19}")


class Project:
    def __init__(self, folder: str) -> None:
        self.name = f"deploylab-test-{secrets.token_hex(3)}"
        self.port = free_port()
        self.base = [*compose_command(), "-p", self.name, "-f", str(ROOT / folder / COMPOSE_FILE)]
        self.url = f"http://127.0.0.1:{self.port}/"

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, PORT_VARIABLE: str(self.port)}
        done = subprocess.run([*self.base, *args], capture_output=True, text=True, env=env, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stderr.strip()[-600:]}"
        return done


@pytest.fixture
def project(request: pytest.FixtureRequest, docker_client: docker.DockerClient) -> Iterator[Project]:
    proj = Project(request.param)
    try:
        yield proj
    finally:
        proj("down", "-v", "--remove-orphans")
        label = {"label": f"com.docker.compose.project={proj.name}"}
        left = [
            container_name(c) for c in docker_client.containers.list(all=True, filters=label, sparse=True)
        ]
        left += [n.name for n in docker_client.networks.list(filters=label)]
        assert not left, f"compose down left {left}"


# -- a swarm, for the tests that need one -------------------------------------------------------------


@pytest.fixture(scope="session")
def swarm(docker_client: docker.DockerClient) -> Iterator[None]:
    """A single-node swarm: this engine's, if it is a manager already; else one made for the session and
    left again at its end, so the engine is as the tests found it."""
    state = (docker_client.info().get("Swarm") or {}).get("LocalNodeState", "inactive")
    made = state == "inactive"
    # `swarm init` makes the docker_gwbridge network, and `swarm leave` keeps it: ours to remove too.
    had_gwbridge = _gwbridge(docker_client) is not None
    if made:
        docker_client.swarm.init(advertise_addr="127.0.0.1", listen_addr="127.0.0.1:2377")
    elif not (docker_client.info().get("Swarm") or {}).get("ControlAvailable"):
        pytest.skip(f"this engine is in a swarm ({state}) but no manager of it: no services can be run")
    try:
        yield
    finally:
        if made:
            docker_client.swarm.leave(force=True)
            if not had_gwbridge:
                _remove_gwbridge(docker_client)


def _gwbridge(client: docker.DockerClient) -> docker.models.networks.Network | None:
    """The docker_gwbridge network, if there is one (the engine's `name` filter also matches parts)."""
    return next(
        (n for n in client.networks.list(names=["docker_gwbridge"]) if n.name == "docker_gwbridge"), None
    )


def _remove_gwbridge(client: docker.DockerClient) -> None:
    """docker_gwbridge goes once the swarm's endpoints on it have (a moment after leaving); a network that
    is still in use after 5 s is left, and said so."""
    for _ in range(10):
        network = _gwbridge(client)
        if network is None:
            return
        try:
            network.remove()
            return
        except docker.errors.NotFound:
            return
        except docker.errors.APIError:
            time.sleep(0.5)
    warnings.warn(
        "docker_gwbridge, made by this session's swarm init, is still in use: left in place", stacklevel=1
    )


def labelled_objects(client: docker.DockerClient, run_id: str | None = None) -> set[str]:
    """Every container, network and Swarm service carrying the lab's label (and the run's id), of this
    session's owner when it has one."""
    labels = [LABEL] + ([f"deploylab.run={run_id}"] if run_id else [])
    labels += [f"{k}={v}" for k, v in owner_labels().items()]
    # Sparse: a container that goes between the list and its inspection (a reaper's --rm) fails no test.
    found = {
        container_name(c) for c in client.containers.list(all=True, filters={"label": labels}, sparse=True)
    }
    found |= {n.name for n in client.networks.list(filters={"label": labels})}
    if (client.info().get("Swarm") or {}).get("ControlAvailable"):
        found |= {s.name for s in client.services.list(filters={"label": labels})}
    return found
