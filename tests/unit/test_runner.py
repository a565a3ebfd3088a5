"""The fleet target through the pipeline, against an in-memory engine, a fake probe and a mock proxy: no
Docker, no network.

The target's and the pipeline's clock is replaced by one that moves only when they sleep, so waiting out a
health timeout takes no real time and every Pause shows up as exactly its length.
"""

from __future__ import annotations

import dataclasses
import json
import re
import signal
import threading
import time as real_time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

import lab.pipeline
import lab.targets.fleet.target
from lab.engines.base import Applied, ProxyEndpoints, Removed
from lab.engines.docker.images import app_image
from lab.errors import ConfigRejected, LabError
from lab.model import ErrorClass, Instance, Sample
from lab.options import RunOptions
from lab.pipeline import Run, RunResult, probe_config, run_once
from lab.probe.config import ProbeConfig
from lab.record import RunRecord
from lab.targets.fleet.target import FleetTarget

ENDPOINTS = ProxyEndpoints("http://proxy.test:8000", "http://proxy.test:8081", 8000)
REACHABLE, UNREACHABLE = "10.9.0.2", "10.9.9.9"  # the proxy's address on the run's network, or not
SOMEONE_ELSE = "10.9.0.3"  # an address that answers, with another nginx's generation


def on_network(host: str) -> ProxyEndpoints:
    return dataclasses.replace(
        ENDPOINTS, network_url=f"http://{host}:80/", network_admin_url=f"http://{host}:8081"
    )


V1, V2 = "app-v1-1 app-v1-2", "app-v2-1 app-v2-2"
SWITCH = "step 1: route v2 100% over app-v2-1, app-v2-2"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeRuntime:
    """An engine, its fleet and its proxy in one object, in memory; `calls` keeps the effects in order as
    (operation, instance name)."""

    run_id = "test01"

    def __init__(self) -> None:
        self.fleet = self.proxy = self
        self.lock = threading.Lock()  # a fleet starts and stops from a thread pool
        self.calls: list[tuple[str, str]] = []
        self.running: set[str] = set()
        self.started: dict[str, tuple[str, Mapping[str, str]]] = {}  # name -> (image, env)
        self.proxy_config: str | None = None
        self.applied: list[str] = []  # every config that passed "nginx -t", in order
        self.exit_codes: dict[str, int] = {}  # name -> the code it exits with as soon as it starts
        self.proxy_log = ""  # what the proxy's log says last
        self.never_healthy: set[str] = set()
        self.reject: str | None = None  # nginx's message for any config that routes to v2
        self.fail_on: dict[tuple[str, str], BaseException] = {}  # (operation, name) -> raised there
        self.old_workers_leave = True  # False: an old nginx worker never leaves after a reload
        self._reloaded = 0  # index in `calls` of the last apply_config
        self.old_worker_waits: list[float] = []  # each reload's wait for the old workers, in seconds
        self.workers_before = 1  # nginx workers seen in the proxy at a reload (0: none could be seen)
        self.checks = 1  # how many nginx -t a config took (more: a name did not resolve at first)
        self.endpoints = ENDPOINTS  # what the proxy's start gives: a network_url too, where it has one

    def _call(self, op: str, name: str = "") -> None:
        with self.lock:
            self.calls.append((op, name))
        if (exc := self.fail_on.get((op, name))) is not None:
            raise exc

    def healthy(self, name: str) -> bool:
        return name in self.running and name not in self.exit_codes and name not in self.never_healthy

    @property
    def live(self) -> str | None:
        return self.applied[-1] if self.applied else self.proxy_config

    def preflight(self, images: Sequence[str] | None = None) -> None:
        self._call("preflight")
        self.preflight_images = images

    def watch(self) -> None:
        self._call("watch")

    def watching(self) -> None:
        self._call("watching")

    def release(self) -> None:
        self._call("release")

    def create_network(self) -> None:
        self._call("create_network")

    def nginx_version(self) -> tuple[int, ...] | None:
        return (1, 27, 4)

    def start_instance(self, inst: Instance, image: str, env: Mapping[str, str]) -> None:
        self._call("start", inst.name)
        self.started[inst.name] = (image, env)
        self.running.add(inst.name)

    def instance_ip(self, inst: Instance) -> str | None:
        return f"10.{inst.version[1:]}.0.{inst.slot}" if inst.name in self.running else None

    def instance_exit(self, inst: Instance) -> int | None:
        return self.exit_codes.get(inst.name) if inst.name in self.running else None

    def stop_instance(self, inst: Instance, grace_s: float) -> None:
        self._call("stop", inst.name)
        self.running.discard(inst.name)

    def instance_logs(self, inst: Instance, lines: int = 20) -> str:
        return "panic: boom" if inst.name in self.exit_codes else ""

    def start(self, config: str, port: int | None, prefer: int | None = None) -> ProxyEndpoints:
        self._call("start_proxy")
        self.proxy_config = config
        return self.endpoints

    def logs(self, lines: int = 20) -> str:
        return self.proxy_log

    def apply_config(self, config: str, *, old_workers_s: float = 0.0) -> Applied:
        self._call("apply_config")
        if self.reject and "app-v2" in config:
            raise ConfigRejected(self.reject)
        self.applied.append(config)
        self.old_worker_waits.append(old_workers_s)
        self._reloaded = len(self.calls)
        return Applied(self.checks, 0 if self.old_workers_leave else 1, self.workers_before)

    def cleanup(self) -> Removed:
        self._call("cleanup")
        return Removed(len(self.running) + 1, 1)


