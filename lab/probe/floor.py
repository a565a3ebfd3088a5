"""The CPU one request costs in httpx's stack alone (httpcore over h11), with no network and no server:
the floor under any way of driving the probe on this machine.

Each driver's own exchange runs against httpcore's in-memory mock network, answering what the lab's
nginx answers, on one kept-alive connection. What is left on top of this figure in a real run is the
driver (event loop or threads), the sockets' system calls, and the server sharing the same cores.
`make bench` prints it beside the rates, so a ceiling can be read against what it could at best be.

Measured back to back, the figure is a best case: the same exchange after the thread has slept a moment
costs two to four times as much here (its caches gone cold while the core ran something else or idled),
and a probe sleeps between ticks whenever it keeps up. So the floor is also measured with a pause before
each request (`pause_s`), the CPU counted around the exchange alone.
"""

from __future__ import annotations

import asyncio
import time

import httpcore

from lab.probe import aio
from lab.probe.channel import Channel, Reader
from lab.probe.config import ProbeConfig

# What the lab's static nginx answers (bench target), byte for byte the same size of headers.
ANSWER = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Wed, 02 Dec 2026 07:00:00 GMT\r\n"
    b"Content-Type: text/plain\r\nContent-Length: 3\r\nConnection: keep-alive\r\n"
    b"X-App-Version: v1\r\nX-Instance: proxy\r\n\r\nok\n"
)
_URL = "http://floor.test/"


def _check(status: int, version: str | None) -> None:
    if (status, version) != (200, "v1"):
        raise RuntimeError(f"the in-memory answer was read as {status} {version}: not a request's cost")


class _SyncNet(httpcore.MockBackend):
    def __init__(self, answers: int, answer: bytes) -> None:
        super().__init__([])
        self.answers, self.answer = answers, answer

    def connect_tcp(self, *args: object, **kwargs: object) -> httpcore.NetworkStream:
        return httpcore.MockStream([self.answer] * self.answers)


class _AsyncNet(httpcore.AsyncMockBackend):
    def __init__(self, answers: int, answer: bytes) -> None:
        super().__init__([])
        self.answers, self.answer = answers, answer

    async def connect_tcp(self, *args: object, **kwargs: object) -> httpcore.AsyncNetworkStream:
        return httpcore.AsyncMockStream([self.answer] * self.answers)


def stack_cost_us(driver: str, requests: int = 5000, answer: bytes = ANSWER, pause_s: float = 0.0) -> float:
    """CPU microseconds per kept-alive request through `driver`'s exchange, after one to warm up; with
    `pause_s`, the thread sleeps that long before each request, and only the exchanges are counted."""
    config = ProbeConfig(_URL, 1000, driver=driver)
    if driver == "asyncio":
        return asyncio.run(_async_cost(config, requests, answer, pause_s))
    channel = Channel(config, network_backend=_SyncNet(requests + 1, answer))
    _check(*channel.exchange()[:2])
    spent = 0.0
    for _ in range(requests):
        if pause_s:
            time.sleep(pause_s)
        start = time.thread_time()
        _check(*channel.exchange()[:2])
        spent += time.thread_time() - start
    return spent / requests * 1e6


async def _async_cost(config: ProbeConfig, requests: int, answer: bytes, pause_s: float) -> float:
    client, read = aio._Client(config, 0, _AsyncNet(requests + 1, answer)), Reader(config)
    _check(*(await aio._exchange(client, "get", False, read, None))[:2])
    spent = 0.0
    for _ in range(requests):
        if pause_s:
            time.sleep(pause_s)  # the thread sleeps, as a loop with nothing due does in its selector
        start = time.thread_time()
        _check(*(await aio._exchange(client, "get", False, read, None))[:2])
        spent += time.thread_time() - start
    return spent / requests * 1e6
