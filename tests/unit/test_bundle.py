"""Image bundles without Docker: the format, atomic writing, and every way a file can be wrong.

A fake engine stands in for Docker: its "save" is a real tar shaped like `docker save`'s (a layer, the
image configs, manifest.json last), so the bundle code reads exactly what it would read from an engine.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

import pytest

from lab import __version__
from lab.engines.docker.bundle import (
    MANIFEST_NAME,
    DockerImages,
    check_bundle,
    export_bundle,
    import_bundle,
    read_manifest,
)
from lab.engines.docker.images import OFFLINE_BASE, all_images
from lab.errors import BadInput, ImagesMissing, LabError

NO_DOCKER = "tcp://127.0.0.1:1"  # nothing listens there: any Docker call fails at once
IDS = {name: f"sha256:{i:064x}" for i, name in enumerate([*all_images(), OFFLINE_BASE], start=1)}


def engine_archive(layer: bytes) -> bytes:
    """A tar laid out like `docker save`: a layer directory, then manifest.json and repositories last."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in [
            ("aaaa/layer.tar", layer),
            ("aaaa/VERSION", b"1.0"),
            ("manifest.json", json.dumps([{"RepoTags": all_images()}]).encode()),
            ("repositories", b"{}"),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class FakeEngine:
    def __init__(self, ids: dict[str, str] | None = None, layer: bytes = b"layer" * 1000) -> None:
        self.ids = dict(IDS if ids is None else ids)
        self.bases = {name: OFFLINE_BASE for name in all_images()}
        self.archive = engine_archive(layer)
        self.saved: list[list[str]] = []
        self.interrupt_after_chunks: int | None = None
        self.on_save_done: dict[str, str] = {}  # ids to change once the save has streamed
        self.loaded: bytes | None = None
        self.load_reads: list[int] = []
        self.after_load: dict[str, str | None] = {}

    def image_id(self, name: str) -> str | None:
        return self.ids.get(name)

    def base_of(self, name: str) -> str | None:
        return self.bases.get(name)

    def save(self, names: Sequence[str]) -> Iterator[bytes]:
        self.saved.append(list(names))
        for i in range(0, len(self.archive), 4096):
            if self.interrupt_after_chunks is not None and i // 4096 >= self.interrupt_after_chunks:
                raise KeyboardInterrupt
            yield self.archive[i : i + 4096]
        self.ids.update(self.on_save_done)

    def load(self, archive: BinaryIO) -> list[str]:
        data = bytearray()
        while chunk := archive.read(65536):
            self.load_reads.append(len(chunk))
            data += chunk
        self.loaded = bytes(data)
        for name, image_id in self.after_load.items():
            if image_id is None:
                self.ids.pop(name, None)
            else:
                self.ids[name] = image_id
        return list(self.ids)


def members(path: Path) -> list[str]:
    with tarfile.open(path, mode="r:*") as tar:
        return tar.getnames()


def test_export_writes_the_manifest_first_then_the_engines_archive_once(tmp_path: Path) -> None:
    engine = FakeEngine()
    bundle = tmp_path / "images.tar.gz"

    done = export_bundle(engine, bundle)

    assert bundle.read_bytes()[:2] == b"\x1f\x8b"  # gzip
    # One save for every image, so the engine stores shared layers once; the base once, though three
    # images name it.
    assert engine.saved == [[*all_images(), OFFLINE_BASE]]
    assert members(bundle) == [
        MANIFEST_NAME,
        "aaaa/layer.tar",
        "aaaa/VERSION",
        "manifest.json",
        "repositories",
    ]
    manifest = read_manifest(bundle)
    assert manifest == done.manifest
    assert manifest.images == IDS
    assert manifest.lab_version == __version__
    assert done.size_bytes == bundle.stat().st_size
    assert done.without_base == []
    with gzip.open(bundle) as unpacked:  # the engine's archive is in there byte for byte, after ours
        assert unpacked.read().endswith(engine.archive)


def test_a_name_ending_in_tar_gets_an_uncompressed_bundle(tmp_path: Path) -> None:
    bundle = tmp_path / "images.tar"
    export_bundle(FakeEngine(), bundle)
    assert bundle.read_bytes()[:2] != b"\x1f\x8b"
    assert members(bundle)[0] == MANIFEST_NAME
    assert check_bundle(bundle).images == IDS


