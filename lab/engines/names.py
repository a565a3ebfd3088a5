"""The names of the lab's own images, on every engine. No engine SDK: a target or a report can name an
image without loading one."""

from __future__ import annotations

APP_REPO = "deploylab/app"
VERSIONS = ("v1", "v2")
PROXY_IMAGE = "deploylab/proxy:1"
REAPER_IMAGE = "deploylab/reaper:1"  # removes a run's objects when the lab that made them is killed


def app_image(version: str) -> str:
    return f"{APP_REPO}:{version}"


def app_images() -> list[str]:
    return [app_image(v) for v in VERSIONS]


def all_images() -> list[str]:
    return [*app_images(), PROXY_IMAGE, REAPER_IMAGE]
