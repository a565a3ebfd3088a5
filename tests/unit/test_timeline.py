"""The timeline's data on synthetic runs: what each bin holds, the capacity line, the step marks."""

from __future__ import annotations

import pytest

from lab.analysis import timeline
from lab.analysis.summary import version_share
from lab.model import ErrorClass, Event, Sample

RATE = 100.0


def blue_green(n: int = 1000, switch_s: float = 5.0, latency_s: float = 0.004) -> list[Sample]:
    """10 s at 100 req/s from t = 0: v1 until `switch_s`, v2 after."""
    samples = []
    for i in range(n):
        t = i / RATE
        version = "v1" if t < switch_s else "v2"
        samples.append(Sample(i, t, t, t + latency_s, 200, version, f"app-{version}-1"))
    return samples


def test_a_switch_at_5_s_gives_v1_bins_before_and_v2_bins_after() -> None:
    t = timeline.build(blue_green(), [], [], bin_s=0.5)
    assert len(t.bins) == 20 and t.bin_s == 0.5
    for b in t.bins:
        expected = "v1" if b.end <= 5.0 else "v2"
        other = "v2" if expected == "v1" else "v1"
        assert b.versions[expected] == 50 and b.versions[other] == 0, b
        assert b.versions[timeline.OTHER] == 0
        assert b.rate(b.versions[expected]) == pytest.approx(100.0)  # req/s, not a count


def test_bins_are_analysis_version_share_bins() -> None:
    samples = blue_green()
    samples[10] = Sample(10, 0.1, 0.1, 0.104, 200, "v3", "app-v3-1")  # neither old nor new: "other"
    t = timeline.build(samples, [], [], bin_s=1.0)
    assert t.bins[0].start == pytest.approx(-0.005)  # half a tick before the first: no tick on an edge
    share = version_share(samples, bin_s=1.0, start=t.bins[0].start, end=t.bins[-1].end)
    assert [(b.start, b.end) for b in t.bins] == [(s.start, s.end) for s in share]
    assert [sum(b.versions.values()) for b in t.bins] == [s.answered for s in share]
    assert t.bins[0].versions == {"v1": 99, "v2": 0, "other": 1}
    assert t.has_other


def test_a_failure_burst_is_counted_by_class_and_saturation_apart() -> None:
    samples = blue_green()
    for i in range(300, 320):  # 3.0 to 3.2 s: resets
        samples[i] = Sample(i, i / RATE, i / RATE, i / RATE + 0.001, error=ErrorClass.RESET)
    for i in (700, 701):  # the probe could not send these: never a server failure
        samples[i] = Sample(i, i / RATE, None, None, error=ErrorClass.SATURATED)
    t = timeline.build(samples, [], [], bin_s=0.5)
    burst = [b for b in t.bins if b.failures]
    assert [(b.start, b.failures) for b in burst] == [(pytest.approx(2.995), {"reset": 20})]
    assert t.failure_classes == ["reset"]
    assert t.saturated == 2
    assert [b.saturated for b in t.bins if b.saturated] == [2]
    assert all("client_saturation" not in b.failures for b in t.bins)


def test_failure_classes_keep_the_error_class_order() -> None:
    samples = blue_green(200)
    samples[5] = Sample(5, 0.05, 0.05, 0.06, 502, error=ErrorClass.HTTP_5XX)
    samples[6] = Sample(6, 0.06, 0.06, 0.07, error=ErrorClass.REFUSED)
    assert timeline.build(samples, [], []).failure_classes == ["refused", "http_5xx"]


def test_latency_per_bin_is_p50_and_p99_of_that_bins_answers_only() -> None:
    samples = []
    for i in range(100):  # bin 0: latencies 1 .. 100 ms
        samples.append(Sample(i, i / 1000, i / 1000, i / 1000 + (i + 1) / 1000, 200, "v1"))
    for i in range(100, 200):  # bin 1: 7 ms each, and failures, which have no latency to speak of
        error = ErrorClass.TIMEOUT if i % 2 else None
        finished = i / 1000 + (2.0 if error else 0.007)
        samples.append(
            Sample(
                i, i / 1000, i / 1000, finished, None if error else 200, None if error else "v1", error=error
            )
        )
    t = timeline.build(samples, [], [], bin_s=0.1)
    first, second = t.bins
    assert first.p50_ms == pytest.approx(50.0) and first.p99_ms == pytest.approx(99.0)
    assert second.p50_ms == pytest.approx(7.0) and second.p99_ms == pytest.approx(7.0)