def test_an_interrupted_export_leaves_the_old_file_and_no_partial_one(tmp_path: Path) -> None:
    bundle = tmp_path / "images.tar.gz"
    bundle.write_bytes(b"the previous bundle")
    engine = FakeEngine(layer=os.urandom(64 * 1024))
    engine.interrupt_after_chunks = 3

    with pytest.raises(KeyboardInterrupt):
        export_bundle(engine, bundle)

    assert bundle.read_bytes() == b"the previous bundle"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images.tar.gz"]


def test_export_refuses_when_an_image_is_not_built(tmp_path: Path) -> None:
    ids = dict(IDS)
    del ids["deploylab/app:v2"]
    with pytest.raises(ImagesMissing, match=r"deploylab/app:v2 not built: run `lab images` first"):
        export_bundle(FakeEngine(ids), tmp_path / "images.tar.gz")
    assert list(tmp_path.iterdir()) == []


def test_export_leaves_out_a_base_the_engine_lacks_and_says_so(tmp_path: Path) -> None:
    ids = {k: v for k, v in IDS.items() if k != OFFLINE_BASE}
    done = export_bundle(FakeEngine(ids), tmp_path / "images.tar.gz")
    assert done.without_base == [OFFLINE_BASE]
    assert set(done.manifest.images) == set(all_images())


def test_export_fails_when_an_image_changes_while_it_is_written(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.on_save_done = {"deploylab/app:v1": "sha256:" + "f" * 64}
    with pytest.raises(LabError, match="deploylab/app:v1 changed while the bundle was written"):
        export_bundle(engine, tmp_path / "images.tar.gz")
    assert list(tmp_path.iterdir()) == []


def test_export_needs_an_existing_directory_and_a_file_name(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such directory"):
        export_bundle(FakeEngine(), tmp_path / "nowhere" / "images.tar.gz")
    with pytest.raises(BadInput, match="is a directory"):
        export_bundle(FakeEngine(), tmp_path)


def test_import_streams_the_whole_file_to_the_engine_and_checks_the_ids(tmp_path: Path) -> None:
    bundle = tmp_path / "images.tar.gz"
    export_bundle(FakeEngine(layer=os.urandom(256 * 1024)), bundle)
    target = FakeEngine(ids={})  # an engine with none of the images
    target.after_load = dict(IDS)

    done = import_bundle(target, bundle)

    assert target.loaded == bundle.read_bytes()  # the file as it is: the engine decompresses it
    assert len(target.load_reads) > 1  # read in pieces, not in one go
    assert done.manifest.images == IDS


def test_import_names_an_image_that_is_missing_or_different_after_loading(tmp_path: Path) -> None:
    bundle = tmp_path / "images.tar.gz"
    export_bundle(FakeEngine(), bundle)
    target = FakeEngine(ids={})
    target.after_load = {**IDS, "deploylab/proxy:1": None, "deploylab/app:v1": "sha256:" + "e" * 64}

    with pytest.raises(LabError) as caught:
        import_bundle(target, bundle)

    message = str(caught.value)
    assert "deploylab/proxy:1 is missing" in message
    assert "deploylab/app:v1 is sha256:eeeeeeeeeeee" in message
    assert "\n" not in message


def test_docker_images_hands_the_sdk_the_open_file_not_its_bytes(tmp_path: Path) -> None:
    class Images:
        got: object = None

        def load(self, data: object) -> list[object]:
            Images.got = data
            return []

    class Client:
        images = Images()

    archive = tmp_path / "a.tar"
    archive.write_bytes(b"x" * 1024)
    with open(archive, "rb") as handle:
        DockerImages(Client()).load(handle)  # type: ignore[arg-type]
        assert Images.got is handle


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "not a lab image bundle"),
        (b"hello, this is not a tar at all\n" * 40, "not a lab image bundle"),
        (gzip.compress(b"hello\n" * 1000), "not a lab image bundle"),
        (engine_archive(b"layer"), f"not a lab image bundle (no {MANIFEST_NAME} at its start)"),
        (
            gzip.compress(engine_archive(b"layer")),
            f"not a lab image bundle (no {MANIFEST_NAME} at its start)",
        ),
    ],
    ids=["empty", "text", "gzip-of-text", "docker-save-tar", "docker-save-tar-gz"],
)
def test_a_file_that_is_not_a_bundle_is_refused_in_one_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "something.tar.gz"
    path.write_bytes(content)
    engine = FakeEngine(ids={})
    with pytest.raises(BadInput, match=re.escape(expected)) as caught:
        import_bundle(engine, path)
    assert "\n" not in str(caught.value)
    assert engine.loaded is None


