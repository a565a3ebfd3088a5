"""How one probe worker sends one request: a ``Channel`` of at most one connection, no retries.

A channel drives httpx's own transport layer (httpcore) directly, not an ``httpx.Client`` nor even an
``httpx.HTTPTransport``: the client's layers (cookies, auth, redirects, default headers) add nothing to a
probe and cost about a third of its CPU, and the transport's per-request conversions and pool bookkeeping
most of another third of its Python time.
"""

from __future__ import annotations

import contextlib
import re
import ssl

import httpcore
import httpx

from lab.probe.config import ProbeConfig

# Where each kind of request goes, relative to the probed URL (the sample app serves them all).
SLOW_MS = 1000  # a slow request: held this long by the app, so it is in flight when an instance stops
STREAM_S = 3.0  # a stream: server-sent events for this long
STREAM_EVERY_MS = 200
STREAM_END = b"event: end\n"  # the sample app's last event: a stream without it was cut short
WRITE_BODY = b'{"write": true}'


def kind_url(url: str, kind: str) -> httpx.URL:
    base = httpx.URL(url)
    if kind == "post":
        return base.copy_with(path="/write", query=None)
    if kind == "slow":
        return base.copy_with(path="/slow", query=f"ms={SLOW_MS}".encode())
    if kind == "stream":
        query = f"s={STREAM_S:g}&every_ms={STREAM_EVERY_MS}".encode()
        return base.copy_with(path="/stream", query=query)
    return base


def client_name(client: int) -> str:
    return f"c{client:03d}"


def make_request(config: ProbeConfig, client: int = 0, kind: str = "get") -> httpx.Request:
    """The one request a client sends for a kind, built once and reused: nothing mutates it, and
    rebuilding it (URL parsing, header validation) was a tenth of the cost per request. It carries the
    client's id as a header and a cookie (what a proxy routes a user by), and a tester's canary header."""
    t = config.timeout_s
    name = client_name(client)
    headers = {"User-Agent": "deploy-lab-probe", "X-Lab-Client": name, "Cookie": f"lab_client={name}"}
    if client < config.testers:
        headers["X-Canary"] = "always"
    headers.update(config.headers)  # the user's (a Host for an ingress, an Authorization): theirs win
    if config.mode == "fresh":
        # Also ask the server to close: it then closes first, so TIME_WAIT lands on the server and a long
        # fresh run cannot exhaust the probe's ephemeral ports.
        headers["Connection"] = "close"
    timeout = {"connect": t, "read": t, "write": t, "pool": t}
    if kind == "post":
        url = kind_url(config.url, kind)
        return httpx.Request(
            "POST", url, headers=headers, content=WRITE_BODY, extensions={"timeout": timeout}
        )
    return httpx.Request("GET", kind_url(config.url, kind), headers=headers, extensions={"timeout": timeout})


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


def ssl_context_for(config: ProbeConfig) -> ssl.SSLContext | None:
    """The TLS context the channels share (the CA bundle loaded once); None unless the URL is https.
    `insecure`: any certificate is accepted (a self-signed one), as `curl -k` does. It offers HTTP/1.1
    only, by ALPN, as httpcore's own connection sets it: the asyncio driver opens its connections itself."""
    if not config.url.lower().startswith("https:"):
        return None
    context = httpx.create_ssl_context(verify=not config.insecure)
    context.set_alpn_protocols(["http/1.1"])
    return context


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


class Reader:
    """What a Sample records of a response: the version (a header, or a pattern over the body), the
    X-Instance and X-Lab-Upstream headers, read as ``httpx.Headers.get`` reads each (names
    case-insensitive, repeated values joined with ", "), in one pass over the headers: scanning once per
    name cost half as much again per response."""

    def __init__(self, config: ProbeConfig) -> None:
        self.body = re.compile(config.version_from_body.encode()) if config.version_from_body else None
        self.slots = {b"x-instance": 1, b"x-lab-upstream": 2}
        if self.body is None:
            self.slots[config.version_header.lower().encode()] = 0

    def __call__(self, headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[str | None, ...]:
        found: list[str | None] = [None, None, None]
        slots = self.slots
        for key, value in headers:
            i = slots.get(key.lower())
            if i is not None:
                text = _decode(value)
                found[i] = text if found[i] is None else f"{found[i]}, {text}"
        if self.body is not None and (match := self.body.search(body)):
            found[0] = _decode(match.group(1) if match.re.groups else match.group(0))
        return found[0], found[1], found[2]


_Result = tuple[int, str | None, str | None, str | None]  # status, X-App-Version, X-Instance, X-Lab-Upstream


class StreamCut(Exception):
    """A stream's answer began, then ended before its last event: cut by the server or on the way."""


class Channel:
    """One connection of one client: httpx's own transport layer (httpcore), no pool.

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
        client: int = 0,
    ) -> None:
        self.fresh = config.mode == "fresh"
        self.requests = {kind: _core_request(make_request(config, client, kind)) for kind, _ in config.mix}
        self.request = self.requests[config.mix[0][0]]
        self.origin = self.request.url.origin
        self.ssl_context = ssl_context
        self.backend = network_backend or httpcore.SyncBackend()
        scheme = self.request.url.scheme.decode()
        self.unsupported = None if scheme in ("http", "https") else f"unsupported protocol {scheme!r}"
        self.connection: httpcore.HTTPConnection | None = None
        self.read = Reader(config)

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

    def exchange(self, kind: str = "get") -> _Result:
        """Send the request, read the whole response, and return what a Sample records of it."""
        if self.unsupported:
            raise httpcore.UnsupportedProtocol(self.unsupported)
        conn = self._connection()
        try:
            response = conn.handle_request(self.requests[kind])
            try:
                try:
                    body = response.read()  # the whole body: the connection is free (or closed) after it
                except httpcore.ProtocolError as exc:  # the answer began, its body was cut off
                    if kind == "stream":
                        raise StreamCut(str(exc)) from exc
                    raise
            finally:
                response.close()
        finally:
            if self.fresh:
                if not conn.is_closed():  # asked for `Connection: close`, it usually closed itself
                    conn.close()
                self.connection = None
        if kind == "stream" and response.status == 200 and STREAM_END not in body[-64:]:
            raise StreamCut("the stream ended before its last event")
        version, instance, upstream = self.read(response.headers, body)
        return response.status, version, instance, upstream

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class TransportChannel:
    """A worker's way through an ``httpx`` transport instead (tests: ``httpx.MockTransport``)."""

    def __init__(self, config: ProbeConfig, transport: httpx.BaseTransport, client: int = 0) -> None:
        self.transport = transport
        self.requests = {kind: make_request(config, client, kind) for kind, _ in config.mix}
        self.read = Reader(config)

    def exchange(self, kind: str = "get") -> _Result:
        response = self.transport.handle_request(self.requests[kind])
        try:
            body = response.read()
        finally:
            response.close()
        version, instance, upstream = self.read(response.headers.raw, body)
        return response.status_code, version, instance, upstream

    def close(self) -> None:
        pass  # the caller's transport: closed by the caller
