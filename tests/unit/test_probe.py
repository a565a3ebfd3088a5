"""The probe on mock transports: schedule, lateness, saturation, classification, no retries."""

from __future__ import annotations

import errno
import threading
import time
from collections.abc import Callable

import httpcore
import httpx
import pytest

from lab.model import ErrorClass, Sample
from lab.probe.config import ProbeConfig
from lab.probe.schedule import classify, run_probe

URL = "http://probe.test/"


def probe(
    handler: Callable[[httpx.Request], httpx.Response],
    *,
    rate: float = 200,
    n: int = 10,
    workers: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    skip_after_s: float = 1.0,
) -> list[Sample]:
    out: list[Sample] = []
    cfg = ProbeConfig(URL, rate, workers=workers, skip_after_s=skip_after_s)
    run_probe(
        cfg,
        threading.Event(),
        out.extend,
        transport=httpx.MockTransport(handler),
        sleep=sleep,
        max_requests=n,
    )
    return sorted(out, key=lambda s: s.seq)


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"X-App-Version": "v2", "X-Instance": "app-v2-1"}, text="ok")


def test_schedule_is_open_loop_whatever_the_response_time() -> None:
    delays = iter([0.03, 0.0, 0.02, 0.0, 0.01] * 4)
    lock = threading.Lock()

    def uneven(request: httpx.Request) -> httpx.Response:
        with lock:
            delay = next(delays)
        time.sleep(delay)
        return ok(request)

    samples = probe(uneven, rate=200, n=20, workers=64)
    assert [s.seq for s in samples] == list(range(20))
    t0 = samples[0].scheduled
    assert [s.scheduled for s in samples] == [t0 + i / 200 for i in range(20)]
    for s in samples:
        assert s.ok and s.sent is not None and s.finished is not None
        assert s.scheduled <= s.sent <= s.finished


def test_headers_are_recorded() -> None:
    samples = probe(ok, n=3)
    assert {(s.status, s.version, s.instance, s.error) for s in samples} == {(200, "v2", "app-v2-1", None)}


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (200, None),
        (304, None),
        (404, ErrorClass.HTTP_4XX),
        (429, ErrorClass.HTTP_4XX),
        (500, ErrorClass.HTTP_5XX),
        (503, ErrorClass.HTTP_5XX),
    ],
)
def test_error_statuses_are_failures_by_class(status: int, error: ErrorClass | None) -> None:
    samples = probe(lambda r: httpx.Response(status, headers={"X-App-Version": "v1"}), n=2)
    assert [(s.status, s.error, s.version) for s in samples] == [(status, error, "v1")] * 2


def test_late_ticks_are_stamped_not_shifted() -> None:
    # Every wake-up comes 10 ms after the dispatcher asked: ticks go out late, but stay on the grid.
    samples = probe(ok, rate=50, n=6, sleep=lambda s: time.sleep(s + 0.01))
    t0 = samples[0].scheduled
    assert [s.scheduled for s in samples] == [t0 + i / 50 for i in range(6)]
    for s in samples[1:]:
        assert s.late and s.ok
        assert s.sent is not None and s.sent - s.scheduled >= 0.01


def test_far_overdue_ticks_are_skipped_not_burst() -> None:
    naps = []

    def stall_once(seconds: float) -> None:
        naps.append(seconds)
        time.sleep(seconds + (0.3 if len(naps) == 1 else 0.0))

    samples = probe(ok, rate=100, n=40, workers=64, sleep=stall_once, skip_after_s=0.1)
    assert [s.seq for s in samples] == list(range(40))
    # Woken at >= 310 ms: ticks due at 10..150 ms are over 100 ms overdue, recorded unsent.
    for s in samples[1:16]:
        assert s.error is ErrorClass.SATURATED and s.sent is None and s.finished is None
        assert not s.server_failure
    # Ticks due less than 100 ms before the wake-up are still sent, and stamped late (assuming the wake-up
    # itself came within 90 ms of the 310 ms asked for).
    assert samples[30].sent is not None and samples[30].late
    assert all(s.late for s in samples[1:31] if s.sent is not None)


