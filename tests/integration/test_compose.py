"""The compose files bring up a topology that answers, and blue/green switches by config copy and reload."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest
from conftest import Project, compose_command, wait_for_200

from lab.compose_files import COMPOSE_FILE, LIVE_CONFIG, MOUNT, ROOT, topologies
from lab.engines.docker.proxy import worker_pids_script

TOPOLOGIES = {t.folder: t for t in topologies()}


def answers(url: str, count: int) -> list[httpx.Response]:
    with httpx.Client(timeout=2.0) as client:
        return [client.get(url, headers={"Connection": "close"}) for _ in range(count)]


def workers(project: Project) -> set[str]:
    """The PIDs of the proxy's nginx workers, old ones shutting down included."""
    listing = f"{worker_pids_script()}; true"  # the lab's own listing, in the compose proxy
    return set(project("exec", "-T", "proxy", "sh", "-c", listing).stdout.split())


@pytest.mark.parametrize("folder", sorted(TOPOLOGIES))
def test_compose_file_is_valid_for_the_installed_compose(folder: str) -> None:
    done = subprocess.run(
        [*compose_command(), "-f", str(ROOT / folder / COMPOSE_FILE), "config", "--services"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    names = {inst.name for inst in TOPOLOGIES[folder].instances}
    assert set(done.stdout.split()) == names | {"proxy"}


@pytest.mark.parametrize("project", ["baseline"], indirect=True)
def test_baseline_answers_from_every_v1_instance(project: Project) -> None:
    project("up", "-d")
    first = wait_for_200(project.url, timeout_s=30)
    assert first.headers["X-App-Version"] == "v1"
    seen = answers(project.url, 12)
    assert [r.status_code for r in seen] == [200] * 12
    assert {r.headers["X-App-Version"] for r in seen} == {"v1"}
    # Round robin over the whole fleet: every instance the config names answers.
    assert {r.headers["X-Instance"] for r in seen} == {i.name for i in TOPOLOGIES["baseline"].instances}


@pytest.mark.parametrize("project", ["blue-green"], indirect=True)
def test_blue_green_switches_to_green_by_copy_and_reload(project: Project) -> None:
    project("up", "-d")
    assert wait_for_200(project.url, timeout_s=30).headers["X-App-Version"] == "v1"
    before = answers(project.url, 9)
    assert {r.headers["X-App-Version"] for r in before} == {"v1"}

    old_workers = workers(project)
    assert old_workers
    # The documented switch, word for word but for -p and the port.
    project("exec", "-T", "proxy", "cp", f"{MOUNT}/nginx-green.conf", LIVE_CONFIG)
    project("exec", "-T", "proxy", "nginx", "-s", "reload")

    # Green answers as soon as the new worker does; the old ones, told to go only 100 ms after it starts
    # (nginx's master), still take new connections meanwhile: a blue answer after the first green one
    # failed this test once. From when they have exited, only green answers.
    deadline = time.monotonic() + 10
    while answers(project.url, 1)[0].headers.get("X-App-Version") != "v2" or workers(project) & old_workers:
        assert time.monotonic() < deadline, "still not v2 alone 10 s after the reload"
        time.sleep(0.05)
    after = answers(project.url, 9)
    assert [r.status_code for r in after] == [200] * 9
    assert {r.headers["X-App-Version"] for r in after} == {"v2"}
    assert {r.headers["X-Instance"] for r in after} == {
        i.name for i in TOPOLOGIES["blue-green"].instances if i.version == "v2"
    }
