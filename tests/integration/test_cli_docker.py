"""The command line against a real engine: --json output, Ctrl-C clean-up, `lab clean`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker
from conftest import labelled_objects, run_lab


def lab(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "lab", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )  # type: ignore[call-overload]


def test_run_json_prints_one_object_with_the_required_keys(tmp_path: Path) -> None:
    args = ["run", "blue-green", "--fleet", "2", "--baseline", "1", "--settle", "1", "--json"]
    proc = run_lab([*args, "--out", str(tmp_path)], timeout=120)
    stdout, stderr = proc.stdout, proc.stderr
    assert proc.returncode == 0, stderr
    result = json.loads(stdout)
    for key in (
        "strategy",
        "requests_sent",
        "requests_failed",
        "failures_by_class",
        "downtime_ms",
        "total_downtime_ms",
        "mixed_window_ms",
        "versions_seen",
        "flip_flops",
        "deploy_duration_s",
        "probe_rate_target",
        "probe_rate_achieved",
        "late_ticks",
    ):
        assert key in result, key
    assert result["strategy"] == "blue-green"
    folder = Path(result["output"])
    assert (folder / "journal.json").is_file() and (folder / "samples.csv").is_file()
    journal = json.loads((folder / "journal.json").read_text())
    routes = [step for step in journal["steps"] if step["kind"] == "Route"]
    assert len(routes) >= 2  # blue/green: both fleets, then green alone
    assert len(list((folder / "configs").glob("*.conf"))) == 1 + len(routes)  # the initial one, then each


def test_ctrl_c_mid_run_removes_everything(docker_client: docker.DockerClient, tmp_path: Path) -> None:
    others = labelled_objects(docker_client)  # this session's only: not another xdist worker's run
    proc = lab(
        "run",
        "blue-green",
        "--fleet",
        "2",
        "-p",
        "rollback_window_s=30",
        "--out",
        str(tmp_path),
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 90
    for line in proc.stderr:  # wait until the deployment is under way: containers exist
        if "pause" in line or time.monotonic() > deadline:
            break
    # Only this run's objects: a run of someone else's on the same engine is not this test's business.
    ours = labelled_objects(docker_client) - others
    assert ours, "nothing was running yet"
    proc.send_signal(signal.SIGINT)
    _, rest = proc.communicate(timeout=60)
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest
    assert not labelled_objects(docker_client) - others
