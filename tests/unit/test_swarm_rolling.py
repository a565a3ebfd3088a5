"""swarm-rolling without Docker: its parameters, the task spec it asks Swarm for, and how the watch turns
Swarm's task states and UpdateStatus into steps and a run status."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from lab import strategies
from lab.engines.base import Applied, ProxyEndpoints, TaskState, UpdateState
from lab.engines.docker.swarm import SwarmEngine
from lab.errors import LabError
from lab.live.feed import SampleFeed
from lab.options import RunOptions
from lab.record import RunRecord
from lab.targets import base as target_base
from lab.targets import swarm_update
from lab.targets.swarm_update import SwarmUpdateTarget, task_line


def settings(**params: Any) -> Any:
    strategy = strategies.get("swarm-rolling")
    return strategy.settings(**strategy.coerce(params))


def test_the_defaults_are_swarms_own() -> None:
    s = settings()
    assert (s.order, s.parallelism, s.delay_s, s.failure_action) == ("stop-first", 1, 0.0, "pause")
    assert (s.monitor_s, s.max_failure_ratio, s.healthcheck, s.stop_grace_s) == (5.0, 0.0, True, 10.0)
    assert s.health_path is None and s.health_retries == 3
    assert (s.health_interval_s, s.health_start_s) == (0.5, 30.0)  # the lab's check, not Swarm's default


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"order": "sideways"}, "must be one of: stop-first, start-first"),
        ({"failure_action": "retry"}, "must be one of: pause, continue, rollback"),
        ({"parallelism": "0"}, "must be at least 1"),
        ({"max_failure_ratio": "1.5"}, "a fraction from 0 to 1"),
        ({"health_path": "healthz"}, "must be a URL path"),
        ({"health_path": "/x'); import os"}, "must be a URL path"),
        ({"health_retries": "0"}, "must be at least 1"),
        ({"health_interval_s": "0"}, "must be at least 0.001"),
        ({"monitor": "5"}, "has no parameter 'monitor'"),
    ],
)
def test_a_wrong_parameter_is_refused_before_anything_runs(params: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        settings(**params)


def test_the_description_says_what_swarm_was_asked() -> None:
    text = settings(order="start-first", health_path="/", health_retries="1", stop_grace_s="1").describe()
    assert text.startswith("start-first, 1 at a time, delay 0 s, on failure pause")
    assert "a healthcheck / every 0.5 s (1 failure(s) is unhealthy, after a start period of 30 s)" in text
    assert text.endswith("stop grace 1 s")
    assert "no healthcheck" in settings(healthcheck="false").describe()


def test_the_task_spec_carries_the_healthcheck_and_the_grace_period() -> None:
    spec = SwarmEngine._container_spec("img", {"A": "1"}, settings(stop_grace_s="2"), "/healthz", 8080, {})
    check = spec["Healthcheck"]
    assert check["Test"][:5] == ["CMD", "python3", "-I", "-S", "-c"]
    assert "('127.0.0.1',8080)" in check["Test"][-1] and "GET /healthz HTTP/1.0" in check["Test"][-1]
    assert check["Retries"] == 3 and check["Interval"] == 500_000_000 and check["StartPeriod"] == 30 * 10**9
    assert spec["StopGracePeriod"] == 2_000_000_000
    assert spec["Env"] == ["A=1", "APP_INSTANCE=slot-{{.Task.Slot}}"]

    own = SwarmEngine._container_spec(
        "img", {}, settings(health_path="/", health_retries="1"), "/healthz", 9000, {}
    )
    assert "GET / HTTP/1.0" in own["Healthcheck"]["Test"][-1] and own["Healthcheck"]["Retries"] == 1
    none = SwarmEngine._container_spec("img", {}, settings(healthcheck="false"), "/healthz", 8080, {})
    assert none["Healthcheck"]["Test"] == ["NONE"]


# -- the watch -------------------------------------------------------------------------------------------


def task(
    slot: int, state: str, version: str = "v2", exit_code: int | None = None, id_: str = ""
) -> TaskState:
    return TaskState(
        id_ or f"{version}-{slot}", slot, state, "running", f"deploylab/app:{version}", exit_code, ""
    )


@dataclass
class Scripted:
    """A Swarm that moves through given moments, one per poll."""

    moments: list[tuple[list[TaskState], UpdateState]]
    updated: list[tuple[str, str]] = field(default_factory=list)
    polls: int = 0

    def update_service(self, name: str, image: str, env: Any) -> None:
        self.updated.append((name, image))

    def tasks(self, name: str) -> list[TaskState]:
        return self.moments[min(self.polls, len(self.moments) - 1)][0]

    def update_state(self, name: str) -> UpdateState:
        state = self.moments[min(self.polls, len(self.moments) - 1)][1]
        self.polls += 1
        return state


@dataclass
class Run:
    options: RunOptions
    record: RunRecord
    feed: SampleFeed
    probe: Any = None
    hook: Any = staticmethod(lambda line, event: None)


def watch(moments: list[tuple[list[TaskState], UpdateState]], **params: str) -> tuple[str, Run, Scripted]:
    options = RunOptions("swarm-rolling", fleet_size=2, engine="swarm", params=tuple(params.items()))
    swarm = Scripted(moments)
    target = SwarmUpdateTarget.__new__(SwarmUpdateTarget)
    target.options, target.settings, target.services, target.index = options, settings(**params), swarm, 0
    target.hook = lambda line, event: None
    run = Run(options, RunRecord(options, "run01", "2026-12-01T00:00:00+00:00", 0.0), SampleFeed(200, 0.0))
    return target.deploy(run), run, swarm  # type: ignore[arg-type]


def test_each_task_change_and_update_state_is_a_step_and_completed_is_the_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(swarm_update, "POLL_S", 0.0)
    old = [task(1, "running", "v1"), task(2, "running", "v1")]
    moments = [
        (old, UpdateState(None, "")),
        (
            [task(1, "shutdown", "v1"), old[1], task(1, "starting")],
            UpdateState("updating", "update in progress"),
        ),
        (
            [task(1, "shutdown", "v1"), old[1], task(1, "running")],
            UpdateState("updating", "update in progress"),
        ),
        ([task(1, "running"), task(2, "running")], UpdateState("completed", "update completed")),
    ]
    status, run, swarm = watch(moments)
    assert status == "completed" and swarm.updated == [("app", "deploylab/app:v2")]
    steps = [(e.kind, e.detail, e.in_service) for e in run.record.events]
    assert steps[0][0] == "Update" and steps[0][1].startswith("service update to v2 (stop-first")
    assert ("Task", "task v1-1 (slot 1, v1) shutdown", 1) in steps
    assert ("Task", "task v2-1 (slot 1, v2) running", 2) in steps
    assert ("Swarm", "update updating: update in progress", 1) in steps
    assert steps[-1] == ("Swarm", "update completed: update completed", 2)


@pytest.mark.parametrize(
    ("end", "status"),
    [("rollback_completed", "rolled_back"), ("rollback_paused", "rolled_back"), ("paused", "update_paused")],
)
def test_a_rollback_or_a_pause_is_the_runs_status_and_a_failed_step(
    end: str, status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swarm_update, "POLL_S", 0.0)
    crashed = task(1, "failed", exit_code=1)
    moments = [
        ([task(1, "running", "v1")], UpdateState("updating", "")),
        ([crashed], UpdateState("rollback_started" if end != "paused" else "paused", "task failed: exit 1")),
        ([task(1, "running", "v1", id_="back")], UpdateState(end, "rolled back" if end != "paused" else "x")),
    ]
    got, run, _ = watch(moments, failure_action="rollback" if end != "paused" else "pause")
    assert got == status
    failing = [e for e in run.record.events if e.error is not None]
    assert failing and failing[0].error == "task failed: exit 1"
    assert failing[0].detail == ("update rollback_started" if end != "paused" else "update paused")
    # Only a rollback is a verdict against v2: a pause is the run's status, not a rollback.
    assert failing[0].result is (False if end != "paused" else None)
    assert "task v2-1 (slot 1, v2) failed, exit 1" in [e.detail for e in run.record.events]


def test_an_update_that_never_ends_is_a_lab_error_naming_the_last_state(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(swarm_update, "POLL_S", 0.0)
    with pytest.raises(LabError, match=r"did not finish within 0.01 s \(last: updating\)"):
        watch([([task(1, "running", "v1")], UpdateState("updating", ""))], timeout_s="0.01")


def test_a_task_line_names_its_version_exit_and_message() -> None:
    failed = TaskState(
        "abc", 3, "failed", "shutdown", "reg:5000/deploylab/app:v2", 137, "non-zero exit (137)"
    )
    assert task_line(failed) == "task abc (slot 3, v2) failed, exit 137: non-zero exit (137)"
    assert (
        task_line(TaskState("d", 1, "running", "running", "app:v1", None, "started"))
        == "task d (slot 1, v1) running"
    )


def test_a_rollback_seen_only_at_its_end_is_still_the_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    # Measured on one node: a one-task rollback began and ended between two polls.
    monkeypatch.setattr(swarm_update, "POLL_S", 0.0)
    moments = [
        ([task(1, "running", "v1")], UpdateState("updating", "")),
        ([task(1, "running", "v1", id_="back")], UpdateState("rollback_completed", "rollback completed")),
    ]
    got, run, _ = watch(moments, failure_action="rollback")
    assert got == "rolled_back"
    (verdict,) = [e for e in run.record.events if e.result is False]
    assert verdict.detail == "update rollback_completed: rollback completed"
    assert verdict.error is not None and "its start was not seen" in verdict.error


def test_a_rollback_whose_start_came_without_a_reason_is_decided_at_its_end_without_saying_unseen(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(swarm_update, "POLL_S", 0.0)
    moments = [
        ([task(1, "running", "v1")], UpdateState("updating", "")),
        ([task(1, "running", "v1")], UpdateState("rollback_started", "")),
        ([task(1, "running", "v1", id_="back")], UpdateState("rollback_paused", "")),
    ]
    got, run, _ = watch(moments, failure_action="rollback")
    assert got == "rolled_back"
    (verdict,) = [e for e in run.record.events if e.result is False]
    assert verdict.detail == "update rollback_paused" and verdict.error == "Swarm paused its rollback"


def test_the_static_page_the_proxy_starts_on_is_not_the_service_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The proxy's first config answers 200 itself; setup waits for an answer that went through an
    upstream (CI saw version "static" in a run whose probe began on an old worker of that config)."""
    answers = [
        httpx.Response(200, headers={"X-App-Version": "static", "X-Instance": "nginx"}),
        httpx.Response(502),
        httpx.Response(200, headers={"X-App-Version": "v1", "X-Lab-Upstream": "10.0.0.7:8080"}),
    ]
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return answers[len(asked) - 1]

    monkeypatch.setattr(target_base.time, "sleep", lambda s: None)
    with httpx.Client(transport=httpx.MockTransport(answer)) as http:
        target_base.wait_serving(http, "http://127.0.0.1:8080/", "the v1 service", timeout_s=20.0)
    assert len(asked) == 3