class FakeProbe:
    def __init__(self, config: ProbeConfig, samples: list[Sample], error: str | None) -> None:
        self.config, self.samples, self.stop_error = config, samples, error
        self.error: str | None = None
        self.started_at: float | None = None
        self.stopped = False

    def start(self) -> None:
        self.started_at = 1000.0

    def new_samples(self) -> list[Sample]:
        return []

    def stop(self) -> list[Sample]:
        self.stopped, self.error = True, self.stop_error
        return list(self.samples)


class Harness:
    def __init__(self) -> None:
        self.rt = FakeRuntime()
        self.probes: list[FakeProbe] = []
        self.probe_samples: list[Sample] = []
        self.probe_error: str | None = None

    def probe(self, config: ProbeConfig) -> FakeProbe:
        self.probes.append(FakeProbe(config, self.probe_samples, self.probe_error))
        return self.probes[-1]

    def proxy(self, request: httpx.Request) -> httpx.Response:
        """The proxy's two ports, answered from the fake runtime's state."""
        live, path = self.rt.live, request.url.path
        if live is None or request.url.host == UNREACHABLE:
            raise httpx.ConnectError("proxy not started, or not reachable there", request=request)
        if request.url.host == REACHABLE and request.url.port == 80 and path == "/":
            return httpx.Response(200, text="ok\n")  # the proxy at its address on the run's network
        if request.url.host == SOMEONE_ELSE:
            return httpx.Response(200, text="7\n")  # an nginx, but not this run's
        if request.url.port == 8081 and path == "/lab/generation":
            generation = re.search(r"^# generation (\d+)$", live, re.MULTILINE)
            assert generation is not None
            return httpx.Response(200, text=generation.group(1) + "\n")
        if request.url.port == 8081 and path.startswith("/lab/health/"):
            return httpx.Response(200 if self.rt.healthy(path.rsplit("/", 1)[1]) else 502)
        if request.url.port == 8000 and path == "/":  # through an upstream, as nginx's proxied answers
            return httpx.Response(200, text="ok\n", headers={"X-Lab-Upstream": "10.0.0.2:8080"})
        return httpx.Response(404)

    def runner(
        self, strategy: str = "blue-green", *, keep: bool = False, params: dict | None = None, **config: Any
    ) -> Run:
        if params is None:
            params = {"rollback_window_s": 1.5, "overlap_s": 0} if strategy == "blue-green" else {}
        options, target = self.target(strategy, params, **config)
        return Run(options, target, run_id=self.rt.run_id, probe_factory=self.probe, keep=keep)

    def target(self, strategy: str, params: dict, **config: Any) -> tuple[RunOptions, FleetTarget]:
        fast = {"fleet_size": 2, "baseline_s": 0, "settle_s": 0, "health_timeout_s": 0.5}
        options = RunOptions(strategy, params, **fast | config)
        target = FleetTarget(options, self.rt)  # type: ignore[arg-type]  (the fake is the whole engine)
        target.http.close()
        target.http = httpx.Client(transport=httpx.MockTransport(self.proxy))
        return options, target

    def run(self, strategy: str = "blue-green", **kwargs: Any) -> RunRecord:
        return self.runner(strategy, **kwargs).execute()

    def effects(self) -> list[str]:
        """The runtime's calls, those of one operation in a row merged: a fleet starts in any order."""
        merged: list[tuple[str, list[str]]] = []
        for op, name in self.rt.calls:
            if name and merged and merged[-1][0] == op and merged[-1][1]:
                merged[-1][1].append(name)
            else:
                merged.append((op, [name] if name else []))
        return [" ".join([op, *sorted(names)]) for op, names in merged]


