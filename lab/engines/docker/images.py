"""Building every image the lab needs, with or without a container registry.

Where the official images can be pulled (a laptop on the internet), the app builds on python:*-slim and
the proxy on nginx. Where nothing can be pulled (CI here, a workshop room without Wi-Fi), one Debian
minbase with python3 and nginx-light is made with debootstrap from the host's apt mirror and imported;
both the app and the proxy build on it.

The suite is Debian's testing (forky), not stable: a blue/green switch is an nginx reload, and only
nginx 1.27.4 and later (`keepalive_min_timeout`) let an old worker answer a kept-alive client's next
request with "Connection: close" instead of closing the connection under it. With bookworm's nginx 1.22,
three runs in four of `lab run blue-green` lost one request to a reset at the switch.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import docker
import docker.errors

from lab.engines.base import LABEL
from lab.engines.names import APP_REPO, PROXY_IMAGE, REAPER_IMAGE, VERSIONS, all_images, app_image
from lab.errors import LabError

OFFLINE_SUITE = "forky"
# debootstrap's script for unstable serves every recent suite; older debootstraps lack one named forky.
OFFLINE_SCRIPT = "sid"
OFFLINE_BASE = f"deploylab/base:{OFFLINE_SUITE}"
OFFICIAL_APP_BASE = "python:3.12-slim"
OFFICIAL_PROXY_BASE = "nginx:1.28"
BASE_LABEL = "deploylab.base"
NGINX_LABEL = "deploylab.nginx"  # the proxy's nginx version, so the config can use what it supports
SOURCE_LABEL = "deploylab.app-source"  # digest of the app's files: an image of an older app is rebuilt
REAPER_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
COPY reaper_app.py /reaper.py
# Root: the Docker socket it is given is root's. It runs nothing but its own standard-library script.
USER 0
ENTRYPOINT ["python3", "/reaper.py"]
"""

PROXY_DOCKERFILE = """\
ARG BASE
FROM ${BASE}
# nginx's graceful stop; the lab removes the proxy last, after the probe has stopped.
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
"""

# Trimmed from the debootstrapped tree: documentation and caches, about half its size.
_TRIM = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "var/cache/apt/archives",
    "var/lib/apt/lists",
)


def reaper_source() -> bytes:
    return resources.files("lab.engines.docker").joinpath("reaper_app.py").read_bytes()


def reaper_digest() -> str:
    return hashlib.sha256(REAPER_DOCKERFILE.encode() + b"\0" + reaper_source()).hexdigest()[:16]


def _reaper_context() -> io.BytesIO:
    """The reaper's build context: its Dockerfile and its one script."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in (("Dockerfile", REAPER_DOCKERFILE.encode()), ("reaper_app.py", reaper_source())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buf.seek(0)
    return buf


def app_source_digest() -> str:
    """sha256 over the files the app image is built from, so a changed app is never run from an old image
    (the tag alone cannot tell: a checkout that fixed the app would go on running the unfixed one)."""
    digest = hashlib.sha256()
    app_dir = resources.files("sample_app")
    for name in ("Dockerfile", "app.py"):
        digest.update(name.encode() + b"\0" + app_dir.joinpath(name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _stale(client: docker.DockerClient, name: str) -> bool:
    """An app or reaper image built from other files than this checkout's (or by a lab that did not label
    it)."""
    if name == REAPER_IMAGE:
        return (client.images.get(name).labels or {}).get(SOURCE_LABEL) != reaper_digest()
    if not name.startswith(APP_REPO + ":"):
        return False
    return (client.images.get(name).labels or {}).get(SOURCE_LABEL) != app_source_digest()


@dataclass(frozen=True)
class ImageReport:
    path: str  # "official", "debootstrap", or what the existing images were built from
    built: list[str]
    present: list[str]


def image_exists(client: docker.DockerClient, name: str) -> bool:
    try:
        client.images.get(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def _pull(client: docker.DockerClient, name: str) -> bool:
    repo, tag = name.rsplit(":", 1)
    try:
        client.images.pull(repo, tag=tag)
    except docker.errors.APIError:
        return False
    return True


def apt_mirror() -> str:
    """The mirror this host's apt uses, so the offline base comes from where packages already come from."""
    if os.environ.get("LAB_APT_MIRROR"):
        return os.environ["LAB_APT_MIRROR"]
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        try:
            text = path.read_text()
        except OSError:
            continue
        for match in re.finditer(r"(?:^deb\s+(?:\[[^\]]*\]\s+)?|^URIs:\s*)(\S+)", text, re.MULTILINE):
            uri = match.group(1)
            if uri.rstrip("/").endswith("/debian"):
                return uri
    return "http://deb.debian.org/debian"