def test_a_bin_without_answers_has_no_latency() -> None:
    samples = [Sample(i, i / RATE, i / RATE, i / RATE + 0.001, error=ErrorClass.REFUSED) for i in range(50)]
    t = timeline.build(samples, [], [], bin_s=0.5)
    assert [b.p50_ms for b in t.bins] == [None] and t.bins[0].failures == {"refused": 50}


def test_capacity_runs_from_the_charts_start_to_its_end() -> None:
    t = timeline.build(blue_green(), [], [(2.0, 4), (3.0, 3), (6.0, 4)], bin_s=0.5)
    assert [n for _, n in t.capacity] == [4, 4, 3, 4, 4]
    assert [at for at, _ in t.capacity] == pytest.approx([0.0, 2.0, 3.0, 6.0, 9.995])  # to the last bin's end


def test_steps_are_marked_with_times_labels_and_failed_verdicts() -> None:
    events = [
        Event(0, "Start", "start app-v2-1, app-v2-2 and wait until healthy", 1.0, 2.0, True),
        Event(1, "Route", "route v1 90%, v2 10% over app-v1-1, app-v2-1", 2.0, 2.2),
        Event(2, "Judge", "judge v2 (error rate <= 1.00%)", 4.0, 4.1, False, "error rate 20% > 1%"),
        Event(3, "Stop", "stop app-v2-1, app-v2-2", 4.2, 5.0, error="app-v2-2 would not stop"),
    ]
    t = timeline.build(blue_green(), events, [])
    assert [(m.start, m.end) for m in t.steps] == [(1.0, 2.0), (2.0, 2.2), (4.0, 4.1), (4.2, 5.0)]
    assert [m.failed for m in t.steps] == [False, False, True, True]
    assert [m.label for m in t.steps] == [
        "0 start 2 v2",
        "1 route v1 90%, v2 10%",
        "2 judge v2",
        "3 stop 2 v2",
    ]


def test_the_time_axis_covers_samples_and_steps() -> None:
    events = [Event(0, "Pause", "pause 3 s", 9.0, 12.0)]
    t = timeline.build(blue_green(), events, [])
    assert t.start == 0.0 and t.end == 12.0


def test_an_empty_run_has_no_bins_and_does_not_fail() -> None:
    t = timeline.build([], [], [])
    assert t.bins == () and t.capacity == () and t.steps == () and t.end > t.start
    t = timeline.build(
        [], [Event(0, "Start", "start app-v2-1 and wait until healthy", 1.0, 3.0, False)], [(1.0, 1)]
    )
    assert t.bins == () and t.steps[0].failed and (t.start, t.end) == (1.0, 3.0)


@pytest.mark.parametrize(
    ("duration", "width"), [(5.0, 0.1), (10.0, 0.2), (17.0, 0.25), (60.0, 1.0), (3600.0, 60.0)]
)
def test_bin_width_keeps_the_chart_readable(duration: float, width: float) -> None:
    assert timeline.bin_width(duration) == width
    assert duration / width <= timeline.MAX_BINS


def test_a_bin_the_probe_stopped_in_is_cut_where_the_schedule_ended() -> None:
    t = timeline.build(blue_green(n=730), [], [], bin_s=0.5)  # ticks 0 to 7.29 s
    last = t.bins[-1]
    assert (last.start, last.end) == pytest.approx((6.995, 7.295))
    assert last.rate(sum(last.versions.values())) == pytest.approx(100.0)  # the rate held to the end
    assert t.end == pytest.approx(7.295)


def test_a_steady_rate_gives_bars_of_one_height() -> None:
    samples = [Sample(i, 3.7 + i / 200, 3.7 + i / 200, 3.7 + i / 200 + 0.002, 200, "v1") for i in range(3000)]
    t = timeline.build(samples, [], [], bin_s=0.2)
    assert {sum(b.versions.values()) for b in t.bins} == {40}
