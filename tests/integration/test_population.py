"""A population of clients on real containers: per-client figures, canaries routed by client, the canary
header, blue/green's preview for testers, and requests that are not all GETs."""

from __future__ import annotations

from typing import Any

from lab.model import Sample

FAST = {"fleet": 2, "baseline": 1.0, "settle": 1.0, "clients": 32}


def first_step_at(result: Any, text: str) -> float:
    return next(e.started for e in result.events if text in e.detail)


def test_in_place_hurts_every_client_and_says_how_many(deploy_lab: Any) -> None:
    result = deploy_lab.run("in-place", **FAST)
    clients = result.clients
    assert clients.count == 32 and 0 < clients.saw_failure <= 32
    assert clients.longest_outage_ms >= result.downtime_ms  # a client waits at least the fleet's outage
    assert result.to_dict()["clients"]["count"] == 32


def test_a_canary_by_client_keeps_each_client_on_its_version_and_by_request_does_not(
    deploy_lab: Any,
) -> None:
    canary = {"percents": "10,50,100", "bake_s": 3.0, **FAST}
    by_client = deploy_lab.run("canary", route_by="client", **canary)
    by_request = deploy_lab.run("canary", route_by="random", **canary)
    assert by_client.clients.flip_flopped == 0 and by_client.flip_flops == 0
    assert by_client.clients.saw_both_versions > 0  # they did move: to v2, once
    assert by_request.clients.flip_flopped > 0


def answered(samples: list[Sample], clients: set[int], after: float, before: float) -> set[str | None]:
    return {
        s.version
        for s in samples
        if s.ok and s.client in clients and s.sent is not None and after <= s.sent < before
    }


def test_the_canary_header_reaches_v2_at_any_share(deploy_lab: Any) -> None:
    result = deploy_lab.run("canary", percents="10,100", bake_s=2.0, testers=4, **FAST)
    ten = first_step_at(result, "route v1 90%, v2 10%")
    all_on_v2 = first_step_at(result, "route v2 100%")
    testers, others = set(range(4)), set(range(4, 32))
    # The route step ends once nginx's old workers are gone: from then on every tester is on v2.
    settled = next(e.ended for e in result.events if "route v1 90%, v2 10%" in e.detail)
    assert answered(result.samples, testers, settled, all_on_v2) == {"v2"}
    assert answered(result.samples, others, settled, all_on_v2) == {"v1", "v2"}  # the rest at 10%
    assert settled > ten


def test_blue_green_preview_shows_testers_v2_before_the_switch_and_nobody_else(deploy_lab: Any) -> None:
    result = deploy_lab.run("blue-green", preview_s=2.0, overlap_s=0, testers=2, **FAST)
    preview = next(e for e in result.events if "X-Canary: always" in e.detail)
    switch = first_step_at(result, "route v2 100%")
    assert answered(result.samples, {0, 1}, preview.ended, switch) == {"v2"}
    assert answered(result.samples, set(range(2, 32)), preview.ended, switch) == {"v1"}
    figures = result.clients
    assert figures.testers.first_new < figures.others.first_new
    assert figures.others.first_new >= switch


def test_a_mix_reports_every_kind_of_request(deploy_lab: Any) -> None:
    result = deploy_lab.run("rolling", drain_s=0, mix="get=80,post=10,slow=5,stream=5", **FAST)
    kinds = result.kinds
    assert set(kinds) == {"get", "post", "slow", "stream"}
    assert all(k.sent > 0 for k in kinds.values())
    assert kinds["post"].sent > kinds["stream"].sent  # the mix's weights, roughly: 10 against 5
    assert sum(k.sent for k in kinds.values()) == result.requests_sent