@pytest.fixture
def lab_(monkeypatch: pytest.MonkeyPatch) -> Harness:
    clock = FakeClock()
    monkeypatch.setattr(lab.targets.fleet.target, "time", clock)
    monkeypatch.setattr(lab.pipeline, "time", clock)
    return Harness()


def upstreams(config: str) -> list[str]:
    return re.findall(r"^\s*server (app-[a-z0-9]+-\d+):", config, re.MULTILINE)


def kinds(record: RunRecord) -> list[str]:
    return [e.kind for e in record.events]


def test_blue_green_happy_path(lab_: Harness) -> None:
    record = lab_.run(v1_env={"V": "1"}, v2_env={"V": "2"})
    assert (record.status, record.error, record.notes) == ("completed", None, [])
    effects = lab_.effects()
    first_route = effects.index("apply_config")
    # The fleet and the proxy start side by side, in any order.
    assert effects[:3] == ["preflight", "watch", "create_network"]  # the reaper, before anything it reaps
    started = sorted(
        name for op, name in lab_.rt.calls if op in ("start", "start_proxy") and "v2" not in name
    )
    assert started == ["", "app-v1-1", "app-v1-2"] and effects[3:first_route] != []
    assert effects[first_route:] == [
        "apply_config",
        "watching",  # the reaper's connection, made meanwhile, holds before the probe starts
        f"start {V2}",
        "apply_config",
        f"stop {V1}",
        "cleanup",
    ]
    assert lab_.rt.proxy_config is not None and upstreams(lab_.rt.proxy_config) == []
    assert "upstream" not in lab_.rt.proxy_config
    initial, switch = lab_.rt.applied
    assert upstreams(initial) == ["app-v1-1", "app-v1-2"] and "app-v2" not in initial
    assert upstreams(switch) == ["app-v2-1", "app-v2-2"] and "app-v1" not in switch
    assert record.configs == [("initial", initial), (SWITCH, switch)]
    assert lab_.rt.started["app-v1-2"] == (app_image("v1"), {"V": "1"})
    assert lab_.rt.started["app-v2-1"] == (app_image("v2"), {"V": "2"})

    assert kinds(record) == ["Start", "Route", "Pause", "Check", "Stop"]
    assert [e.result for e in record.events] == [True, None, None, True, None]
    assert all(e.error is None for e in record.events)
    pause = record.events[2]
    assert pause.ended - pause.started == pytest.approx(1.5)
    assert record.removed == Removed(3, 1) and record.url == ENDPOINTS.url  # v2 fleet + proxy
    (probe,) = lab_.probes
    assert probe.stopped and probe.config.url == ENDPOINTS.url
    assert record.probe_started == 1000.0 and record.probe_stopped is not None


