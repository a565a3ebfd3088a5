"""What a deployment did to capacity, and what a rollback cost: pure functions over events and samples."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lab.model import Event, Sample


def capacity_timeline(events: Iterable[Event], initial: int) -> list[tuple[float, int]]:
    """(time, instances in service) from the start, then after every step that reports it."""
    timeline = []
    events = list(events)
    if events:
        timeline.append((events[0].started, initial))
    timeline.extend((e.ended, e.in_service) for e in events if e.in_service is not None)
    return timeline


def lowest_capacity(events: Iterable[Event], initial: int) -> int:
    return min((n for _, n in capacity_timeline(events, initial)), default=initial)


@dataclass(frozen=True)
class Rollback:
    decided_at: float  # when the failed verdict came back, on the run's clock
    step: int  # the step whose verdict failed
    reason: str
    traffic_back_s: float | None  # from the decision until the proxy routed every request to v1 again
    duration_s: float  # from the decision to the end of the last step, clean-up of v2 included

    def to_dict(self, origin: float = 0.0) -> dict[str, Any]:
        return {
            "decided_at_s": round(self.decided_at - origin, 4),
            "step": self.step,
            "reason": self.reason,
            "traffic_back_s": None if self.traffic_back_s is None else round(self.traffic_back_s, 4),
            "duration_s": round(self.duration_s, 4),
        }


def _back_on_old(event: Event) -> bool:
    """A step after which traffic is on the old version again: the lab's route back, or Swarm's finished
    rollback."""
    return event.kind == "Route" or (event.kind == "Swarm" and "rollback_completed" in event.detail)


def rollback(events: Sequence[Event]) -> Rollback | None:
    """The decision to roll back: the first Start, Check or Judge whose verdict was False, if any.

    Two durations: until traffic was back (the first Route after the decision; none when the new version
    never had traffic), and until the last step ended, which includes stopping v2."""
    for event in events:
        if event.result is False:
            end = max(e.ended for e in events)
            # The verdict itself when it is Swarm's finished rollback, seen before its start was: traffic
            # was back on v1 by the moment the verdict was seen.
            route_back = next(
                (e for e in events if (e.index > event.index or e is event) and _back_on_old(e)), None
            )
            back = None if route_back is None else route_back.ended - event.ended
            return Rollback(
                event.ended, event.index, event.error or "verdict failed", back, end - event.ended
            )
    return None


def blast_radius(samples: Iterable[Sample], version: str | Callable[[str | None], bool]) -> tuple[int, int]:
    """(answers from `version`, failed answers from it): how much traffic the release reached, and how
    many clients it hurt. `version` is a name, or a test of one (`lab measure`: any version but the old).
    A proxy's 502 that reached only the new version's instances carries its version (the fleet reads it
    from X-Lab-Upstream) and counts; failures that carry no version (a probe timeout) do not."""
    matches = version if callable(version) else (lambda v: v == version)
    answers = failed = 0
    for s in samples:
        if matches(s.version) and s.finished is not None:
            answers += 1
            failed += s.server_failure
    return answers, failed
