"""Image bundles: every image the lab needs in one file, for a room with no registry and poor Wi-Fi.

A bundle is one tar, gzip-compressed unless its name ends in `.tar`: first a small manifest
(`deploylab-bundle.json`: lab version, creation time, every image's name and id), then the engine's own
multi-image save (`docker save a b c`), byte for byte. Tar members simply follow one another, so our
member followed by the engine's archive is still one valid tar, and `docker load` skips the file it does
not know. Layers shared by the images are stored once because the engine saves them in one archive.

The engine is reached through `ImageEngine`, four calls a Swarm backend can fill (loading on each node)
without touching the bundle format.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import tarfile
import time
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Protocol

import docker
import docker.errors

from lab import __version__
from lab.engines.docker.client import engine_errors
from lab.engines.docker.images import BASE_LABEL, all_images
from lab.errors import BadInput, ImagesMissing, LabError

MANIFEST_NAME = "deploylab-bundle.json"
FORMAT = 1
# Measured on the lab's images (121 MB saved): level 1 gives 49 MB in 2.0 s, level 6 45 MB in 5.4 s. A
# bundle is made once and copied to thirty laptops, so the smaller file wins.
GZIP_LEVEL = 6
CHUNK = 1 << 20
# What the engine's own save always writes: without it the archive was cut short (docker writes it last).
ENGINE_INDEXES = ("manifest.json", "index.json")


class ImageEngine(Protocol):
    def image_id(self, name: str) -> str | None:
        """The image's id, or None if the engine has no image by that name."""

    def base_of(self, name: str) -> str | None:
        """The image `name` was built on, as the lab recorded it; None if unknown."""

    def save(self, names: Sequence[str]) -> Iterable[bytes]:
        """One archive holding every image in `names`, each layer once, as a stream of chunks."""

    def load(self, archive: BinaryIO) -> list[str]:
        """Load an archive (plain or gzip tar) read from `archive` as a stream; return what was loaded."""


@dataclass(frozen=True)
class Manifest:
    lab_version: str
    created: str  # ISO 8601, UTC
    images: dict[str, str]  # name -> id

    def to_json(self) -> bytes:
        data = {
            "format": FORMAT,
            "lab_version": self.lab_version,
            "created": self.created,
            "images": self.images,
        }
        return json.dumps(data, indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes, source: str) -> Manifest:
        try:
            data = json.loads(raw)
            fmt, images = data["format"], data["images"]
            if not isinstance(images, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in images.items()
            ):
                raise TypeError("images is not a map of names to ids")
            manifest = cls(str(data["lab_version"]), str(data["created"]), dict(images))
        except (ValueError, KeyError, TypeError) as exc:
            raise BadInput(f"{source}: not a lab image bundle (its manifest is unreadable: {exc})") from None
        if fmt != FORMAT:
            raise LabError(f"{source}: bundle format {fmt} is not the one this lab reads ({FORMAT})")
        return manifest


@dataclass(frozen=True)
class Exported:
    manifest: Manifest
    path: Path
    size_bytes: int
    seconds: float
    without_base: list[str]  # bases the images name but the engine lacks: a rebuild would need a registry


@dataclass(frozen=True)
class Imported:
    manifest: Manifest
    loaded: list[str]  # what the engine said it loaded
    seconds: float


def bundle_images(engine: ImageEngine) -> tuple[list[str], list[str]]:
    """The lab's images, then the bases they were built on (so `lab images --rebuild` works offline
    afterwards; a base shares its layers with the images, so it adds next to nothing); and the bases
    the engine does not have."""
    wanted = all_images()
    missing = [name for name in wanted if engine.image_id(name) is None]
    if missing:
        raise ImagesMissing(f"{', '.join(missing)} not built: run `lab images` first")
    bases: list[str] = []
    for name in wanted:
        base = engine.base_of(name)
        if base and base not in bases:
            bases.append(base)
    absent = [base for base in bases if engine.image_id(base) is None]
    return [*wanted, *(b for b in bases if b not in absent)], absent


