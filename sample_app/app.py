"""The sample web app that deploy lab deploys: one file, Python standard library only.

It runs on any base image with ``python3`` (3.9 or newer) and no pip packages:
``python3 app.py``. Everything it does is set through the environment.

Endpoints
---------
``GET /``         200 ``{"version": ..., "instance": ...}`` (or an injected 500, see APP_FAIL_RATE).
``GET /healthz``  200 ``{"status": "ready", ...}`` when ready; 503 with ``"booting"`` or ``"draining"``.
``POST /write``   201 ``{"written": true, ...}`` once the body is read: a write, which a proxy never resends.
``GET /slow``     200 after holding the request ``ms`` milliseconds (``?ms=1000``, at most 30000): a slow
                  request that is still in flight when an instance is told to stop.
``GET /stream``   200, server-sent events (``text/event-stream``, chunked): ``data: N`` every ``every_ms``
                  (default 200) for ``s`` seconds (default 3, at most 60), then ``event: end``. A stream
                  without its end event was cut short.
``HEAD``          the same as GET without the body. Any other path answers 404.

Every answer (200, 500, 503, 404) is JSON with ``Content-Length`` and carries the headers
``X-App-Version`` and ``X-Instance``, so a client can tell which release and which copy answered.
The server speaks HTTP/1.1 with keep-alive (nginx keeps connections to its upstreams open).

Knobs (environment variables; an empty value means "use the default")
--------------------------------------------------------------------
APP_PORT            TCP port to listen on, on all addresses. Default 8080.
APP_VERSION         The release name reported in answers. Default "v1".
APP_INSTANCE        The copy's name reported in answers. Default: the host name.
APP_BOOT_DELAY_S    Seconds of "booting" before the app opens its port. Default 0. While booting nothing
                    listens, so clients get "connection refused"; once it listens it is ready.
APP_FAIL_RATE       Fraction 0..1 of ``GET /`` answered with 500. Default 0.
APP_SEED            Integer seed for the failure dice, for repeatable runs. Default: unseeded.
APP_LATENCY_MS      Milliseconds added to every ``GET /`` answer. Default 0.
APP_DRAIN_S         On SIGTERM/SIGINT: report unhealthy at once but keep serving for this many seconds,
                    then stop accepting, finish requests in flight and exit 0. Default 0.
APP_FAIL_AT_START   If true: print an error and exit 1 at once (a release that crashes at start).
APP_NEVER_READY     If true: open the port after the boot delay but never become ready: /healthz and /
                    answer 503 "booting" for ever (a release that never becomes healthy).
APP_IGNORE_SIGTERM  If true: log and ignore SIGTERM (the container runtime SIGKILLs it after its
                    timeout). SIGINT still stops it.
APP_HARD_STOP       If true: on SIGTERM/SIGINT exit at once, dropping every request in flight (a slow one,
                    a stream, a write half read), as an app without graceful shutdown does. Default: the
                    graceful stop below.

Booleans accept 1/true/yes/on and 0/false/no/off. An invalid value prints one line naming the variable
and exits with code 2.

Lifecycle
---------
booting -> ready -> draining -> stopped. The app does not listen while booting, like most real servers
that open their port only when initialised: a proxy sees "connection refused", a fast error it retries on
another upstream. (Only APP_NEVER_READY shows the "booting" state over HTTP.) On the first SIGTERM or
SIGINT /healthz turns 503 at once while ``/`` keeps answering 200 for APP_DRAIN_S seconds; answers carry
``Connection: close`` during the drain so keep-alive connections are not reused. Then the port is closed
(new connections are refused), idle keep-alive connections are closed, requests in flight finish and the
process exits 0. A second signal during the drain cuts the drain short. A signal while booting exits 0
at once. The app installs its own handlers because as PID 1 in a container it would otherwise ignore
SIGTERM.

Lifecycle lines go to stdout (``<time> app event=<name> version=... instance=... ...``); errors go to
stderr as one line. Requests are not logged.
"""

from __future__ import annotations

import contextlib
import enum
import json
import os
import random
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

# Keep idle keep-alive connections longer than nginx does (upstream keepalive_timeout is 60 s by
# default), so that the proxy, not the app, is the side that closes an idle connection.
IDLE_TIMEOUT_S = 120.0
# After the port is closed: how long to wait for requests in flight before exiting anyway.
FINISH_TIMEOUT_S = 30.0

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SettingsError(ValueError):
    """One or more knobs have invalid values; the message is one line naming each of them."""


