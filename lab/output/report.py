"""Everything a finished run leaves in its folder: the files (lab/output/run_folder.py), then report.html
and the timeline images built from them (lab/output/html.py)."""

from __future__ import annotations

from pathlib import Path

from lab.analysis.summary import Analysis
from lab.output import html, run_folder
from lab.record import RunRecord


def write_run(record: RunRecord, analysis: Analysis, out_dir: Path) -> Path:
    run_folder.write(record, analysis, out_dir)
    _write_html(record, analysis, out_dir)
    return out_dir


def _write_html(record: RunRecord, analysis: Analysis, out_dir: Path) -> None:
    """report.html and the timeline images, last: they are built from the files written above, and a
    failure here must not lose the run. It becomes a note, in the journal and the summary."""
    try:
        html.write_run_report(out_dir)
    except Exception as exc:
        why = f"{type(exc).__name__}: {exc}"
        record.notes.append(f"report.html not written: {why} (retry with `lab report {out_dir}`)")
        run_folder.write_journal(record, analysis, out_dir)
