"""Every strategy on real containers, and a bad release rolled back by the lab itself (through the pytest
plugin's `deploy_lab` fixture)."""

from __future__ import annotations

import pytest

from lab import strategies
from lab.cli import DEFAULT_COMPARISON

# Shorter bakes and windows than the defaults: the behaviour is the same, the suite stays within minutes.
FAST = {
    "blue-green": {"overlap_s": 1.0, "rollback_window_s": 1.0},
    "canary": {"bake_s": 1.0},
    "linear": {"step_percent": 25, "interval_s": 0.5},
    "blue-green-all-at-once": {"rollback_window_s": 1.0},
    "blue-green-canary": {"bake_s": 1.0, "rollback_window_s": 1.0},
    "blue-green-linear": {"step_percent": 25, "interval_s": 0.5, "rollback_window_s": 1.0},
}
# The promise: these drop nothing on the default scenario.
DROP_NOTHING = {"blue-green", "canary", "linear", "rolling-batch", "rolling:drain_s=1"}


def params_of(spec: str) -> tuple[str, dict[str, object]]:
    name, *pairs = spec.split(":")
    given = dict(pair.split("=", 1) for pair in pairs)
    return name, {**FAST.get(name, {}), **strategies.get(name).coerce(given)}


@pytest.mark.parametrize("spec", [s for s in DEFAULT_COMPARISON if s != "in-place"])  # in-place: test_runs
def test_every_strategy_ends_on_v2(deploy_lab, spec: str) -> None:
    name, params = params_of(spec)
    result = deploy_lab.run(name, params=params, baseline=0.5, settle=0.5)  # fails unless completed
    answered = sorted((s for s in result.samples if s.ok and s.finished), key=lambda s: s.finished)
    assert {s.version for s in answered[-20:]} == {"v2"}
    assert result.versions_seen.get("v1", 0) > 0
    if spec in DROP_NOTHING:
        assert result.requests_failed == 0, result.failures_by_class
    if name == "rolling-batch":
        assert result.lowest_capacity >= 4
    if name == "rolling":
        assert result.lowest_capacity == 3


def test_canary_rolls_back_a_release_that_answers_500s_and_hurts_fewer_clients(deploy_lab) -> None:
    bad = {"APP_FAIL_RATE": "0.2", "APP_SEED": "7"}
    quick = {"v2_env": bad, "baseline": 0.5, "settle": 0.5, "expect": "rolled_back"}
    canary = deploy_lab.run("canary", bake_s=1.5, **quick)
    at_once = deploy_lab.run("blue-green-all-at-once", rollback_window_s=1.5, **quick)
    for result in (canary, at_once):
        assert result.rollback is not None and "error rate" in result.rollback.reason
        answered = sorted((s for s in result.samples if s.finished and s.version), key=lambda s: s.finished)
        assert {s.version for s in answered[-20:]} == {"v1"}  # clients are back on v1
    # What the probe saw: v2's 500s reached clients in both, far fewer behind the canary.
    assert canary.failures_by_class.get("http_5xx", 0) > 0
    assert 0 < canary.blast_radius < at_once.blast_radius