@dataclass(frozen=True)
class Settings:
    port: int = 8080
    version: str = "v1"
    instance: str = "app"
    boot_delay_s: float = 0.0
    fail_rate: float = 0.0
    seed: int | None = None
    latency_ms: float = 0.0
    drain_s: float = 0.0
    fail_at_start: bool = False
    never_ready: bool = False
    ignore_sigterm: bool = False
    hard_stop: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str], default_instance: str | None = None) -> Settings:
        """Read the knobs from `env`. Pure apart from asking for the host name when no default is given."""
        errors: list[str] = []

        def raw(name: str) -> str | None:
            value = env.get(name)
            if value is None or not value.strip():
                return None
            return value.strip()

        def number(name: str, default: float, low: float, high: float | None = None) -> float:
            value = raw(name)
            if value is None:
                return default
            limits = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"
            try:
                parsed = float(value)
            except ValueError:
                parsed = float("nan")
            if not (parsed >= low and (parsed <= high if high is not None else parsed < float("inf"))):
                errors.append(f"{name}={value!r} is invalid: must be a number {limits}")
                return default
            return parsed

        def integer(name: str, default: int | None, low: int, high: int) -> int | None:
            value = raw(name)
            if value is None:
                return default
            try:
                parsed = int(value)
            except ValueError:
                parsed = low - 1
            if not low <= parsed <= high:
                errors.append(f"{name}={value!r} is invalid: must be a whole number from {low} to {high}")
                return default
            return parsed

        def flag(name: str) -> bool:
            value = raw(name)
            if value is None:
                return False
            if value.lower() in _TRUE:
                return True
            if value.lower() not in _FALSE:
                errors.append(f"{name}={value!r} is invalid: must be one of 1/true/yes/on or 0/false/no/off")
            return False

        def label(name: str, default: str) -> str:
            value = raw(name)
            if value is None:
                return default
            if len(value) > 128 or not all("!" <= ch <= "~" for ch in value):
                errors.append(
                    f"{name}={value!r} is invalid: must be 1 to 128 visible ASCII characters, no spaces"
                )
                return default
            return value

        if default_instance is None:
            default_instance = socket.gethostname() or "app"
        settings = cls(
            port=int(integer("APP_PORT", 8080, 1, 65535) or 8080),
            version=label("APP_VERSION", "v1"),
            instance=label("APP_INSTANCE", default_instance),
            boot_delay_s=number("APP_BOOT_DELAY_S", 0.0, 0.0),
            fail_rate=number("APP_FAIL_RATE", 0.0, 0.0, 1.0),
            seed=integer("APP_SEED", None, -(2**63), 2**63 - 1),
            latency_ms=number("APP_LATENCY_MS", 0.0, 0.0),
            drain_s=number("APP_DRAIN_S", 0.0, 0.0),
            fail_at_start=flag("APP_FAIL_AT_START"),
            never_ready=flag("APP_NEVER_READY"),
            ignore_sigterm=flag("APP_IGNORE_SIGTERM"),
            hard_stop=flag("APP_HARD_STOP"),
        )
        if errors:
            raise SettingsError("; ".join(errors))
        return settings


# ---------------------------------------------------------------------------------------------------
# The lifecycle: a small state machine with no I/O, driven by the main thread and the signal handler.


class State(str, enum.Enum):  # noqa: UP042 - StrEnum needs Python 3.11; the app runs on 3.9+
    BOOTING = "booting"
    READY = "ready"
    DRAINING = "draining"
    STOPPED = "stopped"


class SignalAction(str, enum.Enum):  # noqa: UP042
    IGNORE = "ignore"  # SIGTERM with APP_IGNORE_SIGTERM
    DRAIN = "drain"  # the first stop signal: become unhealthy and start the drain
    HURRY = "hurry"  # another stop signal while draining: cut the drain short


class Lifecycle:
    """booting -> ready -> draining -> stopped.

    Only the main thread changes the state (Python runs signal handlers in the main thread too); request
    threads only read it, so no lock is needed, and none may be taken inside a signal handler anyway.
    """

    def __init__(self, ignore_sigterm: bool = False) -> None:
        self.state = State.BOOTING
        self.ignore_sigterm = ignore_sigterm

    def mark_ready(self) -> bool:
        """Booted. False (and no change) if a stop signal came first."""
        if self.state is State.BOOTING:
            self.state = State.READY
            return True
        return False

    def on_signal(self, signum: int) -> SignalAction:
        if signum == signal.SIGTERM and self.ignore_sigterm:
            return SignalAction.IGNORE
        if self.state in (State.BOOTING, State.READY):
            self.state = State.DRAINING
            return SignalAction.DRAIN
        return SignalAction.HURRY

    def mark_stopped(self) -> None:
        self.state = State.STOPPED


# ---------------------------------------------------------------------------------------------------
# Answers: pure functions of the path, the state, the settings and the dice.

Response = tuple[int, dict[str, str], bytes]  # status, headers, body