def test_in_place_starts_v2_only_after_every_v1_stopped(lab_: Harness) -> None:
    record = lab_.run("in-place")
    assert record.status == "completed"
    effects = lab_.effects()
    assert effects[effects.index("watching") + 1 :] == [
        f"stop {V1}",
        f"start {V2}",
        "apply_config",
        "cleanup",
    ]
    assert [label for label, _ in record.configs] == [
        "initial",
        "step 2: route v2 100% over app-v2-1, app-v2-2",
    ]
    assert lab_.rt.running == set(V2.split())


def test_v2_that_crashes_at_start_is_rolled_back(lab_: Harness) -> None:
    lab_.rt.exit_codes["app-v2-2"] = 1
    record = lab_.run(health_timeout_s=30)
    assert record.status == "rolled_back"
    start, stop = record.events
    assert (start.kind, start.result, stop.kind) == ("Start", False, "Stop")
    assert start.error == "app-v2-2 exited with code 1: panic: boom"
    assert start.ended - start.started < 1  # a crash is seen at once, not after the health timeout
    assert lab_.effects()[-3:] == [f"start {V2}", f"stop {V2}", "cleanup"]
    assert not any(op == "stop" and name.startswith("app-v1") for op, name in lab_.rt.calls)
    assert [label for label, _ in record.configs] == ["initial"]  # traffic never left v1


def test_in_place_rolls_back_by_starting_v1_again(lab_: Harness) -> None:
    lab_.rt.exit_codes["app-v2-1"] = 1
    record = lab_.run("in-place")
    assert record.status == "rolled_back"
    assert kinds(record) == ["Stop", "Start", "Stop", "Start", "Route"]
    assert [e.result for e in record.events] == [None, False, None, True, None]
    assert lab_.rt.running == set(V1.split())
    assert upstreams(lab_.rt.applied[-1]) == ["app-v1-1", "app-v1-2"]


def test_v2_never_healthy_is_rolled_back_after_the_health_timeout(lab_: Harness) -> None:
    lab_.rt.never_healthy.add("app-v2-1")
    record = lab_.run()
    assert record.status == "rolled_back"
    start = record.events[0]
    assert (start.result, start.error) == (False, "not healthy within 0.5 s")
    assert 0.5 <= start.ended - start.started < 0.7


def test_v2_that_fails_the_check_after_the_switch_gets_traffic_back_to_v1(lab_: Harness) -> None:
    apply = lab_.rt.apply_config

    def apply_then_break(config: str, *, old_workers_s: float = 0.0) -> Applied:
        applied = apply(config, old_workers_s=old_workers_s)
        if "app-v2" in config:
            lab_.rt.never_healthy.add("app-v2-2")
        return applied

    lab_.rt.apply_config = apply_then_break  # type: ignore[method-assign]
    record = lab_.run()
    assert record.status == "rolled_back"
    assert kinds(record) == ["Start", "Route", "Pause", "Check", "Route", "Stop"]
    assert record.events[3].result is False
    assert upstreams(lab_.rt.applied[-1]) == ["app-v1-1", "app-v1-2"]
    assert lab_.rt.running == set(V1.split())


def test_a_rejected_config_fails_the_run_with_nginx_message(lab_: Harness) -> None:
    message = 'nginx: [emerg] unknown directive "bogus" in /etc/nginx/lab-candidate.conf:40'
    lab_.rt.reject = message
    record = lab_.run()
    assert (record.status, record.error) == ("failed", message)
    assert kinds(record) == ["Start", "Route"]
    assert (record.events[1].result, record.events[1].error) == (None, message)
    assert lab_.rt.calls.count(("cleanup", "")) == 1
    assert not any(op == "stop" and name.startswith("app-v1") for op, name in lab_.rt.calls)
    assert lab_.probes[0].stopped


