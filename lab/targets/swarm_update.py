"""Swarm's own rolling update as a target (`lab run swarm-rolling --engine swarm`): the lab sets up one
service of N replicas at v1 behind its nginx, asks Swarm to update it to v2, and only watches.

Swarm's progress is polled (the service's UpdateStatus, every task's state) and each change becomes a step
on the probe's clock, so the timeline shows when Swarm started, paused, rolled back and finished, and the
failures of each moment sit beside the task change that caused them. The tasks that run are the capacity.

nginx follows the service's tasks by DNS (`server app:8080 resolve`, Docker's DNS asked every second):
with `endpoint_mode: dnsrr` the name answers with every task's own address, so no routing mesh (IPVS) is
needed, and nginx learns of a new or a stopped task within a second, as any proxy in front of a swarm
would.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

import httpx

from lab import strategies
from lab.engines.base import Engine, Services, TaskState, UpdateState
from lab.engines.names import app_image
from lab.errors import LabError
from lab.model import Event
from lab.options import DEFAULT_PORT, RunOptions
from lab.strategies.base import Plan
from lab.targets.base import EventHook, Probe, RunContext, no_hook, note_once, take_down, wait_serving
from lab.targets.fleet.nginx import RESOLVE_SINCE, render_config, supported
from lab.targets.fleet.plan import Topology

SERVICE = "app"  # the service's name in the run (lab-<run>-app) and its alias on the network
POLL_S = 0.1
DONE = {"completed", "paused", "rollback_completed", "rollback_paused"}
ROLLED_BACK = {"rollback_completed", "rollback_paused"}
RUNNING = {"running"}


def task_line(task: TaskState) -> str:
    version = task.image.rsplit(":", 1)[-1] if ":" in task.image else task.image
    text = f"task {task.id} (slot {task.slot}, {version}) {task.state}"
    if task.exit_code is not None:
        text += f", exit {task.exit_code}"
    return text + (f": {task.message}" if task.message and task.state not in RUNNING else "")


class SwarmUpdateTarget:
    name: str
    old: str | None = "v1"
    new: str | None = "v2"
    outlook: Callable[[], tuple[Plan, Topology]] | None = None

    def __init__(self, options: RunOptions, engine: Engine, *, hook: EventHook = no_hook):
        self.options, self.engine, self.hook = options, engine, hook
        self.name = options.strategy
        self.capacity: int | None = options.fleet_size
        self.settings: Any = strategies.get(options.strategy).settings(**dict(options.params))
        self.services = cast(Services, engine)  # a Swarm engine runs replicated services too
        self.run: RunContext | None = None
        self.http = httpx.Client(timeout=1.0, limits=httpx.Limits(max_keepalive_connections=0))
        self.index = 0

    # -- the target -----------------------------------------------------------------------------------
    def setup(self, run: RunContext) -> str:
        self.run, self.hook = run, run.hook
        options, record = self.options, run.record
        self.engine.preflight([self._image("v1"), self._image("v2")])
        self.engine.watch()  # from here on, a killed lab leaves nothing behind for long
        proxy, notes = supported(options.proxy, self.engine.proxy.nginx_version())
        version = self.engine.proxy.nginx_version()
        if version is not None and version < RESOLVE_SINCE:
            shown = ".".join(map(str, version))
            raise LabError(
                f"swarm-rolling needs nginx 1.27.3 or later in the proxy (server ... resolve), not {shown}"
            )
        record.proxy = proxy
        for note in notes:
            record.notes.append(note)
        self.hook(
            f"run {self.engine.run_id}: a service of {options.fleet_size} x v1 behind nginx; Swarm will "
            f"update it: {self.settings.describe()}",
            None,
        )
        self.engine.create_network()
        app = options.v1_app
        self.services.create_service(
            SERVICE,
            SERVICE,
            self._image("v1"),
            options.v1_env,
            options.fleet_size,
            self.settings,
            app.health_path,
            app.port,
        )
        endpoints = self.engine.proxy.start(
            render_config(None, proxy, apps={}, listen=False), options.port, DEFAULT_PORT
        )
        record.published_url = endpoints.url  # and the probe's: a swarm's overlay is not the host's
        follow = f"{SERVICE}:{app.port}"
        config = render_config(None, proxy, generation=1, title="every task of the service", follow=follow)
        self._wait_running(options.fleet_size, options.health_timeout_s)
        self.engine.watching()
        # No wait for the start-up config's workers: they never listened on the clients' port, so no
        # client reaches one (when they served a static page there, CI saw version "static" in a
        # stop-first run whose first reload had not waited for them). wait_serving below asks for an
        # answer through an upstream, which only this config's workers give.
        applied = self.engine.proxy.apply_config(config, old_workers_s=0.0)
        if applied.checks > 1:
            self._note(f"nginx -t passed on check {applied.checks}: Docker's DNS did not resolve the service")
        record.configs.append(("follow the service's tasks", config))
        wait_serving(self.http, endpoints.url, "the v1 service", timeout_s=20.0)
        return endpoints.url

    def attach(self, probe: Probe) -> Probe:
        return probe

    def after_baseline(self, run: RunContext) -> None:
        return None

    def deploy(self, run: RunContext) -> str:
        """Ask Swarm for v2, then record what it does until it is done (or the timeout)."""
        options, settings = self.options, self.settings
        self._event(run, "Update", f"service update to v2 ({settings.describe()})", time.monotonic(), None)
        self.services.update_service(SERVICE, self._image("v2"), options.v2_env)
        deadline = time.monotonic() + settings.timeout_s
        seen_tasks: dict[str, str] = {t.id: t.state for t in self.services.tasks(SERVICE)}
        last, decided, started = UpdateState(None, ""), False, False
        while time.monotonic() < deadline:
            now = time.monotonic()
            tasks = self.services.tasks(SERVICE)
            running = sum(1 for t in tasks if t.state in RUNNING)
            for task in sorted(tasks, key=lambda t: t.slot):
                if seen_tasks.get(task.id) != task.state:
                    seen_tasks[task.id] = task.state
                    self._event(run, "Task", task_line(task), now, None, in_service=running)
            state = self.services.update_state(SERVICE)
            if state.state != last.state:
                # A failing moment keeps Swarm's message as its error, which every view prints after it.
                # Only a rollback is a verdict against v2 (the analysis's rollback); a pause leaves both
                # versions serving, as Swarm does, and is the run's status, not a rollback.
                failed = state.state in ("paused", "rollback_started") and bool(state.message)
                error = state.message if failed else None
                verdict = failed and state.state == "rollback_started"
                if state.state in ROLLED_BACK and not decided:
                    # Measured: a one-task rollback began and ended between two polls (100 ms apart); the
                    # verdict is then first seen here, and Swarm's reason went with the state we missed.
                    what = "rolled back" if state.state == "rollback_completed" else "paused its rollback"
                    unseen = "" if started else f"; its start was not seen ({POLL_S:g} s polls)"
                    verdict, error = True, f"Swarm {what}{unseen}"
                decided = decided or verdict
                started = started or state.state == "rollback_started"
                self._event(
                    run,
                    "Swarm",
                    f"update {state.state}" + (f": {state.message}" if state.message and not failed else ""),
                    now,
                    False if verdict else None,
                    error=error,
                    in_service=running,
                )
                last = state
            if state.state in DONE:
                return _status(state)
            time.sleep(POLL_S)
        raise LabError(f"Swarm's update did not finish within {settings.timeout_s:g} s (last: {last.state})")

    def teardown(self, run: RunContext, *, keep: bool) -> None:
        take_down(self.engine, self.http, run, keep=keep)

    # -- helpers --------------------------------------------------------------------------------------
    def _note(self, note: str) -> None:
        assert self.run is not None
        note_once(self.run.record, self.hook, note)

    def _image(self, version: str) -> str:
        app = self.options.v1_app if version == "v1" else self.options.v2_app
        registry = self.options.registry
        return app.image or (f"{registry}/{app_image(version)}" if registry else app_image(version))

    def _event(
        self,
        run: RunContext,
        kind: str,
        detail: str,
        at: float,
        result: bool | None,
        *,
        error: str | None = None,
        in_service: int | None = None,
    ) -> None:
        """A moment of Swarm's, recorded as a step of no length at the time it was seen."""
        event = Event(self.index, kind, detail, at, at, result, error, in_service)
        run.record.events.append(event)
        run.feed.step_started(self.index, detail)
        run.feed.step_ended(self.index, kind, result)
        self.hook(f"step {self.index}: {detail}", event)
        self.index += 1

    def _wait_running(self, replicas: int, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            tasks = self.services.tasks(SERVICE)
            if sum(1 for t in tasks if t.state in RUNNING) >= replicas:
                return
            failed = [t for t in tasks if t.exit_code is not None]
            if failed and len(failed) >= replicas:
                raise LabError(f"the v1 service did not start: {task_line(failed[0])}")
            time.sleep(POLL_S)
        raise LabError(f"the v1 service's {replicas} tasks were not running within {timeout_s:g} s")


def _status(state: UpdateState) -> str:
    """The run's status from how Swarm's update ended."""
    if state.state == "completed":
        return "completed"
    if state.state in ("rollback_completed", "rollback_paused"):
        return "rolled_back"
    return "update_paused"