def serving(state: State) -> bool:
    """Whether ``GET /`` is served normally: when ready, and still while draining."""
    return state is not State.BOOTING


def request_delay_s(path: str, state: State, settings: Settings) -> float:
    """Seconds to wait before answering: APP_LATENCY_MS, for ``/`` when it is served."""
    if path == "/" and serving(state):
        return settings.latency_ms / 1000.0
    return 0.0


def query_number(query: dict[str, list[str]], name: str, default: float, high: float) -> float:
    """A number from the query string, within 0..high; the default when absent or not a number."""
    try:
        value = float(query[name][0])
    except (KeyError, IndexError, ValueError):
        return default
    return min(max(value, 0.0), high)


def stream_headers(settings: Settings) -> dict[str, str]:
    return {
        "Content-Type": "text/event-stream",
        "Transfer-Encoding": "chunked",
        "Cache-Control": "no-store",
        "X-Accel-Buffering": "no",  # nginx passes each event on as it comes instead of buffering them
        "X-App-Version": settings.version,
        "X-Instance": settings.instance,
    }


def respond(path: str, state: State, settings: Settings, rng: random.Random, method: str = "GET") -> Response:
    """The status, headers and body for a GET (or a POST) of `path` (a path without the query string)."""
    who = {"version": settings.version, "instance": settings.instance}
    payload: dict[str, object]
    if method == "POST":
        if path != "/write":
            status, payload = 404, {"error": "not found", **who}
        elif not serving(state):
            status, payload = 503, {"error": "not ready", "status": state.value, **who}
        else:
            status, payload = 201, {"written": True, **who}
    elif path == "/healthz":
        status = 200 if state is State.READY else 503
        payload = {"status": state.value, **who}
    elif path in ("/", "/slow"):
        if not serving(state):
            status, payload = 503, {"error": "not ready", "status": state.value, **who}
        elif settings.fail_rate > 0 and rng.random() < settings.fail_rate:
            status, payload = 500, {"error": "injected failure", **who}
        else:
            status, payload = 200, {**who}
    else:
        status, payload = 404, {"error": "not found", **who}
    body = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
    headers = {
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        "Cache-Control": "no-store",
        "X-App-Version": settings.version,
        "X-Instance": settings.instance,
    }
    if state in (State.DRAINING, State.STOPPED):
        headers["Connection"] = "close"
    return status, headers, body


# ---------------------------------------------------------------------------------------------------
# The thin layer: logging, the HTTP server, signals.


def _write(fd: int, line: str) -> None:
    # os.write: unbuffered (always flushed), safe inside a signal handler, and a short line to a pipe is
    # written in one piece, so lines from different threads do not interleave.
    with contextlib.suppress(OSError):
        os.write(fd, (line + "\n").encode("utf-8", "replace"))


def _now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def log_event(settings: Settings, event: str, **fields: object) -> None:
    extra = "".join(f" {k}={v}" for k, v in fields.items())
    _write(1, f"{_now()} app event={event} version={settings.version} instance={settings.instance}{extra}")


def log_error(message: str) -> None:
    _write(2, f"app: error: {message}")


