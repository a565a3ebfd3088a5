"""The asyncio driver keeps the threads' contract: open loop, every tick a sample, errors by class, a cut
stream, client saturation when every request slot is busy; over httpcore's mock network."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
import threading
from collections import Counter
from typing import Any

import httpcore
import pytest

from lab.model import ErrorClass, Sample
from lab.probe import aio
from lab.probe.aio import run_probe_async
from lab.probe.config import ProbeConfig

URL = "http://probe.test/"
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-App-Version: v1\r\n\r\nok"


class Network(httpcore.AsyncMockBackend):
    """Every connection answers `answers` times with `raw`, then reads as closed by the server."""

    def __init__(self, raw: bytes = OK, answers: int = 1000, refuse: bool = False) -> None:
        super().__init__([])
        self.raw, self.answers, self.refuse, self.connects = raw, answers, refuse, 0

    async def connect_tcp(self, *args: object, **kwargs: object) -> httpcore.AsyncNetworkStream:
        self.connects += 1
        if self.refuse:
            raise httpcore.ConnectError("[Errno 111] Connection refused")
        return httpcore.AsyncMockStream([self.raw] * self.answers)


def probe(config: ProbeConfig, network: Network, n: int) -> list[Sample]:
    out: list[Sample] = []
    run_probe_async(config, threading.Event(), out.extend, max_requests=n, network_backend=network)
    return sorted(out, key=lambda s: s.seq)


def test_every_tick_is_one_sample_on_the_open_loop_schedule() -> None:
    samples = probe(ProbeConfig(URL, 400, clients=4, driver="asyncio"), Network(), 40)
    assert [s.seq for s in samples] == list(range(40))
    t0 = samples[0].scheduled
    assert [s.scheduled for s in samples] == [t0 + i / 400 for i in range(40)]
    assert {(s.status, s.version, s.error) for s in samples} == {(200, "v1", None)}
    assert Counter(s.client for s in samples) == {0: 10, 1: 10, 2: 10, 3: 10}


def test_keepalive_keeps_a_connection_per_client_and_fresh_opens_one_per_request() -> None:
    kept = Network()
    probe(ProbeConfig(URL, 400, clients=3, driver="asyncio"), kept, 30)
    assert kept.connects == 3
    fresh = Network()
    probe(ProbeConfig(URL, 400, mode="fresh", clients=3, driver="asyncio"), fresh, 30)
    assert fresh.connects == 30


def test_a_refused_connection_is_a_refused_sample_never_retried() -> None:
    network = Network(refuse=True)
    samples = probe(ProbeConfig(URL, 200, driver="asyncio"), network, 5)
    assert {s.error for s in samples} == {ErrorClass.REFUSED} and network.connects == 5


def test_a_stream_without_its_end_is_cut() -> None:
    raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 0\n\n\r\n"  # no last chunk
    samples = probe(ProbeConfig(URL, 200, mix=(("stream", 1),), driver="asyncio"), Network(raw), 3)
    assert {(s.kind, s.error) for s in samples} == {("stream", ErrorClass.STREAM_CUT)}


def test_a_tick_with_every_request_slot_busy_is_client_saturation() -> None:
    class Hanging(Network):
        async def connect_tcp(self, *args: object, **kwargs: object) -> httpcore.AsyncNetworkStream:
            import asyncio

            await asyncio.sleep(0.3)
            return await super().connect_tcp(*args, **kwargs)

    samples = probe(ProbeConfig(URL, 200, workers=2, driver="asyncio"), Hanging(), 10)
    saturated = [s for s in samples if s.error is ErrorClass.SATURATED]
    assert len(saturated) >= 5 and all(s.sent is None for s in saturated)
    assert sum(1 for s in samples if s.ok) >= 2


def test_samples_handed_over_as_the_probe_stops_are_not_lost(monkeypatch: pytest.MonkeyPatch) -> None:
    class Queued(concurrent.futures.ThreadPoolExecutor):
        """A busy pool: a job waits 200 ms in the queue before a thread starts it (and can be cancelled)."""

        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
            future: concurrent.futures.Future[Any] = concurrent.futures.Future()

            def start() -> None:
                if future.set_running_or_notify_cancel():
                    future.set_result(fn(*args, **kwargs))

            threading.Timer(0.2, start).start()
            return future

    monkeypatch.setattr(concurrent.futures, "ThreadPoolExecutor", Queued)
    # 20 req/s: ticks 0-9 take 450 ms, so the probe stops while a batch waits in the queue.
    samples = probe(ProbeConfig(URL, 20, driver="asyncio"), Network(), 10)
    assert [s.seq for s in samples] == list(range(10))


def test_connections_are_httpcores_http11_with_its_state_lock_replaced() -> None:
    """The driver swaps httpcore's private `_state_lock` for a no-op (see aio._NoLock): an httpcore that
    renamed it would leave the swap doing nothing, silently. Pinned here instead."""
    client = aio._Client(ProbeConfig(URL, 10, driver="asyncio"), 0, Network())
    conn = asyncio.run(aio._connect(client, None))
    assert isinstance(conn, httpcore.AsyncHTTP11Connection)
    assert conn._state_lock is aio._NO_LOCK
    untouched = httpcore.AsyncHTTP11Connection(conn._origin, httpcore.AsyncMockStream([]))
    assert "_state_lock" in vars(untouched)


def test_a_read_with_nothing_arriving_times_out_as_httpcores_read_timeout() -> None:
    async def read() -> None:
        reader = asyncio.StreamReader()
        stream = aio._Stream(reader, writer=None)  # type: ignore[arg-type]  # a read never writes
        await stream.read(100, timeout=0.05)

    with pytest.raises(httpcore.ReadTimeout):
        asyncio.run(read())


def test_a_tls_handshake_that_never_answers_is_a_timeout_not_a_hang() -> None:
    # A listener on loopback that completes TCP (the kernel does) and never answers the ClientHello: a
    # load balancer whose backend is gone. The request must end as a timeout, and the probe with it.
    out: list[Sample] = []
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        url = f"https://127.0.0.1:{server.getsockname()[1]}/"
        config = ProbeConfig(url, 50, timeout_s=0.3, driver="asyncio")
        probing = threading.Thread(
            target=run_probe_async, args=(config, threading.Event(), out.extend), kwargs={"max_requests": 1}
        )
        probing.start()
        probing.join(5)
        assert not probing.is_alive(), "the probe still waited on a connection it had given up on"
    (sample,) = out
    assert sample.error is ErrorClass.TIMEOUT and sample.sent is not None


def test_an_idle_connection_the_server_closed_is_seen_before_the_loop_reads_its_fin() -> None:
    """The server's FIN is in the kernel but the loop, busy, has not read it yet: asyncio's own view
    still says open, and a request sent on it races the close. httpx's backends poll the socket; so
    does this one, and httpcore's pool check (`has_expired`) then drops the connection unused."""

    async def check() -> tuple[bool, bool]:
        mine, theirs = socket.socketpair()
        reader, writer = await asyncio.open_connection(sock=mine)
        stream = aio._Stream(reader, writer)
        before = stream.get_extra_info("is_readable")
        theirs.close()  # the FIN; no await follows, so the loop cannot have read it
        after = stream.get_extra_info("is_readable")
        assert not reader.at_eof() and not writer.transport.is_closing()  # asyncio has not seen it
        await stream.aclose()
        return before, after

    assert asyncio.run(check()) == (False, True)


def test_no_socket_reads_as_readable_so_the_connection_is_dropped() -> None:
    assert aio.socket_readable(None) is True
