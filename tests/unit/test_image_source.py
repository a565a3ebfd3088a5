"""An app image built from other app files than the checkout's is rebuilt, not run."""

from __future__ import annotations

import re
from types import SimpleNamespace

import docker.errors
import pytest

from lab.engines.docker import images


class FakeImages:
    def __init__(self, labels: dict[str, dict[str, str]]):
        self.labels = labels
        self.built: list[str] = []

    def get(self, name: str) -> SimpleNamespace:
        if name not in self.labels:
            raise docker.errors.ImageNotFound(name)
        return SimpleNamespace(labels=self.labels[name])

    def build(self, *, tag: str, labels: dict[str, str], **kwargs: object) -> None:
        self.built.append(tag)
        self.labels[tag] = labels


def fake_client(labels: dict[str, dict[str, str]]) -> SimpleNamespace:
    return SimpleNamespace(images=FakeImages(labels))


def current() -> dict[str, str]:
    return {images.SOURCE_LABEL: images.app_source_digest(), images.BASE_LABEL: images.OFFLINE_BASE}


def test_the_digest_is_short_hex_and_stable():
    digest = images.app_source_digest()
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert images.app_source_digest() == digest


def current_labels() -> dict[str, dict[str, str]]:
    labels = {name: current() for name in images.all_images()}
    labels[images.REAPER_IMAGE] = {**current(), images.SOURCE_LABEL: images.reaper_digest()}
    return labels


def test_up_to_date_images_are_left_alone():
    labels = current_labels()
    client = fake_client(labels)
    report = images.ensure_images(client)  # type: ignore[arg-type]
    assert report.built == [] and report.present == images.all_images()


@pytest.mark.parametrize("label", [None, "0123456789abcdef"])
def test_an_app_image_of_other_app_files_is_built_again(monkeypatch: pytest.MonkeyPatch, label: str | None):
    labels = current_labels()
    stale = images.app_image("v2")
    labels[stale] = {images.BASE_LABEL: images.OFFLINE_BASE} | (
        {} if label is None else {images.SOURCE_LABEL: label}
    )
    labels[images.OFFLINE_BASE] = {}
    client = fake_client(labels)
    monkeypatch.setattr(images, "nginx_version_of", lambda client, base: "1.30.6")
    lines: list[str] = []
    report = images.ensure_images(client, base="debootstrap", log=lines.append)  # type: ignore[arg-type]
    assert stale in report.built
    assert client.images.labels[stale][images.SOURCE_LABEL] == images.app_source_digest()
    assert any("another version of the sample app" in line for line in lines)
