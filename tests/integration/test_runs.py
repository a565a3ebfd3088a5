"""Whole runs on real containers: what the issue's "done when" asks, measured."""

from __future__ import annotations

import pytest
from conftest import run


@pytest.mark.parametrize("mode", ["keepalive", "fresh"])
def test_blue_green_drops_nothing_and_serves_both_versions(mode: str) -> None:
    record, result = run("blue-green", mode=mode)
    assert record.status == "completed", record.error
    assert result["requests_sent"] > 500
    assert result["requests_failed"] == 0, result["failures_by_class"]
    assert result["downtime_ms"] == 0
    assert result["versions_seen"].get("v1", 0) > 0 and result["versions_seen"].get("v2", 0) > 0
    # After the switch nothing answers v1 again: the last answers all come from v2.
    answered = sorted((s for s in record.samples if s.ok and s.finished), key=lambda s: s.finished)
    assert {s.version for s in answered[-50:]} == {"v2"}


def test_in_place_shows_downtime() -> None:
    record, result = run("in-place")
    assert record.status == "completed", record.error
    assert result["requests_failed"] > 0
    assert result["downtime_ms"] > 0
    # The outage sits inside the deployment, between the first and the last step.
    window = max(result["downtime_windows"], key=lambda w: w["duration_ms"])
    first, last = record.events[0], record.events[-1]
    assert first.started <= window["start"] <= last.ended  # to_dict() without an origin: monotonic times
    assert result["versions_seen"].get("v2", 0) > 0


def test_blue_green_rolls_back_when_green_crashes_at_start() -> None:
    record, result = run("blue-green", v2_env={"APP_FAIL_AT_START": "1"}, fleet_size=2)
    assert record.status == "rolled_back"
    start = record.events[0]
    assert start.kind == "Start" and start.result is False and "exited with code 1" in (start.error or "")
    assert result["requests_failed"] == 0
    assert set(result["versions_seen"]) == {"v1"}
