"""A run folder: written from a run's record, and read back (the journal, the samples and the configs, on the
journal's clock, 0 = the run's start). What `lab report` and report.html are built from, so an old folder
renders like a new one."""

from __future__ import annotations

import csv
import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.analysis.summary import Analysis
from lab.errors import BadInput
from lab.model import ErrorClass, Event, Sample
from lab.output.journal import SAMPLE_COLUMNS, csv_cell, journal, sample_record
from lab.record import RunRecord

# Columns whose Sample field has another name; columns that are no Sample field (latency_ms) are derived.
_FIELD = {"scheduled_s": "scheduled", "sent_s": "sent", "finished_s": "finished"}
# How a cell becomes a field's value, and what it must look like (for the error).
_PARSE: dict[str, tuple[Any, str]] = {
    "seq": (int, "an integer"),
    "scheduled": (float, "a number"),
    "sent": (float, "a number"),
    "finished": (float, "a number"),
    "status": (int, "an integer"),
    "error": (ErrorClass, "one of " + ", ".join(e.value for e in ErrorClass)),
    "late": (lambda text: text in ("1", "true", "True"), ""),
    "client": (int, "an integer"),
}
_SAMPLE_FIELDS = {f.name for f in dataclasses.fields(Sample)}
# The Sample fields with no default: every samples.csv the lab wrote has their columns (an old one may lack
# the later ones, which take their default). A header without them is not the lab's.
_REQUIRED_COLUMNS = [
    {v: k for k, v in _FIELD.items()}.get(f.name, f.name)
    for f in dataclasses.fields(Sample)
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
]
_NEVER_EMPTY = {"seq", "scheduled"}  # docs/schema.md: every other cell may be empty


@dataclass(frozen=True)
class SavedRun:
    folder: Path
    journal: dict[str, Any]
    samples: list[Sample]
    events: list[Event]
    capacity: list[tuple[float, int]]
    configs: list[tuple[str, str]]  # (file name, nginx.conf)

    @property
    def title(self) -> str:
        j = self.journal
        when = str(j.get("started_at") or "")[:19].replace("T", " ")
        return f"{j['input']['strategy']} · {j['status']} · run {j['run_id']}" + (
            f" · {when} UTC" if when else ""
        )


def is_run(folder: Path) -> bool:
    return (folder / "journal.json").is_file()


def read_journal(folder: Path) -> dict[str, Any]:
    path = folder / "journal.json"
    if not folder.exists():
        raise BadInput(f"no such folder: {folder}")
    if not folder.is_dir():
        raise BadInput(f"not a folder: {folder}")
    if not path.is_file():
        raise BadInput(f"{folder} holds no journal.json: not a run folder")
    try:
        journal = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadInput(f"{path} is not readable JSON: {exc}") from None
    missing = [
        k
        for k in ("run_id", "input", "steps", "analysis", "status")
        if not isinstance(journal, dict) or k not in journal
    ]
    if missing:
        raise BadInput(f"{path} is not a lab journal: no {', '.join(missing)}")
    return journal


def read_samples(path: Path) -> list[Sample]:
    """samples.csv back into Samples, times relative to the run's start. Columns an old file lacks take the
    field's default (those of fields with none must be there); columns the code no longer knows are
    ignored."""
    if not path.is_file():
        raise BadInput(f"{path.parent} holds no samples.csv")
    samples = []
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None:
                raise BadInput(f"{path} is empty: not even its header row")
            _check_header(path, list(reader.fieldnames))
            for line, row in enumerate(reader, start=2):
                samples.append(_sample(row, len(reader.fieldnames), f"{path}, line {line}"))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BadInput(f"{path} is not a samples file ({exc})") from None
    return samples


def _check_header(path: Path, names: list[str]) -> None:
    if missing := [c for c in _REQUIRED_COLUMNS if c not in names]:
        header = ",".join(names)
        header = header if len(header) <= 60 else header[:57] + "..."
        raise BadInput(
            f"{path} is not a lab samples file: its header row {header!r} has no {', '.join(missing)}"
        )
    # csv keeps the last of two cells of one name: which one the lab meant cannot be told.
    if twice := sorted({n for n in names if names.count(n) > 1 and _FIELD.get(n, n) in _SAMPLE_FIELDS}):
        raise BadInput(f"{path} is not a lab samples file: its header row names {', '.join(twice)} twice")