def test_a_running_instance_nginx_could_not_find_is_dockers_dns_not_a_wrong_name(lab_: Harness) -> None:
    message = 'nginx: [emerg] host not found in upstream "app-v2-1:8080" in /etc/nginx/lab-candidate.conf:40'
    lab_.rt.reject = message
    record = lab_.run()
    assert record.status == "failed" and record.error is not None
    hint = "(app-v2-1 was running, at 10.2.0.1 on the run's network: Docker's DNS did not answer for it)"
    assert record.error == f"{message} {hint}"


def test_an_instance_that_exited_is_not_blamed_on_dns(lab_: Harness) -> None:
    message = 'nginx: [emerg] host not found in upstream "app-v2-1:8080" in /etc/nginx/lab-candidate.conf:40'
    lab_.rt.reject = message
    apply = lab_.rt.apply_config

    def exit_then_apply(config: str, *, old_workers_s: float = 0.0) -> Applied:
        if "app-v2" in config:
            lab_.rt.exit_codes["app-v2-1"] = 1  # it started, and exited before the route named it
        return apply(config, old_workers_s=old_workers_s)

    lab_.rt.apply_config = exit_then_apply  # type: ignore[method-assign]
    assert lab_.run().error == message


def test_ctrl_c_in_a_step_cleans_up_even_with_keep_and_is_raised_again(lab_: Harness) -> None:
    lab_.rt.fail_on[("start", "app-v2-1")] = KeyboardInterrupt()
    runner = lab_.runner(keep=True)
    handler = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        runner.execute()
    record = runner.record
    assert (record.status, record.error) == ("interrupted", "interrupted by the user")
    assert (record.events[-1].kind, record.events[-1].error) == ("Start", "KeyboardInterrupt")
    assert lab_.rt.calls[-1] == ("cleanup", "") and record.removed is not None
    assert lab_.probes[0].stopped and record.probe_stopped is not None
    assert signal.getsignal(signal.SIGINT) is handler


def test_keep_skips_cleanup_after_a_run(lab_: Harness) -> None:
    record = lab_.run(keep=True)
    assert record.status == "completed"
    assert ("cleanup", "") not in lab_.rt.calls and record.removed is None


def test_a_probe_that_failed_fails_a_completed_run(lab_: Harness) -> None:
    lab_.probe_error = "Traceback (most recent call last):\n  ...\nOSError: too many open files\n"
    record = lab_.run()
    assert (record.status, record.error) == ("failed", "the probe failed: OSError: too many open files")
    assert record.error_detail == lab_.probe_error


def test_a_probe_failure_does_not_hide_the_error_that_failed_the_run(lab_: Harness) -> None:
    lab_.probe_error, lab_.rt.reject = "OSError: too many open files", "nginx: [emerg] bad"
    record = lab_.run()
    assert (record.status, record.error) == ("failed", "nginx: [emerg] bad")


def test_an_unexpected_exception_is_an_internal_error_with_a_traceback(lab_: Harness) -> None:
    lab_.rt.fail_on[("stop", "app-v1-1")] = RuntimeError("engine hiccup\nsecond line")
    record = lab_.run()
    assert (record.status, record.error) == ("failed", "internal error: RuntimeError: engine hiccup")
    assert record.error_detail is not None and "Traceback" in record.error_detail
    assert "engine hiccup" in record.error_detail
    assert record.events[-1].kind == "Stop" and "engine hiccup" in (record.events[-1].error or "")
    assert lab_.rt.calls[-1] == ("cleanup", "") and lab_.probes[0].stopped


def reload_never_takes(lab_: Harness) -> None:
    """nginx -t passes but the reload never takes: the proxy keeps answering the previous generation."""

    def check_only(config: str, *, old_workers_s: float = 0.0) -> Applied:
        lab_.rt._call("apply_config")
        return Applied(1, 0)

    lab_.rt.apply_config = check_only  # type: ignore[method-assign]


