"""Walking a plan without Docker: what `lab plan` prints and what the contract tests check.

The same bookkeeping (which instances run, where traffic goes) guards the real runner, so a plan that
would route to a stopped instance is refused before any container is touched.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from lab.model import ROUTE_BY, Check, Instance, Judge, Pause, Route, Start, Step, Stop
from lab.strategies.base import Plan


class PlanError(ValueError):
    """A plan asked for something impossible: routing to a stopped instance, starting one twice ..."""


@dataclass(frozen=True)
class Topology:
    running: frozenset[Instance]
    route: Route

    @property
    def in_service(self) -> int:
        """Instances that get traffic and are running: the fleet's capacity."""
        return sum(1 for inst in self.route.instances if inst in self.running)

    def apply(self, step: Step) -> Topology:
        """The topology after `step`, or PlanError if the step is impossible from here."""
        match step:
            case Start(instances):
                again = [i.name for i in instances if i in self.running]
                if again:
                    raise PlanError(f"starts {', '.join(again)}, already running")
                return Topology(self.running | set(instances), self.route)
            case Stop(instances):
                absent = [i.name for i in instances if i not in self.running]
                if absent:
                    raise PlanError(f"stops {', '.join(absent)}, not running")
                return Topology(self.running - set(instances), self.route)
            case Route():
                check_route(step)
                down = [i.name for i in (*step.instances, *step.canary) if i not in self.running]
                if down:
                    raise PlanError(f"routes traffic to {', '.join(down)}, not running")
                return Topology(self.running, step)
            case Pause() | Check() | Judge():
                return self
        raise PlanError(f"not a step: {step!r}")


def check_route(route: Route) -> None:
    total = sum((w for _, w in route.weights), start=0)
    if total != 100:
        raise PlanError(f"route weights sum to {float(total):g}, not 100")
    if any(w < 0 for _, w in route.weights):
        raise PlanError("route has a negative weight")
    if not route.instances:
        raise PlanError("route sends traffic nowhere")
    if route.by not in ROUTE_BY:
        raise PlanError(f"route by {route.by!r}: not one of {', '.join(ROUTE_BY)}")


@dataclass(frozen=True)
class PlannedStep:
    index: int
    step: Step
    result: bool | None  # the verdict sent back (assumed, in a dry walk)
    after: Topology


def drive(
    plan: Plan, start: Topology, act: Callable[[int, Step, Topology], bool | None], max_steps: int = 10_000
) -> Topology:
    """Run a plan: check each step against the topology it leaves, let `act` carry it out, and send
    `act`'s answer back into the plan. Returns the topology the plan ended with."""
    state = start
    index = 0
    try:
        step = next(plan)
        while True:
            if index >= max_steps:
                raise PlanError(f"plan did not finish within {max_steps} steps")
            state = state.apply(step)
            step = plan.send(act(index, step, state))
            index += 1
    except StopIteration:
        pass
    return state


def walk(
    plan: Plan, start: Topology, verdict: Callable[[Step], bool] = lambda step: True, max_steps: int = 10_000
) -> list[PlannedStep]:
    """Drive a plan against simulated state; `verdict` answers Start, Check and Judge steps."""
    steps: list[PlannedStep] = []

    def record(index: int, step: Step, after: Topology) -> bool | None:
        result = verdict(step) if isinstance(step, Start | Check | Judge) else None
        steps.append(PlannedStep(index, step, result, after))
        return result

    drive(plan, start, record, max_steps)
    return steps
