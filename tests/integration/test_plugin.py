"""The documented example test file, run the way a user runs it: plain pytest, in a folder of its own with
no conftest and no project settings, with only the package installed."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import docker
from conftest import run_lab

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"
BUILT = {"label": "deploylab.pytest"}  # what deploy_lab.build makes


def test_the_docs_example_passes_under_plain_pytest(
    tmp_path: Path, docker_client: docker.DockerClient
) -> None:
    shutil.copy(EXAMPLES / "test_deploy.py", tmp_path)
    shutil.copytree(EXAMPLES / "shop", tmp_path / "shop")
    runs = tmp_path / "runs"
    # No Ryuk setting: the plugin must not need testcontainers' reaper (it cannot be pulled here).
    env = {k: v for k, v in os.environ.items() if k not in {"TESTCONTAINERS_RYUK_DISABLED", "PYTEST_ADDOPTS"}}
    images_before = {i.id for i in docker_client.images.list(filters=BUILT)}
    # Past the timeout, SIGINT: pytest ends its session, so the plugin removes the runs and the images.
    done = run_lab(
        ["-p", "no:cacheprovider", "test_deploy.py", "--deploy-lab-runs", str(runs)],
        timeout=900,
        env=env,
        cwd=tmp_path,
        module="pytest",
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "3 passed" in done.stdout
    assert f"3 run(s); run folders under {runs}" in done.stdout
    journals = sorted(runs.glob("*/*/journal.json"))
    statuses = {path.parts[-3]: json.loads(path.read_text())["status"] for path in journals}
    assert statuses == {
        "test_rolling_drops_nothing": "completed",
        "test_blue_green_of_your_own_images": "completed",
        "test_a_canary_rolls_back_a_bad_release": "rolled_back",
    }
    # The images the session built from the shop's Dockerfile are gone with it.
    assert {i.id for i in docker_client.images.list(filters=BUILT)} == images_before
