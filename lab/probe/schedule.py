"""Open-loop, constant-rate HTTP probe: one Sample per scheduled request, no retries.

Request ``i`` is due at ``t0 + i / rate`` whatever happened to earlier requests (open loop), so a slow or
dead server shows up as failures and latency, never as a thinner schedule. When the probe itself cannot
keep up, the tick is stamped late or recorded as client saturation; the schedule is never moved.

Shape: the calling thread is the dispatcher; a fixed pool of worker threads each own one ``Channel``
(``lab.probe.channel``) holding at most one connection, so workers never contend for a shared pool lock
and "keepalive" means one reused connection per worker. ``ProbeProcess`` (``lab.probe.process``) runs all
of it in a spawned child, so a slow Docker call or a busy GIL in the runner cannot delay ticks.
"""

from __future__ import annotations

import collections
import errno
import queue
import threading
import time
from collections.abc import Callable

import httpcore
import httpx

from lab.model import ErrorClass, Sample
from lab.options import OkRanges
from lab.probe.channel import Channel, StreamCut, TransportChannel, as_httpx_error, ssl_context_for
from lab.probe.config import ProbeConfig, client_of, kind_of, kind_pattern

_MAX_NAP_S = 0.05  # the dispatcher never sleeps longer than this, so stop() is noticed quickly
_BATCH_S = 0.1  # how often samples are handed to `emit`
_YIELD_EVERY = 100  # when catching up, yield after this many ticks dispatched back to back


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


Connection = Channel | TransportChannel


def status_error(status: int, ok: OkRanges) -> ErrorClass | None:
    """None for a status inside the good ranges; otherwise the failure class it is."""
    for low, high in ok:
        if low <= status <= high:
            return None
    if status >= 500:
        return ErrorClass.HTTP_5XX
    if status >= 400:
        return ErrorClass.HTTP_4XX
    return ErrorClass.HTTP_OTHER


class _Run:
    """State shared by the dispatcher, the workers and the flusher of one run_probe call."""

    def __init__(self, config: ProbeConfig, clock: Callable[[], float], channel: Callable[[int], Connection]):
        self.config = config
        self.clock = clock
        # deque append/pop/popleft are atomic under the GIL: no lock on the hot path.
        self.idle: collections.deque[_Worker] = collections.deque()
        self.out: collections.deque[Sample] = collections.deque()
        # Each client's idle connections, most recently used last: a client's next request goes out on its
        # warm connection, and a second one opens only when its requests overlap (as a browser's pool).
        self.pools: list[collections.deque[Connection]] = [collections.deque() for _ in range(config.clients)]
        self.channel = channel
        self.opened: collections.deque[Connection] = (
            collections.deque()
        )  # every connection, to close at the end

    def connection(self, client: int) -> Connection:
        pool = self.pools[client]
        try:
            return pool.pop()
        except IndexError:
            conn = self.channel(client)
            self.opened.append(conn)
            return conn

    def drain(self) -> list[Sample]:
        batch = []
        while self.out:
            batch.append(self.out.popleft())
        return batch


class _Worker:
    """A thread that sends one client's request at a time, on a connection of that client's."""

    def __init__(self, run: _Run) -> None:
        self.run = run
        self.jobs: queue.SimpleQueue[tuple[int, float, int, str] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self._loop, name="probe-worker", daemon=True)

    def _loop(self) -> None:
        run, clock, late_after = self.run, self.run.clock, self.run.config.late_after_s
        ok, pools = self.run.config.ok, self.run.pools
        while (job := self.jobs.get()) is not None:
            seq, scheduled, client, kind = job
            conn = run.connection(client)
            sent = clock()
            status = version = instance = upstream = error = None
            try:
                status, version, instance, upstream = conn.exchange(kind)
                finished = clock()
                error = status_error(status, ok)
            except StreamCut:
                finished = clock()
                error = ErrorClass.STREAM_CUT
            except Exception as exc:  # a worker must outlive anything a request can throw
                finished = clock()
                error = classify(as_httpx_error(exc))
            pools[client].append(conn)
            late = sent - scheduled > late_after
            run.out.append(
                Sample(
                    seq,
                    scheduled,
                    sent,
                    finished,
                    status,
                    version,
                    instance,
                    error,
                    late,
                    upstream,
                    client,
                    kind,
                )
            )
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
    if transport is None:
        # Loading the CA bundle once, not once per connection, and only for TLS.
        ssl_context = ssl_context_for(config)

        def channel(client: int) -> Connection:
            return Channel(config, ssl_context, network_backend, client)

    else:  # the caller's transport (tests): shared by all clients, closed by the caller

        def channel(client: int) -> Connection:
            return TransportChannel(config, transport, client)

    run = _Run(config, clock, channel)
    workers = [_Worker(run) for _ in range(config.workers)]
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
        for conn in run.opened:
            conn.close()
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
    clients, pattern = run.config.clients, kind_pattern(run.config.mix)
    while not stop.is_set() and (max_requests is None or count < max_requests):
        scheduled = t0 + seq * interval  # from t0, not from the previous tick, so errors never accumulate
        now = clock()
        if now < scheduled:
            sleep(min(scheduled - now, _MAX_NAP_S))
            continue
        # Only this thread pops, so a non-empty deque cannot empty under us. LIFO: the most recently used
        # worker, whose thread is warm.
        worker = run.idle.pop() if run.idle and now - scheduled <= skip_after else None
        client, kind = client_of(seq, clients, stride), kind_of(seq, pattern)
        if worker is None:
            run.out.append(
                Sample(seq, scheduled, None, None, error=ErrorClass.SATURATED, client=client, kind=kind)
            )
        else:
            worker.jobs.put((seq, scheduled, client, kind))
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
