"""The probe's channel: httpcore errors as httpx's, and over a mock network, what goes on the wire and how
many connections."""

from __future__ import annotations

import errno
import threading

import httpcore
import httpx
import pytest

from lab.model import ErrorClass, Sample
from lab.probe.channel import Channel, as_httpx_error
from lab.probe.config import ProbeConfig
from lab.probe.schedule import classify, run_probe

URL = "http://probe.test/"


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpcore.ConnectError("[Errno 111] Connection refused"), ErrorClass.REFUSED),
        (httpcore.ConnectError("[Errno 104] Connection reset by peer"), ErrorClass.RESET),
        (httpcore.ConnectError("[Errno -2] Name or service not known"), ErrorClass.OTHER),
        (httpcore.ConnectTimeout("timed out"), ErrorClass.TIMEOUT),
        (httpcore.ReadTimeout("timed out"), ErrorClass.TIMEOUT),
        (httpcore.ReadError("[Errno 104] Connection reset by peer"), ErrorClass.RESET),
        (httpcore.WriteError("[Errno 32] Broken pipe"), ErrorClass.RESET),
        (httpcore.RemoteProtocolError("Server disconnected without sending a response."), ErrorClass.RESET),
        (httpcore.PoolTimeout("timed out"), ErrorClass.SATURATED),
        (httpcore.UnsupportedProtocol("no"), ErrorClass.OTHER),
    ],
)
def test_httpcore_errors_classify_as_their_httpx_errors(exc: Exception, expected: ErrorClass) -> None:
    mapped = as_httpx_error(exc)
    assert isinstance(mapped, httpx.TransportError) and mapped.__cause__ is exc
    assert classify(mapped) is expected


def test_httpcore_error_keeps_the_socket_error_as_cause() -> None:
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "os says no")
        except OSError as os_err:
            raise httpcore.ConnectError("wrapped") from os_err
    except httpcore.ConnectError as core_err:
        assert classify(as_httpx_error(core_err)) is ErrorClass.REFUSED


# ---------------------------------------------------------------------------------------------------
# The real channel (httpcore connections) over a mock network: what goes on the wire, how many connections.

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-App-Version: v1\r\n\r\nok"


class CountingBackend(httpcore.NetworkBackend):
    """Counts connection attempts; each connection answers every request with RESPONSE."""

    def __init__(self, refuse: bool = False, responses: int = 100) -> None:
        self.refuse = refuse
        self.responses = responses  # per connection; then it reads as closed by the server
        self.connects = 0
        self.closes = 0
        self.written: list[bytes] = []

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        self.connects += 1
        if self.refuse:
            raise httpcore.ConnectError("[Errno 111] Connection refused")
        backend = self

        class Stream(httpcore.MockStream):
            def write(self, buffer: bytes, timeout: float | None = None) -> None:
                backend.written.append(buffer)

            def close(self) -> None:
                backend.closes += 1
                super().close()

            def get_extra_info(self, info: str) -> object:
                if info == "is_readable":  # idle and readable: a keep-alive connection the server closed
                    return not self._buffer
                return None

        return Stream([RESPONSE] * self.responses)


def probe_wire(mode: str, backend: CountingBackend, n: int) -> list[Sample]:
    """Sent samples only: on a loaded machine the single worker may still be busy at a tick."""
    cfg = ProbeConfig(URL, 100, mode=mode, workers=1)
    out: list[Sample] = []
    run_probe(cfg, threading.Event(), out.extend, network_backend=backend, max_requests=n)
    return [s for s in sorted(out, key=lambda s: s.seq) if s.sent is not None]


def test_keepalive_reuses_one_connection() -> None:
    backend = CountingBackend()
    samples = probe_wire("keepalive", backend, 6)
    assert len(samples) > 1 and {(s.status, s.version) for s in samples} == {(200, "v1")}
    assert backend.connects == 1
    assert backend.closes == 1  # when the run ended
    wire = b"".join(backend.written).lower()
    assert wire.count(b"get / http/1.1") == len(samples) and b"connection: close" not in wire
    assert wire.count(b"host: probe.test") == len(samples)


def test_keepalive_replaces_a_connection_the_server_closed() -> None:
    # Each connection answers twice, then the server closes it: noticed before the next request (as
    # httpx's pool does), so the request goes out on a new connection instead of failing.
    backend = CountingBackend(responses=2)
    samples = probe_wire("keepalive", backend, 6)
    assert len(samples) > 1 and {(s.status, s.error) for s in samples} == {(200, None)}
    assert backend.connects == (len(samples) + 1) // 2


def test_fresh_opens_a_new_connection_per_request() -> None:
    backend = CountingBackend()
    samples = probe_wire("fresh", backend, 6)
    assert len(samples) > 1 and {(s.status, s.version) for s in samples} == {(200, "v1")}
    assert backend.connects == backend.closes == len(samples)  # each closed after its response
    wire = b"".join(backend.written).lower()
    assert wire.count(b"get / http/1.1") == wire.count(b"connection: close") == len(samples)


def test_channel_reads_headers_as_httpx_does() -> None:
    # Case-insensitive names, repeated values joined: what httpx.Headers.get returns.
    raw = b"HTTP/1.1 503 Busy\r\nx-app-version: v2\r\nX-INSTANCE: a\r\nX-Instance: b\r\nContent-Length: 0\r\n"
    raw += b"x-lab-upstream: 10.0.0.2:80, 10.0.0.3:80\r\n\r\n"
    channel = Channel(ProbeConfig(URL, 1, mode="fresh"), network_backend=httpcore.MockBackend([raw]))
    assert channel.exchange() == (503, "v2", "a, b", "10.0.0.2:80, 10.0.0.3:80")
    assert channel.connection is None  # fresh: nothing kept


@pytest.mark.parametrize("mode", ["keepalive", "fresh"])
def test_a_refused_connection_is_tried_once(mode: str) -> None:
    backend = CountingBackend(refuse=True)
    samples = probe_wire(mode, backend, 4)
    assert samples and {s.error for s in samples} == {ErrorClass.REFUSED}
    assert backend.connects == len(samples)  # no retry, at the httpcore pool level either
