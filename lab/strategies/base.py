"""What a strategy is: a generator of steps that receives each step's result."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any

from lab.model import Instance, Step

# A plan yields steps; Start and Check get a bool back (healthy or not), the others get None.
Plan = Generator[Step, bool | None, None]
PlanFactory = Callable[..., Plan]


@dataclass(frozen=True)
class Strategy:
    name: str
    summary: str
    factory: PlanFactory

    def defaults(self) -> dict[str, Any]:
        """The strategy's parameters and their defaults, read from its keyword-only arguments."""
        return {
            p.name: p.default
            for p in inspect.signature(self.factory).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }

    def plan(self, old: tuple[Instance, ...], new: tuple[Instance, ...], **params: Any) -> Plan:
        return self.factory(old, new, **self.coerce(params))

    def coerce(self, params: dict[str, Any]) -> dict[str, Any]:
        """Check parameter names and convert values (from the command line) to the default's type."""
        defaults = self.defaults()
        out: dict[str, Any] = {}
        for key, value in params.items():
            if key not in defaults:
                known = ", ".join(defaults) or "none"
                raise ValueError(f"strategy {self.name!r} has no parameter {key!r} (parameters: {known})")
            out[key] = _convert(key, value, defaults[key])
        return out


def _convert(key: str, value: Any, default: Any) -> Any:
    kind = type(default)
    if isinstance(value, str):
        try:
            if kind is bool:
                if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError
                return value.lower() in {"true", "1", "yes"}
            converted = kind(value)
        except ValueError:
            raise ValueError(f"parameter {key}={value!r} is not a valid {kind.__name__}") from None
    elif default is None or _accepts(kind, value):
        converted = value
    else:  # from Python, not the command line: a list for a float, a bool for an int ...
        raise ValueError(f"parameter {key}={value!r} is not a valid {kind.__name__}")
    if isinstance(converted, int | float) and not isinstance(converted, bool):
        if not math.isfinite(converted):
            raise ValueError(f"parameter {key}={value!r} must be a finite number")
        if converted < 0:
            raise ValueError(f"parameter {key}={value!r} must not be negative")
    return converted


def _accepts(kind: type, value: Any) -> bool:
    if kind is float:  # an int is a fine float
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
