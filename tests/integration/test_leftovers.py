"""Nothing outlives a run, even a killed one, on either engine; and runs started together do not collide."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
import pytest
from conftest import labelled_objects

from lab.engines.base import owner_labels
from lab.engines.docker.client import container_name


def start(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lab", *args, "--out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_id_of(client: docker.DockerClient, before: set[str], timeout_s: float = 60) -> str:
    """The run a started lab made: the run label of the first new object carrying one."""
    owner = [f"{k}={v}" for k, v in owner_labels().items()]  # not another session's run
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        proxies = client.containers.list(
            all=True, filters={"label": ["deploylab.role=proxy", *owner]}, sparse=True
        )
        for container in proxies:
            if container_name(container) not in before:
                return str(container.attrs["Labels"]["deploylab.run"])
        time.sleep(0.2)
    raise AssertionError("no proxy of a new run appeared")


# The swarm's: serial, as every test of test_swarm.py, and for its reasons.
SWARM = pytest.param("swarm", marks=[pytest.mark.xdist_group("swarm"), pytest.mark.serial])


@pytest.mark.parametrize("engine", ["docker", SWARM])
def test_kill_9_leaves_nothing_behind_within_30_s(
    engine: str, request: pytest.FixtureRequest, docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    if engine == "swarm":
        request.getfixturevalue("swarm")
    before = labelled_objects(docker_client)
    proc = start(["run", "blue-green", "--fleet", "2", "--engine", engine, "--no-live"], tmp_path)
    try:
        run_id = run_id_of(docker_client, before)
        deadline = time.monotonic() + 90  # until the run is well under way: v2 started beside v1
        while len(labelled_objects(docker_client, run_id)) < 6 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert labelled_objects(docker_client, run_id), "the run made nothing to kill"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    killed = time.monotonic()
    while labelled_objects(docker_client, run_id) and time.monotonic() - killed < 30:
        time.sleep(0.5)
    left = labelled_objects(docker_client, run_id)
    assert not left, f"{time.monotonic() - killed:.1f} s after kill -9: {sorted(left)}"


def test_three_runs_started_together_without_a_port_all_complete(tmp_path: Path) -> None:
    args = ["run", "red-black", "--fleet", "1", "--baseline", "1", "--settle", "1", "--json", "--no-live"]
    procs = [start(args, tmp_path / str(n)) for n in range(3)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-2000:]
        results.append(json.loads(out))
    assert [r["status"] for r in results] == ["completed"] * 3
    urls = [json.loads((Path(r["output"]) / "journal.json").read_text())["probe"]["url"] for r in results]
    assert len(set(urls)) == 3, f"runs shared a proxy port: {urls}"