@pytest.mark.parametrize(
    ("breakage", "error"),
    [
        ("v1 never healthy", "the v1 fleet did not become healthy: not healthy within 0.5 s"),
        ("stale reload", "nginx did not load config generation 1 within 10 s"),
    ],
)
def test_a_setup_failure_fails_the_run_before_probing_and_cleans_up(
    lab_: Harness, breakage: str, error: str
) -> None:
    if breakage == "v1 never healthy":
        lab_.rt.never_healthy.add("app-v1-2")
    else:
        reload_never_takes(lab_)
    record = lab_.run()
    assert (record.status, record.error, record.events) == ("failed", error, [])
    assert lab_.probes == [] and lab_.rt.calls[-1] == ("cleanup", "")


def test_a_reload_refused_for_a_running_instances_name_says_dockers_dns_did_not_answer(lab_: Harness) -> None:
    # The master's own log, when `nginx -t` passed but the reload then could not resolve a name.
    lab_.rt.proxy_log = (
        'nginx: [emerg] host not found in upstream "app-v1-2:8080" in /etc/nginx/nginx.conf:40'
    )
    reload_never_takes(lab_)
    error = lab_.run().error or ""
    assert error.startswith("nginx did not load config generation 1 within 10 s (proxy log: nginx: [emerg]")
    assert error.endswith(
        "(app-v1-2 was running, at 10.1.0.2 on the run's network: Docker's DNS did not answer for it)"
    )


def test_a_reload_the_master_did_not_take_for_a_running_instances_name_says_so(lab_: Harness) -> None:
    log = 'nginx: [emerg] host not found in upstream "app-v2-2:8080" in /etc/nginx/nginx.conf:40'
    apply = lab_.rt.apply_config

    def not_taken(config: str, *, old_workers_s: float = 0.0) -> Applied:
        if "app-v2" in config:
            raise LabError(
                f"nginx did not take the new config: no worker of it within 2 s (proxy log: {log})"
            )
        return apply(config, old_workers_s=old_workers_s)

    lab_.rt.apply_config = not_taken  # type: ignore[method-assign]
    record = lab_.run()
    assert record.status == "failed" and (record.error or "").startswith("nginx did not take the new config")
    assert (record.error or "").endswith(
        "(app-v2-2 was running, at 10.2.0.2 on the run's network: Docker's DNS did not answer for it)"
    )


def test_unsent_ticks_are_noted_as_client_saturation(lab_: Harness) -> None:
    lab_.probe_samples.extend(Sample(i, 1000.0 + i, None, None, error=ErrorClass.SATURATED) for i in range(3))
    lab_.probe_samples.append(Sample(3, 1003.0, 1003.0, 1003.01, 200, "v1", "app-v1-1"))
    record = lab_.run()
    assert record.status == "completed" and len(record.samples) == 4
    (note,) = record.notes
    assert note.startswith("3 ticks were not sent (client saturation)")


def failing_to_the_end(harness: Harness) -> None:
    harness.probe_samples.append(Sample(0, 1000.0, 1000.0, 1000.01, 200, "v1", "app-v1-1"))
    harness.probe_samples.extend(
        Sample(i, 1000.0 + i, 1000.0 + i, 1000.01 + i, 502, error=ErrorClass.HTTP_5XX) for i in range(1, 4)
    )


def test_failures_to_the_end_of_a_deployment_say_to_probe_longer(lab_: Harness) -> None:
    failing_to_the_end(lab_)
    record = lab_.run()
    assert record.events
    assert any(n.startswith("clients were still failing when the probe stopped") for n in record.notes)


