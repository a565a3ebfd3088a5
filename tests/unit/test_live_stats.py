"""The live view's figures on synthetic samples: no clock, no terminal, no Docker."""

from __future__ import annotations

import pytest

from lab.live.stats import LiveStats
from lab.model import ErrorClass, Sample

T0, RATE = 100.0, 100.0  # tick i is due at T0 + i / 100


def ok(seq: int, version: str, *, late: bool = False, latency: float = 0.003) -> Sample:
    t = T0 + seq / RATE
    return Sample(seq, t, t, t + latency, 200, version, f"app-{version}-1", late=late)


def failed(seq: int, error: ErrorClass, version: str | None = None) -> Sample:
    t = T0 + seq / RATE
    status = 500 if error is ErrorClass.HTTP_5XX else None
    return Sample(seq, t, t, t + 0.001, status, version, error=error)


def unsent(seq: int) -> Sample:
    t = T0 + seq / RATE
    return Sample(seq, t, None, None, error=ErrorClass.SATURATED)


def stats(samples: list[Sample], lag_s: float = 0.0) -> LiveStats:
    live = LiveStats(RATE, T0, lag_s=lag_s)
    live.add(samples)
    return live


def test_share_counts_good_answers_by_version_over_the_last_second_only() -> None:
    # Second [1, 2): 30 from v1, 70 from v2. Before it, a whole second of v1 that must not count.
    early = [ok(i, "v1") for i in range(100)]
    recent = [ok(100 + i, "v1" if i < 30 else "v2") for i in range(100)]
    last = stats(early + recent).figures(T0 + 2.0).last
    assert last is not None
    assert (last.due, last.sent, last.unsent, last.not_back) == (100, 100, 0, 0)
    assert last.answers == {"v1": 30, "v2": 70}
    assert last.share("v2") == pytest.approx(0.7)
    assert last.rate == pytest.approx(100.0)


def test_a_second_without_answers_has_no_share_rather_than_zero() -> None:
    refused = [failed(i, ErrorClass.REFUSED) for i in range(100)]
    last = stats(refused).figures(T0 + 1.0).last
    assert last is not None and last.answered == 0
    assert last.share("v1") is None and last.share("v2") is None
    assert last.failed == {"refused": 100}
    assert last.rate == pytest.approx(100.0)  # requests were sent, whatever came back


def test_rate_counts_requests_sent_not_answers_and_unanswered_ticks_are_not_back() -> None:
    # 60 answered, 40 sent to a server that hangs: their samples only come with the timeout, later.
    last = stats([ok(i, "v1") for i in range(60)]).figures(T0 + 1.0).last
    assert last is not None
    assert (last.due, last.sent, last.not_back) == (100, 60, 40)
    assert last.rate == pytest.approx(60.0)


def test_client_saturation_is_counted_apart_never_as_a_failure() -> None:
    samples = [unsent(i) if i % 10 == 0 else ok(i, "v1") for i in range(100)]
    fig = stats(samples).figures(T0 + 1.0)
    assert fig.unsent == 10 and fig.failures == {} and fig.failed == 0
    assert fig.last is not None and (fig.last.sent, fig.last.unsent, fig.last.not_back) == (90, 10, 0)
    assert fig.last.rate == pytest.approx(90.0)


def test_failures_and_late_ticks_accumulate_over_the_whole_run() -> None:
    samples = [
        failed(5, ErrorClass.RESET),
        failed(6, ErrorClass.HTTP_5XX, "v2"),
        failed(7, ErrorClass.HTTP_5XX),
        ok(8, "v1", late=True),
        ok(9, "v2", late=True),
        *[ok(i, "v2") for i in range(300, 400)],
    ]
    fig = stats(samples).figures(T0 + 4.0)
    assert fig.failures == {"reset": 1, "http_5xx": 2} and fig.failed == 3
    assert fig.late == 2 and fig.received == 105
    assert fig.last is not None and fig.last.failed == {} and fig.last.answers == {"v2": 100}


def test_arrival_order_does_not_matter_and_old_samples_are_dropped() -> None:
    live = LiveStats(RATE, T0, lag_s=0.0)
    live.add([ok(i, "v2") for i in range(199, 99, -1)])  # completion order, newest first
    first = live.figures(T0 + 2.0).last
    assert first is not None and first.answers == {"v2": 100}
    live.add([ok(i, "v1") for i in range(200, 300)])
    later = live.figures(T0 + 3.0).last
    assert later is not None and later.answers == {"v1": 100}
    assert live.figures(T0 + 3.0).received == 200


def test_the_window_ends_lag_before_now() -> None:
    samples = [ok(i, "v1") for i in range(175)]  # answers up to 1.75 s; the newest are not here yet
    lagged = stats(samples, lag_s=0.25).figures(T0 + 2.0).last
    assert lagged is not None and (lagged.start, lagged.end) == pytest.approx((T0 + 0.75, T0 + 1.75))
    assert (lagged.due, lagged.sent, lagged.not_back) == (100, 100, 0)
    unlagged = stats(samples, lag_s=0.0).figures(T0 + 2.0).last
    assert unlagged is not None and unlagged.not_back == 25  # the dip a lag avoids


def test_the_first_second_is_divided_by_the_time_probed_not_a_whole_second() -> None:
    last = stats([ok(i, "v1") for i in range(50)]).figures(T0 + 0.5).last
    assert last is not None and last.span_s == pytest.approx(0.5)
    assert (last.due, last.sent) == (50, 50)
    assert last.rate == pytest.approx(100.0)
    assert stats([]).figures(T0).last is None  # no tick was due yet: no figure, not 0 req/s


def test_after_the_stop_the_last_second_is_the_schedules_last() -> None:
    samples = [ok(i, "v2") for i in range(300)]  # ticks 0..299, then the probe was told to stop
    fig = stats(samples).figures(T0 + 9.0, stopped_at=T0 + 3.002)
    assert fig.last is not None and (fig.last.start, fig.last.end) == pytest.approx((T0 + 2.0, T0 + 3.0))
    assert (fig.last.due, fig.last.sent, fig.last.not_back) == (100, 100, 0)
    assert fig.last.rate == pytest.approx(100.0)  # not 99 req/s for a window cut between two ticks


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        LiveStats(0, T0)
    with pytest.raises(ValueError):
        LiveStats(RATE, T0, window_s=0)