class Handler(BaseHTTPRequestHandler):
    server: AppServer
    protocol_version = "HTTP/1.1"
    server_version = "deploylab-app"
    disable_nagle_algorithm = True  # headers and body are two writes; don't let Nagle delay the second
    timeout = IDLE_TIMEOUT_S

    def version_string(self) -> str:
        return self.server_version  # the Server header, without the Python version

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/stream" and serving(self.server.lifecycle.state):
            self._stream(parse_qs(parts.query))
        elif parts.path == "/slow" and serving(self.server.lifecycle.state):
            time.sleep(query_number(parse_qs(parts.query), "ms", 1000, 30000) / 1000)
            self._answer(send_body=True)
        else:
            self._answer(send_body=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(min(length, 1 << 20))  # a write is only done once its body is in
        self._answer(send_body=True, method="POST")

    def _stream(self, query: dict[str, list[str]]) -> None:
        """Server-sent events, chunked: `data: N` every `every_ms` for `s` seconds, then `event: end`."""
        app = self.server
        seconds = query_number(query, "s", 3, 60)
        every = query_number(query, "every_ms", 200, 10_000) / 1000
        self.send_response(200)
        for name, value in stream_headers(app.settings).items():
            self.send_header(name, value)
        self.end_headers()
        events = max(1, round(seconds / every))
        for n in range(events):
            self._chunk(f"data: {n}\n\n".encode())
            time.sleep(every)
        self._chunk(b"event: end\ndata: done\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def do_HEAD(self) -> None:
        self._answer(send_body=False)

    def _answer(self, send_body: bool, method: str = "GET") -> None:
        app = self.server
        path = urlsplit(self.path).path
        delay = request_delay_s(path, app.lifecycle.state, app.settings)
        if delay > 0:
            time.sleep(delay)
        status, headers, body = respond(path, app.lifecycle.state, app.settings, app.rng, method)
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)  # "Connection: close" also ends this connection after the answer
        self.end_headers()
        if send_body:
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # no per-request logging: it costs CPU under load


class AppServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog; socketserver's default of 5 drops connection bursts

    def __init__(self, settings: Settings, lifecycle: Lifecycle) -> None:
        self.settings = settings
        self.lifecycle = lifecycle
        self.rng = random.Random(settings.seed)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(("0.0.0.0", settings.port), Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the FQDN of 0.0.0.0, a DNS query that can stall in a sandbox.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "0.0.0.0", self.server_address[1]

    # Connections are registered in the accepting thread, before their own thread starts, so once
    # shutdown() has returned every accepted connection is known.
    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        try:
            super().shutdown_request(request)
        finally:
            with self._connections_lock:
                self._connections.discard(request)

    def open_connections(self) -> int:
        with self._connections_lock:
            return len(self._connections)

    def finish_connections(self, timeout: float) -> bool:
        """Close idle keep-alive connections and wait for the answers in flight. True if all finished.

        Shutting down the read side wakes a thread waiting for the next request with end-of-file; a thread
        that is answering still writes its answer, then reads end-of-file and closes.
        """
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by its own thread
                conn.shutdown(socket.SHUT_RD)
        deadline = time.monotonic() + timeout
        while self.open_connections() and time.monotonic() < deadline:
            time.sleep(0.01)
        return not self.open_connections()

    def handle_error(self, request: object, client_address: object) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return  # the client went away: not the app's problem, and not worth a traceback
        log_error(f"while answering {client_address}: {exc!r}")


def run(settings: Settings) -> int:
    lifecycle = Lifecycle(ignore_sigterm=settings.ignore_sigterm)
    stop = threading.Event()
    hurry = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        action = lifecycle.on_signal(signum)
        log_event(settings, "signal", signal=name, action=action.value)
        if action is SignalAction.DRAIN:
            stop.set()
        elif action is SignalAction.HURRY:
            hurry.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    log_event(settings, "booting", pid=os.getpid(), boot_delay_s=f"{settings.boot_delay_s:g}")
    if stop.wait(settings.boot_delay_s) or stop.is_set():
        lifecycle.mark_stopped()
        log_event(settings, "exit", code=0, reason="stopped_while_booting")
        return 0

    try:
        server = AppServer(settings, lifecycle)
    except OSError as exc:
        log_error(f"cannot listen on 0.0.0.0:{settings.port}: {exc.strerror or exc}")
        return 1
    # Every other thread is started with SIGTERM and SIGINT blocked (threads inherit the mask of the thread
    # that starts them, and the accept thread starts one per connection), so the kernel can deliver them to
    # the main thread only. Delivered to another thread, a signal waits until the main thread next wakes
    # (python/cpython#85300), and the main thread sleeps in stop.wait() with no timeout: now and then a
    # SIGTERM went unnoticed until Docker's SIGKILL 10 s later, the instance answering all along.
    handled = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, handled)
    try:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, handled)
    if settings.never_ready:
        log_event(settings, "listening", port=settings.port, ready="never")
    elif lifecycle.mark_ready():
        log_event(settings, "ready", port=settings.port)

    stop.wait()  # interrupted by signals; the handler sets the event
    if settings.hard_stop:
        log_event(settings, "exit", code=0, reason="hard_stop", open_connections=server.open_connections())
        os._exit(0)  # every request in flight dropped, as an app without graceful shutdown
    log_event(settings, "draining", drain_s=f"{settings.drain_s:g}")
    hurry.wait(settings.drain_s)
    server.shutdown()  # stop the accept loop ...
    server.server_close()  # ... and close the port: new connections are refused from here
    log_event(settings, "closed", open_connections=server.open_connections())
    finished = server.finish_connections(FINISH_TIMEOUT_S)
    lifecycle.mark_stopped()
    if not finished:
        log_event(settings, "abandoned", open_connections=server.open_connections())
    log_event(settings, "exit", code=0)
    return 0


def main(env: Mapping[str, str] | None = None) -> int:
    try:
        settings = Settings.from_env(os.environ if env is None else env)
    except SettingsError as exc:
        log_error(str(exc))
        return 2
    if settings.fail_at_start:
        log_error(f"release {settings.version} crashed at start (APP_FAIL_AT_START is set)")
        return 1
    return run(settings)


if __name__ == "__main__":
    sys.exit(main())