def _member_header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = int(time.time())
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _partial_path(path: Path) -> Path:
    # Beside the target, so the final rename stays on one filesystem; a name that does not look whole.
    return path.with_name(f"{path.name}.partial-{os.getpid()}")


def export_bundle(engine: ImageEngine, path: Path) -> Exported:
    """Write every image the lab needs to `path`, atomically: until the last byte is on disk the bundle
    exists only under a `.partial-PID` name, removed on any error or Ctrl-C."""
    path = Path(path)
    if path.is_dir():
        raise BadInput(
            f"{path} is a directory: name the bundle file, e.g. {path / 'deploylab-images.tar.gz'}"
        )
    if not path.parent.is_dir():
        raise BadInput(f"no such directory: {path.parent}")
    started = time.monotonic()
    names, without_base = bundle_images(engine)
    ids = {name: engine.image_id(name) or "" for name in names}
    manifest = Manifest(__version__, datetime.now(UTC).isoformat(timespec="seconds"), ids)
    head = manifest.to_json()
    partial = _partial_path(path)
    try:
        with open(partial, "wb") as raw:
            sink: BinaryIO = raw
            if path.suffix != ".tar":
                sink = gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL)  # type: ignore[assignment]
            sink.write(_member_header(MANIFEST_NAME, len(head)))
            sink.write(head + b"\0" * (-len(head) % tarfile.BLOCKSIZE))
            for chunk in engine.save(names):
                sink.write(chunk)
            if sink is not raw:
                sink.close()  # writes gzip's trailer (CRC and length) into `raw`
            raw.flush()
            os.fsync(raw.fileno())
        changed = [name for name in names if engine.image_id(name) != ids[name]]
        if changed:
            raise LabError(f"{', '.join(changed)} changed while the bundle was written: export again")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return Exported(manifest, path, path.stat().st_size, time.monotonic() - started, without_base)


GZIP_MAGIC = b"\x1f\x8b"
READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)  # gzip.BadGzipFile is an OSError


@contextlib.contextmanager
def _open_bundle(path: Path, bufsize: int) -> Iterator[tuple[tarfile.TarFile, BinaryIO]]:
    """The bundle as a tar read front to back, `bufsize` bytes at a time, and the stream under it; read
    errors are the caller's to name. Python's gzip, not tarfile's own reader, decompresses: only it
    checks gzip's trailer (CRC-32, length)."""
    try:
        raw = open(path, "rb")  # noqa: SIM115  (the `with raw` below closes it)
    except FileNotFoundError:
        raise BadInput(f"no such file: {path}") from None
    except IsADirectoryError:
        raise BadInput(f"{path} is a directory, not an image bundle") from None
    except PermissionError:
        raise BadInput(f"cannot read {path}: permission denied") from None
    with raw:
        stream: BinaryIO = raw
        if raw.read(2) == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        raw.seek(0)
        with tarfile.open(fileobj=stream, mode="r|", bufsize=bufsize) as tar:
            yield tar, stream