def test_a_missing_file_or_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="no such file"):
        check_bundle(tmp_path / "absent.tar.gz")
    with pytest.raises(BadInput, match="is a directory"):
        check_bundle(tmp_path)


def _bundle(tmp_path: Path, name: str) -> bytes:
    path = tmp_path / name
    export_bundle(FakeEngine(layer=os.urandom(256 * 1024)), path)
    data = path.read_bytes()
    path.unlink()
    return data


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("b.tar.gz", lambda data: data[: len(data) // 2]),
        ("b.tar.gz", lambda data: data[:-4]),  # only the length in gzip's trailer is gone
        (
            "b.tar.gz",
            lambda data: (
                data[: len(data) * 3 // 4]
                + bytes([data[len(data) * 3 // 4] ^ 0xFF])
                + data[len(data) * 3 // 4 + 1 :]
            ),
        ),
        ("b.tar", lambda data: data[: len(data) // 2]),
        ("b.tar", lambda data: data[:1536]),  # our manifest only, cut at a member boundary
    ],
    ids=["gzip-half", "gzip-trailer-cut", "gzip-flipped-byte", "tar-half", "tar-manifest-only"],
)
def test_a_truncated_or_corrupt_bundle_is_refused_before_the_engine_sees_it(
    tmp_path: Path, name: str, damage: object
) -> None:
    path = tmp_path / name
    path.write_bytes(damage(_bundle(tmp_path, name)))  # type: ignore[operator]
    engine = FakeEngine(ids={})
    with pytest.raises(BadInput, match="the bundle is truncated or corrupt") as caught:
        import_bundle(engine, path)
    assert "\n" not in str(caught.value)
    assert engine.loaded is None


def test_a_bundle_of_another_format_is_refused(tmp_path: Path) -> None:
    head = json.dumps({"format": 2, "lab_version": "9.0", "created": "x", "images": {}}).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(head)
        tar.addfile(info, io.BytesIO(head))
    path = tmp_path / "future.tar"
    path.write_bytes(buf.getvalue())
    with pytest.raises(LabError, match="bundle format 2 is not the one this lab reads"):
        read_manifest(path)


# The command line: one line on stderr and the exit code, through `python -m lab` (see test_cli.py).


def lab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LINES", "FORCE_COLOR", "TTY_COMPATIBLE"}}
    env.update(DOCKER_HOST=NO_DOCKER, COLUMNS="200", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lab: error: ")
    return lines[0]


def test_cli_import_of_a_missing_or_truncated_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = lab("images", "import", "absent.tar.gz", cwd=tmp_path)
    assert missing.returncode == 2
    assert "no such file: absent.tar.gz" in one_error_line(missing)

    (tmp_path / "cut.tar.gz").write_bytes(_bundle(tmp_path, "b.tar.gz")[:5000])
    cut = lab("images", "import", "cut.tar.gz", cwd=tmp_path)
    assert cut.returncode == 2
    assert "truncated or corrupt" in one_error_line(cut)


def test_cli_without_docker_is_one_line_and_exit_1(tmp_path: Path) -> None:
    (tmp_path / "good.tar.gz").write_bytes(_bundle(tmp_path, "b.tar.gz"))
    imported = lab("images", "import", "good.tar.gz", cwd=tmp_path)
    assert imported.returncode == 1
    assert "Docker is not reachable" in one_error_line(imported)

    exported = lab("images", "export", "new.tar.gz", cwd=tmp_path)
    assert exported.returncode == 1
    assert "Docker is not reachable" in one_error_line(exported)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.tar.gz"]
