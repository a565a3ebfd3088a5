"""Driving a strategy's plan against a runtime while the probe runs, stamping every step on its clock."""

from __future__ import annotations

import math
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Protocol

import httpx

from lab import strategies
from lab.analysis.attribution import AddressBook, AttributedProbe
from lab.analysis.judge import judge_samples
from lab.engines.base import ProxyEndpoints, Runtime
from lab.engines.names import app_image
from lab.errors import LabError
from lab.live.feed import SampleFeed
from lab.model import (
    Check,
    ErrorClass,
    Event,
    Instance,
    Judge,
    Pause,
    Route,
    Sample,
    Start,
    Step,
    Stop,
    describe,
    fleet,
)
from lab.options import RunOptions
from lab.probe.config import ProbeConfig
from lab.probe.process import ProbeProcess
from lab.record import RunRecord
from lab.strategies.base import Plan
from lab.targets.fleet.nginx import render_config, supported
from lab.targets.fleet.plan import PlanError, Topology, drive

OLD, NEW = "v1", "v2"


class Probe(Protocol):
    @property
    def error(self) -> str | None: ...

    started_at: float | None  # when tick 0 was due

    def start(self) -> None: ...
    def new_samples(self) -> list[Sample]: ...
    def stop(self) -> list[Sample]: ...


def probe_config(url: str, config: RunOptions) -> ProbeConfig:
    # Enough workers to keep sending on schedule through a whole timeout of a hung server: with fewer,
    # every worker waits on the server and the ticks in between would be recorded as client saturation,
    # hiding server failures. Capped, because a thread per request in flight has a cost too.
    workers = min(1024, max(64, math.ceil(config.rate * config.probe_timeout_s * 1.25)))
    return ProbeConfig(
        url=url, rate=config.rate, mode=config.mode, timeout_s=config.probe_timeout_s, workers=workers
    )


EventHook = Callable[[str, Event | None], None]