def test_failures_before_anything_was_deployed_do_not_say_to_probe_longer_after_it(lab_: Harness) -> None:
    # `lab measure` against a URL that never answered well: the run fails after its baseline, and
    # "probe longer after the deployment (--settle)" would send the user after the wrong setting.
    failing_to_the_end(lab_)
    runner = lab_.runner()

    def no_good_baseline(run: Any) -> None:
        raise LabError("the URL never answered well in the baseline; nothing was deployed")

    runner.target.after_baseline = no_good_baseline  # type: ignore[method-assign]
    record = runner.execute()
    assert record.status == "failed" and not record.events
    assert not any("still failing" in n for n in record.notes)


@pytest.mark.parametrize(
    ("rate", "timeout_s", "workers"),
    [(200, 2.0, 500), (1000, 0.5, 625), (10, 2.0, 64), (200, 0.1, 64), (5000, 2.0, 1024)],
)
def test_probe_workers_cover_a_timeout_of_requests_in_flight_within_bounds(
    rate: float, timeout_s: float, workers: int
) -> None:
    config = RunOptions("blue-green", rate=rate, probe_timeout_s=timeout_s, mode="fresh")
    probe = probe_config("http://proxy.test:8000", config)
    assert probe.workers == workers
    assert probe.workers >= min(1024, rate * timeout_s)
    assert (probe.url, probe.rate, probe.mode, probe.timeout_s) == (
        "http://proxy.test:8000",
        rate,
        "fresh",
        timeout_s,
    )


def test_a_route_waits_for_the_old_nginx_workers_before_the_next_step(lab_: Harness) -> None:
    # red-black stops v1 right after the switch: not before the old workers, which still route to v1 for
    # their kept-alive clients, have gone.
    record = lab_.run("red-black")
    assert record.status == "completed", record.error
    # Every route step's reload waits for the old workers before the step goes on (the wait is part of the
    # reload's exec), bounded by keepalive_min_timeout (1 s) + the read timeout (5 s) + 1 s. The set-up's
    # first route does not: the start-up config's workers never held the clients' port.
    waits = lab_.rt.old_worker_waits
    assert waits[0] == 0.0 and waits[1:] == [7.0] * (len(waits) - 1) and len(waits) >= 2
    assert not record.notes


def test_the_proxy_starts_with_the_clients_port_closed_and_the_first_route_opens_it(lab_: Harness) -> None:
    record = lab_.run("red-black")
    assert record.status == "completed", record.error
    assert "listen 80;" not in lab_.rt.proxy_config and "listen 8081;" in lab_.rt.proxy_config
    assert "listen 80;" in lab_.rt.applied[0] and "proxy_pass http://app;" in lab_.rt.applied[0]


def test_a_route_that_only_brings_instances_in_waits_too(lab_: Harness) -> None:
    # Green joining blue takes nothing out, but its step's end is when the 50/50 route holds for every
    # client (a tester's preview, the mixed window are measured from it): old workers still answer their
    # kept-alive clients by the old route until they go.
    record = lab_.runner("blue-green", params={"overlap_s": 0.01, "rollback_window_s": 0.01}).execute()
    assert record.status == "completed", record.error
    routes = [e.detail for e in record.events if e.kind == "Route"]
    assert len(routes) == 2 and "v1 50%, v2 50%" in routes[0], routes
    assert lab_.rt.old_worker_waits == [0.0, 7.0, 7.0]  # the set-up's (nothing to wait for), 50/50, switch


def test_old_workers_that_never_leave_give_a_note_not_a_hang(lab_: Harness) -> None:
    lab_.rt.old_workers_leave = False
    record = lab_.run("red-black")
    assert record.status == "completed", record.error
    assert any("old nginx workers still ran" in note for note in record.notes)
    stops = [e for e in record.events if e.kind == "Stop"]
    assert stops, "the run went on after the wait ran out"


def test_a_proxy_whose_workers_cannot_be_seen_is_noted_not_silently_unwaited(lab_: Harness) -> None:
    lab_.rt.workers_before = 0
    record = lab_.run("red-black")
    assert record.status == "completed", record.error
    (note,) = [n for n in record.notes if "no nginx worker was seen" in n]
    assert "did not wait for the old workers" in note


