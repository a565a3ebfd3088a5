"""The probe driven by one asyncio event loop per process instead of a thread per request in flight.

Same semantics as lab/probe/schedule.py: open loop (tick `seq` due at t0 + seq / rate whatever happened
before), no retries, latency from the scheduled time, a tick that cannot be sent (every one of `workers`
requests in flight) recorded as client saturation, a tick overdue by more than `skip_after_s` recorded
unsent rather than sent in a burst. Requests go through httpx's transport layer, httpcore, as ever: its
HTTP/1.1 connection (`httpcore.AsyncHTTP11Connection`, h11 underneath) over a small network backend of
ours on asyncio's own streams, because httpcore's default async backend goes through anyio, a layer of
indirection per read and write that the probe pays on every request.

Why: on two cores the threads spent much of their time handing the GIL to each other (a request wakes a
worker, whose every socket call releases and takes the GIL back against a hundred other threads); one
loop per process never hands it over. `make bench` measures both (`--driver`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import select
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

import httpcore

from lab.model import ErrorClass, Sample
from lab.probe.channel import STREAM_END, Reader, _core_request, as_httpx_error, make_request, ssl_context_for
from lab.probe.config import ProbeConfig, client_of, kind_of, kind_pattern
from lab.probe.schedule import classify, status_error

_BATCH_S = 0.1
_CLOSE_S = 0.5  # at most this long for a closed connection's transport to say it is gone


def socket_readable(sock: Any) -> bool:
    """Whether the kernel has something to read on `sock` (data, or the peer's FIN), without reading:
    httpcore's own check (`httpcore._utils.is_socket_readable`, private), a poll with no wait. No socket
    is taken as readable, as there: the next read would end the connection."""
    fd = sock.fileno() if sock is not None else -1
    if fd < 0:
        return True
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    # Timeouts through `asyncio.timeout`, not `asyncio.wait_for`: on Python 3.11 wait_for wraps the read
    # in a Task of its own, the largest single cost of a kept-alive request here.
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("timed out") from None
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self.writer.write(buffer)
            if self.writer.transport.get_write_buffer_size():  # only a full socket buffer waits
                async with asyncio.timeout(timeout):
                    await self.writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("timed out") from None
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self.writer.close()
        try:
            # Bounded: after a TLS handshake that timed out, asyncio never reports the transport closed,
            # and an unbounded wait held the request (its sample, its worker slot) for good.
            async with asyncio.timeout(_CLOSE_S):
                await self.writer.wait_closed()
        except (OSError, TimeoutError, ssl.SSLError):
            self.writer.transport.abort()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self.writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":  # idle and readable: a kept-alive connection the server closed
            # The kernel's word, as httpx's own backends ask it (a poll of the socket), before asyncio's:
            # a FIN that has arrived but that a busy loop has not read yet leaves asyncio's view "open",
            # and a request sent on it then races the server's close (a reset httpx would not have risked).
            transport = self.writer.transport
            return (
                transport.is_closing()
                or self.reader.at_eof()
                or bool(getattr(self.reader, "_buffer", b""))
                or socket_readable(transport.get_extra_info("socket"))
            )
        if info == "ssl_object":
            return self.writer.get_extra_info("ssl_object")
        return None


class _Backend(httpcore.AsyncNetworkBackend):
    """TCP on asyncio's streams: what the probe needs of a network backend, no more."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out") from None
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return _Stream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class _Client:
    """One client's requests (one per kind, built once) and its idle connections, most recent last."""

    def __init__(self, config: ProbeConfig, client: int, backend: httpcore.AsyncNetworkBackend) -> None:
        self.requests = {kind: _core_request(make_request(config, client, kind)) for kind, _ in config.mix}
        self.origin = next(iter(self.requests.values())).url.origin
        self.idle: list[httpcore.AsyncHTTP11Connection] = []
        self.backend = backend
        self.connect_timeout = config.timeout_s


class _NoLock:
    """Stands in for an HTTP/1.1 connection's state lock: each connection here serves one request at a
    time by construction (taken off its client's idle list while in use), so the lock is never
    contended, and httpcore's asyncio lock (anyio's) yields to the event loop on every acquire: three
    extra loop iterations per request."""

    async def __aenter__(self) -> _NoLock:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


_NO_LOCK = _NoLock()


async def _connect(client: _Client, ssl_context: ssl.SSLContext | None) -> httpcore.AsyncHTTP11Connection:
    """A new HTTP/1.1 connection, as ``httpcore.AsyncHTTPConnection`` opens one with retries=0 (TCP, then
    TLS for https), without that wrapper's own lock and dispatch around every request."""
    origin, t = client.origin, client.connect_timeout
    host = origin.host.decode("ascii")
    stream = await client.backend.connect_tcp(host, origin.port, timeout=t)
    try:
        if ssl_context is not None:
            stream = await stream.start_tls(ssl_context, server_hostname=host, timeout=t)
    except BaseException:
        await stream.aclose()
        raise
    conn = httpcore.AsyncHTTP11Connection(origin=origin, stream=stream, keepalive_expiry=None)
    conn._state_lock = _NO_LOCK  # type: ignore[assignment]  # see _NoLock; a unit test pins the attribute
    return conn


async def _exchange(
    client: _Client, kind: str, fresh: bool, read: Reader, ssl_context: ssl.SSLContext | None
) -> tuple[int, str | None, str | None, str | None]:
    conn = None
    while client.idle:
        candidate = client.idle.pop()
        if not candidate.is_closed() and not candidate.has_expired():
            conn = candidate
            break
        await candidate.aclose()
    if conn is None:
        conn = await _connect(client, ssl_context)
    keep = False
    try:
        response = await conn.handle_async_request(client.requests[kind])
        try:
            try:
                body = await response.aread()
            except httpcore.ProtocolError as exc:
                if kind == "stream":
                    raise _StreamCut(str(exc)) from exc
                raise
        finally:
            await response.aclose()
        keep = not fresh
    finally:
        if keep and not conn.is_closed():
            client.idle.append(conn)
        else:
            await conn.aclose()
    if kind == "stream" and response.status == 200 and STREAM_END not in body[-64:]:
        raise _StreamCut("the stream ended before its last event")
    version, instance, upstream = read(response.headers, body)
    return response.status, version, instance, upstream


class _StreamCut(Exception):
    pass


def run_probe_async(
    config: ProbeConfig,
    stop: threading.Event,
    emit: Callable[[list[Sample]], None],
    *,
    on_start: Callable[[float], None] | None = None,
    max_requests: int | None = None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> None:
    """Probe until `stop` is set; the same contract as `lab.probe.schedule.run_probe`.
    `network_backend` stands in for the network (tests: httpcore.AsyncMockBackend)."""
    asyncio.run(_main(config, stop, emit, on_start, max_requests, network_backend))


async def _main(
    config: ProbeConfig,
    stop: threading.Event,
    emit: Callable[[list[Sample]], None],
    on_start: Callable[[float], None] | None,
    max_requests: int | None,
    network_backend: httpcore.AsyncNetworkBackend | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    clock = time.monotonic
    ssl_context = ssl_context_for(config)
    backend: httpcore.AsyncNetworkBackend = network_backend or _Backend()
    clients = [_Client(config, c, backend) for c in range(config.clients)]
    read = Reader(config)
    out: collections.deque[Sample] = collections.deque()
    fresh = config.mode == "fresh"
    in_flight: set[asyncio.Task[None]] = set()
    late_after, ok = config.late_after_s, config.ok

    async def one(seq: int, scheduled: float, client: int, kind: str) -> None:
        sent = clock()
        status = version = instance = upstream = None
        error: ErrorClass | None = None
        try:
            status, version, instance, upstream = await _exchange(
                clients[client], kind, fresh, read, ssl_context
            )
            finished = clock()
            error = status_error(status, ok)
        except _StreamCut:
            finished = clock()
            error = ErrorClass.STREAM_CUT
        except Exception as exc:  # a request must never take the probe down
            finished = clock()
            error = classify(as_httpx_error(exc))
        out.append(
            Sample(
                seq,
                scheduled,
                sent,
                finished,
                status,
                version,
                instance,
                error,
                sent - scheduled > late_after,
                upstream,
                client,
                kind,
            )
        )

    stopping = asyncio.Event()

    async def flush() -> None:
        # Ends when told to, never by cancellation: cancelling `run_in_executor` before a pool thread
        # picks the job up cancels the job, and its batch of samples would be lost.
        while not stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), _BATCH_S)
            if out:
                batch = [out.popleft() for _ in range(len(out))]
                await loop.run_in_executor(None, emit, batch)

    flusher = asyncio.create_task(flush())
    interval, skip_after = 1.0 / config.rate, config.skip_after_s
    t0 = config.start_at if config.start_at is not None else clock()
    if on_start is not None:
        on_start(t0)
    seq, stride, count = config.share, config.shares, 0
    pattern = kind_pattern(config.mix)
    try:
        while not stop.is_set() and (max_requests is None or count < max_requests):
            scheduled = t0 + seq * interval
            now = clock()
            if now < scheduled:
                await asyncio.sleep(min(scheduled - now, 0.05))
                continue
            client, kind = client_of(seq, config.clients, stride), kind_of(seq, pattern)
            if len(in_flight) >= config.workers or now - scheduled > skip_after:
                out.append(
                    Sample(seq, scheduled, None, None, error=ErrorClass.SATURATED, client=client, kind=kind)
                )
            else:
                task = asyncio.create_task(one(seq, scheduled, client, kind))
                in_flight.add(task)
                task.add_done_callback(in_flight.discard)
            seq += stride
            count += 1
            if count % 50 == 0:
                await asyncio.sleep(0)  # let requests in flight read what has arrived
    finally:
        if in_flight:
            await asyncio.wait(in_flight)
        stopping.set()
        try:
            await flusher  # raises what `emit` raised, after the connections close and the rest is handed
        finally:
            for c in clients:
                for conn in c.idle:
                    await conn.aclose()
            if out:
                emit([out.popleft() for _ in range(len(out))])
