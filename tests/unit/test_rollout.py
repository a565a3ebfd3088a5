"""Capacity, rollback and blast radius, on hand-made events and samples."""

from __future__ import annotations

from lab.analysis.rollout import blast_radius, capacity_timeline, lowest_capacity, rollback
from lab.model import ErrorClass, Event, Sample


def ev(
    i: int,
    kind: str,
    start: float,
    end: float,
    *,
    result: bool | None = None,
    error: str | None = None,
    in_service: int | None = None,
) -> Event:
    return Event(i, kind, kind.lower(), start, end, result, error, in_service)


ROLLING = [
    ev(0, "Route", 10.0, 10.2, in_service=3),
    ev(1, "Stop", 10.2, 11.0, in_service=3),
    ev(2, "Start", 11.0, 12.0, result=True, in_service=3),
    ev(3, "Route", 12.0, 12.2, in_service=4),
]


def test_capacity_starts_at_the_fleet_and_follows_the_steps() -> None:
    assert capacity_timeline(ROLLING, 4) == [(10.0, 4), (10.2, 3), (11.0, 3), (12.0, 3), (12.2, 4)]
    assert lowest_capacity(ROLLING, 4) == 3
    assert lowest_capacity([], 4) == 4


def test_no_failed_verdict_means_no_rollback() -> None:
    assert rollback(ROLLING) is None


def test_the_first_failed_verdict_is_the_decision_and_undoing_is_timed() -> None:
    events = [
        ev(0, "Start", 1.0, 2.0, result=True),
        ev(1, "Route", 2.0, 2.3),
        ev(2, "Judge", 5.3, 5.6, result=False, error="v2 failed: error rate 20.00% > 1.00%"),
        ev(3, "Route", 5.6, 5.9),
        ev(4, "Stop", 5.9, 7.1),
    ]
    decision = rollback(events)
    assert decision is not None
    assert decision.step == 2 and decision.decided_at == 5.6 and "error rate" in decision.reason
    assert abs(decision.duration_s - 1.5) < 1e-9
    assert decision.traffic_back_s is not None and abs(decision.traffic_back_s - 0.3) < 1e-9
    assert decision.to_dict(origin=1.0)["decided_at_s"] == 4.6


def test_blast_radius_counts_the_new_versions_answers_and_failures() -> None:
    samples = [Sample(i, i, i, i + 0.01, 200, "v1", "a") for i in range(10)]
    samples += [Sample(10 + i, i, i, i + 0.01, 200, "v2", "b") for i in range(6)]
    samples += [Sample(20 + i, i, i, i + 0.01, 500, "v2", "b", ErrorClass.HTTP_5XX) for i in range(4)]
    samples += [Sample(30, 1, 1, 1.1, error=ErrorClass.REFUSED)]  # names no version: not v2's
    assert blast_radius(samples, "v2") == (10, 4)
    assert blast_radius(samples, "v1") == (10, 0)


def test_a_rollback_seen_only_once_finished_has_traffic_back_when_it_was_seen() -> None:
    finished = Event(1, "Swarm", "update rollback_completed", 8.5, 8.5, False, "its start was not seen")
    decision = rollback([ev(0, "Update", 4.0, 4.0), finished])
    assert decision is not None and decision.step == 1 and decision.traffic_back_s == 0.0
    # A verdict that is not itself the way back still waits for one.
    judged = rollback([ev(0, "Judge", 1.0, 1.2, result=False, error="bad"), ev(1, "Stop", 1.2, 2.0)])
    assert judged is not None and judged.traffic_back_s is None
