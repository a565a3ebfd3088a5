"""`lab measure` on real deployments it does not drive: the compose/ topologies switched and restarted by
shell scripts, as a user's own deploy command would."""

from __future__ import annotations

import http.server
import json
import shlex
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Project, run_lab, wait_for_200

from lab.compose_files import LIVE_CONFIG, MOUNT

# What `lab run --json` prints, figures first: `lab measure --json` has the same keys, and the command's.
RUN_KEYS = {
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
    "status",
    "error",
    "notes",
    "run_id",
    "output",
}


def script(path: Path, project: Project, *lines: str) -> Path:
    """A deploy script of the user's: the project's own compose command, then `lines`."""
    compose = " ".join(shlex.quote(part) for part in project.base)
    path.write_text(
        f'#!/bin/sh\nset -e\nexport LAB_COMPOSE_PORT={project.port}\ncompose() {{ {compose} "$@"; }}\n'
        + "\n".join(lines)
        + "\n"
    )
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("project", ["blue-green"], indirect=True)
def test_a_compose_blue_green_switch_loses_nothing_and_both_versions_answer(
    project: Project, tmp_path: Path
) -> None:
    project("up", "-d")
    wait_for_200(project.url, timeout_s=30)
    switch = script(
        tmp_path / "switch.sh",
        project,
        f"compose exec -T proxy cp {MOUNT}/nginx-green.conf {LIVE_CONFIG}",
        "compose exec -T proxy nginx -s reload",
        "echo switched to green",
    )
    done = run_lab(
        ["measure", project.url, "--json", "--out", str(tmp_path / "runs"), "--", str(switch)], timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert set(result) >= RUN_KEYS
    assert (result["strategy"], result["status"]) == ("measure", "completed")
    assert result["requests_failed"] == 0 and result["requests_sent"] > 500
    assert set(result["versions_seen"]) == {"v1", "v2"}
    assert result["command"] == {"argv": [str(switch)], "exit_code": 0}
    assert result["versions"] == {"old": "v1", "new": "v2"}

    journal = json.loads((Path(result["output"]) / "journal.json").read_text())
    (step,) = journal["steps"]
    (line,) = [o for o in journal["command"]["output"] if o["line"] == "switched to green"]
    assert step["kind"] == "Command" and step["start_s"] <= line["at_s"] <= step["end_s"]
    # The switch is where v2 began to answer: not before the command started.
    assert journal["analysis"]["mixed_window"] is None or (
        journal["analysis"]["mixed_window"]["start"] >= step["start_s"]
    )
    assert (Path(result["output"]) / "report.html").is_file()


@pytest.mark.parametrize("project", ["baseline"], indirect=True)
def test_stopping_and_starting_every_instance_is_downtime_that_outlasts_the_command(
    project: Project, tmp_path: Path
) -> None:
    project("up", "-d")
    wait_for_200(project.url, timeout_s=30)
    instances = "app-v1-1 app-v1-2 app-v1-3"
    restart = script(
        tmp_path / "restart.sh", project, f"compose stop {instances}", "sleep 1", f"compose start {instances}"
    )
    args = ["measure", project.url, "--json", "--out", str(tmp_path / "runs"), "--settle", "12"]
    done = run_lab([*args, "--", str(restart)], timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    journal = json.loads((Path(result["output"]) / "journal.json").read_text())
    (step,) = journal["steps"]
    assert result["requests_failed"] > 0 and result["downtime_ms"] > 1000  # at least the 1 s asleep
    windows = journal["analysis"]["downtime_windows"]
    # Every failure came after the command began. As the instances stop, requests already on their way
    # can still be answered by one while others find every instance gone (measured: 502, 502, 200, 502
    # within 3 ms, the probe briefly behind as the stops loaded the machine): a few windows of a
    # millisecond may come first. The outage itself is the longest.
    assert all(step["start_s"] <= w["start"] <= step["end_s"] for w in windows)
    window = max(windows, key=lambda w: w["duration_ms"])
    assert window["duration_ms"] > 1000
    # The command returned once the containers had started, but nginx had marked every instance failed
    # (max_fails=1, fail_timeout=10s) and answered 502 "no live upstreams" until that ran out: clients
    # were served again only after the command's end, within the settle.
    assert step["end_s"] < window["end"] < journal["probe"]["stopped_s"]
    assert result["failures_by_class"] == {"http_5xx": result["requests_failed"]}
    assert result["versions_seen"] == {"v1": result["requests_ok"]}


@pytest.mark.parametrize("project", ["baseline"], indirect=True)
def test_a_failing_deploy_command_exits_5_and_a_budget_exits_3(project: Project, tmp_path: Path) -> None:
    project("up", "-d")
    wait_for_200(project.url, timeout_s=30)
    failing = script(tmp_path / "fail.sh", project, "echo 'error: image not found' >&2", "exit 7")
    done = run_lab(
        ["measure", project.url, "--no-live", "--out", str(tmp_path), "--", str(failing)], timeout=120
    )
    assert done.returncode == 5, done.stderr[-2000:]
    assert "lab: error: the deploy command exited with code 7" in done.stderr
    assert "error: image not found" in done.stderr  # its output, as it came

    stop = script(tmp_path / "stop.sh", project, "compose stop app-v1-1 app-v1-2 app-v1-3")
    over = run_lab(
        ["measure", project.url, "--json", "--max-failed", "0", "--out", str(tmp_path), "--", str(stop)],
        timeout=120,
    )
    assert over.returncode == 3 and "budget exceeded: failed requests" in over.stderr


@pytest.fixture
def flipping_service(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A service on 127.0.0.1 that answers 1.0, and 1.1 once a flag file exists: a deploy in one `touch`."""
    flag = tmp_path / "deployed"

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            version = b"1.1" if flag.exists() else b"1.0"
            body = b'{"release": "' + version + b'"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", flag
    finally:
        server.shutdown()
        server.server_close()


def test_the_plugin_measures_a_deploy_command_and_reads_the_version_from_the_body(
    deploy_lab: Any, flipping_service: tuple[str, Path]
) -> None:
    url, flag = flipping_service
    result = deploy_lab.measure(
        url,
        ["sh", "-c", f"sleep 0.5; touch {flag}; echo deployed"],
        rate=100,
        baseline=1,
        settle=1,
        version_from_body=r'"release": "([^"]+)"',
    )
    assert result.status == "completed" and result.requests_failed == 0
    assert set(result.versions_seen) == {"1.0", "1.1"} and result.record.versions == ("1.0", "1.1")
    assert result.to_dict()["command"]["exit_code"] == 0
    assert result.record.output[-1][1:] == ("stdout", "deployed")