def test_busy_workers_mean_client_saturation() -> None:
    gate = threading.Event()
    calls = []

    def blocked(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        gate.wait(2.0)
        return ok(request)

    out: list[Sample] = []
    cfg = ProbeConfig(URL, 200, workers=2)
    runner = threading.Thread(
        target=run_probe,
        args=(cfg, threading.Event(), out.extend),
        kwargs={"transport": httpx.MockTransport(blocked), "max_requests": 6},
    )
    runner.start()
    deadline = time.monotonic() + 2.0
    while sum(s.error is ErrorClass.SATURATED for s in out) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    gate.set()
    runner.join(2.0)
    samples = sorted(out, key=lambda s: s.seq)
    assert [s.seq for s in samples] == list(range(6))
    assert [s.ok for s in samples[:2]] == [True, True]
    assert all(s.error is ErrorClass.SATURATED and s.sent is None for s in samples[2:])
    assert len(calls) == 2  # a saturated tick is never sent later


def test_stop_ends_the_run_and_every_sample_is_emitted() -> None:
    stop = threading.Event()
    batches: list[list[Sample]] = []
    started: list[float] = []
    threading.Timer(0.25, stop.set).start()
    run_probe(
        ProbeConfig(URL, 400),
        stop,
        batches.append,
        transport=httpx.MockTransport(ok),
        on_start=started.append,
    )
    samples = sorted((s for b in batches for s in b), key=lambda s: s.seq)
    assert len(batches) >= 2  # streamed while running, not only at the end
    assert [s.seq for s in samples] == list(range(len(samples)))
    assert len(samples) >= 20  # the timer started before the workers did
    assert samples[0].scheduled == started[0]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), ErrorClass.REFUSED),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ErrorClass.REFUSED),
        (httpx.ConnectError("[Errno 104] Connection reset by peer"), ErrorClass.RESET),
        (httpx.ConnectError("[Errno -2] Name or service not known"), ErrorClass.OTHER),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), ErrorClass.RESET),
        (httpx.WriteError("[Errno 32] Broken pipe"), ErrorClass.RESET),
        (httpx.RemoteProtocolError("Server disconnected without sending a response."), ErrorClass.RESET),
        (ConnectionResetError(errno.ECONNRESET, "reset"), ErrorClass.RESET),
        (httpx.ConnectTimeout("timed out"), ErrorClass.TIMEOUT),
        (httpx.ReadTimeout("timed out"), ErrorClass.TIMEOUT),
        (httpx.WriteTimeout("timed out"), ErrorClass.TIMEOUT),
        (httpx.PoolTimeout("timed out"), ErrorClass.SATURATED),
        (httpx.UnsupportedProtocol("no"), ErrorClass.OTHER),
        (ValueError("bug"), ErrorClass.OTHER),
    ],
)
def test_classify(exc: Exception, expected: ErrorClass) -> None:
    assert classify(exc) is expected


def test_classify_follows_the_cause_chain() -> None:
    # What httpx really raises: its ConnectError from httpcore's, from the socket's OSError.
    try:
        try:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "os says no")
        except OSError as os_err:
            raise httpcore.ConnectError("wrapped") from os_err
    except httpcore.ConnectError as core_err:
        exc = httpx.ConnectError("wrapped again")
        exc.__cause__ = core_err
    assert classify(exc) is ErrorClass.REFUSED


def test_request_errors_are_classified_in_samples() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    samples = probe(timeout, n=3)
    assert all(s.error is ErrorClass.TIMEOUT and s.status is None and s.finished is not None for s in samples)
    assert all(s.server_failure for s in samples)


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        ProbeConfig(URL, 0)
    with pytest.raises(ValueError):
        ProbeConfig(URL, 10, mode="sometimes")
