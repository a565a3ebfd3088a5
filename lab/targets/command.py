"""Any deployment as a target (`lab measure`): the user's service at a URL, moved by their own deploy
command, which the lab starts, watches and records on the probe's clock.

The lab deploys nothing here. The command runs in its own process group, so a Ctrl-C (or a run that
fails) stops all of it: SIGINT, then SIGTERM, then SIGKILL, each after a bounded wait. Every line it prints
is kept with the time it arrived, so `kubectl rollout status` lines up with the failures it caused.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import IO

import httpx

from lab.errors import BadInput, LabError
from lab.model import Event, Sample
from lab.options import RunOptions
from lab.strategies.base import Plan
from lab.targets.base import EventHook, Probe, RunContext, no_hook
from lab.targets.fleet.plan import Topology

# After SIGINT, then SIGTERM: how long the command's process group gets to exit before the next signal.
STOP_WAITS_S = (5.0, 5.0)


def check_command(command: tuple[str, ...]) -> None:
    """A command that cannot be started is bad input, before anything is probed."""
    if not command:
        return
    program = command[0]
    if not program.strip():
        raise BadInput("the deploy command is empty: give a program after --, e.g. -- ./deploy.sh")
    if os.sep in program:
        if not os.path.isfile(program):
            raise BadInput(f"command not found: {program}")
        if not os.access(program, os.X_OK):
            raise BadInput(f"command is not executable: {program} (chmod +x it, or run it with its shell)")
    elif shutil.which(program) is None:
        raise BadInput(f"command not found: {program} (not on PATH)")


def old_version(baseline: list[Sample]) -> tuple[str | None, str | None]:
    """The version most of the baseline's good answers named, and a note when that needs saying."""
    seen = Counter(s.version for s in baseline if s.ok and s.finished is not None and s.version)
    if not seen:
        return None, (
            "no answer in the baseline named a version: failures and downtime are measured, the mixed "
            "window and flip-flops are not (see --version-header, --version-from-body)"
        )
    (most, n), *others = seen.most_common()
    if others:
        names = ", ".join(f"{v} {c:,}" for v, c in seen.most_common())
        return most, f"the baseline saw several versions ({names}): {most} is taken as the old one (--old)"
    return most, None