def test_a_proxy_that_only_ever_serves_its_static_page_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter(range(0, 100, 5))
    monkeypatch.setattr(target_base.time, "monotonic", lambda: float(next(clock)))
    monkeypatch.setattr(target_base.time, "sleep", lambda s: None)
    static = httpx.Response(200, headers={"X-App-Version": "static"})
    http = httpx.Client(transport=httpx.MockTransport(lambda r: static))
    with http, pytest.raises(LabError, match=r"did not serve the v1 service within 20 s"):
        target_base.wait_serving(http, "http://127.0.0.1:8080/", "the v1 service", timeout_s=20.0)


@dataclass
class StandInProxy:
    """The proxy as setup uses it: what it was asked, and an Applied of our choosing."""

    applied: Applied = field(default_factory=lambda: Applied(1, 0, 2))
    configs: list[tuple[str, float]] = field(default_factory=list)

    def nginx_version(self) -> tuple[int, ...]:
        return (1, 29, 0)

    def start(self, config: str, port: int | None, prefer: int | None = None) -> ProxyEndpoints:
        self.configs.append((config, 0.0))
        return ProxyEndpoints("http://127.0.0.1:8080/", "http://127.0.0.1:9090", 8080)

    def apply_config(self, config: str, *, old_workers_s: float = 0.0) -> Applied:
        self.configs.append((config, old_workers_s))
        return self.applied


