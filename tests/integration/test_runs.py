"""Whole runs on real containers, through the pytest plugin's `deploy_lab` fixture: what the issue's
"done when" asks, measured."""

from __future__ import annotations

import pytest

FAST = {"baseline": 1.0, "settle": 1.0}


@pytest.mark.parametrize("mode", ["keepalive", "fresh"])
def test_blue_green_drops_nothing_and_serves_both_versions(deploy_lab, mode: str) -> None:
    result = deploy_lab.run("blue-green", mode=mode, **FAST)
    assert result.requests_sent > 500
    assert result.requests_failed == 0, result.failures_by_class
    assert result.downtime_ms == 0
    assert result.versions_seen.get("v1", 0) > 0 and result.versions_seen.get("v2", 0) > 0
    # After the switch nothing answers v1 again: the last answers all come from v2.
    answered = sorted((s for s in result.samples if s.ok and s.finished), key=lambda s: s.finished)
    assert {s.version for s in answered[-50:]} == {"v2"}
    # Every answer names the server nginx reached, and that server is the instance that answered.
    assert all(s.upstream for s in answered)
    assert (result.folder / "journal.json").is_file() and (result.folder / "samples.csv").is_file()


def test_in_place_shows_downtime(deploy_lab) -> None:
    result = deploy_lab.run("in-place", **FAST)
    assert result.requests_failed > 0
    assert result.downtime_ms > 0
    # The outage sits inside the deployment, between the first and the last step.
    window = max(result.downtime_windows, key=lambda w: w.duration_ms)
    first, last = result.events[0], result.events[-1]
    assert first.started <= window.start <= last.ended
    assert result.versions_seen.get("v2", 0) > 0


def test_blue_green_rolls_back_when_green_crashes_at_start(deploy_lab) -> None:
    result = deploy_lab.run(
        "blue-green", v2_env={"APP_FAIL_AT_START": "1"}, fleet=2, expect="rolled_back", **FAST
    )
    start = result.events[0]
    assert start.kind == "Start" and start.result is False and "exited with code 1" in (start.error or "")
    assert result.requests_failed == 0
    assert set(result.versions_seen) == {"v1"}
