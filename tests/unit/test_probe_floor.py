"""The stack's floor is measured on real exchanges: a wrong answer is not a request's cost."""

from __future__ import annotations

import pytest

from lab.probe.bench import stack_floor
from lab.probe.floor import ANSWER, stack_cost_us


@pytest.mark.parametrize("driver", ["threads", "asyncio"])
def test_each_driver_pays_some_cpu_per_request(driver: str) -> None:
    # In µs: parsing HTTP is never free, and never takes a tenth of a second.
    assert 1 < stack_cost_us(driver, requests=200) < 100_000


@pytest.mark.parametrize("driver", ["threads", "asyncio"])
def test_an_answer_read_as_anything_but_200_v1_fails_the_measure(driver: str) -> None:
    wrong = ANSWER.replace(b"200 OK", b"503 Service Unavailable")
    with pytest.raises(RuntimeError, match="read as 503 v1"):
        stack_cost_us(driver, requests=5, answer=wrong)


def test_the_floor_line_gives_each_driver_its_cost_and_rate_per_core_and_its_cost_after_a_pause() -> None:
    costs = {
        ("threads", 0.0): 250.0,
        ("asyncio", 0.0): 400.0,
        ("threads", 0.001): 610.0,
        ("asyncio", 0.001): 900.0,
    }
    line = stack_floor(["threads", "asyncio"], cost=lambda d, pause: costs[d, pause])
    assert "threads 250 µs back to back (at best 4,000 req/s per core), 610 µs after a 1 ms pause" in line
    assert "asyncio 400 µs back to back (at best 2,500 req/s per core), 900 µs after a 1 ms pause" in line


@pytest.mark.parametrize("driver", ["threads", "asyncio"])
def test_a_pause_before_each_request_is_counted_in_cpu_time_not_wall_time(driver: str) -> None:
    # CPU time, not wall time: 20 ms of sleep before each request would come to 20,000 µs at least.
    assert 1 < stack_cost_us(driver, requests=20, pause_s=0.02) < 10_000