@dataclass
class StandInSwarm:
    proxy: StandInProxy
    run_id: str = "run01"

    def preflight(self, images: Any = None) -> None: ...
    def watch(self) -> None: ...
    def watching(self) -> None: ...
    def create_network(self) -> None: ...

    def create_service(self, name: str, *args: Any) -> None: ...

    def tasks(self, name: str) -> list[TaskState]:
        return [task(1, "running", "v1"), task(2, "running", "v1")]


def set_up(proxy: StandInProxy, answers: list[httpx.Response]) -> tuple[Run, list[str]]:
    options = RunOptions("swarm-rolling", fleet_size=2, engine="swarm")
    target = SwarmUpdateTarget(options, StandInSwarm(proxy))  # type: ignore[arg-type]
    asked: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return answers[min(len(asked), len(answers)) - 1]

    target.http = httpx.Client(transport=httpx.MockTransport(answer))
    run = Run(options, RunRecord(options, "run01", "2026-12-01T00:00:00+00:00", 0.0), SampleFeed(200, 0.0))
    assert target.setup(run) == "http://127.0.0.1:8080/"  # type: ignore[arg-type]
    return run, asked


def test_setup_opens_the_clients_port_with_the_first_real_config_and_waits_for_an_upstreams_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(swarm_update.time, "sleep", lambda s: None)
    proxy = StandInProxy()
    static = httpx.Response(200, headers={"X-App-Version": "static"})  # not through an upstream: not yet
    served = httpx.Response(200, headers={"X-App-Version": "v1", "X-Lab-Upstream": "10.0.1.5:8080"})
    run, asked = set_up(proxy, [static, static, served])
    (first, _), (follow, waited) = proxy.configs
    assert "listen 80;" not in first and "listen 8081;" in first  # the start-up config: admin port only
    assert "listen 80;" in follow and "resolve" in follow
    assert waited == 0.0  # no start-up worker ever held the clients' port: nothing to wait for
    assert len(asked) == 3 and run.record.notes == []


def test_setup_notes_a_dns_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(swarm_update.time, "sleep", lambda s: None)
    served = httpx.Response(200, headers={"X-Lab-Upstream": "10.0.1.5:8080"})
    run, _ = set_up(StandInProxy(Applied(2, 1, 2)), [served])
    assert run.record.notes == ["nginx -t passed on check 2: Docker's DNS did not resolve the service"]