def _sample(row: dict[Any, Any], columns: int, where: str) -> Sample:
    # csv fills a row shorter than the header with None: a row cut short would read as a good answer
    # with no status, a failure hidden. A longer row is not what the header describes either.
    if None in row or None in row.values():
        cells = sum(v is not None for k, v in row.items() if k is not None) + len(row.get(None) or [])
        raise BadInput(f"{where}: not a sample ({cells} cells, the header names {columns})")
    fields: dict[str, Any] = {}
    for column, text in row.items():
        name = _FIELD.get(column, column)
        if name not in _SAMPLE_FIELDS:
            continue
        if text == "" and name in _NEVER_EMPTY:
            raise BadInput(f"{where}: not a sample ({column} is empty)")
        parse, what = _PARSE.get(name, (str, ""))
        try:
            fields[name] = None if text == "" else parse(text)
        except ValueError:
            cell = text if len(text) <= 30 else text[:27] + "..."
            raise BadInput(f"{where}: not a sample ({column} {cell!r} is not {what})") from None
    fields["late"] = bool(fields.get("late"))
    fields["client"] = fields.get("client") or 0  # a file from before clients: one client
    fields["kind"] = fields.get("kind") or "get"
    return Sample(**fields)


def _events(journal: dict[str, Any]) -> list[Event]:
    return [
        Event(
            index=int(s["index"]),
            kind=str(s["kind"]),
            detail=str(s["detail"]),
            started=float(s["start_s"]),  # not a number: a bad journal here, not a TypeError in the chart
            ended=float(s["end_s"]),
            result=s.get("result"),
            error=s.get("error"),
            in_service=s.get("in_service"),
        )
        for s in journal["steps"]
    ]


def load(folder: Path) -> SavedRun:
    journal = read_journal(folder)
    try:
        events = _events(journal)
        capacity = [(float(c["at_s"]), int(c["in_service"])) for c in journal.get("capacity", [])]
    except (KeyError, TypeError, ValueError) as exc:
        raise BadInput(
            f"{folder / 'journal.json'} is not a lab journal: bad step or capacity ({exc})"
        ) from None
    samples = read_samples(folder / "samples.csv")
    # The journal counts every sample the run wrote (a run that failed at set-up: none, and a header alone
    # is its samples.csv). Another count is a samples file cut short, or one from another run: a report
    # drawn from it would show figures the journal does not hold.
    analysis = journal["analysis"]
    scheduled = analysis.get("requests_scheduled") if isinstance(analysis, dict) else None
    if isinstance(scheduled, int) and len(samples) != scheduled:
        held = f"{len(samples):,} samples" if samples else "no samples"
        csv = folder / "samples.csv"
        raise BadInput(f"{csv} holds {held}, but journal.json counts {scheduled:,} requests")
    configs_dir = folder / "configs"
    configs = (
        [(p.name, p.read_text()) for p in sorted(configs_dir.glob("*.conf"))] if configs_dir.is_dir() else []
    )
    return SavedRun(folder, journal, samples, events, capacity, configs)


# ---------------------------------------------------------------------------------------------------
# Writing


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:60]


def write(record: RunRecord, analysis: Analysis, out_dir: Path) -> Path:
    """journal.json, samples.csv, samples.jsonl and configs/ in `out_dir` (made if needed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_journal(record, analysis, out_dir)
    rows = [sample_record(s, record.t0) for s in record.samples]
    with (out_dir / "samples.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(SAMPLE_COLUMNS)
        writer.writerows([csv_cell(row[name]) for name in SAMPLE_COLUMNS] for row in rows)
    with (out_dir / "samples.jsonl").open("w") as fh:
        fh.writelines(json.dumps(row) + "\n" for row in rows)
    configs = out_dir / "configs"
    configs.mkdir(exist_ok=True)
    for n, (label, text) in enumerate(record.configs):
        (configs / f"{n:02d}-{_slug(label)}.conf").write_text(text)
    return out_dir


def write_journal(record: RunRecord, analysis: Analysis, out_dir: Path) -> None:
    """journal.json alone: also written again once a note was added, or the run's tear-down timed."""
    (out_dir / "journal.json").write_text(json.dumps(journal(record, analysis), indent=2) + "\n")
