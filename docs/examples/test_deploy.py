"""deploy lab's pytest plugin in a test file of your own (docs/pytest-plugin.md).

Nothing to import and no conftest: installing deploy-lab gives pytest the `deploy_lab` fixture. With a
running Docker engine:

    pytest docs/examples/test_deploy.py

The first run builds the lab's images (minutes); each test then takes 10 to 20 s of real deployment.
"""

from pathlib import Path

SHOP = (
    Path(__file__).parent / "shop"
)  # a stand-in for your app: port 8000, ready at /ready, no version header


def test_rolling_drops_nothing(deploy_lab):
    # Drained: each batch leaves the proxy a second before it stops, what you would give a proxy whose
    # old connections you cannot watch (the lab also waits for nginx's old workers; see the docs).
    result = deploy_lab.run("rolling", batch=1, drain_s=1)
    assert result.requests_failed == 0
    assert result.downtime_ms == 0
    assert result.mixed_window_ms <= result.deploy_duration_s * 1000  # side by side only while it rolls


def test_blue_green_of_your_own_images(deploy_lab):
    # Built from a Dockerfile once per session, removed after it; deploy_lab.app("myorg/shop:1.4", port=8000,
    # health_path="/ready") names an image you built or pulled yourself instead.
    v1 = deploy_lab.build(SHOP, port=8000, health_path="/ready", buildargs={"RELEASE": "1.4"})
    v2 = deploy_lab.build(SHOP, port=8000, health_path="/ready", buildargs={"RELEASE": "1.5"})
    result = deploy_lab.run("blue-green", v1=v1, v2=v2, fleet=2, overlap_s=1)
    assert result.requests_failed == 0
    # The shop names no version: the lab tells v1 from v2 by the instance nginx reached.
    assert result.versions_seen["v1"] > 0 and result.versions_seen["v2"] > 0
    assert result.mixed_window_ms < 5_000  # the 1 s overlap, then the switch and nginx's old workers


def test_a_canary_rolls_back_a_bad_release(deploy_lab):
    # The sample app's knob: v2 answers 20% of requests with a 500. A canary must catch it by itself.
    result = deploy_lab.run("canary", v2_env={"APP_FAIL_RATE": "0.2"}, bake_s=1.5, expect="rolled_back")
    assert "error rate" in result.rollback.reason
    # v2 never had more than its first 10% share: most clients never met the bad release.
    assert result.new_answers < 0.25 * result.requests_sent
