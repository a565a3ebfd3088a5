"""`lab report`: rebuild a run's report.html and timeline images, or a comparison's compare.html, from the
files its folder holds. No Docker."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lab.cli.app import app, out
from lab.errors import BadInput, LabError


@app.command("report")
def report_cmd(
    folder: Annotated[
        Path,
        typer.Argument(
            help="A run folder (with journal.json) or a `lab compare` folder (with compare.json), or one of "
            "those files.",
            show_default=False,
        ),
    ],
) -> None:
    """Rebuild report.html, timeline.svg and timeline.png from a run folder's journal.json and samples.csv,
    or compare.html (and every run's report) in a comparison's folder."""
    from lab.output import compare
    from lab.output import html as html_report
    from lab.output.run_folder import is_run, read_journal

    if folder.is_file() and folder.name in ("journal.json", "compare.json", "samples.csv"):
        folder = folder.parent  # a file of the folder given: the folder is meant
    if is_run(folder):
        path = html_report.write_run_report(folder)
        out.print(f"report: {path} (timeline.svg and timeline.png beside it)", markup=False, soft_wrap=True)
        return
    if not (folder / "compare.json").is_file():
        if folder.is_dir() and not (folder / "journal.json").exists():
            raise BadInput(f"{folder} holds neither journal.json (a run) nor compare.json (a comparison)")
        read_journal(folder)  # raises the error that fits: no such folder, not a folder, unreadable journal
    document = compare.read_document(folder / "compare.json")  # a bad one: no run's report is rewritten
    failed = []
    for run in sorted(p for p in folder.iterdir() if is_run(p)):
        try:
            html_report.write_run_report(run)
        except LabError as exc:  # one bad run must not keep the others' reports from being rebuilt
            failed.append(f"{run.name}: {exc}")
    path = html_report.write_compare_report(folder, document=document)
    out.print(f"report: {path}", markup=False, soft_wrap=True)
    if failed:
        raise LabError(f"{len(failed)} run report(s) not rebuilt: " + "; ".join(failed))
