"""What a strategy is: a generator of steps that receives each step's result.

Parameters are the factory's keyword-only arguments. Their defaults say how a value from the command line
is read (`-p key=value`): as the default's type; a tuple default takes comma-separated numbers
(`percents=10,50,100`); a `None` default takes the other type of its annotation (`float | None`), or
`none`; a `Literal[...]` annotation lists the accepted words; a type with a `parse` class method
(`Batch`) parses its own text. Numbers must be finite and not negative, and a parameter whose name says
`percent` holds percentages above 0 and at most 100.
"""

from __future__ import annotations

import inspect
import math
import re
import types
import typing
from collections.abc import Callable, Generator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from lab.model import Instance, Step, fleet

# A plan yields steps; Start, Check and Judge get a bool back (healthy, passed), the others get None.
Plan = Generator[Step, bool | None, None]
PlanFactory = Callable[..., Plan]


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    factory: PlanFactory | Callable[..., Any]
    # None: a plan of the lab's, on any engine. "swarm": the platform's own update, which the lab sets up
    # and watches (lab/strategies/swarm_rolling.py); its factory returns the update's settings, no plan.
    runs_on: str | None = None

    def _parameters(self, eval_str: bool = False) -> list[inspect.Parameter]:
        return [
            p
            for p in inspect.signature(self.factory, eval_str=eval_str).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        ]

    def defaults(self) -> dict[str, Any]:
        """The strategy's parameters and their defaults, read from its keyword-only arguments."""
        return {p.name: p.default for p in self._parameters()}

    def plan(self, old: tuple[Instance, ...], new: tuple[Instance, ...], **params: Any) -> Plan:
        if self.runs_on is not None:
            raise ValueError(
                f"{self.name} is {self.runs_on}'s own update: the lab has no plan of it, it sets it up and "
                f"watches (lab run {self.name} --engine {self.runs_on})"
            )
        plan: Plan = self.factory(old, new, **self.coerce(params))
        return plan

    def settings(self, **params: Any) -> Any:
        """A platform strategy's settings (its factory's result), checked as `coerce` checks."""
        return self.factory(fleet("v1", 1), fleet("v2", 1), **self.coerce(params))

    def coerce(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check parameter names and convert values (from the command line) to the default's type."""
        known = {p.name: p for p in self._parameters(eval_str=True)}
        out: dict[str, Any] = {}
        for key, value in params.items():
            if key not in known:
                names = ", ".join(known) or "none"
                raise ValueError(f"strategy {self.name!r} has no parameter {key!r} (parameters: {names})")
            out[key] = _convert(key, value, known[key].default, known[key].annotation)
        # A factory may check what no type can say (a time scale of 0, percents that go down) when it is
        # called, before its plan runs: calling it here makes such a mistake bad input, not a failed run.
        made = self.factory(fleet("v1", 1), fleet("v2", 1), **out)
        if hasattr(made, "close"):
            made.close()
        return out


@dataclass(frozen=True)
class Batch:
    """How many instances a rolling deployment takes out at a time: a count (`2`) or a share (`25%`).

    A share rounds down, as Kubernetes rounds maxUnavailable, so capacity never drops by more than the
    share; but at least one instance, or the deployment would never move. A count larger than the fleet
    is the whole fleet.
    """

    amount: Fraction
    percent: bool = False

    @classmethod
    def parse(cls, text: str) -> Batch:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(%?)\s*", text)
        if not match:
            raise ValueError(f"{text!r} is neither a count like 2 nor a percentage like 25%")
        amount, percent = Fraction(match.group(1)), bool(match.group(2))
        if percent and not 0 < amount <= 100:
            raise ValueError(f"{text!r}: a percentage must be above 0 and at most 100")
        if not percent and (amount.denominator != 1 or amount < 1):
            raise ValueError(f"{text!r}: a count must be a whole number, at least 1")
        return cls(amount, percent)

    def of(self, fleet_size: int) -> int:
        """The number of instances in one batch of a fleet of `fleet_size`."""
        if self.percent:
            return max(1, math.floor(self.amount * fleet_size / 100))
        return min(int(self.amount), fleet_size)

    def __str__(self) -> str:
        return f"{float(self.amount):g}" + ("%" if self.percent else "")


def _convert(key: str, value: Any, default: Any, annotation: Any = None) -> Any:
    if default is None:  # optional: the annotation (`float | None`) names the type when there is one
        if value is None or (isinstance(value, str) and value.strip().lower() in {"none", ""}):
            return None
        kinds = [a for a in typing.get_args(annotation) if a is not type(None)]
        if not (isinstance(annotation, types.UnionType) and len(kinds) == 1 and isinstance(kinds[0], type)):
            return value
        return _convert(key, value, kinds[0](), kinds[0])
    if isinstance(default, tuple):
        return _convert_tuple(key, value, default)
    parse = getattr(type(default), "parse", None)
    if parse is not None:
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # a count from Python
        if isinstance(value, str):
            try:
                return parse(value)
            except ValueError as exc:
                raise ValueError(f"parameter {key}: {exc}") from None
        if isinstance(value, type(default)):
            return value
        raise ValueError(f"parameter {key}={value!r} is not a valid {type(default).__name__}")
    converted = _scalar(key, value, type(default))
    if typing.get_origin(annotation) is Literal and converted not in typing.get_args(annotation):
        words = ", ".join(str(a) for a in typing.get_args(annotation))
        raise ValueError(f"parameter {key}={value!r} must be one of: {words}")
    return _checked(key, value, converted)


def _convert_tuple(key: str, value: Any, default: tuple[Any, ...]) -> tuple[Any, ...]:
    kind = type(default[0]) if default else float
    if isinstance(value, str):
        # "(10, 50, 100)", as `lab strategies` shows a default, reads back as well as "10,50,100".
        items: list[Any] = [item.strip() for item in value.strip().strip("()").rstrip(", ").split(",")]
        if items == [""]:
            items = []
    elif isinstance(value, tuple | list):
        items = list(value)
    else:
        raise ValueError(f"parameter {key}={value!r} is not a list of numbers like 10,50,100")
    if not items:
        raise ValueError(f"parameter {key} needs at least one value")
    try:
        return tuple(_checked(key, item, _scalar(key, item, kind)) for item in items)
    except ValueError as exc:
        raise ValueError(f"{exc} (in {key}={value!r})") from None


def _scalar(key: str, value: Any, kind: type) -> Any:
    if isinstance(value, str):
        try:
            if kind is bool:
                if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError
                return value.lower() in {"true", "1", "yes"}
            return kind(value)
        except ValueError:
            raise ValueError(f"parameter {key}={value!r} is not a valid {kind.__name__}") from None
    if _accepts(kind, value):
        return value
    # From Python, not the command line: a list for a float, a bool for an int ...
    raise ValueError(f"parameter {key}={value!r} is not a valid {kind.__name__}")


# The longest wait a parameter may ask for (a bake, a window, a drain, a timeout): an hour is far past any
# lab run, and a bound keeps a typo (`bake_s=3e9`) from being a run that never ends, or one that fails
# with an overflow once its fleet is up.
MAX_WAIT_S = 3600.0


def _checked(key: str, raw: Any, converted: Any) -> Any:
    if isinstance(converted, int | float) and not isinstance(converted, bool):
        if not math.isfinite(converted):
            raise ValueError(f"parameter {key}={raw!r} must be a finite number")
        if converted < 0:
            raise ValueError(f"parameter {key}={raw!r} must not be negative")
        if key.endswith("_s") and converted > MAX_WAIT_S:
            raise ValueError(f"parameter {key}={raw!r} must be at most {MAX_WAIT_S:g} s (an hour)")
        # A share of traffic: 0% would send a step no traffic at all, so it proves nothing.
        if "percent" in key and not 0 < converted <= 100:
            raise ValueError(f"parameter {key}={raw!r} must be a percentage above 0 and at most 100")
    return converted


def _accepts(kind: type, value: Any) -> bool:
    if kind is float:  # an int is a fine float
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