class CommandTarget:
    """The service at `options.measure.url`, moved by `options.measure.command` (or by hand)."""

    name = "measure"
    capacity: int | None = None
    outlook: Callable[[], tuple[Plan, Topology]] | None = None

    def __init__(self, options: RunOptions, *, hook: EventHook = no_hook):
        assert options.measure is not None
        self.options, self.measure = options, options.measure
        self.hook = hook
        self.old: str | None = self.measure.old_version
        self.new: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._readers: list[threading.Thread] = []

    # -- the target -----------------------------------------------------------------------------------
    def setup(self, run: RunContext) -> str:
        """One request before the probe starts: a URL that cannot be reached is said so at once."""
        self.hook = run.hook
        check_command(self.measure.command)
        url, request = self.measure.url, self.options.request
        try:
            with httpx.Client(verify=not request.insecure, timeout=self.options.probe_timeout_s) as client:
                client.get(url, headers=dict(request.headers))
        except httpx.HTTPError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BadInput(f"{url} cannot be reached: {reason}") from None
        return url

    def attach(self, probe: Probe) -> Probe:
        return probe

    def after_baseline(self, run: RunContext) -> None:
        probe = run.probe
        assert probe is not None and probe.started_at is not None
        cut = time.monotonic()
        deadline = cut + self.options.probe_timeout_s + 0.5  # the baseline's slowest answers
        while True:
            run.feed.drain()
            baseline = run.feed.select(lambda s: s.scheduled < cut)
            due = int((cut - probe.started_at) * self.options.rate)
            if len(baseline) >= due or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        good = [s for s in baseline if s.ok]
        if baseline and not good:
            failures = Counter(s.error.value for s in baseline if s.error is not None)
            shown = ", ".join(f"{k} {n:,}" for k, n in failures.most_common())
            raise BadInput(
                f"{self.measure.url} never answered well in the {self.options.baseline_s:g} s baseline "
                f"({len(baseline):,} requests: {shown}); nothing was deployed"
            )
        pattern = self.options.request.version_from_body
        if pattern and good and not any(s.version for s in good):
            raise BadInput(
                f"--version-from-body {pattern!r} matched no answer of the baseline; nothing was deployed"
            )
        if self.old is None:
            self.old, note = old_version(baseline)
            if note:
                run.record.notes.append(note)
                self.hook(f"note: {note}", None)
        run.record.versions = (self.old, None)
        self.hook(f"old version: {self.old}" if self.old else "the service names no version", None)

    def deploy(self, run: RunContext) -> str:
        if not self.measure.command:
            return self._watch(run)
        return self._run_command(run)

    def teardown(self, run: RunContext, *, keep: bool) -> None:
        self._stop_command()

    # -- a deploy done by hand --------------------------------------------------------------------------
    def _watch(self, run: RunContext) -> str:
        """Probe until --duration has passed, or until Ctrl-C: that ends the watch, not the run."""
        started = time.monotonic()
        how = f"for {self.measure.duration_s:g} s" if self.measure.duration_s else "until Ctrl-C"
        detail = f"watch {how} (deploy by hand)"
        run.feed.step_started(1, detail)
        self.hook(f"step 1: {detail}", None)
        ended_by = "the duration"
        try:
            while self.measure.duration_s is None or time.monotonic() - started < self.measure.duration_s:
                time.sleep(0.1)
        except KeyboardInterrupt:
            ended_by = "Ctrl-C"
        event = Event(1, "Watch", detail, started, time.monotonic(), None, None)
        run.record.events.append(event)
        run.feed.step_ended(1, event.kind, None)
        self.hook(f"step 1 done in {event.ended - event.started:.2f} s (ended by {ended_by})", event)
        return "completed"

    # -- the deploy command ---------------------------------------------------------------------------
    def _run_command(self, run: RunContext) -> str:
        record, argv = run.record, self.measure.command
        record.command = argv
        detail = "run " + " ".join(argv)
        run.feed.step_started(1, detail)
        self.hook(f"step 1: {detail}", None)
        started = time.monotonic()
        try:
            # Its own process group (and session): a Ctrl-C at the terminal reaches the lab, which stops
            # the whole group itself, in order, and records it.
            self.proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        except OSError as exc:
            raise LabError(f"cannot start {argv[0]}: {exc.strerror or exc}") from None
        lock = threading.Lock()
        for stream, pipe in (("stdout", self.proc.stdout), ("stderr", self.proc.stderr)):
            assert pipe is not None
            reader = threading.Thread(
                target=self._read, args=(pipe, stream, run, lock), name=f"command-{stream}", daemon=True
            )
            reader.start()
            self._readers.append(reader)
        try:
            code = self.proc.wait()
        except KeyboardInterrupt:
            self._stop_command()
            self._finish(run, detail, started, None, "interrupted by the user")
            raise
        for reader in self._readers:
            reader.join(5.0)
        record.command_exit = code
        error = None if code == 0 else f"the deploy command exited with code {code}"
        self._finish(run, detail, started, code == 0, error)
        if code != 0:
            record.error = error
            return "command_failed"
        return "completed"

    def _finish(
        self, run: RunContext, detail: str, started: float, ok: bool | None, error: str | None
    ) -> None:
        event = Event(1, "Command", detail, started, time.monotonic(), ok, error)
        run.record.events.append(event)
        run.feed.step_ended(1, event.kind, ok)
        self.hook(
            f"step 1 done in {event.ended - event.started:.2f} s" + (f": {error}" if error else ""), event
        )

    def _read(self, pipe: IO[bytes], stream: str, run: RunContext, lock: threading.Lock) -> None:
        for raw in iter(pipe.readline, b""):
            at = time.monotonic()
            line = raw.decode(errors="replace").rstrip("\r\n")
            with lock:
                run.record.output.append((at, stream, line))
            self.hook(f"{'│' if stream == 'stdout' else '┃'} {line}", None)
        pipe.close()

    def _stop_command(self) -> None:
        """The command's whole process group: SIGINT, then SIGTERM, then SIGKILL, with bounded waits. The
        group, not only the command: a deploy script's children (kubectl, ssh) must not outlive it."""
        proc = self.proc
        if proc is None:
            return
        for sig, wait_s in ((signal.SIGINT, STOP_WAITS_S[0]), (signal.SIGTERM, STOP_WAITS_S[1])):
            if not _group_alive(proc):
                return
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, sig)
            deadline = time.monotonic() + wait_s
            while _group_alive(proc) and time.monotonic() < deadline:
                time.sleep(0.05)
        if _group_alive(proc):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5.0)


def _group_alive(proc: subprocess.Popen[bytes]) -> bool:
    """Whether any live process of the command's group is left. Its leader is reaped first; a zombie whose
    parent has gone (and whose new parent, PID 1 in a container, may never reap it) does not count."""
    proc.poll()
    try:
        os.killpg(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a process of the group changed its user: it is still there
        return True
    return any(state != "Z" for state in _group_states(proc.pid))


def _group_states(pgid: int) -> list[str]:
    """The state letter of every process in group `pgid`, from /proc; where there is no /proc (macOS), one
    'R' for the group that killpg found."""
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():
        return ["R"]
    states = []
    for entry in proc_dir.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # gone meanwhile
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses, so split after the last ")".
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            states.append(fields[0])
    return states
