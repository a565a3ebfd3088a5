"""Rolling with an additional batch (Elastic Beanstalk's RollingWithAdditionalBatch): start one extra
batch of v2 on new slots and put it in the proxy first, then roll through the fleet as `rolling` does,
so the instances in service never fall below the fleet size.

As Elastic Beanstalk does, the additional batch is removed when the deployment completes: it is taken
out of the proxy (drained for `drain_s`, if set) and stopped, and the fleet ends as it began, the fleet
size, all v2, on slots 1 to n. If a v2 batch never becomes healthy, v1 goes back on every replaced slot
and the extra batch goes too.
"""

from __future__ import annotations

from lab.model import Instance, Pause, Route, Start, Stop, fleet
from lab.strategies.base import Batch, Plan
from lab.strategies.rolling import ONE_AT_A_TIME, replace_in_batches


def rolling_batch(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    batch: Batch = ONE_AT_A_TIME,
    drain_s: float = 0.0,
) -> Plan:
    return _rolling_batch(old, new, batch.of(len(old)), drain_s)


def _rolling_batch(old: tuple[Instance, ...], new: tuple[Instance, ...], size: int, drain_s: float) -> Plan:
    extra = fleet(new[0].version, size, first_slot=max(inst.slot for inst in (*old, *new)) + 1)
    if not (yield Start(extra)):
        yield Stop(extra)  # nothing else was touched
        return
    yield Route.even(old + extra)
    if not (yield from replace_in_batches(old, new, size, drain_s=drain_s, serving=old + extra)):
        return
    yield Route.even(new)
    if drain_s > 0:
        yield Pause(drain_s, f"drain {', '.join(inst.name for inst in extra)}")
    yield Stop(extra)
