"""Open-loop, constant-rate HTTP probe: one Sample per scheduled request, no retries.

Request ``i`` is due at ``t0 + i / rate`` whatever happened to earlier requests (open loop), so a slow or
dead server shows up as failures and latency, never as a thinner schedule. When the probe itself cannot
keep up, the tick is stamped late or recorded as client saturation; the schedule is never moved.

Shape: the calling thread is the dispatcher; a fixed pool of worker threads each own one ``Channel``
holding at most one connection, so workers never contend for a shared pool lock and "keepalive" means one
reused connection per worker. A channel drives httpx's own transport layer (httpcore) directly, not an
``httpx.Client`` nor even an ``httpx.HTTPTransport``: the client's layers (cookies, auth, redirects,
default headers) add nothing to a probe and cost about a third of its CPU, and the transport's
per-request conversions and pool bookkeeping most of another third of its Python time.
``ProbeProcess`` runs all of it in a spawned child, so a slow Docker call or a busy GIL in the runner
cannot delay ticks.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import math
import multiprocessing
import os
import queue
import signal
import ssl
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import httpcore
import httpx

from lab.model import ErrorClass, Sample

MODES = ("keepalive", "fresh")
_MAX_NAP_S = 0.05  # the dispatcher never sleeps longer than this, so stop() is noticed quickly
_BATCH_S = 0.1  # how often samples are handed to `emit`
_YIELD_EVERY = 100  # when catching up, yield after this many ticks dispatched back to back


@dataclass(frozen=True)
class ProbeConfig:
    url: str
    rate: float  # requests per second
    mode: str = "keepalive"  # "keepalive": one reused connection per worker; "fresh": new TCP connection each
    timeout_s: float = 2.0  # connect, write and read timeout, each, per request
    workers: int = 64  # requests in flight at most; a tick with every worker busy is client saturation
    # 5 ms: a healthy probe sends within 0.2 to 2 ms (p99) of schedule here, but on a 2-core machine that
    # also runs the fleet, the proxy and Docker, a woken thread can wait a scheduler slice of a few ms for
    # a core; 2 ms flagged those as stalls in 1 to 3% of ticks with the probe idle half the time. 5 ms is
    # still 60 times finer than the shortest outage the lab measures (in-place, about 300 ms), and a
    # tick's lateness always shows in its latency, which counts from the scheduled time.
    late_after_s: float = 0.005
    skip_after_s: float = 1.0  # a tick more overdue than this is recorded unsent instead of joining a burst
    # One schedule split over several processes: this one sends the ticks whose seq is `share` modulo
    # `shares`. One Python process tops out near 1,000 fresh connections per second on this machine.
    share: int = 0
    shares: int = 1
    start_at: float | None = None  # tick 0's due time on the shared monotonic clock; None: at once

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {self.mode!r}")
        if self.workers < 1 or self.timeout_s <= 0 or self.late_after_s < 0 or self.skip_after_s <= 0:
            raise ValueError(f"invalid probe config: {self}")
        if not 0 <= self.share < self.shares:
            raise ValueError(f"share must be in [0, {self.shares}), got {self.share}")


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes: httpx wraps httpcore, which wraps the socket's OSError."""
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _has_errno(exc: BaseException, code: int, text: str) -> bool:
    return any(isinstance(e, OSError) and e.errno == code for e in _chain(exc)) or text in str(exc)


