"""The guard every clean-up runs under: a second Ctrl-C must not cut it short. Its own module, with
nothing but the standard library in it, so that a tool around the lab (scripts/workshop_check.py) can
take it without importing a run's machinery."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored until the block ends, then the previous handler back. Off the main thread Python
    cannot set a handler, and nothing there needs protecting: the block runs as it is."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
