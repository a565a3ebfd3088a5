"""An image bundle runs a lab after import into an engine that had none of the images (issue 5's done-when).

The test removes the lab's images from the engine, so every later test depends on it putting them back:
its `finally` loads the bundle again, or rebuilds with `ensure_images` if even that fails.
"""

from __future__ import annotations

import contextlib
import subprocess
import time
from pathlib import Path

import docker
import docker.errors
import pytest
from conftest import run, run_lab

from lab.engines.docker.bundle import DockerImages, import_bundle, read_manifest
from lab.engines.docker.images import OFFLINE_BASE, all_images, ensure_images


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return run_lab(list(args), timeout=600)


def image_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return str(client.images.get(name).id)
    except docker.errors.ImageNotFound:
        return None


def remove_everywhere(client: docker.DockerClient, ids: list[str]) -> None:
    """Remove each image by id, with every tag it has: children (app, proxy) before their base."""
    for image_id_ in ids:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(image_id_, force=True)


@pytest.mark.serial  # no other test may run while the images are gone
def test_a_bundle_runs_a_lab_in_an_engine_that_had_none_of_the_images(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    bundle = tmp_path / "deploylab-images.tar.gz"
    wanted = [*all_images(), OFFLINE_BASE]
    before = {name: image_id(docker_client, name) for name in wanted}
    try:
        started = time.monotonic()
        exported = lab("images", "export", str(bundle))
        export_s = time.monotonic() - started
        assert exported.returncode == 0, exported.stderr
        manifest = read_manifest(bundle)
        assert {n: i for n, i in before.items() if i} == manifest.images
        assert set(all_images()) <= set(manifest.images)

        # The manifest lists the app and proxy before the base they are built on.
        remove_everywhere(docker_client, list(dict.fromkeys(manifest.images.values())))
        assert all(image_id(docker_client, name) is None for name in manifest.images)
        for image_id_ in manifest.images.values():
            try:
                docker_client.images.get(image_id_)
                raise AssertionError(f"{image_id_} is still in the engine")
            except docker.errors.ImageNotFound:
                pass

        started = time.monotonic()
        imported = lab("images", "import", str(bundle))
        import_s = time.monotonic() - started
        assert imported.returncode == 0, imported.stderr
        assert {name: image_id(docker_client, name) for name in manifest.images} == manifest.images
        for name in manifest.images:
            assert f"loaded {name} " in imported.stdout
        # Measured, for the README: what each command said, and each whole process's wall time.
        print(f"\n{exported.stdout.splitlines()[-1]} (process {export_s:.1f} s)")
        print(f"{imported.stdout.splitlines()[-1]} (process {import_s:.1f} s)")

        # `lab images` finds everything present: nothing to build, no registry needed.
        images = lab("images")
        assert images.returncode == 0, images.stderr
        assert "built" not in images.stdout
        assert all(f"present {name}" in images.stdout for name in all_images())

        record, result = run("blue-green", fleet_size=2, baseline_s=0.5, settle_s=0.5)
        assert record.status == "completed", record.error
        assert result["requests_failed"] == 0, result["failures_by_class"]
        assert result["versions_seen"].get("v1", 0) > 0 and result["versions_seen"].get("v2", 0) > 0
    finally:
        missing = [name for name, was in before.items() if was and image_id(docker_client, name) is None]
        if missing and bundle.exists():
            with contextlib.suppress(Exception):
                import_bundle(DockerImages(docker_client), bundle)
        if any(image_id(docker_client, name) is None for name in all_images()):
            ensure_images(docker_client)  # the last resort: a rebuild (offline: debootstrap, as root)
        bundle.unlink(missing_ok=True)
