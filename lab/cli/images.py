"""`lab images` and `lab clean`: what the lab builds and what it leaves behind."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from lab.cli.app import BASES, app, err, images_app, out
from lab.errors import BadInput, LabError


@images_app.callback(invoke_without_command=True)
def images_cmd(
    ctx: typer.Context,
    rebuild: Annotated[bool, typer.Option(help="Build again even if the images exist.")] = False,
    base: Annotated[
        str, typer.Option(help="auto (official if pullable, else debootstrap), official, debootstrap.")
    ] = "auto",
) -> None:
    """Build the app (v1, v2) and proxy images; say which base path was taken."""
    if ctx.invoked_subcommand:
        given = [f"--{name}" for name, value in (("rebuild", rebuild), ("base", base != "auto")) if value]
        if given:  # they build; export, import and push build nothing: refused, not ignored
            raise BadInput(f"{' and '.join(given)} {'are' if len(given) > 1 else 'is'} for `lab images` "
                           f"alone: `lab images {ctx.invoked_subcommand}` builds nothing")
        return
    if base not in BASES:
        raise BadInput(f"--base must be one of {', '.join(BASES)}, got {base!r}")
    from lab.engines.docker.client import connect
    from lab.engines.docker.images import ensure_images

    report = ensure_images(
        connect(), rebuild=rebuild, base=base, log=lambda line: err.print(line, markup=False)
    )
    for name in report.built:
        out.print(f"built   {name}", markup=False)
    for name in report.present:
        out.print(f"present {name}", markup=False)
    out.print(f"base: {report.path}", markup=False)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


@images_app.command("export")
def export_cmd(
    file: Annotated[
        Path, typer.Argument(help="The bundle to write; gzip-compressed unless it ends in .tar.")
    ],
) -> None:
    """Write every image the lab needs (app v1, v2, proxy and their base) to one file, for offline use."""
    from lab.engines.docker.bundle import export_bundle, open_engine

    done = export_bundle(open_engine(), file)
    for name, image_id in done.manifest.images.items():
        out.print(f"exported {name} ({_short(image_id)})", markup=False)
    for base in done.without_base:
        err.print(
            f"note: base {base} is not in the engine: a rebuild after import needs a registry", markup=False
        )
    out.print(f"bundle: {done.path}, {done.size_bytes / 1e6:,.1f} MB in {done.seconds:.1f} s", markup=False)


@images_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A bundle written by `lab images export`.")],
) -> None:
    """Load a bundle from `lab images export`, then check every image in it is there with the same id."""
    from lab.engines.docker.bundle import check_bundle, import_bundle, open_engine

    started = time.monotonic()
    manifest = check_bundle(file)  # before Docker: a bad file is reported as such, engine or not
    import_bundle(open_engine(), file, checked=manifest)
    out.print(f"bundle from lab {manifest.lab_version}, made {manifest.created}", markup=False)
    for name, image_id in manifest.images.items():
        out.print(f"loaded {name} ({_short(image_id)})", markup=False)
    out.print(f"imported {len(manifest.images)} images in {time.monotonic() - started:.1f} s", markup=False)


app.add_typer(images_app, name="images")


@app.command("clean")
def clean_cmd(
    images: Annotated[
        bool, typer.Option("--images", help="Also remove the lab's images (not the base).")
    ] = False,
) -> None:
    """Remove every container, Swarm service and network any lab run left behind (with DEPLOYLAB_OWNER
    set: only that owner's)."""
    from lab.engines.base import owner_labels
    from lab.engines.docker.client import connect, remove_labelled
    from lab.engines.docker.images import remove_images

    client = connect()
    removed = remove_labelled(client, owner_labels())
    out.print(f"removed {removed}", markup=False)
    if removed.left:
        raise LabError(f"could not remove everything: {'; '.join(removed.left)}")
    if images:
        for name in remove_images(client):
            out.print(f"removed image {name}", markup=False, soft_wrap=True)


@images_app.command("push")
def push_cmd(
    registry: Annotated[
        str,
        typer.Argument(
            help="A registry every node of your swarm can pull from, HOST\\[:PORT]\\[/PATH], e.g. "
            "registry.example:5000 or 127.0.0.1:5000.",
            show_default=False,
        ),
    ],
) -> None:
    """Tag the lab's images with REGISTRY and push them, for a swarm of several nodes: each node pulls
    what runs on it. Run with `lab run ... --engine swarm --registry REGISTRY`."""
    from lab.engines.docker.client import connect
    from lab.engines.docker.images import push_images

    def log(line: str) -> None:
        err.print(line, markup=False, soft_wrap=True)

    name = registry_name(registry)  # bad input before the engine is asked anything
    for image, digest in push_images(connect(), name, log=log):
        out.print(f"pushed {image} ({digest})", markup=False, soft_wrap=True)


def registry_name(text: str) -> str:
    """HOST[:PORT][/PATH] as a registry's name in an image reference; BadInput otherwise."""
    import re

    name = text.strip().rstrip("/")
    if name.startswith(("http://", "https://")):
        raise BadInput(f"registry {text!r}: give HOST[:PORT][/PATH], without http:// (e.g. 127.0.0.1:5000)")
    pattern = r"[A-Za-z0-9.-]+(:\d{1,5})?(/[a-z0-9._-]+)*"
    if not re.fullmatch(pattern, name) or (
        "." not in name.split("/")[0] and ":" not in name.split("/")[0] and name.split("/")[0] != "localhost"
    ):
        raise BadInput(
            f"registry {text!r} is not HOST[:PORT][/PATH] (a host with a dot or a port, e.g. 127.0.0.1:5000)"
        )
    port = name.split("/")[0].partition(":")[2]
    if port and not 1 <= int(port) <= 65535:
        raise BadInput(f"registry {text!r}: port {port} is not a TCP port (1 to 65535)")
    return name
