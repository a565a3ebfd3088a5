"""docs/schema.md against the code: every journal key and sample column the code writes is documented, with
a type its value has, and nothing documented is gone from the code. So the document cannot drift."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from lab.analysis.summary import summarize
from lab.model import ErrorClass, Event, Sample
from lab.options import MeasureOptions, RequestOptions, RunOptions
from lab.output import journal as journal_module
from lab.record import RunRecord

DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"
ROW = re.compile(r"^\| `([^`]+)` \| ([^|]+?) \|")
T0 = 100.0


def documented(section: str) -> dict[str, str]:
    """{key: type} from the table rows of one `## section` of the document."""
    text = DOC.read_text()
    body = text.split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    return {m.group(1): m.group(2).strip() for line in body.splitlines() if (m := ROW.match(line))}


def full_record() -> RunRecord:
    """A run whose journal has every optional part filled: failures, a mixed window, a rollback, notes."""
    samples = []
    for i in range(300):
        t = T0 + 0.5 + i / 100
        if i in (100, 101):
            samples.append(Sample(i, t, t, t + 0.001, error=ErrorClass.RESET))
        elif i == 102:
            samples.append(Sample(i, t, None, None, error=ErrorClass.SATURATED))
        else:
            version = "v2" if i % 3 == 0 and 150 <= i < 200 else "v1"
            samples.append(Sample(i, t, t, t + 0.003, 200, version, f"app-{version}-1", late=i == 7))
    events = [
        Event(0, "Start", "start app-v2-1 and wait until healthy", T0 + 1.0, T0 + 1.5, True),
        Event(1, "Route", "route v1 50%, v2 50% over app-v1-1, app-v2-1", T0 + 1.5, T0 + 1.6, in_service=2),
        Event(2, "Judge", "judge v2 (error rate <= 1.00%)", T0 + 2.0, T0 + 2.1, False, "error rate 2% > 1%"),
        Event(3, "Route", "route v1 100% over app-v1-1", T0 + 2.1, T0 + 2.2, in_service=1),
    ]
    return RunRecord(
        config=RunOptions(strategy="canary", params={"bake_s": 1.0}, fleet_size=1, v2_env={"K": "V"}),
        run_id="abc123",
        started_at="2024-05-01T12:00:00+00:00",
        t0=T0,
        events=events,
        samples=samples,
        status="rolled_back",
        probe_started=T0 + 0.4,
        probe_stopped=T0 + 3.6,
        notes=["a note"],
    )


def fleet_journal() -> dict[str, Any]:
    record = full_record()
    analysis = summarize(record.samples, record.events, target_rate=100.0, fleet_size=1)
    return journal_module.journal(record, analysis)


def measure_journal() -> dict[str, Any]:
    """`lab measure`'s journal, with a command that printed and a header whose value is secret."""
    record = full_record()
    request = RequestOptions(headers=(("Authorization", "Bearer x"),), version_from_body=r"v(\d+)")
    record.config = RunOptions(
        "measure", request=request, measure=MeasureOptions("http://shop.test/", ("./deploy.sh",))
    )
    record.events = [Event(1, "Command", "run ./deploy.sh", T0 + 1.0, T0 + 2.0, True)]
    record.command, record.command_exit = ("./deploy.sh",), 0
    record.output = [(T0 + 1.5, "stdout", "deployed")]
    record.status, record.versions = "completed", ("v1", "v2")
    analysis = summarize(record.samples, record.events, target_rate=100.0, old="v1", new=None)
    return journal_module.journal(record, analysis)


def paths(value: Any, prefix: str, maps: set[str], out: dict[str, list[Any]]) -> None:
    """Every key path of `value` with the values found there; a documented map is a leaf (its keys are
    data), and so is an empty object or array, whose inside nothing here can show."""
    if prefix:
        out.setdefault(prefix, []).append(value)
    if isinstance(value, dict) and prefix not in maps:
        for key, item in value.items():
            paths(item, f"{prefix}.{key}" if prefix else key, maps, out)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                for key, inner in item.items():
                    paths(inner, f"{prefix}[].{key}", maps, out)


TYPES: dict[str, Any] = {
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
}


def has_type(value: Any, documented_type: str) -> bool:
    if documented_type.endswith(" or null") and value is None:
        return True
    documented_type = documented_type.removesuffix(" or null") if value is not None else documented_type
    if documented_type.startswith("map "):
        return isinstance(value, dict)
    if documented_type.startswith("array"):
        return isinstance(value, list)
    return any(TYPES[t.strip()](value) for t in documented_type.split(" or "))


def test_every_journal_key_is_documented_and_every_documented_key_is_written() -> None:
    doc = documented("journal.json")
    maps = {key for key, kind in doc.items() if kind.startswith("map ")}
    found: dict[str, list[Any]] = {}
    paths(fleet_journal(), "", maps, found)
    paths(measure_journal(), "", maps, found)
    assert sorted(set(found) - set(doc)) == [], "written by the code but not in docs/schema.md"
    assert sorted(set(doc) - set(found)) == [], "in docs/schema.md but not written by the code"


def test_every_journal_value_has_its_documented_type() -> None:
    doc = documented("journal.json")
    found: dict[str, list[Any]] = {}
    maps = {k for k, t in doc.items() if t.startswith("map ")}
    paths(fleet_journal(), "", maps, found)
    paths(measure_journal(), "", maps, found)
    wrong = {
        key: values[0] for key, values in found.items() if not all(has_type(v, doc[key]) for v in values)
    }
    assert wrong == {}


def test_a_run_that_measured_nothing_writes_the_documented_nulls() -> None:
    record = full_record()
    record.samples, record.events, record.probe_started, record.probe_stopped = [], [], None, None
    record.status, record.error = "failed", "docker is not running"
    j = journal_module.journal(record, summarize([], [], target_rate=100.0, fleet_size=1))
    doc = documented("journal.json")
    found: dict[str, list[Any]] = {}
    paths(j, "", {k for k, t in doc.items() if t.startswith("map ")}, found)
    assert set(found) <= set(doc)
    assert {key: found[key][0] for key in found if not has_type(found[key][0], doc[key])} == {}


def test_every_sample_column_is_documented_with_its_type() -> None:
    doc = documented("Samples")
    assert list(doc) == journal_module.SAMPLE_COLUMNS  # same names, same order as the files
    record = full_record()
    for s in (record.samples[0], record.samples[100], record.samples[102], record.samples[7]):
        row = journal_module.sample_record(s, T0)
        assert list(row) == journal_module.SAMPLE_COLUMNS
        assert {k: v for k, v in row.items() if not has_type(v, doc[k])} == {}


@pytest.mark.parametrize("section", ["Samples", "journal.json"])
def test_every_documented_row_says_what_it_means(section: str) -> None:
    text = DOC.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    for line in text.splitlines():
        if ROW.match(line):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[3], f"no meaning for {cells[0]}"
