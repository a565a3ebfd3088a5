"""Analysis over synthetic timelines: every expectation is derived from the timeline the test builds."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import replace

import pytest

from lab.analysis.summary import deploy_span, latency_percentiles, summarize, version_share
from lab.analysis.windows import Window, downtime_windows, flip_flops, mixed_version_window
from lab.model import ErrorClass, Event, Sample

RATE = 100.0
LATENCY = 0.005


def timeline(
    duration: float = 10.0,
    rate: float = RATE,
    latency: float = LATENCY,
    version: Callable[[float], str] | str = "v1",
    start: float = 100.0,
) -> list[Sample]:
    """A healthy open-loop probe: one request every 1/rate s, each answered after `latency` s."""
    pick = version if callable(version) else (lambda _t: version)
    samples = []
    for i in range(round(duration * rate)):
        t = start + i / rate
        samples.append(
            Sample(seq=i, scheduled=t, sent=t, finished=t + latency, status=200, version=pick(t - start))
        )
    return samples


def in_span(s: Sample, lo: float, hi: float, start: float = 100.0) -> bool:
    """Scheduled in [lo, hi) s after the start (with slack for float rounding of the tick times)."""
    offset = s.scheduled - start
    return lo - 1e-9 <= offset < hi - 1e-9


def fail(
    samples: list[Sample], lo: float, hi: float, error: ErrorClass = ErrorClass.HTTP_5XX, took: float = 0.001
) -> list[Sample]:
    """Requests scheduled in [lo, hi) s after the start fail after `took` s."""
    return [
        replace(s, status=None, version=None, error=error, finished=s.sent + took)
        if in_span(s, lo, hi) and s.sent is not None
        else s
        for s in samples
    ]


def saturate(samples: list[Sample], lo: float, hi: float) -> list[Sample]:
    """The probe could not send requests scheduled in [lo, hi)."""
    return [
        replace(s, sent=None, finished=None, status=None, version=None, error=ErrorClass.SATURATED)
        if in_span(s, lo, hi)
        else s
        for s in samples
    ]


def first_ok_sent_after(samples: list[Sample], t: float) -> float:
    return min(s.sent for s in samples if s.ok and s.sent is not None and s.sent >= t)


def event(index: int, started: float, ended: float) -> Event:
    return Event(index=index, kind="Pause", detail="pause", started=started, ended=ended)


# ---------------------------------------------------------------------------------------------------
# Downtime windows


def test_no_failures_no_window() -> None:
    assert downtime_windows(timeline()) == []


def test_single_failed_request_makes_a_short_window() -> None:
    samples = timeline()
    failed = samples[300]
    samples[300] = replace(failed, error=ErrorClass.REFUSED, status=None, version=None)
    assert failed.sent is not None

    (window,) = downtime_windows(samples)

    assert window.start == failed.sent
    assert window.end == samples[301].sent
    assert window.failures == 1
    assert window.duration_s == pytest.approx(1 / RATE)


def test_outage_window_runs_from_first_failure_to_next_success_sent() -> None:
    samples = fail(timeline(), 3.0, 3.5)
    failures = [s for s in samples if s.server_failure]

    (window,) = downtime_windows(samples)

    assert window.start == min(s.sent for s in failures if s.sent is not None)
    assert window.end == first_ok_sent_after(samples, window.start)
    assert window.failures == len(failures) == 50
    assert window.duration_s == pytest.approx(0.5)


def test_slow_timeouts_do_not_stretch_the_window() -> None:
    # Each failure takes 2 s to time out, but requests sent after the outage succeed at once.
    samples = fail(timeline(), 3.0, 3.5, error=ErrorClass.TIMEOUT, took=2.0)

    (window,) = downtime_windows(samples)

    assert window.end == first_ok_sent_after(samples, window.start)
    assert window.duration_s == pytest.approx(0.5)


def test_input_order_does_not_matter() -> None:
    samples = fail(timeline(), 3.0, 3.5)
    shuffled = samples[:]
    random.Random(7).shuffle(shuffled)
    assert downtime_windows(shuffled) == downtime_windows(samples)


def test_run_ending_while_failing_ends_at_last_failure_finished() -> None:
    samples = fail(timeline(), 9.0, 10.0, took=0.003)
    failures = [s for s in samples if s.server_failure]

    (window,) = downtime_windows(samples)

    assert window.start == failures[0].sent
    assert window.end == max(s.finished for s in failures if s.finished is not None)
    assert window.failures == len(failures)


def test_two_outages_give_two_windows_total_is_sum_longest_is_max() -> None:
    samples = fail(fail(timeline(), 2.0, 2.3), 6.0, 6.8)

    windows = downtime_windows(samples)
    analysis = summarize(samples, [], target_rate=RATE)

    assert len(windows) == 2
    first, second = windows
    assert first.duration_s == pytest.approx(0.3)
    assert second.duration_s == pytest.approx(0.8)
    assert analysis.total_downtime_ms == pytest.approx(sum(w.duration_s for w in windows) * 1000)
    assert analysis.downtime_ms == pytest.approx(max(w.duration_s for w in windows) * 1000)
    assert analysis.requests_failed == first.failures + second.failures


def test_saturation_inside_an_outage_neither_splits_it_nor_counts_as_failure() -> None:
    outage = fail(timeline(), 3.0, 3.5)
    samples = saturate(outage, 3.2, 3.3)
    saturated = sum(1 for s in samples if s.error is ErrorClass.SATURATED)
    server_failures = sum(1 for s in samples if s.server_failure)

    windows = downtime_windows(samples)
    analysis = summarize(samples, [], target_rate=RATE)

    assert windows == [replace(downtime_windows(outage)[0], failures=server_failures)]
    assert saturated == 10
    assert analysis.client_saturated == saturated
    assert analysis.requests_failed == server_failures == 50 - saturated
    assert ErrorClass.SATURATED.value not in analysis.failures_by_class
    assert analysis.failures_by_class == {ErrorClass.HTTP_5XX.value: server_failures}


def test_saturation_neither_starts_nor_ends_a_window() -> None:
    # Saturated ticks just before and just after an outage: the window is bounded by sent requests only.
    samples = saturate(saturate(fail(timeline(), 3.0, 3.5), 2.9, 3.0), 3.5, 3.6)
    failures = [s for s in samples if s.server_failure]

    (window,) = downtime_windows(samples)

    assert window.start == failures[0].sent
    assert window.end == first_ok_sent_after(samples, window.start)  # the first success, at 3.6
    assert window.duration_s == pytest.approx(0.6)


def test_saturation_alone_is_no_downtime() -> None:
    samples = saturate(timeline(), 4.0, 5.0)
    analysis = summarize(samples, [], target_rate=RATE)
    assert downtime_windows(samples) == []
    assert analysis.downtime_ms == 0.0
    assert analysis.requests_failed == 0


# ---------------------------------------------------------------------------------------------------
# Mixed versions and flip-flops


def overlapping(switch: float = 5.0, overlap: float = 0.3) -> list[Sample]:
    """v1 until `switch`, v2 after; during the `overlap` before the switch, answers alternate."""

    def version(t: float) -> str:
        if t >= switch:
            return "v2"
        if t >= switch - overlap:
            return "v2" if round(t * RATE) % 2 else "v1"
        return "v1"

    return timeline(version=version)


def test_mixed_window_spans_first_v2_to_last_v1() -> None:
    samples = overlapping()
    first_v2 = min(s.finished for s in samples if s.version == "v2" and s.finished is not None)
    last_v1 = max(s.finished for s in samples if s.version == "v1" and s.finished is not None)

    window = mixed_version_window(samples)

    assert window is not None
    assert (window.start, window.end) == (first_v2, last_v1)
    assert summarize(samples, [], target_rate=RATE).mixed_window_ms == pytest.approx(
        (last_v1 - first_v2) * 1000
    )


def test_clean_switch_has_no_mixed_window() -> None:
    samples = timeline(version=lambda t: "v2" if t >= 5.0 else "v1")
    assert mixed_version_window(samples) is None
    analysis = summarize(samples, [], target_rate=RATE)
    assert analysis.mixed_window_ms == 0.0
    assert analysis.mixed_window is None
    assert analysis.flip_flops == 0


def test_mixed_window_uses_finished_time() -> None:
    # The last v1 request is scheduled before the first v2 one but answers after it (a slow keep-alive).
    samples = timeline(version=lambda t: "v2" if t >= 5.0 else "v1")
    last_v1 = max(i for i, s in enumerate(samples) if s.version == "v1")
    samples[last_v1] = replace(samples[last_v1], finished=samples[last_v1].scheduled + 0.4)
    first_v2 = min(s.finished for s in samples if s.version == "v2" and s.finished is not None)

    window = mixed_version_window(samples)

    assert window is not None
    assert window.duration_s == pytest.approx(samples[last_v1].scheduled + 0.4 - first_v2)


def test_no_new_version_no_mixed_window() -> None:
    assert mixed_version_window(timeline()) is None


def sequence(versions: list[str]) -> list[Sample]:
    return timeline(duration=len(versions) / RATE, version=lambda t: versions[round(t * RATE)])


def test_flip_flops_count_each_return_to_old() -> None:
    assert flip_flops(sequence(["v1", "v2", "v1", "v2", "v1"]), "v1", "v2") == 2
    assert flip_flops(sequence(["v1", "v1", "v2", "v2", "v1", "v1", "v2"]), "v1", "v2") == 1
    assert flip_flops(sequence(["v1", "v1", "v2", "v2"]), "v1", "v2") == 0


def test_flip_flops_follow_finished_order_and_skip_failures() -> None:
    # Scheduled as v1, v2, v1; the last v1 finishes before the v2: in finished order v1, v1, v2.
    samples = sequence(["v1", "v2", "v1"])
    samples[2] = replace(samples[2], finished=samples[1].sent)
    assert flip_flops(samples, "v1", "v2") == 0
    # A failure between v2 and v1 does not hide the flip.
    samples = sequence(["v1", "v2", "v1", "v1"])
    samples[2] = replace(samples[2], error=ErrorClass.RESET, version=None)
    assert flip_flops(samples, "v1", "v2") == 1


def test_versions_seen_counts_good_answers() -> None:
    samples = fail(overlapping(), 7.0, 7.2)
    analysis = summarize(samples, [], target_rate=RATE)
    assert analysis.versions_seen == {
        v: sum(1 for s in samples if s.ok and s.version == v) for v in ("v1", "v2")
    }
    assert sum(analysis.versions_seen.values()) + analysis.requests_failed == len(samples)


# ---------------------------------------------------------------------------------------------------
# Version share


def test_version_share_bins_by_scheduled_time() -> None:
    samples = saturate(fail(timeline(version=lambda t: "v2" if t >= 5.0 else "v1"), 3.0, 3.2), 8.0, 8.1)
    bin_s = 0.5

    bins = version_share(samples, bin_s=bin_s)

    assert len(bins) == 20
    assert [b.start for b in bins] == pytest.approx([100.0 + i * bin_s for i in range(20)])
    assert all(b.scheduled == RATE * bin_s for b in bins)
    assert sum(b.scheduled for b in bins) == len(samples)
    at = {round(b.start - 100.0, 1): b for b in bins}
    assert at[4.5].versions == {"v1": 50}
    assert at[5.0].versions == {"v2": 50}
    assert at[5.0].share("v2") == 1.0
    assert at[3.0].failures == {ErrorClass.HTTP_5XX.value: 20}
    assert at[3.0].versions == {"v1": 30}
    assert at[8.0].saturated == 10
    assert at[8.0].failures == {}
    assert at[8.0].answered == 40


def test_version_share_with_bounds_cuts_the_range() -> None:
    samples = timeline()
    bins = version_share(samples, bin_s=1.0, start=102.0, end=104.5)
    assert [(b.start, b.end) for b in bins] == [(102.0, 103.0), (103.0, 104.0), (104.0, 104.5)]
    assert [b.scheduled for b in bins] == [100, 100, 50]


# ---------------------------------------------------------------------------------------------------
# Latency, rate, late ticks


def test_latency_is_measured_from_scheduled_time() -> None:
    # Every request leaves 200 ms late and is answered 5 ms after leaving.
    samples = [
        replace(s, sent=s.scheduled + 0.2, finished=s.scheduled + 0.2 + LATENCY, late=True)
        for s in timeline()
    ]
    p50, p99 = latency_percentiles(samples, (100.0, 110.0)) or (None, None)
    assert p50 == pytest.approx((0.2 + LATENCY) * 1000)
    assert p99 == pytest.approx((0.2 + LATENCY) * 1000)


def test_latency_percentiles_nearest_rank() -> None:
    # 100 requests with latencies 1, 2, ... 100 ms: the 50th and 99th smallest are p50 and p99.
    samples = [
        replace(s, finished=s.scheduled + (i + 1) / 1000) for i, s in enumerate(timeline(duration=1.0))
    ]
    latencies = sorted((s.finished - s.scheduled) * 1000 for s in samples if s.finished is not None)
    result = latency_percentiles(samples, (0.0, 1e9))
    assert result == pytest.approx((latencies[49], latencies[98]))


def test_latency_skips_failures_and_empty_windows() -> None:
    samples = fail(timeline(), 0.0, 10.0, took=3.0)
    assert latency_percentiles(samples, (0.0, 1e9)) is None
    assert latency_percentiles(timeline(), (200.0, 300.0)) is None


def test_latency_before_and_during_split_on_events() -> None:
    # 5 ms answers before the deployment, 50 ms while the steps run (4 s to 6 s), 5 ms after.
    slow = 0.05
    samples = [
        replace(s, finished=s.scheduled + (slow if in_span(s, 4.0, 6.0) else LATENCY)) for s in timeline()
    ]
    events = [event(0, 104.0, 105.0), event(1, 105.0, 106.0)]

    analysis = summarize(samples, events, target_rate=RATE)

    assert analysis.p50_before_ms == pytest.approx(LATENCY * 1000)
    assert analysis.p99_before_ms == pytest.approx(LATENCY * 1000)
    assert analysis.p50_during_ms == pytest.approx(slow * 1000)
    assert analysis.p99_during_ms == pytest.approx(slow * 1000)
    assert analysis.deploy_duration_s == pytest.approx(2.0)


def test_no_events_means_no_during() -> None:
    analysis = summarize(timeline(), [], target_rate=RATE)
    assert analysis.p50_during_ms is None
    assert analysis.p50_before_ms == pytest.approx(LATENCY * 1000)
    assert analysis.deploy_duration_s == 0.0


def test_deploy_span_first_start_to_last_end() -> None:
    assert deploy_span([event(1, 103.0, 104.5), event(0, 101.5, 103.0)]) == (101.5, 104.5)
    assert deploy_span([]) is None


def test_achieved_rate_counts_sent_requests() -> None:
    full = summarize(timeline(), [], target_rate=RATE)
    assert full.probe_rate_achieved == pytest.approx(RATE)
    assert full.requests_sent == full.requests_scheduled == 1000

    # One second in ten not sent: 90 % of the target.
    partial = summarize(saturate(timeline(), 2.0, 3.0), [], target_rate=RATE)
    assert partial.requests_sent == 900
    assert partial.probe_rate_achieved == pytest.approx(RATE * 0.9)


def test_late_ticks_are_late_sends_plus_saturated_without_double_count() -> None:
    samples = timeline()
    samples = [replace(s, late=True) if in_span(s, 1.0, 1.2) else s for s in samples]  # 20 sent late
    samples = saturate(samples, 1.1, 1.5)  # 40 not sent, 10 of them also flagged late
    samples = [replace(s, late=True) if in_span(s, 1.1, 1.5) else s for s in samples]
    late_sent = sum(1 for s in samples if s.late and s.sent is not None)
    saturated = sum(1 for s in samples if s.error is ErrorClass.SATURATED)

    analysis = summarize(samples, [], target_rate=RATE)

    assert (late_sent, saturated) == (10, 40)
    assert analysis.late_sent == late_sent
    assert analysis.client_saturated == saturated
    assert analysis.late_ticks == late_sent + saturated


# ---------------------------------------------------------------------------------------------------
# The JSON shape


def test_to_dict_is_json_ready_with_the_agreed_keys_and_rounding() -> None:
    samples = fail(overlapping(), 3.0, 3.2345, error=ErrorClass.REFUSED)
    analysis = summarize(samples, [event(0, 104.0, 106.0)], target_rate=RATE)

    data = json.loads(json.dumps(analysis.to_dict()))

    required = {
        "requests_sent",
        "requests_failed",
        "failures_by_class",
        "downtime_ms",
        "total_downtime_ms",
        "mixed_window_ms",
        "versions_seen",
        "flip_flops",
        "deploy_duration_s",
        "probe_rate_target",
        "probe_rate_achieved",
        "late_ticks",
    }
    assert required <= data.keys()
    assert "strategy" not in data
    assert data["failures_by_class"] == {"refused": analysis.requests_failed}
    assert data["downtime_ms"] == round(analysis.downtime_ms, 1)
    assert data["mixed_window_ms"] == round(analysis.mixed_window_ms, 1)
    assert data["probe_rate_achieved"] == round(analysis.probe_rate_achieved, 1)
    assert len(data["downtime_windows"]) == len(analysis.downtime_windows)


def test_window_duration() -> None:
    assert Window(1.0, 1.25, 3).duration_s == 0.25


def test_a_run_still_failing_when_the_probe_stopped_is_counted() -> None:
    from lab.analysis.windows import still_failing

    ok = [Sample(i, i / 100, i / 100, i / 100 + 0.001, 200, "v1") for i in range(5)]
    failed = [
        Sample(5 + i, (5 + i) / 100, (5 + i) / 100, (5 + i) / 100 + 0.001, error=ErrorClass.REFUSED)
        for i in range(3)
    ]
    unsent = Sample(8, 0.08, None, None, error=ErrorClass.SATURATED)  # the probe's own: neither way
    assert still_failing(ok) == 0
    assert still_failing([*ok, *failed, unsent]) == 3
    later = Sample(9, 0.09, 0.09, 0.091, 200, "v1")  # answered after the failures, by send time
    assert still_failing([*ok, *failed, later]) == 0
