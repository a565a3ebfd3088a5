"""`lab images` and `lab clean`: what the lab builds and what it leaves behind."""

from __future__ import annotations

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
        return
    if base not in BASES:
        raise BadInput(f"--base must be one of {', '.join(BASES)}, got {base!r}")
    from lab.runtime.docker_local import connect
    from lab.runtime.images import ensure_images

    report = ensure_images(
        connect(), rebuild=rebuild, base=base, log=lambda line: err.print(line, markup=False)
    )
    for name in report.built:
        out.print(f"built   {name}", markup=False)
    for name in report.present:
        out.print(f"present {name}", markup=False)
    out.print(f"base: {report.path}", markup=False)


app.add_typer(images_app, name="images")


@app.command("clean")
def clean_cmd(
    images: Annotated[
        bool, typer.Option("--images", help="Also remove the lab's images (not the base).")
    ] = False,
) -> None:
    """Remove every container and network any lab run left behind."""
    from lab.runtime.docker_local import connect, remove_labelled
    from lab.runtime.images import remove_images

    client = connect()
    removed = remove_labelled(client)
    out.print(f"removed {removed}", markup=False)
    if removed.left:
        raise LabError(f"could not remove everything: {'; '.join(removed.left)}")
    if images:
        for name in remove_images(client):
            out.print(f"removed image {name}", markup=False)
