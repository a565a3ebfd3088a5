"""The clean-up's guard against a second Ctrl-C."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from lab.signals import sigint_ignored


def test_a_sigint_inside_the_block_is_ignored_and_the_handler_is_back_after() -> None:
    def handler(signum: int, frame: object) -> None:
        raise AssertionError("the handler ran")

    previous = signal.signal(signal.SIGINT, handler)
    try:
        with sigint_ignored():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            os.kill(os.getpid(), signal.SIGINT)  # delivered now: ignored, no exception
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)


def test_the_handler_is_back_when_the_block_raises() -> None:
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(RuntimeError), sigint_ignored():
        raise RuntimeError("clean-up failed")
    assert signal.getsignal(signal.SIGINT) is before


def test_off_the_main_thread_the_block_runs_and_changes_nothing() -> None:
    seen: list[object] = []

    def body() -> None:
        with sigint_ignored():
            seen.append(signal.getsignal(signal.SIGINT))

    before = signal.getsignal(signal.SIGINT)
    thread = threading.Thread(target=body)
    thread.start()
    thread.join(5)
    assert seen == [before]
