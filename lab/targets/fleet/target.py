"""The lab's own fleet as a target: a strategy's plan walked against an engine, with nginx in front.

Every step is stamped on the probe's clock as an Event in the run's record. The pipeline (lab/pipeline.py)
owns the probe; this owns the fleet, the proxy and the plan.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx

from lab import strategies
from lab.analysis.attribution import AddressBook, AttributedProbe
from lab.analysis.judge import judge_samples
from lab.engines.base import Engine, ProxyEndpoints
from lab.engines.names import app_image
from lab.errors import LabError
from lab.model import (
    Check,
    Event,
    Instance,
    Judge,
    Pause,
    Route,
    Start,
    Step,
    Stop,
    describe,
    fleet,
)
from lab.options import DEFAULT_PORT, RunOptions
from lab.strategies.base import Plan
from lab.targets.base import EventHook, Probe, RunContext, no_hook, note_once, take_down, wait_serving
from lab.targets.fleet.nginx import render_config, supported
from lab.targets.fleet.plan import PlanError, Topology, drive

OLD, NEW = "v1", "v2"


class FleetTarget:
    """The lab's v1 fleet behind nginx, moved to v2 by `options.strategy` on `engine`."""

    old: str | None = OLD
    new: str | None = NEW

    def __init__(self, options: RunOptions, engine: Engine, *, hook: EventHook = no_hook):
        self.options = options
        self.engine = engine
        self.hook = hook
        self.strategy = strategies.get(options.strategy)
        self.name = options.strategy
        self.capacity: int | None = options.fleet_size
        self.old_fleet = fleet(OLD, options.fleet_size)
        self.new_fleet = fleet(NEW, options.fleet_size)
        self.outlook: Callable[[], tuple[Plan, Topology]] | None = self._plan
        self.generation = 0
        self.traffic_changed_at = 0.0  # when the last Route went live: a Judge looks at what came after
        self.proxy = options.proxy
        self.endpoints: ProxyEndpoints | None = None
        self.apps = {OLD: options.v1_app, NEW: options.v2_app}
        self.addresses = AddressBook()
        self.run: RunContext | None = None
        # Never pooled: each health or generation poll must reach a current nginx worker.
        # No proxy from the environment (HTTP_PROXY): every address polled is the run's own.
        self.http = httpx.Client(
            timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0), trust_env=False
        )

    # -- the target -----------------------------------------------------------------------------------
    def setup(self, run: RunContext) -> str:
        self.run = run
        self.hook = run.hook
        self.engine.preflight([self._image(OLD), self._image(NEW)])
        self.engine.watch()  # from here on, a killed lab leaves nothing behind for long
        self._setup()
        self.engine.watching()  # connected meanwhile; a reaper that could not start fails the run here
        assert self.endpoints is not None
        return self._probe_url(self.endpoints)

    def _probe_url(self, endpoints: ProxyEndpoints) -> str:
        """Where the probe sends: nginx at its address on the run's network when this host reaches it,
        past Docker's userland proxy, which relays every connection to a published port through a
        process of its own on the same cores (it took half the probe's ceiling: docs/measurements.md);
        else the published port, with a note. Reached means this run's nginx answered there with this
        run's config generation, not merely that something at that address answered."""
        direct, admin = endpoints.network_url, endpoints.network_admin_url
        if direct is None or admin is None:
            return endpoints.url
        try:
            answer = self.http.get(f"{admin}/lab/generation").text.strip()
            why = f"it answered generation {answer!r}, not {self.generation}"
        except httpx.HTTPError as exc:
            answer, why = None, f"{type(exc).__name__}"
        if answer == str(self.generation):
            return direct
        self._note(
            f"the probe sends to the published port {endpoints.url}: nginx at its address on the run's "
            f"network ({direct}) did not answer from this host ({why})"
        )
        return endpoints.url

    def attach(self, probe: Probe) -> Probe:
        """Answers are attributed to the instance nginx reached, for apps that do not name themselves."""
        return AttributedProbe(probe, self.addresses)

    def after_baseline(self, run: RunContext) -> None:
        return None

    def deploy(self, run: RunContext) -> str:
        return self._execute_plan()

    def teardown(self, run: RunContext, *, keep: bool) -> None:
        take_down(self.engine, self.http, run, keep=keep)

    @property
    def _run(self) -> RunContext:
        assert self.run is not None, "the target is used before the run set it up"
        return self.run

    def _setup(self) -> None:
        record = self._run.record
        self.hook(f"run {self.engine.run_id}: starting {len(self.old_fleet)} x {OLD} behind nginx", None)
        self.proxy, notes = supported(self.options.proxy, self.engine.proxy.nginx_version())
        record.proxy = self.proxy
        for note in notes:
            record.notes.append(note)
            self.hook(f"note: {note}", None)
        self.engine.create_network()
        # The fleet and the proxy start side by side: each is a few engine round trips and a process
        # start, and neither needs the other yet. The proxy starts on a config that names no instance, so
        # it cannot fail on one, and listens on its admin port alone; the first real config then goes
        # through `nginx -t` and a reload like every later one, and opens the clients' port.
        with ThreadPoolExecutor(max_workers=1) as pool:
            proxy = pool.submit(
                self.engine.proxy.start,
                render_config(None, self.proxy, apps=self.apps, listen=False),
                self.options.port,
                DEFAULT_PORT,
            )
            try:
                self._start(self.old_fleet)
            finally:
                self.endpoints = proxy.result()
        record.url = record.published_url = self.endpoints.url
        self._wait_generation(0)
        if not self._wait_healthy(self.old_fleet):
            raise LabError(f"the {OLD} fleet did not become healthy: {self._why_unhealthy(self.old_fleet)}")
        # No wait for the start-up workers: they never listened on the clients' port (render_config's
        # `listen`), so the first client can only reach a worker of this config.
        self._apply_route(Route.even(self.old_fleet), "initial", old_workers=False)
        wait_serving(self.http, self.endpoints.url, f"the {OLD} fleet", timeout_s=15.0)

    def _plan(self) -> tuple[Plan, Topology]:
        plan = self.strategy.plan(self.old_fleet, self.new_fleet, **dict(self.options.params))
        return plan, Topology(frozenset(self.old_fleet), Route.even(self.old_fleet))

    def _execute_plan(self) -> str:
        plan, start = self._plan()
        try:
            end = drive(plan, start, lambda index, step, after: self._step(index, step, after.in_service))
        except PlanError as exc:
            raise LabError(f"strategy {self.strategy.name} made an impossible step: {exc}") from None
        on_new = set(end.route.instances) <= set(self.new_fleet) and not (end.running & set(self.old_fleet))
        return "completed" if on_new else "rolled_back"

    def _step(self, index: int, step: Step, in_service: int | None = None) -> bool | None:
        detail = describe(step)
        started = time.monotonic()
        self._run.feed.step_started(index, detail)
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
                        lambda inst: self.engine.fleet.stop_instance(inst, self.options.stop_grace_s),
                        instances,
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
            self._run.record.events.append(event)
            raise
        event = Event(
            index, type(step).__name__, detail, started, time.monotonic(), result, error, in_service
        )
        if isinstance(step, Route):
            self.traffic_changed_at = event.ended
        self._run.record.events.append(event)
        self._run.feed.step_ended(index, event.kind, result)
        self.hook(
            f"step {index} done in {event.ended - event.started:.2f} s" + (f": {error}" if error else ""),
            event,
        )
        return result

    # -- effects --------------------------------------------------------------------------------------
    def _render(self, route: Route, label: str) -> str:
        config = render_config(route, self.proxy, generation=self.generation, title=label, apps=self.apps)
        self._run.record.configs.append((label, config))
        return config

    def _apply_route(self, route: Route, label: str, *, old_workers: bool = True) -> None:
        """A route has not moved until no nginx worker of an older config is left (`old_workers=False`:
        the config before held no client's port, so none of its workers can be routing a client).

        After a reload an old worker goes on serving its kept-alive clients with the old upstreams, for up
        to keepalive_min_timeout and through any answer in flight. Stopping an instance the new config no
        longer names right after the reload failed those requests: red/black lost 5 to 13 requests (502)
        in 7 runs of 9. So the step ends when only the new config's workers run: the proxy waits for the
        old ones in the same exec as the reload, then this waits for the new ones to answer.
        """
        self.generation += 1
        limit = self.proxy.old_workers_wait_s if old_workers else 0.0
        try:
            applied = self.engine.proxy.apply_config(self._render(route, label), old_workers_s=limit)
        except LabError as exc:  # nginx -t's verdict, or a reload the master did not take (its log said why)
            hint = self._dns_hint(str(exc))
            if not hint:
                raise
            raise type(exc)(f"{exc}{hint}") from None
        if applied.checks > 1:
            self._note(
                f"{label}: nginx -t passed on check {applied.checks}: Docker's DNS did not resolve an "
                "instance's name at first"
            )
        if applied.workers_before == 0:
            self._note(
                "no nginx worker was seen in the proxy at a reload (no process titled 'nginx: worker "
                "process'): the route steps did not wait for the old workers"
            )
        if applied.old_workers:
            self._note(
                f"old nginx workers still ran {limit:g} s after a reload: the steps after it went on "
                "while they served their last clients"
            )
        self._wait_generation(self.generation)
        self._run.feed.set_route(route)

    def _dns_hint(self, error: str) -> str:
        """Why nginx could not find an instance that runs: Docker's embedded DNS did not answer for it (seen
        once, as a swarm was left on the same engine), not a name the lab got wrong."""
        named = re.search(r'host not found in upstream "([^":]+)', error)
        name = named.group(1) if named else None
        inst = next((i for i in (*self.old_fleet, *self.new_fleet) if i.name == name), None)
        if inst is None or self.engine.fleet.instance_exit(inst) is not None:
            return ""
        ip = self.engine.fleet.instance_ip(inst)
        if ip is None:
            return ""
        return f" ({inst.name} was running, at {ip} on the run's network: Docker's DNS did not answer for it)"

    def _start(self, instances: tuple[Instance, ...]) -> None:
        def start(inst: Instance) -> None:
            env = self.options.v1_env if inst.version == OLD else self.options.v2_env
            self.engine.fleet.start_instance(inst, self._image(inst.version), env)
            # Where the proxy will reach it: what X-Lab-Upstream names, for apps that do not name
            # themselves (lab/analysis/attribution.py).
            if ip := self.engine.fleet.instance_ip(inst):
                self.addresses.add(f"{ip}:{self.apps[inst.version].port}", inst, time.monotonic())

        self._parallel(start, instances)

    def _image(self, version: str) -> str:
        """Your image, or the lab's: by a registry's name when the run gives one (a swarm's nodes pull)."""
        own = self.apps[version].image
        return own or (
            f"{self.options.registry}/{app_image(version)}" if self.options.registry else app_image(version)
        )

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
        deadline = time.monotonic() + self.options.health_timeout_s
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
                if any(self.engine.fleet.instance_exit(inst) is not None for inst in pending):
                    return False  # crashed at start: waiting longer cannot help
            time.sleep(0.02)  # a poll is a few ms through nginx; a coarser one only made the step late
        return True

    def _why_unhealthy(self, instances: tuple[Instance, ...]) -> str:
        for inst in instances:
            code = self.engine.fleet.instance_exit(inst)
            if code is not None:
                logs = self.engine.fleet.instance_logs(inst, lines=1)
                return f"{inst.name} exited with code {code}" + (f": {logs}" if logs else "")
        return f"not healthy within {self.options.health_timeout_s:g} s"

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
        logs = self.engine.proxy.logs(3).replace("\n", " | ")
        raise LabError(
            f"nginx did not load config generation {generation} within {timeout_s:g} s"
            + (f" (proxy log: {logs})" if logs else "")
            + self._dns_hint(logs)  # a reload the master refused for a name that did not resolve
        )

    def _note(self, note: str) -> None:
        note_once(self._run.record, self.hook, note)

    def _judge(self, judge: Judge) -> tuple[bool, str | None]:
        """The verdict on `judge.version` from every tick due since traffic last changed.

        The probe streams samples in batches, and a slow answer arrives late: wait until every tick due
        before the cut has come back (or could no longer: three timeouts, connect, write and read), so
        the slowest answers, the ones a latency limit is for, are never left out.
        """
        probe = self._run.probe
        assert probe is not None and probe.started_at is not None
        cut, t0, rate = time.monotonic(), probe.started_at, self.options.rate
        first = max(0, math.ceil((self.traffic_changed_at - t0) * rate))
        last = math.floor((cut - t0) * rate)  # ticks first..last were due in the judged window
        deadline = cut + 3 * self.options.probe_timeout_s + 0.5
        while True:
            self._run.feed.drain()
            window = self._run.feed.select(lambda s: first <= s.seq <= last)
            if len(window) >= last - first + 1 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        verdict = judge_samples(window, judge)
        missing = last - first + 1 - len(window)
        reason = verdict.reason + (
            f"; {missing} tick(s) never came back from the probe" if missing > 0 else ""
        )
        return verdict.passed and missing <= 0, None if verdict.passed and missing <= 0 else reason
