"""The probe in its own process(es): ``ProbeProcess`` runs ``run_probe`` in spawned children, so a slow
Docker call or a busy GIL in the runner cannot delay ticks."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from lab.model import ErrorClass, Sample
from lab.probe.aio import run_probe_async
from lab.probe.config import ProbeConfig
from lab.probe.schedule import run_probe

_Row = tuple[
    int,
    float,
    float | None,
    float | None,
    int | None,
    str | None,
    str | None,
    str | None,
    bool,
    str | None,
    int,
    str,
]


def _row(s: Sample) -> _Row:
    # Plain tuples: pickling a slots dataclass goes through Python-level __getstate__, about 30x slower.
    err = s.error.value if s.error is not None else None
    return (
        s.seq,
        s.scheduled,
        s.sent,
        s.finished,
        s.status,
        s.version,
        s.instance,
        err,
        s.late,
        s.upstream,
        s.client,
        s.kind,
    )


def _sample(r: _Row) -> Sample:
    error = ErrorClass(r[7]) if r[7] else None
    return Sample(r[0], r[1], r[2], r[3], r[4], r[5], r[6], error, r[8], r[9], r[10], r[11])


def _child_main(config: ProbeConfig, data: Connection, control: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which stops us cleanly
    # A thread waiting for the GIL waits up to the switch interval (5 ms by default) for a thread busy in
    # Python, which alone would make ticks late. 1 ms keeps the dispatcher punctual; 0.5 ms measured no
    # more punctual and cost about 10% more CPU per request in forced switches.
    sys.setswitchinterval(0.001)
    stop = threading.Event()
    send_lock = threading.Lock()

    def send(msg: tuple[str, Any]) -> None:
        with send_lock:
            data.send(msg)

    def await_stop() -> None:
        with contextlib.suppress(EOFError, OSError):
            control.recv()  # any message means stop; EOF means the parent is gone: stop too
        stop.set()

    def emit(batch: list[Sample]) -> None:
        try:
            send(("samples", [_row(s) for s in batch]))
        except OSError:  # the parent is gone: nobody will read what we measure
            stop.set()

    cpu_at_start = [time.process_time()]

    def on_start(t0: float) -> None:
        cpu_at_start[0] = time.process_time()  # probing only, not interpreter start-up and imports
        send(("ready", t0))

    # Two-phase start: say we are loaded (interpreter up, httpx imported), then wait for tick 0's time,
    # which the parent picks once every child is loaded, so no child starts its share of the schedule late.
    send(("loaded", None))
    try:
        go = control.recv()
    except (EOFError, OSError):
        go = None
    if not (isinstance(go, tuple) and go[0] == "go"):
        send(("done", 0.0))  # stopped before it started: nothing was measured
        data.close()
        return
    # The go message may carry the config whole: a child started before the URL was known (prelaunch).
    config = dataclasses.replace(go[2] if len(go) > 2 else config, start_at=go[1])
    threading.Thread(target=await_stop, name="probe-control", daemon=True).start()
    try:
        if config.driver == "asyncio":
            run_probe_async(config, stop, emit, on_start=on_start)
        else:
            run_probe(config, stop, emit, on_start=on_start)
    except BaseException:
        send(("error", traceback.format_exc()))
    finally:
        with contextlib.suppress(OSError):
            send(("done", time.process_time() - cpu_at_start[0]))  # the probe's own CPU while probing
        data.close()


class _Child:
    """Run the probe in a spawned child process and collect its samples in a parent thread.

    "spawn", not "fork": forking a parent that runs threads (Docker clients, a live view) can copy a held
    lock into the child. Like any spawn-based multiprocessing, the program's main module must be safe to
    import (its work behind ``if __name__ == "__main__"``), because the child imports it again.
    """

    def __init__(self, config: ProbeConfig, *, start_timeout_s: float = 30.0) -> None:
        self.config = config
        self.start_timeout_s = start_timeout_s
        self.started_at: float | None = None  # when tick 0 was due, on the shared monotonic clock
        self.error: str | None = None  # a traceback from the child, if the probe crashed
        self.cpu_s: float | None = None  # CPU seconds the child used while probing, known once stopped
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: BaseProcess | None = None
        self._control: Connection | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()
        self._samples: list[Sample] = []
        self._seen = 0
        self._loaded = threading.Event()
        self._ready = threading.Event()
        self._done = threading.Event()
        self._result: list[Sample] | None = None
        self._stopped = False

    def start(self) -> None:
        """Start the child; return once it is about to send its first request."""
        self.launch()
        self.wait_for(self._loaded, "load")
        self.go(time.monotonic() + go_lead_s(self.config))
        self.wait_for(self._ready, "start")

    def launch(self) -> None:
        if self._proc is not None:
            raise RuntimeError("probe child already started")
        data_r, data_w = self._ctx.Pipe(duplex=False)
        control_r, control_w = self._ctx.Pipe(duplex=False)
        self._proc = self._ctx.Process(
            target=_child_main,
            args=(self.config, data_w, control_r),
            name=f"lab-probe-{self.config.share}",
            daemon=True,
        )
        self._proc.start()
        # Close our copies of the child's ends, so each side sees EOF when the other dies.
        data_w.close()
        control_r.close()
        self._control = control_w
        self._reader = threading.Thread(target=self._read, args=(data_r,), name="probe-reader", daemon=True)
        self._reader.start()

    def wait_for(self, event: threading.Event, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        while not event.wait(0.05):
            if self._done.is_set() or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"probe process did not {what}: {self.error or 'timed out'}")

    def wait_loaded(self) -> None:
        self.wait_for(self._loaded, "load")

    def wait_ready(self) -> None:
        self.wait_for(self._ready, "start")

    def go(self, start_at: float) -> None:
        """Tell a loaded child when tick 0 is due, and its config as it is now."""
        if self._control is not None:
            self._control.send(("go", start_at, self.config))

    def alive(self) -> bool:
        return self._proc is not None and self._proc.pid is not None and self._proc.is_alive()

    def request_stop(self) -> None:
        """Tell the child to stop scheduling, without waiting (so several children stop together)."""
        self._stopped = True
        if self._control is not None:
            with contextlib.suppress(OSError):
                self._control.send("stop")

    def _read(self, data: Connection) -> None:
        try:
            while True:
                kind, payload = data.recv()
                if kind == "samples":
                    batch = [_sample(r) for r in payload]
                    with self._lock:
                        self._samples.extend(batch)
                elif kind == "loaded":
                    self._loaded.set()
                elif kind == "ready":
                    self.started_at = payload
                    self._ready.set()
                elif kind == "error":
                    self.error = payload
                elif kind == "done":
                    self.cpu_s = payload
                    break
        except (EOFError, OSError):
            if self.error is None:
                self.error = "the probe process exited without finishing (killed?)"
        finally:
            data.close()
            self._done.set()

    def new_samples(self) -> list[Sample]:
        """Samples received since the last call, in completion order (for a live view)."""
        with self._lock:
            batch = self._samples[self._seen :]
            self._seen = len(self._samples)
        return batch

    def stop(self) -> list[Sample]:
        """Stop scheduling, wait for requests in flight, join the child; every sample, in seq order.

        Never raises once started, so callers can stop the probe in a `finally` before their cleanup. If the
        child crashed or had to be killed, `error` says so and the samples end early: check it before
        trusting the run (a hole in the samples is not missing traffic).
        """
        if self._result is not None:
            return self._result
        if self._proc is None:  # interrupted before it was launched: nothing was measured
            self._result = []
            return self._result
        self.request_stop()
        # A request in flight may spend timeout_s connecting, then again writing and reading.
        if not self._done.wait(3 * self.config.timeout_s + 5.0) and self.error is None:
            self.error = "the probe process did not stop in time"
        self.close()
        with self._lock:
            self._result = sorted(self._samples, key=lambda s: s.seq)
        return self._result

    def close(self) -> None:
        """Make sure the child is gone; safe to call more than once."""
        if self._control is not None:
            self._control.close()  # the child reads EOF as "stop"
            self._control = None
        proc = self._proc
        if proc is not None and proc.pid is not None:  # pid None: never started, nothing to join
            proc.join(2.0)
            if proc.is_alive():
                proc.terminate()
                proc.join(2.0)
            if proc.is_alive():
                proc.kill()
                proc.join()
        if self._reader is not None:
            self._reader.join(2.0)

    def __enter__(self) -> _Child:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if not self._stopped:
                self.stop()
        finally:
            self.close()


def processes_for(rate: float) -> int:
    """Probe processes for a rate: one until a single process's GIL becomes the limit (about 1,000 fresh
    connections per second here), then one per 750 req/s up to the number of cores."""
    return max(1, min(os.cpu_count() or 1, math.ceil(rate / 750)))


# From "every child is loaded" to tick 0. The threads driver starts its worker threads (64 to 1,024) in
# that time; the asyncio driver only makes its client objects and, for https, a TLS context (the CA bundle
# loads in about 30 ms), so a tenth of a second is its lead: 0.15 s less of every run. A child that is
# still not ready gets late ticks, which are counted, not hidden.
_GO_LEAD_S = {"threads": 0.25, "asyncio": 0.1}


def go_lead_s(config: ProbeConfig) -> float:
    return _GO_LEAD_S.get(config.driver, max(_GO_LEAD_S.values()))


class ProbeProcess:
    """The probe in one or more child processes that share one schedule and one clock.

    With `processes` > 1, child k sends the ticks whose seq is k modulo `processes`, from a tick 0 fixed
    before any child starts, so the merged samples are exactly the schedule one process would have run.
    """

    def __init__(self, config: ProbeConfig, *, processes: int | None = None, start_timeout_s: float = 30.0):
        self.config = config
        count = processes or processes_for(config.rate)
        self._children: list[_Child] = []
        self._count = count
        self._start_timeout_s = start_timeout_s
        self.started_at: float | None = None
        self._result: list[Sample] | None = None

    @property
    def processes(self) -> int:
        return self._count

    @property
    def error(self) -> str | None:
        errors = [c.error for c in self._children if c.error]
        return "; ".join(errors) if errors else None

    @property
    def cpu_s(self) -> float | None:
        values = [c.cpu_s for c in self._children if c.cpu_s is not None]
        return sum(values) if values and len(values) == len(self._children) else None

    def prelaunch(self) -> None:
        """Start the children's interpreters now (their imports take a few tenths of a second), so a run
        can set up its target meanwhile; `start` sends them the config as it is then."""
        if self._children:
            raise RuntimeError("ProbeProcess already launched")
        self._children = [
            _Child(
                dataclasses.replace(self.config, share=k, shares=self._count),
                start_timeout_s=self._start_timeout_s,
            )
            for k in range(self._count)
        ]
        try:
            for child in self._children:
                child.launch()
        except BaseException:
            self.close()
            raise

    def retarget(self, url: str) -> None:
        """The URL to probe, once the run knows it (after `prelaunch`, before `start`)."""
        self.config = dataclasses.replace(self.config, url=url)
        for child in self._children:
            child.config = dataclasses.replace(child.config, url=url)

    def start(self) -> None:
        """Start the children (unless prelaunched); return once tick 0 is due (or, with one child, about
        to be sent)."""
        if not self._children:
            self.prelaunch()
        elif any(c.started_at is not None for c in self._children):
            raise RuntimeError("ProbeProcess already started")
        try:
            for child in self._children:
                child.wait_loaded()
            start_at = time.monotonic() + go_lead_s(self.config)
            for child in self._children:
                child.go(start_at)
            for child in self._children:
                child.wait_ready()
        except BaseException:
            self.close()
            raise
        self.started_at = min(c.started_at for c in self._children if c.started_at is not None)
        if (wait := self.started_at - time.monotonic()) > 0:
            time.sleep(wait)

    def alive(self) -> bool:
        return any(c.alive() for c in self._children)

    def new_samples(self) -> list[Sample]:
        """Samples received since the last call, in completion order per child (for a live view)."""
        return [s for child in self._children for s in child.new_samples()]

    def stop(self) -> list[Sample]:
        """Every sample, in seq order. Never raises once started: check `error` before trusting them."""
        if self._result is None:
            if not self._children:
                raise RuntimeError("ProbeProcess not started")
            for child in self._children:
                child.request_stop()
            merged = [s for child in self._children for s in child.stop()]
            self._result = sorted(merged, key=lambda s: s.seq)
        return self._result

    def close(self) -> None:
        for child in self._children:
            child.close()

    def __enter__(self) -> ProbeProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._children and self._result is None:
                self.stop()
        finally:
            self.close()