def classify(exc: BaseException) -> ErrorClass:
    """Map a failed request's exception to the error class the analysis counts."""
    if isinstance(exc, httpx.PoolTimeout):  # a TimeoutException, but the wait was for our own pool
        return ErrorClass.SATURATED
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ErrorClass.TIMEOUT
    if isinstance(exc, ConnectionRefusedError):
        return ErrorClass.REFUSED
    if isinstance(exc, httpx.ConnectError):
        if _has_errno(exc, errno.ECONNREFUSED, "Connection refused"):
            return ErrorClass.REFUSED
        if _has_errno(exc, errno.ECONNRESET, "Connection reset"):
            return ErrorClass.RESET
        return ErrorClass.OTHER  # DNS failure, no route to host: not something a rollout should cause
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.RemoteProtocolError):
        return ErrorClass.RESET
    if isinstance(exc, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
        return ErrorClass.RESET
    return ErrorClass.OTHER


def make_request(config: ProbeConfig) -> httpx.Request:
    """The one request a worker sends, built once and reused: it has no body and nothing mutates it, and
    rebuilding it (URL parsing, header validation) was a tenth of the cost per request."""
    t = config.timeout_s
    headers = {"User-Agent": "deploy-lab-probe"}
    if config.mode == "fresh":
        # Also ask the server to close: it then closes first, so TIME_WAIT lands on the server and a long
        # fresh run cannot exhaust the probe's ephemeral ports.
        headers["Connection"] = "close"
    timeout = {"connect": t, "read": t, "write": t, "pool": t}
    return httpx.Request("GET", config.url, headers=headers, extensions={"timeout": timeout})


def _core_request(request: httpx.Request) -> httpcore.Request:
    """`request` as httpcore sees it: what ``httpx.HTTPTransport`` builds for it, built once."""
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=request.url.raw_scheme,
            host=request.url.raw_host,
            port=request.url.port,
            target=request.url.raw_path,
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


# httpcore's exceptions as httpx raises them (what ``httpx.HTTPTransport`` maps them to), most specific
# first, so classify() sees the same exceptions, with the same causes, whichever way a request went.
_HTTPX_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def as_httpx_error(exc: BaseException) -> BaseException:
    """An httpcore exception as the httpx one ``httpx.HTTPTransport`` would raise from it; others as is."""
    for core_type, httpx_type in _HTTPX_ERRORS:
        if isinstance(exc, core_type):
            mapped = httpx_type(str(exc))
            mapped.__cause__ = exc
            return mapped
    return exc


def _decode(value: bytes) -> str:
    for encoding in ("ascii", "utf-8"):  # the order httpx.Headers tries
        with contextlib.suppress(UnicodeDecodeError):
            return value.decode(encoding)
    return value.decode("iso-8859-1")


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    """Like ``httpx.Headers.get``: case-insensitive, repeated values joined with commas."""
    values = [_decode(v) for k, v in headers if k.lower() == name]
    return ", ".join(values) if values else None


_Result = tuple[int, str | None, str | None]  # status, X-App-Version, X-Instance


class Channel:
    """One worker's way to the target: httpx's own transport layer (httpcore), one connection, no pool.

    Through an ``httpx.HTTPTransport`` with a one-connection pool, the same request took half as much
    Python again (137 against 90 us on an in-memory network), 15 to 25% of the probe's whole CPU per
    request once syscalls and thread hand-offs are counted: the transport converts the request and wraps
    the response on every call, and its pool takes a lock and rescans its connections twice per request.
    Here the request is converted once, and the one connection is managed as that pool managed it:

    - "keepalive" keeps one ``httpcore.HTTPConnection`` and opens a new one only when it is closed (an
      error closes it) or the server closed it while idle (the pool's ``has_expired`` check before each
      request, so a connection the server dropped between requests is replaced, not failed on);
    - "fresh" opens a new one for every request and closes it after the response.

    Never a retry: a failed connect or request raises httpcore's exception (``as_httpx_error`` maps it to
    the one httpx would have raised), and the next call starts over.
    """

    def __init__(
        self,
        config: ProbeConfig,
        ssl_context: ssl.SSLContext | None = None,
        network_backend: httpcore.NetworkBackend | None = None,
    ) -> None:
        self.fresh = config.mode == "fresh"
        self.request = _core_request(make_request(config))
        self.origin = self.request.url.origin
        self.ssl_context = ssl_context
        self.backend = network_backend or httpcore.SyncBackend()
        scheme = self.request.url.scheme.decode()
        self.unsupported = None if scheme in ("http", "https") else f"unsupported protocol {scheme!r}"
        self.connection: httpcore.HTTPConnection | None = None

    def _connection(self) -> httpcore.HTTPConnection:
        conn = self.connection
        if conn is not None and not self.fresh and not conn.is_closed() and not conn.has_expired():
            return conn
        if conn is not None:
            conn.close()
        conn = self.connection = httpcore.HTTPConnection(
            self.origin,
            ssl_context=self.ssl_context,
            keepalive_expiry=None,  # never drop an idle connection on our side: a quiet worker must stay warm
            retries=0,
            network_backend=self.backend,
        )
        return conn

    def exchange(self) -> _Result:
        """Send the request, read the whole response, and return what a Sample records of it."""
        if self.unsupported:
            raise httpcore.UnsupportedProtocol(self.unsupported)
        conn = self._connection()
        try:
            response = conn.handle_request(self.request)
            try:
                response.read()  # the whole body, so the connection is free (or closed) afterwards
            finally:
                response.close()
        finally:
            if self.fresh:
                if not conn.is_closed():  # asked for `Connection: close`, it usually closed itself
                    conn.close()
                self.connection = None
        headers = response.headers
        return response.status, _header(headers, b"x-app-version"), _header(headers, b"x-instance")

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class TransportChannel:
    """A worker's way through an ``httpx`` transport instead (tests: ``httpx.MockTransport``)."""

    def __init__(self, config: ProbeConfig, transport: httpx.BaseTransport) -> None:
        self.transport = transport
        self.request = make_request(config)

    def exchange(self) -> _Result:
        response = self.transport.handle_request(self.request)
        try:
            response.read()
        finally:
            response.close()
        return response.status_code, response.headers.get("X-App-Version"), response.headers.get("X-Instance")

    def close(self) -> None:
        pass  # the caller's transport: closed by the caller


class _Run:
    """State shared by the dispatcher, the workers and the flusher of one run_probe call."""

    def __init__(self, config: ProbeConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self.clock = clock
        # deque append/pop/popleft are atomic under the GIL: no lock on the hot path.
        self.idle: collections.deque[_Worker] = collections.deque()
        self.out: collections.deque[Sample] = collections.deque()

    def drain(self) -> list[Sample]:
        batch = []
        while self.out:
            batch.append(self.out.popleft())
        return batch


class _Worker:
    def __init__(self, run: _Run, channel: Channel | TransportChannel) -> None:
        self.run = run
        self.channel = channel
        self.jobs: queue.SimpleQueue[tuple[int, float] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="probe-worker", daemon=True)

    def _loop(self) -> None:
        run, clock, late_after = self.run, self.run.clock, self.run.config.late_after_s
        exchange = self.channel.exchange
        while (job := self.jobs.get()) is not None:
            seq, scheduled = job
            sent = clock()
            status = version = instance = error = None
            try:
                status, version, instance = exchange()
                finished = clock()
                if status >= 500:
                    error = ErrorClass.HTTP_5XX
                elif status >= 400:
                    error = ErrorClass.HTTP_4XX
            except Exception as exc:  # a worker must outlive anything a request can throw
                finished = clock()
                error = classify(as_httpx_error(exc))
            late = sent - scheduled > late_after
            run.out.append(Sample(seq, scheduled, sent, finished, status, version, instance, error, late))
            run.idle.append(self)


def run_probe(
    config: ProbeConfig,
    stop: threading.Event,
    emit: Callable[[list[Sample]], None],
    *,
    transport: httpx.BaseTransport | None = None,
    network_backend: httpcore.NetworkBackend | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    max_requests: int | None = None,
    on_start: Callable[[float], None] | None = None,
) -> None:
    """Probe until `stop` is set (or `max_requests` ticks are scheduled), then wait for requests in flight.

    `emit` gets batches of samples in completion order, about every 100 ms, from a flusher thread (never
    from the dispatcher, so a slow consumer cannot delay ticks), one call at a time; the last batch is
    emitted before this returns. `on_start(t0)` is called just before tick 0, which is due at t0.
    """
    run = _Run(config, clock)
    channels: list[Channel | TransportChannel]
    if transport is None:
        # Loading the CA bundle once, not once per worker (nor per connection), and only for TLS.
        ssl_context = httpx.create_ssl_context() if config.url.lower().startswith("https:") else None
        channels = [Channel(config, ssl_context, network_backend) for _ in range(config.workers)]
    else:  # the caller's transport (tests): shared by all workers, closed by the caller
        channels = [TransportChannel(config, transport) for _ in range(config.workers)]
    workers = [_Worker(run, c) for c in channels]
    run.idle.extend(workers)
    for w in workers:
        w.thread.start()
    done = threading.Event()
    flusher = threading.Thread(target=_flush, args=(run, emit, done), name="probe-flusher", daemon=True)
    flusher.start()
    try:
        _dispatch(run, stop, sleep, max_requests, on_start)
    finally:
        for w in workers:
            w.jobs.put(None)
        for w in workers:
            w.thread.join()
        for c in channels:
            c.close()
        done.set()
        flusher.join()
        if batch := run.drain():
            emit(batch)


def _dispatch(
    run: _Run,
    stop: threading.Event,
    sleep: Callable[[float], None],
    max_requests: int | None,
    on_start: Callable[[float], None] | None,
) -> None:
    clock, interval, skip_after = run.clock, 1.0 / run.config.rate, run.config.skip_after_s
    t0 = run.config.start_at if run.config.start_at is not None else clock()
    if on_start is not None:
        on_start(t0)
    seq, stride, count = run.config.share, run.config.shares, 0
    while not stop.is_set() and (max_requests is None or count < max_requests):
        scheduled = t0 + seq * interval  # from t0, not from the previous tick, so errors never accumulate
        now = clock()
        if now < scheduled:
            sleep(min(scheduled - now, _MAX_NAP_S))
            continue
        # Only this thread pops, so a non-empty deque cannot empty under us. LIFO: the most recently used
        # worker, whose connection is warm.
        worker = run.idle.pop() if run.idle and now - scheduled <= skip_after else None
        if worker is None:
            run.out.append(Sample(seq, scheduled, None, None, error=ErrorClass.SATURATED))
        else:
            worker.jobs.put((seq, scheduled))
        seq += stride
        count += 1
        if count % _YIELD_EVERY == 0 and clock() >= t0 + seq * interval:
            # Still behind after a run of overdue ticks: give the GIL away once. Not on every tick: each
            # yield costs a GIL round trip (up to the switch interval), longer than a tick at 1,500 req/s,
            # so a dispatcher yielding per tick could never catch up once behind.
            sleep(0)


def _flush(run: _Run, emit: Callable[[list[Sample]], None], done: threading.Event) -> None:
    while not done.wait(_BATCH_S):
        if batch := run.drain():
            emit(batch)


# ---------------------------------------------------------------------------------------------------
# The probe in its own process.

_Row = tuple[int, float, float | None, float | None, int | None, str | None, str | None, str | None, bool]


def _row(s: Sample) -> _Row:
    # Plain tuples: pickling a slots dataclass goes through Python-level __getstate__, about 30x slower.
    err = s.error.value if s.error is not None else None
    return (s.seq, s.scheduled, s.sent, s.finished, s.status, s.version, s.instance, err, s.late)


def _sample(r: _Row) -> Sample:
    return Sample(r[0], r[1], r[2], r[3], r[4], r[5], r[6], ErrorClass(r[7]) if r[7] else None, r[8])


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
    config = dataclasses.replace(config, start_at=go[1])
    threading.Thread(target=await_stop, name="probe-control", daemon=True).start()
    try:
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
        self.go(time.monotonic() + _GO_LEAD_S)
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
        """Tell a loaded child when tick 0 is due."""
        if self._control is not None:
            self._control.send(("go", start_at))

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


# From "every child is loaded" to tick 0: time for a child to start its worker threads (64 to 1,024).
# A child that is still not ready gets late ticks, which are counted, not hidden.
_GO_LEAD_S = 0.25


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

    def start(self) -> None:
        """Start the children; return once tick 0 is due (or, with one child, about to be sent)."""
        if self._children:
            raise RuntimeError("ProbeProcess already started")
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
            for child in self._children:
                child.wait_loaded()
            start_at = time.monotonic() + _GO_LEAD_S
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
