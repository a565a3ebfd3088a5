"""Rolling: replace the fleet a batch at a time, v2 on the slots v1 leaves, so no spare instance is
needed and capacity drops by one batch while it runs.

Each batch is taken out of the proxy first (traffic goes on to the rest, old and already replaced
alike), optionally drained for `drain_s` so that requests in flight finish, stopped, replaced by v2 on
the same slots, and put back once healthy. A hard stop (`drain_s=0`, the default) and a drained one
differ in what clients see. A batch that is the whole fleet (one instance, or `batch` >= fleet) has
nothing to send traffic to meanwhile: the proxy keeps pointing at it, as in-place does, and that is
downtime. If a v2 batch never becomes healthy, v1 goes back on every slot that was replaced.

`batch` is a count (`2`) or a share of the fleet (`25%`, rounded down, at least one instance).
"""

from __future__ import annotations

from fractions import Fraction

from lab.model import Instance, Pause, Route, Start, Stop
from lab.strategies.base import Batch, Plan
from lab.strategies.shifting import Shift

ONE_AT_A_TIME = Batch(Fraction(1))


def rolling(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    *,
    batch: Batch = ONE_AT_A_TIME,
    drain_s: float = 0.0,
) -> Plan:
    return _rolling(old, new, batch.of(len(old)), drain_s)


def _rolling(old: tuple[Instance, ...], new: tuple[Instance, ...], size: int, drain_s: float) -> Plan:
    yield from replace_in_batches(old, new, size, drain_s=drain_s, serving=old)


def replace_in_batches(
    old: tuple[Instance, ...],
    new: tuple[Instance, ...],
    size: int,
    *,
    drain_s: float,
    serving: tuple[Instance, ...],
) -> Shift:
    """Replace `old` by `new` slot for slot, `size` at a time, while `serving` is in the proxy.

    True when every batch came up; False after rolling back to v1 (every v2 instance stopped).
    """
    for first in range(0, len(old), size):
        batch, replacement = old[first : first + size], new[first : first + size]
        rest = tuple(inst for inst in serving if inst not in batch)
        if rest:
            yield Route.even(rest)
            if drain_s > 0:
                yield Pause(drain_s, f"drain {', '.join(inst.name for inst in batch)}")
        yield Stop(batch)
        if not (yield Start(replacement)):
            # The bad batch never got traffic. Bring v1 back on every slot it left before taking the
            # v2 instances already serving out, so capacity does not drop further on the way back.
            yield Stop(replacement)
            yield Start(old[: first + size])  # its verdict changes nothing: there is no older version
            yield Route.even(old)
            started = tuple(inst for inst in rest if inst not in old)
            if started:
                yield Stop(started)
            return False
        serving = (*rest, *replacement)
        yield Route.even(serving)
    return True
