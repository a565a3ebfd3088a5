"""The lab's strategies on Docker Swarm, Swarm's own rolling update watched, and images from a registry.

A single-node swarm (the `swarm` fixture makes one when the engine is in none, and leaves it afterwards).
Each run's objects are services, containers and an overlay network carrying the run's label; the autouse
fixture checks that none is left."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
from conftest import run_lab

# One session makes the swarm and leaves it at its end, and no other test runs meanwhile (serial: make
# test runs them after the others, one at a time). Beside the swarm's work, two runs on bridge networks
# broke: one lost its DNS for about a second as the swarm was left (its health check failed, then `nginx
# -t` of the rollback did not resolve v1), and one network kept an endpoint count no container held
# (moby/moby#42119), both in a suite run two tests side by side. The group keeps them on one worker
# wherever they do run side by side with others (JOBS=N with `-m docker`).
pytestmark = [pytest.mark.usefixtures("swarm"), pytest.mark.xdist_group("swarm"), pytest.mark.serial]
FAST = ["--fleet", "2", "--baseline", "1", "--settle", "1", "--json", "--no-live"]


def lab_json(args: list[str], tmp_path: Path, timeout: float = 240, code: int = 0) -> dict[str, Any]:
    done = run_lab([*args, "--out", str(tmp_path)], timeout=timeout)
    assert done.returncode == code, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_blue_green_on_swarm_loses_nothing_and_sees_both_versions(tmp_path: Path) -> None:
    result = lab_json(["run", "blue-green", "--engine", "swarm", *FAST], tmp_path)
    assert result["status"] == "completed" and result["requests_failed"] == 0
    assert set(result["versions_seen"]) == {"v1", "v2"}
    journal = json.loads((Path(result["output"]) / "journal.json").read_text())
    assert journal["input"]["probe"]["clients"] == 32


def test_in_place_on_swarm_is_downtime(tmp_path: Path) -> None:
    result = lab_json(["run", "in-place", "--engine", "swarm", *FAST], tmp_path)
    assert result["status"] == "completed" and result["downtime_ms"] > 0
    assert result["clients"]["saw_failure"] > 0


def test_compare_on_swarm_runs_each_strategy_given(tmp_path: Path) -> None:
    done = run_lab(
        [
            "compare",
            "red-black",
            "canary:percents=50:bake_s=1",
            "--engine",
            "swarm",
            *FAST,
            "--out",
            str(tmp_path),
        ],
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout)
    assert [r["strategy"] for r in rows] == ["red-black", "canary:percents=50:bake_s=1"]
    assert all(r["status"] == "completed" and r["requests_failed"] == 0 for r in rows)


@pytest.mark.parametrize("order", ["start-first", "stop-first"])
def test_swarms_own_rolling_update_is_watched_step_by_step(order: str, tmp_path: Path) -> None:
    args = ["run", "swarm-rolling", "--engine", "swarm", "-p", f"order={order}", "-p", "monitor_s=1", *FAST]
    result = lab_json(args, tmp_path)
    assert result["status"] == "completed" and set(result["versions_seen"]) == {"v1", "v2"}
    journal = json.loads((Path(result["output"]) / "journal.json").read_text())
    steps = [s["detail"] for s in journal["steps"]]
    assert steps[0].startswith(f"service update to v2 ({order}")
    assert any(s.startswith("update updating") for s in steps)
    assert steps[-1].startswith("update completed")
    assert any("(slot 1, v2) running" in s for s in steps)  # a task of v2 came up, Swarm's own doing
    if order == "stop-first":  # one task of two stops before its successor runs: capacity 1
        assert result["lowest_capacity"] == 1


@pytest.mark.parametrize(
    "release",
    [
        # Crashes at start: Swarm sees the task fail.
        ["--scenario", "crash-at-start", "-p", "monitor_s=2"],
        # 20% of GET / answered 500: Swarm sees it only through a healthcheck that asks GET /, unhealthy at
        # the first failed check; a 10 s monitor makes 40 checks of the two tasks, all of them passing
        # (0.8^40, about 1 in 10,000) the only way the update could complete.
        ["--scenario", "errors", "-p", "health_path=/", "-p", "health_retries=1", "-p", "monitor_s=10"],
    ],
    ids=["crash-at-start", "errors"],
)
def test_a_bad_release_is_rolled_back_by_swarm_and_the_run_says_so(
    release: list[str], tmp_path: Path
) -> None:
    args = ["run", "swarm-rolling", "--engine", "swarm", "-p", "failure_action=rollback", *release, *FAST]
    result = lab_json(args, tmp_path, code=4)
    assert result["status"] == "rolled_back"
    journal = json.loads((Path(result["output"]) / "journal.json").read_text())
    kinds = [(s["kind"], s["detail"]) for s in journal["steps"]]
    assert any(kind == "Swarm" and detail.startswith("update rollback_completed") for kind, detail in kinds)
    assert result["rollback"] is not None and result["rollback"]["traffic_back_s"] is not None
    # Swarm's verdict is the first rollback state seen: rollback_started with its reason, or (measured: a
    # one-task rollback that began and ended between two polls) rollback_completed, saying so.
    (verdict,) = [s for s in journal["steps"] if s["kind"] == "Swarm" and s["result"] is False]
    if verdict["detail"] == "update rollback_started":
        assert "rolled back due to failure" in verdict["error"]
    else:
        assert verdict["detail"].startswith("update rollback_completed")
        assert "its start was not seen" in verdict["error"]


def test_an_engine_that_is_no_manager_is_one_line(tmp_path: Path, docker_client: docker.DockerClient) -> None:
    # Simulated: swarm-rolling asked of the docker engine is refused before anything starts.
    done = run_lab(["run", "swarm-rolling", "--fleet", "2", "--out", str(tmp_path)], timeout=60)
    assert done.returncode == 2
    assert (
        done.stderr.strip() == "lab: error: swarm-rolling is swarm's own update: run it with --engine swarm"
    )


# -- images from a registry, for a swarm of several nodes ------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[str]:
    """Debian's docker-registry on 127.0.0.1 (make system-deps installs it), storing into tmp_path."""
    program = shutil.which("docker-registry") or "/usr/bin/docker-registry"
    if not Path(program).exists():
        pytest.fail("docker-registry is not installed: make system-deps installs it")
    port = free_port()
    config = tmp_path / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {tmp_path / 'data'}\nhttp:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        [program, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, (
                    proc.stderr.read() if proc.stderr else ""
                )
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_images_pushed_to_a_registry_run_by_its_names(
    registry: str, tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    pushed = run_lab(["images", "push", registry], timeout=300)
    assert pushed.returncode == 0, pushed.stderr[-2000:]
    assert f"pushed {registry}/deploylab/app:v1 (sha256:" in pushed.stdout
    result = lab_json(["run", "red-black", "--engine", "swarm", "--registry", registry, *FAST], tmp_path)
    assert result["status"] == "completed" and set(result["versions_seen"]) == {"v1", "v2"}
    journal = json.loads((Path(result["output"]) / "journal.json").read_text())
    assert journal["status"] == "completed"
    # The registry's names (`images push` tags each image so, as `docker push` needs) go with the
    # registry: the test's engine keeps only the lab's own names.
    tags = [t for image in docker_client.images.list() for t in image.tags if t.startswith(f"{registry}/")]
    assert f"{registry}/deploylab/app:v1" in tags
    for tag in tags:
        with __import__("contextlib").suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(tag)
    bad = run_lab(["run", "red-black", "--registry", registry, "--out", str(tmp_path)], timeout=60)
    assert bad.returncode == 2 and "--registry" in bad.stderr
