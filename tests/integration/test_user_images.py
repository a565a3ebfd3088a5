"""The user's own images, which name no version: deployed, health-checked on their own port and path, and
told apart by the address nginx reached (X-Lab-Upstream)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_lab

SHOP = Path(__file__).resolve().parents[2] / "docs" / "examples" / "shop"


def shop(deploy_lab, release: str):
    return deploy_lab.build(SHOP, port=8000, health_path="/ready", buildargs={"RELEASE": release})


def test_a_canary_judges_an_app_without_version_headers_from_the_upstream(deploy_lab) -> None:
    result = deploy_lab.run(
        "canary",
        v1=shop(deploy_lab, "1"),
        v2=shop(deploy_lab, "2"),
        v2_env={"SHOP_FAIL_RATE": "0.3"},
        fleet=2,
        bake_s=1.5,
        baseline=1,
        settle=1,
        expect="rolled_back",
    )
    assert "error rate" in result.rollback.reason
    failed = [s for s in result.samples if s.status == 500]
    assert failed and {s.version for s in failed} == {"v2"}  # the app's 500s, attributed by address
    assert result.blast_radius >= len(failed) and result.new_answers > result.blast_radius
    answered = [s for s in result.samples if s.ok]
    assert {s.version for s in answered} == {"v1", "v2"} and all(s.upstream for s in answered)
    assert {s.instance for s in answered} <= {"app-v1-1", "app-v1-2", "app-v2-1", "app-v2-2"}
    journal = json.loads((result.folder / "journal.json").read_text())
    assert journal["input"]["scenario"]["v2_app"] == {
        "image": result.record.config.v2_app.image,
        "port": 8000,
        "health_path": "/ready",
        "serves": None,  # not declared: GET / only (docs/schema.md)
    }


def test_a_missing_image_fails_the_test_naming_it_and_pulls_nothing(deploy_lab) -> None:
    absent = deploy_lab.app("deploylab-test/absent:1", port=8000)
    with pytest.raises(pytest.fail.Exception) as failed:
        deploy_lab.run("rolling", v2=absent, fleet=1, baseline=0, settle=0)
    assert "image(s) deploylab-test/absent:1 not found: build or pull it first (the lab never pulls)" in str(
        failed.value
    )


def test_lab_run_deploys_your_images_from_the_command_line(deploy_lab, tmp_path: Path) -> None:
    v1, v2 = shop(deploy_lab, "1"), shop(deploy_lab, "2")
    args = ["--fleet", "2", "--baseline", "1", "--settle", "1", "--out", str(tmp_path), "--json"]
    for version, app in (("v1", v1), ("v2", v2)):
        args += [
            f"--{version}-image",
            app.image,
            f"--{version}-port",
            "8000",
            f"--{version}-health-path",
            "/ready",
        ]
    done = run_lab(["run", "blue-green", *args], timeout=300, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["status"] == "completed" and summary["requests_failed"] == 0
    assert summary["versions_seen"]["v1"] > 0 and summary["versions_seen"]["v2"] > 0