def _no_hook(line: str, event: Event | None) -> None:
    return None


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Clean-up must not be cut short by a second Ctrl-C."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread: nothing to protect
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Runner:
    def __init__(
        self,
        config: RunOptions,
        runtime: Runtime,
        *,
        probe_factory: Callable[[ProbeConfig], Probe] = ProbeProcess,
        keep: bool = False,
        hook: EventHook = _no_hook,
    ):
        self.config = config
        self.rt = runtime
        self.probe_factory = probe_factory
        self.keep = keep
        self.hook = hook
        self.strategy = strategies.get(config.strategy)
        self.old = fleet(OLD, config.fleet_size)
        self.new = fleet(NEW, config.fleet_size)
        self.generation = 0
        self.traffic_changed_at = 0.0  # when the last Route went live: a Judge looks at what came after
        self.probe: Probe | None = None
        self.proxy = config.proxy
        self.endpoints: ProxyEndpoints | None = None
        self.apps = {OLD: config.v1_app, NEW: config.v2_app}
        self.addresses = AddressBook()
        self.record = RunRecord(
            config, runtime.run_id, datetime.now(UTC).isoformat(timespec="seconds"), time.monotonic()
        )
        # Samples streamed from the probe while the run goes on, for the Judge and a live view.
        self.feed = SampleFeed(config.rate, self.record.t0, plan=self._plan)
        # Never pooled: each health or generation poll must reach a current nginx worker.
        self.http = httpx.Client(timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0))

    # -- the run ------------------------------------------------------------------------------------
    def run(self) -> RunRecord:
        record = self.record
        probe: Probe | None = None
        try:
            self.rt.preflight([self._image(OLD), self._image(NEW)])
            self._setup()
            assert self.endpoints is not None
            probe = self.probe = AttributedProbe(
                self.probe_factory(probe_config(self.endpoints.url, self.config)), self.addresses
            )
            try:
                probe.start()
            except RuntimeError as exc:
                raise LabError(str(exc).splitlines()[0]) from None
            record.probe_started = probe.started_at
            self.feed.attach(probe, probe.started_at)
            self.feed.set_phase("baseline")
            self.hook(
                f"probing {self.endpoints.url} at {self.config.rate:g} req/s ({self.config.mode})", None
            )
            time.sleep(self.config.baseline_s)
            self.feed.set_phase("plan")
            record.status = self._execute_plan()
            self.feed.set_phase("settle")
            time.sleep(self.config.settle_s)
        except KeyboardInterrupt:
            record.status, record.error = "interrupted", "interrupted by the user"
            raise
        except LabError as exc:
            record.status, record.error = "failed", str(exc)
        except Exception as exc:  # a bug or an engine surprise: still clean up and still write the journal
            record.status = "failed"
            record.error = f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]
            record.error_detail = traceback.format_exc()
        finally:
            self.feed.set_phase("cleanup")
            with _sigint_ignored():
                try:
                    if probe is not None:
                        self.feed.stopping()
                        record.samples = probe.stop()
                        self.feed.detach()
                        record.probe_stopped = time.monotonic()
                        self._note_saturation()
                        if probe.error and record.status not in {"failed", "interrupted"}:
                            # A hole in the samples is not missing traffic: the run measured nothing there.
                            last = (probe.error.strip().splitlines() or ["no message"])[-1]
                            record.status = "failed"
                            record.error = f"the probe failed: {last}"
                            record.error_detail = probe.error
                finally:  # whatever stopping the probe did, the containers go
                    if not self.keep or record.status == "interrupted":
                        record.removed = self.rt.cleanup()
                    self.http.close()
                    self.feed.finish(record.status)
        return record

    def _setup(self) -> None:
        self.hook(f"run {self.rt.run_id}: starting {len(self.old)} x {OLD} behind nginx", None)
        self.proxy, notes = supported(self.config.proxy, self.rt.proxy_nginx_version())
        self.record.proxy = self.proxy
        for note in notes:
            self.record.notes.append(note)
            self.hook(f"note: {note}", None)
        self.rt.create_network()
        self._start(self.old)
        # The proxy starts on a config that names no instance, so it cannot fail on one; the first real
        # config then goes through `nginx -t` and a reload like every later one.
        self.endpoints = self.rt.start_proxy(
            render_config(None, self.proxy, apps=self.apps), self.config.port
        )
        self.record.url = self.endpoints.url
        self._wait_generation(0)
        if not self._wait_healthy(self.old):
            raise LabError(f"the {OLD} fleet did not become healthy: {self._why_unhealthy(self.old)}")
        self._apply_route(Route.even(self.old), "initial")
        self._wait_serving()

    def _plan(self) -> tuple[Plan, Topology]:
        plan = self.strategy.plan(self.old, self.new, **dict(self.config.params))
        return plan, Topology(frozenset(self.old), Route.even(self.old))

    def _execute_plan(self) -> str:
        plan, start = self._plan()
        try:
            end = drive(plan, start, lambda index, step, after: self._step(index, step, after.in_service))
        except PlanError as exc:
            raise LabError(f"strategy {self.strategy.name} made an impossible step: {exc}") from None
        on_new = set(end.route.instances) <= set(self.new) and not (end.running & set(self.old))
        return "completed" if on_new else "rolled_back"

    def _note_saturation(self) -> None:
        unsent = sum(1 for s in self.record.samples if s.error is ErrorClass.SATURATED)
        if unsent:
            self.record.notes.append(
                f"{unsent:,} ticks were not sent (client saturation): server failures while they were due "
                "are not counted, so failures may be undercounted"
            )

    def _step(self, index: int, step: Step, in_service: int | None = None) -> bool | None:
        detail = describe(step)
        started = time.monotonic()
        self.feed.step_started(index, detail)
        self.hook(f"step {index}: {detail}", None)
        result: bool | None = None
        error: str | None = None
        try:
            match step:
                case Start(instances):
                    self._start(instances)
                    result = self._wait_healthy(instances)
                    if not result:
                        error = self._why_unhealthy(instances)
                case Stop(instances):
                    self._parallel(
                        lambda inst: self.rt.stop_instance(inst, self.config.stop_grace_s), instances
                    )
                case Route():
                    self._apply_route(step, f"step {index}: {detail}")
                case Pause(seconds):
                    time.sleep(seconds)
                case Check(instances):
                    result = all(self._healthy(inst) for inst in instances)
                case Judge():
                    result, error = self._judge(step)
        except BaseException as exc:  # the journal shows the step that failed, whatever failed it
            reason = str(exc) or type(exc).__name__
            event = Event(
                index, type(step).__name__, detail, started, time.monotonic(), result, reason, in_service
            )
            self.record.events.append(event)
            raise
        event = Event(
            index, type(step).__name__, detail, started, time.monotonic(), result, error, in_service
        )
        if isinstance(step, Route):
            self.traffic_changed_at = event.ended
        self.record.events.append(event)
        self.feed.step_ended(index, event.kind, result)
        self.hook(
            f"step {index} done in {event.ended - event.started:.2f} s" + (f": {error}" if error else ""),
            event,
        )
        return result

    # -- effects --------------------------------------------------------------------------------------
    def _render(self, route: Route, label: str) -> str:
        config = render_config(route, self.proxy, generation=self.generation, title=label, apps=self.apps)
        self.record.configs.append((label, config))
        return config

    def _apply_route(self, route: Route, label: str) -> None:
        self.generation += 1
        self.rt.apply_config(self._render(route, label))
        self._wait_generation(self.generation)
        self._wait_old_workers()
        self.feed.set_route(route)

    def _start(self, instances: tuple[Instance, ...]) -> None:
        def start(inst: Instance) -> None:
            env = self.config.v1_env if inst.version == OLD else self.config.v2_env
            self.rt.start_instance(inst, self._image(inst.version), env)
            # Where the proxy will reach it: what X-Lab-Upstream names, for apps that do not name
            # themselves (lab/attribution.py).
            if ip := self.rt.instance_ip(inst):
                self.addresses.add(f"{ip}:{self.apps[inst.version].port}", inst, time.monotonic())

        self._parallel(start, instances)

    def _image(self, version: str) -> str:
        return self.apps[version].image or app_image(version)

    @staticmethod
    def _parallel(fn: Callable[[Instance], None], instances: tuple[Instance, ...]) -> None:
        with ThreadPoolExecutor(max_workers=max(1, len(instances))) as pool:
            for future in [pool.submit(fn, inst) for inst in instances]:
                future.result()

    def _healthy(self, inst: Instance) -> bool:
        assert self.endpoints is not None
        try:
            return self.http.get(f"{self.endpoints.admin_url}/lab/health/{inst.name}").status_code == 200
        except httpx.HTTPError:
            return False

    def _wait_healthy(self, instances: tuple[Instance, ...]) -> bool:
        if self.endpoints is None:
            return True  # before the proxy exists; the caller waits again once it does
        pending = set(instances)
        deadline = time.monotonic() + self.config.health_timeout_s
        last_exit_check = 0.0
        while pending:
            pending = {inst for inst in pending if not self._healthy(inst)}
            now = time.monotonic()
            if not pending:
                return True
            if now > deadline:
                return False
            if now - last_exit_check > 0.5:
                last_exit_check = now
                if any(self.rt.instance_exit(inst) is not None for inst in pending):
                    return False  # crashed at start: waiting longer cannot help
            time.sleep(0.05)
        return True

    def _why_unhealthy(self, instances: tuple[Instance, ...]) -> str:
        for inst in instances:
            code = self.rt.instance_exit(inst)
            if code is not None:
                logs = self.rt.instance_logs(inst, lines=1)
                return f"{inst.name} exited with code {code}" + (f": {logs}" if logs else "")
        return f"not healthy within {self.config.health_timeout_s:g} s"

    def _wait_generation(self, generation: int, timeout_s: float = 10.0) -> None:
        """A reload returns before nginx's new workers run: wait until they answer with this config."""
        assert self.endpoints is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                body = self.http.get(f"{self.endpoints.admin_url}/lab/generation").text.strip()
                if body == str(generation):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        logs = self.rt.proxy_logs(3).replace("\n", " | ")
        raise LabError(
            f"nginx did not load config generation {generation} within {timeout_s:g} s"
            + (f" (proxy log: {logs})" if logs else "")
        )

    def _wait_old_workers(self) -> None:
        """A route has not moved until no nginx worker of an older config is left.

        After a reload an old worker goes on serving its kept-alive clients with the old upstreams, for up
        to keepalive_min_timeout and through any answer in flight. Stopping an instance the new config no
        longer names right after the reload failed those requests: red/black lost 5 to 13 requests (502)
        in 7 runs of 9. So the step ends when only the new config's workers run.
        """
        limit = (self.proxy.keepalive_min_timeout_s or 0.0) + self.proxy.read_timeout_s + 1.0
        deadline = time.monotonic() + limit
        while True:
            workers = self.rt.proxy_workers()
            if workers is None or workers <= self.proxy.worker_processes:
                return
            if time.monotonic() > deadline:
                note = (
                    f"old nginx workers still ran {limit:g} s after a reload: the steps after it went on "
                    "while they served their last clients"
                )
                if note not in self.record.notes:
                    self.record.notes.append(note)
                    self.hook(f"note: {note}", None)
                return
            time.sleep(0.05)

    def _judge(self, judge: Judge) -> tuple[bool, str | None]:
        """The verdict on `judge.version` from every tick due since traffic last changed.

        The probe streams samples in batches, and a slow answer arrives late: wait until every tick due
        before the cut has come back (or could no longer: three timeouts, connect, write and read), so
        the slowest answers, the ones a latency limit is for, are never left out.
        """
        assert self.probe is not None and self.probe.started_at is not None
        cut, t0, rate = time.monotonic(), self.probe.started_at, self.config.rate
        first = max(0, math.ceil((self.traffic_changed_at - t0) * rate))
        last = math.floor((cut - t0) * rate)  # ticks first..last were due in the judged window
        deadline = cut + 3 * self.config.probe_timeout_s + 0.5
        while True:
            self.feed.drain()
            window = self.feed.select(lambda s: first <= s.seq <= last)
            if len(window) >= last - first + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        verdict = judge_samples(window, judge)
        missing = last - first + 1 - len(window)
        reason = verdict.reason + (
            f"; {missing} tick(s) never came back from the probe" if missing > 0 else ""
        )
        return verdict.passed and missing <= 0, None if verdict.passed and missing <= 0 else reason

    def _wait_serving(self, timeout_s: float = 15.0) -> None:
        assert self.endpoints is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.http.get(self.endpoints.url).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise LabError(f"the proxy at {self.endpoints.url} did not serve within {timeout_s:g} s")
