"""The registry of strategies: a new strategy is one file and one line here."""

from __future__ import annotations

from lab.strategies.base import Plan, Strategy
from lab.strategies.blue_green import blue_green
from lab.strategies.in_place import in_place

REGISTRY: dict[str, Strategy] = {
    s.name: s
    for s in (
        Strategy("in-place", "stop every v1 instance, start v2 on the same slots (all at once)", in_place),
        Strategy(
            "blue-green",
            "start a full v2 fleet, switch all traffic in one reload, keep v1 for rollback",
            blue_green,
        ),
    )
}


class UnknownStrategy(LookupError):
    pass


def get(name: str) -> Strategy:
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(REGISTRY)
        raise UnknownStrategy(f"unknown strategy {name!r} (known: {known})") from None


__all__ = ["REGISTRY", "Plan", "Strategy", "UnknownStrategy", "get"]