def test_a_config_that_took_more_than_one_check_is_noted(lab_: Harness) -> None:
    lab_.rt.checks = 2  # an instance's name did not resolve at the first nginx -t
    record = lab_.run("red-black")
    assert record.status == "completed", record.error
    noted = [note for note in record.notes if "nginx -t passed on check 2" in note]
    assert noted and all("Docker's DNS" in note for note in noted)


def test_the_probe_goes_past_dockers_proxy_where_the_network_address_answers(lab_: Harness) -> None:
    lab_.rt.endpoints = on_network(REACHABLE)
    record = lab_.run()
    assert record.status == "completed" and record.notes == []
    assert lab_.probes[0].config.url == record.url == f"http://{REACHABLE}:80/"
    assert record.published_url == ENDPOINTS.url  # for people: curl, --keep


@pytest.mark.parametrize(("host", "why"), [(UNREACHABLE, "ConnectError"), (SOMEONE_ELSE, "generation '7'")])
def test_a_network_address_that_is_not_this_runs_nginx_leaves_the_probe_on_the_published_port(
    lab_: Harness, host: str, why: str
) -> None:
    lab_.rt.endpoints = on_network(host)
    record = lab_.run()
    assert record.status == "completed"
    assert lab_.probes[0].config.url == record.url == record.published_url == ENDPOINTS.url
    (note,) = [n for n in record.notes if "published port" in n]
    assert host in note and why in note


# -- the run folder and the tear-down, side by side (run_once) ------------------------------------------


def _once(lab_: Harness, out_dir: Path) -> RunResult:
    options, target = lab_.target("blue-green", {"rollback_window_s": 1.5, "overlap_s": 0})
    return run_once(options, target, out_dir=out_dir, run_id=lab_.rt.run_id, probe_factory=lab_.probe)


def test_the_run_folder_is_written_while_the_run_is_removed_and_then_times_the_removal(
    lab_: Harness, tmp_path: Path
) -> None:
    removed = lab_.rt.cleanup
    drawn_meanwhile: list[bool] = []

    def slow_cleanup() -> Removed:  # an engine that takes its time: the folder's charts come meanwhile
        deadline = real_time.monotonic() + 5.0
        while not list(tmp_path.glob("*/report.html")) and real_time.monotonic() < deadline:
            real_time.sleep(0.01)
        drawn_meanwhile.append(bool(list(tmp_path.glob("*/report.html"))))
        return removed()

    lab_.rt.cleanup = slow_cleanup  # type: ignore[method-assign]
    result = _once(lab_, tmp_path)
    assert result.record.status == "completed", result.record.error
    assert drawn_meanwhile == [True], "report.html was written only after the run's objects were removed"
    assert result.folder is not None and result.record.removed is not None
    timings = json.loads((result.folder / "journal.json").read_text())["timings"]
    # The journal was written again once the tear-down had ended: its time and the wall time are in it.
    assert timings["teardown_s"] is not None and timings["wall_s"] is not None, timings


def test_a_tear_down_that_fails_is_raised_after_the_folder_is_written(lab_: Harness, tmp_path: Path) -> None:
    def broken_cleanup() -> Removed:
        raise LabError("the engine went away")

    lab_.rt.cleanup = broken_cleanup  # type: ignore[method-assign]
    with pytest.raises(LabError, match="the engine went away"):
        _once(lab_, tmp_path)
    (folder,) = tmp_path.iterdir()  # what the run measured is kept
    assert (folder / "samples.csv").is_file() and (folder / "report.html").is_file()
    journal = json.loads((folder / "journal.json").read_text())
    assert journal["status"] == "completed"
    # Written again after the failed removal: its time, and a note of what failed.
    assert journal["timings"]["teardown_s"] is not None and journal["timings"]["wall_s"] is not None
    assert "removing what the run made failed: the engine went away" in journal["notes"]