def _reason(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_manifest(path: Path) -> Manifest:
    """The bundle's manifest, read from its first member; one line if the file is not a bundle."""
    path = Path(path)
    # Block by block: the manifest is readable even when the file was cut soon after it, so a truncated
    # bundle is reported as one, not as something else.
    try:
        with _open_bundle(path, tarfile.BLOCKSIZE) as (tar, _):
            first = tar.next()
            if first is None or first.name != MANIFEST_NAME or not first.isfile():
                raise BadInput(f"{path}: not a lab image bundle (no {MANIFEST_NAME} at its start)")
            handle = tar.extractfile(first)
            raw = handle.read() if handle else b""
    except READ_ERRORS as exc:
        raise BadInput(f"{path}: not a lab image bundle ({_reason(exc)})") from None
    return Manifest.from_json(raw, str(path))


def check_bundle(path: Path) -> Manifest:
    """Read the whole bundle once before the engine sees it, so a truncated or corrupt file fails here
    with nothing loaded. A compressed bundle is read to gzip's trailer, whose CRC covers every byte."""
    path = Path(path)
    manifest = read_manifest(path)
    seen: set[str] = set()
    try:
        with _open_bundle(path, CHUNK) as (tar, stream):
            for member in tar:
                seen.add(member.name)
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:  # in chunks: a layer can be hundreds of MB
                    while handle.read(CHUNK):
                        pass
            while stream.read(CHUNK):  # past tar's end marker, to the trailer
                pass
    except READ_ERRORS as exc:
        raise BadInput(f"{path}: the bundle is truncated or corrupt ({_reason(exc)})") from None
    if not seen.intersection(ENGINE_INDEXES):
        raise BadInput(f"{path}: the bundle is truncated or corrupt (it holds no image index)")
    return manifest


def import_bundle(engine: ImageEngine, path: Path, checked: Manifest | None = None) -> Imported:
    """Check the bundle (unless `checked` is what `check_bundle` returned for it), stream it to the
    engine, then check that every image it names is there with the same id."""
    path = Path(path)
    started = time.monotonic()
    manifest = checked or check_bundle(path)
    with open(path, "rb") as archive:
        loaded = engine.load(archive)
    wrong = []
    for name, expected in manifest.images.items():
        found = engine.image_id(name)
        if found != expected:
            wrong.append(f"{name} is {'missing' if found is None else found[:19]}, not {expected[:19]}")
    if wrong:
        raise LabError(f"after loading {path}: {'; '.join(wrong)}")
    return Imported(manifest, loaded, time.monotonic() - started)


class DockerImages:
    """`ImageEngine` on the local Docker engine."""

    def __init__(self, client: docker.DockerClient) -> None:
        self.client = client

    @engine_errors
    def image_id(self, name: str) -> str | None:
        try:
            return str(self.client.images.get(name).id)
        except docker.errors.ImageNotFound:
            return None

    @engine_errors
    def base_of(self, name: str) -> str | None:
        try:
            return (self.client.images.get(name).labels or {}).get(BASE_LABEL) or None
        except docker.errors.ImageNotFound:
            return None

    def save(self, names: Sequence[str]) -> Iterable[bytes]:
        # The SDK's get_image takes one name; the engine's endpoint takes many (`docker save a b`), and only
        # one archive stores shared layers once. `_get`, `_url` and `_stream_raw_result` are the SDK's own
        # plumbing behind get_image; requests sends a list as repeated `names=` parameters.
        api = self.client.api
        response = engine_errors(api._get)(
            api._url("/images/get"), params={"names": list(names)}, stream=True
        )
        return _guarded(api._stream_raw_result(response, CHUNK, False))

    @engine_errors
    def load(self, archive: BinaryIO) -> list[str]:
        # A file object is sent by requests as a stream with a Content-Length, never read into memory.
        try:
            return [tag for image in self.client.images.load(archive) for tag in image.tags]
        except docker.errors.ImageLoadError as exc:
            raise LabError(f"docker could not load the bundle: {_reason(exc)}") from None


def _guarded(chunks: Iterable[bytes]) -> Iterable[bytes]:
    """Engine errors while streaming become LabErrors, like every other engine call."""
    iterator = iter(chunks)
    next_chunk = engine_errors(lambda: next(iterator, None))
    while (chunk := next_chunk()) is not None:
        yield chunk


def open_engine() -> DockerImages:
    from lab.engines.docker.client import connect

    return DockerImages(connect())


__all__ = [
    "DockerImages",
    "Exported",
    "ImageEngine",
    "Imported",
    "Manifest",
    "bundle_images",
    "check_bundle",
    "export_bundle",
    "import_bundle",
    "open_engine",
    "read_manifest",
]
