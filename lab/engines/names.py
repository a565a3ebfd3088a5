"""The names of the lab's own images, on every engine. No engine SDK: a target or a report can name an
image without loading one."""

from __future__ import annotations

APP_REPO = "deploylab/app"
VERSIONS = ("v1", "v2")
PROXY_IMAGE = "deploylab/proxy:1"


def app_image(version: str) -> str:
    return f"{APP_REPO}:{version}"


def all_images() -> list[str]:
    return [*(app_image(v) for v in VERSIONS), PROXY_IMAGE]
