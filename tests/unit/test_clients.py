"""What each client saw and how each kind of request fared, on made-up samples."""

from __future__ import annotations

import pytest

from lab.analysis.clients import client_figures, kind_figures, step_at
from lab.analysis.summary import summarize
from lab.model import ErrorClass, Event, Sample

RATE = 100


def answer(seq: int, client: int, version: str, *, kind: str = "get") -> Sample:
    t = seq / RATE
    return Sample(seq, t, t, t + 0.002, 200, version, client=client, kind=kind)


def failure(seq: int, client: int, error: ErrorClass = ErrorClass.HTTP_5XX, *, kind: str = "get") -> Sample:
    t = seq / RATE
    return Sample(
        seq,
        t,
        t,
        t + 0.001,
        502 if error is ErrorClass.HTTP_5XX else None,
        error=error,
        client=client,
        kind=kind,
    )


def test_each_client_is_counted_once_for_what_it_saw() -> None:
    # Four clients, round robin. Client 1 meets two failures in a row; client 2 flips v2 -> v1;
    # client 3 moves to v2 and stays; client 0 never leaves v1.
    plan = {
        0: ["v1", "v1", "v1", "v1"],
        1: ["v1", "x", "x", "v2"],
        2: ["v1", "v2", "v1", "v1"],
        3: ["v1", "v2", "v2", "v2"],
    }
    samples = []
    for turn in range(4):
        for client, seen in plan.items():
            seq = turn * 4 + client
            samples.append(failure(seq, client) if seen[turn] == "x" else answer(seq, client, seen[turn]))
    figures = client_figures(samples, "v1", "v2")
    assert (figures.count, figures.saw_failure, figures.saw_both_versions, figures.flip_flopped) == (
        4,
        1,
        3,
        1,
    )
    # Client 1's own outage: its failure at seq 5 to its next good request at seq 13 (80 ms at 100 req/s),
    # where the fleet as a whole never went a tick without an answer.
    assert figures.longest_outage_ms == pytest.approx(80.0) and figures.worst_client == 1
    assert summarize(samples, [], target_rate=RATE).downtime_ms == pytest.approx(10.0)


def test_testers_and_everyone_else_are_told_apart() -> None:
    samples = [answer(i, i % 4, "v2" if i % 4 == 0 else "v1") for i in range(40)]  # client 0: a tester
    samples += [answer(40 + i, i % 4, "v2") for i in range(8)]  # then the switch: everyone on v2
    figures = client_figures(samples, "v1", "v2", testers=1)
    assert figures.testers.clients == 1 and figures.others.clients == 3
    assert figures.testers.first_new == samples[0].finished
    assert figures.others.first_new == samples[41].finished
    assert figures.to_dict(origin=0.0)["testers"] == {
        "count": 1,
        "first_new_s": round(samples[0].finished or 0, 4),
    }


def test_unsent_ticks_belong_to_no_client() -> None:
    unsent = Sample(0, 0.0, None, None, error=ErrorClass.SATURATED, client=5)
    figures = client_figures([unsent, answer(1, 1, "v1")], "v1", "v2")
    assert figures.count == 1 and figures.saw_failure == 0


EVENTS = [
    Event(0, "Start", "start", 1.0, 2.0, True),
    Event(1, "Route", "route", 2.0, 2.5),
    Event(2, "Stop", "stop", 3.0, 3.5),
]


@pytest.mark.parametrize(
    ("t", "step"), [(0.5, "before"), (1.5, "0"), (2.2, "1"), (2.7, "1"), (3.2, "2"), (4.0, "after")]
)
def test_a_moment_belongs_to_the_step_under_way(t: float, step: str) -> None:
    assert step_at(EVENTS, t) == step


def test_kinds_are_counted_apart_and_a_cut_stream_is_placed_at_its_step() -> None:
    samples = [answer(i, 0, "v1") for i in range(10)]
    samples += [failure(10, 0, kind="post"), answer(11, 0, "v1", kind="post")]
    cut = Sample(12, 3.0, 3.0, 3.2, 200, error=ErrorClass.STREAM_CUT, kind="stream")
    samples += [cut, answer(13, 0, "v1", kind="stream")]
    kinds = kind_figures(samples, EVENTS)
    assert set(kinds) == {"get", "post", "stream"}
    assert (kinds["get"].sent, kinds["get"].failed) == (10, 0)
    assert (kinds["post"].sent, kinds["post"].ok, kinds["post"].failures_by_class) == (2, 1, {"http_5xx": 1})
    assert kinds["stream"].cut_by_step == {"2": 1} and kinds["stream"].failures_by_class == {"stream_cut": 1}
    assert summarize(samples, EVENTS, target_rate=RATE).to_dict()["kinds"]["stream"]["cut_by_step"] == {
        "2": 1
    }