def build_offline_base(client: docker.DockerClient, log: Callable[[str], None]) -> None:
    debootstrap = shutil.which("debootstrap") or (
        "/usr/sbin/debootstrap" if Path("/usr/sbin/debootstrap").exists() else None
    )
    if debootstrap is None or os.geteuid() != 0:
        raise LabError(
            "no base image can be pulled, and building one offline needs root and debootstrap "
            "(apt-get install debootstrap; then run `sudo lab images`)"
        )
    mirror = apt_mirror()
    log(f"building {OFFLINE_BASE} with debootstrap from {mirror} (about a minute)")
    with tempfile.TemporaryDirectory(prefix="deploylab-base-") as tmp:
        root = Path(tmp) / "root"
        result = subprocess.run(
            [
                debootstrap,
                "--variant=minbase",
                "--include=python3,nginx-light",
                OFFLINE_SUITE,
                str(root),
                mirror,
                OFFLINE_SCRIPT,
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"debootstrap failed: {tail[0]}")
        for rel in _TRIM:
            target = root / rel
            if target.is_dir():
                shutil.rmtree(target)
                target.mkdir()
        archive = Path(tmp) / "root.tar"
        subprocess.run(["tar", "-C", str(root), "-cf", str(archive), "."], check=True)
        repo, tag = OFFLINE_BASE.split(":")
        client.api.import_image_from_file(
            str(archive), repository=repo, tag=tag, changes=['CMD ["/bin/bash"]']
        )


def _build(
    client: docker.DockerClient, tag: str, base: str, labels: dict[str, str] | None = None, **kwargs: object
) -> None:
    try:
        client.images.build(
            tag=tag,
            pull=False,
            rm=True,
            forcerm=True,
            labels={LABEL: "1", BASE_LABEL: base, **(labels or {})},
            **kwargs,
        )
    except docker.errors.BuildError as exc:
        raise LabError(f"building {tag} failed: {exc.msg}") from None


def nginx_version_of(client: docker.DockerClient, image: str) -> str:
    """`nginx -v` in a throwaway container of `image` (labelled, so a leak would be seen and cleaned)."""
    output = client.containers.run(
        image, ["nginx", "-v"], remove=True, stdout=True, stderr=True, labels={LABEL: "1"}, entrypoint=[]
    )
    match = re.search(rb"nginx/(\d+(?:\.\d+)+)", output)
    if not match:
        raise LabError(f"{image} has no working nginx: {output.decode(errors='replace').strip()}")
    return match.group(1).decode()


def proxy_nginx_version(client: docker.DockerClient, image: str = PROXY_IMAGE) -> tuple[int, ...] | None:
    """The proxy image's nginx version as recorded when it was built, or None if unknown."""
    try:
        label = (client.images.get(image).labels or {}).get(NGINX_LABEL)
    except docker.errors.ImageNotFound:
        return None
    return tuple(int(part) for part in label.split(".")) if label else None


def ensure_images(
    client: docker.DockerClient,
    *,
    rebuild: bool = False,
    base: str = "auto",
    log: Callable[[str], None] = lambda line: None,
) -> ImageReport:
    """Make sure the app (v1, v2) and proxy images exist; build what is missing (everything on `rebuild`).

    `base` is "auto" (official images if they can be pulled, else debootstrap), "official" or "debootstrap".
    """
    wanted = all_images()
    present = [name for name in wanted if image_exists(client, name)]
    stale = [name for name in present if _stale(client, name)]
    for name in stale:
        log(f"{name} was built from another version of the sample app: building again")
    present = [name for name in present if name not in stale]
    if not rebuild and len(present) == len(wanted):
        base_image = (client.images.get(PROXY_IMAGE).labels or {}).get(BASE_LABEL, "")
        path = "debootstrap" if base_image == OFFLINE_BASE else "official" if base_image else "unknown"
        return ImageReport(path, [], present)

    app_base, proxy_base, path = _choose_base(client, base, log)
    app_dir = resources.files("sample_app")
    built = []
    for version in VERSIONS:
        with resources.as_file(app_dir) as context:
            log(f"building {app_image(version)} on {app_base}")
            _build(
                client,
                app_image(version),
                app_base,
                labels={SOURCE_LABEL: app_source_digest()},
                path=str(context),
                buildargs={"BASE": app_base, "APP_VERSION": version},
            )
        built.append(app_image(version))
    nginx_version = nginx_version_of(client, proxy_base)
    log(f"building {PROXY_IMAGE} on {proxy_base} (nginx {nginx_version})")
    _build(
        client,
        PROXY_IMAGE,
        proxy_base,
        labels={NGINX_LABEL: nginx_version},
        fileobj=io.BytesIO(PROXY_DOCKERFILE.encode()),
        buildargs={"BASE": proxy_base},
    )
    built.append(PROXY_IMAGE)
    log(f"building {REAPER_IMAGE} on {app_base}")
    _build(
        client,
        REAPER_IMAGE,
        app_base,
        labels={SOURCE_LABEL: reaper_digest()},
        fileobj=_reaper_context(),
        custom_context=True,
        buildargs={"BASE": app_base},
    )
    built.append(REAPER_IMAGE)
    return ImageReport(path, built, [])


def _choose_base(client: docker.DockerClient, base: str, log: Callable[[str], None]) -> tuple[str, str, str]:
    if base not in {"auto", "official", "debootstrap"}:
        raise LabError(f"unknown base {base!r}: use auto, official or debootstrap")
    if base in {"auto", "official"}:
        have = all(
            image_exists(client, n) or _pull(client, n) for n in (OFFICIAL_APP_BASE, OFFICIAL_PROXY_BASE)
        )
        if have:
            log(f"using the official base images {OFFICIAL_APP_BASE} and {OFFICIAL_PROXY_BASE}")
            return OFFICIAL_APP_BASE, OFFICIAL_PROXY_BASE, "official"
        if base == "official":
            raise LabError(f"cannot pull {OFFICIAL_APP_BASE} or {OFFICIAL_PROXY_BASE}: no registry reachable")
        log("no registry reachable: the official base images cannot be pulled")
    if not image_exists(client, OFFLINE_BASE):
        build_offline_base(client, log)
    else:
        log(f"using the existing offline base {OFFLINE_BASE}")
    return OFFLINE_BASE, OFFLINE_BASE, "debootstrap"


def registry_image(registry: str | None, name: str) -> str:
    """`name` as a registry of the user's holds it (the lab's own name without one)."""
    return f"{registry}/{name}" if registry else name


def push_images(
    client: docker.DockerClient, registry: str, log: Callable[[str], None] = lambda line: None
) -> list[tuple[str, str]]:
    """Tag every image the lab runs with `registry` and push it; (name, digest) of each."""
    pushed = []
    for name in all_images():
        try:
            image = client.images.get(name)
        except docker.errors.ImageNotFound:
            raise LabError(f"{name} not found: run `lab images` first") from None
        target = registry_image(registry, name)
        repo, tag = target.rsplit(":", 1)
        image.tag(repo, tag)
        log(f"pushing {target}")
        digest = ""
        for line in client.api.push(repo, tag=tag, stream=True, decode=True):
            if "error" in line:
                raise LabError(f"pushing {target} failed: {line['error']}")
            digest = (line.get("aux") or {}).get("Digest", digest)
        pushed.append((target, digest or "no digest reported"))
    return pushed


def remove_images(client: docker.DockerClient, *, base_too: bool = False) -> list[str]:
    names = all_images() + ([OFFLINE_BASE] if base_too else [])
    removed = []
    for name in names:
        try:
            client.images.remove(name, force=True)
            removed.append(name)
        except docker.errors.ImageNotFound:
            pass
    return removed
