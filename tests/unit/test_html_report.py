"""report.html, the exports and `lab report`, from runs built by hand: no Docker."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markupsafe import escape
from typer.testing import CliRunner

from lab.analysis.summary import summarize
from lab.cli import app
from lab.errors import BadInput
from lab.model import ErrorClass, Event, Sample
from lab.options import RunOptions
from lab.output import html as html_report
from lab.output import report, terminal
from lab.output.journal import SAMPLE_COLUMNS
from lab.output.run_folder import load, read_samples
from lab.record import RunRecord

T0 = 7000.0
RATE = 100.0


def sample(i: int) -> Sample:
    t = T0 + 0.5 + i / RATE
    if 150 <= i < 160:
        return Sample(i, t, t, t + 0.001, error=ErrorClass.RESET)
    if i == 300:
        return Sample(i, t, None, None, error=ErrorClass.SATURATED)
    version = "v2" if i >= 250 else "v1"
    return Sample(
        i, t, t + (0.02 if i == 40 else 0), t + 0.004, 200, version, f"app-{version}-1", late=i == 40
    )


def make_record(samples: int = 400, status: str = "rolled_back") -> RunRecord:
    config = RunOptions(strategy="canary", params={"bake_s": 1.0}, fleet_size=1, rate=RATE)
    events = [
        Event(0, "Start", "start app-v2-1 and wait until healthy", T0 + 1.0, T0 + 2.0, True, in_service=1),
        Event(1, "Route", "route v1 50%, v2 50% over app-v1-1, app-v2-1", T0 + 2.0, T0 + 2.2, in_service=2),
        Event(
            2, "Judge", "judge v2 (error rate <= 1.00%)", T0 + 3.2, T0 + 3.3, False, "error rate 5% > 1% <b>"
        ),
        Event(3, "Route", "route v1 100% over app-v1-1", T0 + 3.3, T0 + 3.5, in_service=1),
    ]
    return RunRecord(
        config=config,
        run_id="abc123",
        started_at="2024-05-01T12:00:00+00:00",
        t0=T0,
        events=events,
        samples=[sample(i) for i in range(samples)],
        configs=[("initial", "upstream app { server app-v1-1:8000; }\n"), ("step 1: route", "# <weights>\n")],
        status=status,
        error=None,
        probe_started=T0 + 0.4 if samples else None,
        probe_stopped=T0 + 4.6 if samples else None,
        notes=["a note & <markup>"],
    )


def write(tmp_path: Path, record: RunRecord | None = None) -> Path:
    record = record or make_record()
    analysis = summarize(record.samples, record.events, target_rate=RATE, fleet_size=record.config.fleet_size)
    return report.write_run(record, analysis, tmp_path / "run")


EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def test_a_run_folder_gets_a_self_contained_report_and_both_images(tmp_path: Path) -> None:
    folder = write(tmp_path)
    html = (folder / "report.html").read_text()
    assert (folder / "timeline.png").read_bytes().startswith(b"\x89PNG")
    svg = (folder / "timeline.svg").read_text()
    assert 'id="timeline"' in svg and 'id="timeline"' in html  # the same chart, inline
    assert not EXTERNAL.search(html) and "<script" not in html.lower() and "@import" not in html
    assert "<link" not in html.lower() and "url(" not in html
    assert "canary" in html and "rolled_back" in html and "abc123" in html


def test_the_report_shows_the_terminal_summarys_figures(tmp_path: Path) -> None:
    folder = write(tmp_path)
    html = (folder / "report.html").read_text()
    journal = json.loads((folder / "journal.json").read_text())
    rows = terminal.summary_rows(journal, read_samples(folder / "samples.csv"))
    assert ("requests failed", "10 of 399 (reset 10)") in rows
    for name, value in rows:
        assert f"<th>{escape(name)}</th><td>{escape(value)}</td>" in html
    assert "decided at 3.30 s (step 2)" in dict(rows)["rollback"]


def test_the_report_has_steps_notes_and_every_config_escaped(tmp_path: Path) -> None:
    html = (write(tmp_path) / "report.html").read_text()
    assert html.count("<details>") == 2
    assert "00-initial.conf" in html and "01-step-1-route.conf" in html
    assert "# &lt;weights&gt;" in html and "<weights>" not in html
    assert "error rate 5% &gt; 1% &lt;b&gt;" in html
    assert "a note &amp; &lt;markup&gt;" in html
    assert '<tr class="failed">' in html  # the judge's failed verdict


def test_a_run_that_measured_nothing_still_gets_a_report(tmp_path: Path) -> None:
    record = make_record(samples=0, status="failed")
    record.events, record.error = [], "docker is not running"
    folder = write(tmp_path, record)
    html = (folder / "report.html").read_text()
    assert "Nothing was measured" in html and "docker is not running" in html
    assert "no samples" in (folder / "timeline.svg").read_text()


def test_samples_jsonl_has_the_csv_columns_with_nulls(tmp_path: Path) -> None:
    folder = write(tmp_path)
    with (folder / "samples.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    objects = [json.loads(line) for line in (folder / "samples.jsonl").read_text().splitlines()]
    assert len(objects) == len(rows) == 400
    assert all(list(o) == SAMPLE_COLUMNS == list(r) for o, r in zip(objects, rows, strict=True))
    for o, r in zip(objects, rows, strict=True):
        for name in SAMPLE_COLUMNS:
            if o[name] is None:
                assert r[name] == ""
            elif isinstance(o[name], bool):
                assert r[name] == str(int(o[name]))
            else:
                assert r[name] == str(o[name])
    saturated = objects[300]
    assert (
        saturated["error"] == "client_saturation"
        and saturated["sent_s"] is None
        and saturated["status"] is None
    )
    assert objects[40]["late"] is True and objects[41]["late"] is False
    assert objects[0]["scheduled_s"] == pytest.approx(0.5) and objects[0]["latency_ms"] == pytest.approx(4.0)


def test_samples_read_back_are_the_samples_written(tmp_path: Path) -> None:
    record = make_record()
    folder = write(tmp_path, record)
    back = read_samples(folder / "samples.csv")
    assert len(back) == len(record.samples)
    for got, want in zip(back, record.samples, strict=True):
        assert (got.seq, got.status, got.version, got.instance, got.error, got.late) == (
            want.seq,
            want.status,
            want.version,
            want.instance,
            want.error,
            want.late,
        )
        assert got.scheduled == pytest.approx(want.scheduled - T0, abs=1e-6)
        assert (got.finished is None) == (want.finished is None)


def _cut(text: str) -> str:
    """The header and the first row without its last cell: a file whose writer stopped mid-row."""
    header, first, *_ = text.split("\n")
    return f"{header}\n{first.rsplit(',', 1)[0]}\n"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (_cut, "line 2: not a sample (12 cells, the header names 13)"),
        (
            lambda text: text.split("\n")[0] + "\n7,0.5\n",
            "line 2: not a sample (2 cells, the header names 13)",
        ),
        (
            lambda text: text.replace("\n0,", "\n0,x,", 1),
            "line 2: not a sample (14 cells, the header names 13)",
        ),
        (lambda text: "", "samples.csv is empty"),
    ],
)
def test_a_samples_row_cut_short_is_refused_not_read_as_a_good_answer(
    tmp_path: Path, damage: object, message: str
) -> None:
    path = write(tmp_path) / "samples.csv"
    path.write_text(damage(path.read_text()))  # type: ignore[operator]
    with pytest.raises(BadInput, match=re.escape(message)):
        read_samples(path)


def test_samples_that_are_not_text_are_one_error_not_a_traceback(tmp_path: Path) -> None:
    folder = write(tmp_path)
    (folder / "samples.csv").write_bytes(b"seq,scheduled_s\n\xc3\x28\xff,1\n")
    result = lab("report", str(folder))
    assert result.returncode == 2 and result.stdout == "", result.stderr
    assert result.stderr.startswith("lab: error: ") and "is not a samples file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_step_time_that_is_no_number_is_bad_input_not_an_internal_error(tmp_path: Path) -> None:
    folder = write(tmp_path)
    journal = json.loads((folder / "journal.json").read_text())
    journal["steps"][1]["start_s"] = "soon"
    (folder / "journal.json").write_text(json.dumps(journal))
    with pytest.raises(BadInput, match="bad step or capacity"):
        html_report.write_run_report(folder)


def test_a_chart_that_fails_loses_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(folder: Path) -> Path:
        raise RuntimeError("chart bug")

    monkeypatch.setattr(html_report, "write_run_report", broken)
    record = make_record()
    folder = write(tmp_path, record)
    journal = json.loads((folder / "journal.json").read_text())
    assert journal["analysis"]["requests_failed"] == 10 and (folder / "samples.csv").is_file()
    assert any("report.html not written: RuntimeError: chart bug" in n for n in journal["notes"])
    assert any("chart bug" in n for n in record.notes)  # so the terminal summary says it too
    assert not (folder / "report.html").exists()


def test_lab_report_rebuilds_an_old_folder_from_its_journal_and_samples(tmp_path: Path) -> None:
    folder = write(tmp_path)
    before = (folder / "report.html").read_text()
    for name in ("report.html", "timeline.svg", "timeline.png", "samples.jsonl"):
        (folder / name).unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, (result.stdout, result.exception)
    assert str(folder / "report.html") in result.stdout
    assert (folder / "report.html").read_text() == before.replace(
        '<a href="samples.jsonl">samples.jsonl</a> · ', ""
    )
    assert (folder / "timeline.png").is_file() and (folder / "timeline.svg").is_file()


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=60)


def test_lab_report_on_a_corrupt_journal_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "journal.json").write_text('{"run_id": ')
    result = lab("report", str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lab: error: "), result.stderr
    assert "journal.json is not readable JSON" in lines[0]


def test_lab_report_says_what_is_wrong_with_a_folder(tmp_path: Path) -> None:
    folder = write(tmp_path)
    cases: list[tuple[Path, str]] = [(tmp_path / "missing", "no such folder")]
    (tmp_path / "file").write_text("x")
    cases.append((tmp_path / "file", "not a folder"))
    (tmp_path / "empty").mkdir()
    cases.append((tmp_path / "empty", "holds neither journal.json"))
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "journal.json").write_text('{"hello": 1}')
    cases.append((tmp_path / "other", "is not a lab journal: no run_id"))
    (tmp_path / "old").mkdir()
    journal = json.loads((folder / "journal.json").read_text())
    del journal["analysis"]["latency_ms"]
    (tmp_path / "old" / "journal.json").write_text(json.dumps(journal))
    (tmp_path / "old" / "samples.csv").write_text((folder / "samples.csv").read_text())
    cases.append((tmp_path / "old", "is not a journal this lab can read"))
    (folder / "samples.csv").write_text("seq,scheduled_s,sent_s,finished_s\n1,x,,\n")
    cases.append((folder, "samples.csv, line 2"))
    for path, fragment in cases:
        result = CliRunner().invoke(app, ["report", str(path)])
        assert isinstance(result.exception, BadInput), (path, result.exception)
        assert fragment in str(result.exception) and "\n" not in str(result.exception)


def compare_folder(tmp_path: Path, document: object) -> Path:
    folder = tmp_path / "cmp"
    for n, strategy in enumerate(("canary", "in-place")):
        record = make_record()
        record.run_id = f"run00{n}"
        record.config = RunOptions(strategy=strategy, fleet_size=1, rate=RATE)
        analysis = summarize(record.samples, record.events, target_rate=RATE, fleet_size=1)
        report.write_run(record, analysis, folder / f"20240501-12000{n}-{strategy}-run00{n}")
    (folder / "compare.json").write_text(json.dumps(document))
    (folder / "compare.txt").write_text("2 strategies, scenario default\nrest of the table\n")
    return folder


def row(strategy: str, downtime: float) -> dict[str, object]:
    return {
        "strategy": strategy,
        "status": "completed",
        "error": None,
        "requests_sent": 400,
        "requests_failed": 3,
        "failures_by_class": {"reset": 3},
        "downtime_ms": downtime,
        "mixed_window_ms": 0.0,
        "flip_flops": 0,
        "lowest_capacity": 1,
        "deploy_duration_s": 2.5,
        "rollback": None,
        "new_answers": 10,
        "blast_radius": 0,
        "late_ticks": 0,
    }


def test_compare_html_has_the_table_and_each_runs_timeline_and_link(tmp_path: Path) -> None:
    folder = compare_folder(tmp_path, [row("canary", 12.5), row("in-place:x=1", 1785.5)])
    html = html_report.write_compare_report(folder).read_text()
    assert "<h1>2 strategies, scenario default</h1>" in html  # compare.txt's title
    assert (
        "<td>in-place:x=1</td>" in html and "<td>1,785.5 ms</td>" in html and "<td>3 (reset 3)</td>" in html
    )
    assert html.count("<svg") == 2 and 'id="timeline-1"' in html and 'id="timeline-2"' in html
    for run in sorted(p.name for p in folder.iterdir() if p.is_dir()):
        assert f'href="{run}/report.html"' in html
    assert not EXTERNAL.search(html) and "<script" not in html.lower()


def test_compare_html_shows_a_repeated_comparisons_aggregates_and_sentences(tmp_path: Path) -> None:
    document = {
        "repeat": 2,
        "runs": [{**row("canary", 10.0), "round": 1}, {**row("canary", 20.0), "round": 2}],
        "strategies": [
            {
                "strategy": "canary",
                "runs": 2,
                "aggregates": {
                    "downtime_ms": {
                        "median": 15.0,
                        "min": 10.0,
                        "max": 20.0,
                        "runs": 2,
                        "of": 2,
                        "unit": "ms",
                    }
                },
            }
        ],
        "downtime": [{"a": "canary", "b": "in-place", "line": "canary's downtime is lower than in-place's"}],
    }
    html = html_report.write_compare_report(compare_folder(tmp_path, document), "title").read_text()
    assert "<th>downtime ms</th>" in html and "<td>15.0 ms (10.0–20.0)</td>" in html
    assert "<td>20.0 ms</td>" in html  # every run's row, too
    assert "canary&#39;s downtime is lower than in-place&#39;s" in html


def test_lab_report_on_a_compare_folder_rebuilds_every_run_and_the_page(tmp_path: Path) -> None:
    folder = compare_folder(tmp_path, [row("canary", 1.0)])
    for html in folder.glob("*/report.html"):
        html.unlink()
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, (result.stdout, result.exception)
    assert len(list(folder.glob("*/report.html"))) == 2 and (folder / "compare.html").is_file()


def test_a_saved_run_loads_steps_capacity_and_configs(tmp_path: Path) -> None:
    saved = load(write(tmp_path))
    assert [e.kind for e in saved.events] == ["Start", "Route", "Judge", "Route"]
    assert saved.events[2].result is False and saved.events[2].started == pytest.approx(3.2)
    assert saved.capacity == [(1.0, 1), (2.0, 1), (2.2, 2), (3.5, 1)]
    assert [name for name, _ in saved.configs] == ["00-initial.conf", "01-step-1-route.conf"]
    assert saved.title == "canary · rolled_back · run abc123 · 2024-05-01 12:00:00 UTC"


def test_lab_compare_writes_compare_html_beside_its_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lab.cli.compare
    import lab.ports

    def execute(config: RunOptions, out_dir: Path, **kwargs: object) -> tuple[object, object, Path]:
        record = make_record()
        record.config = config
        analysis = summarize(record.samples, record.events, target_rate=RATE, fleet_size=1)
        folder = out_dir / f"20240501-12000{len(list(out_dir.glob('*-run')))}-{config.strategy}-run"
        return record, analysis, report.write_run(record, analysis, folder)

    monkeypatch.setattr(lab.cli.compare, "execute", execute)
    monkeypatch.setattr(lab.ports, "port_is_free", lambda port: True)
    result = CliRunner().invoke(app, ["compare", "canary", "in-place", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, (result.stdout, result.exception)
    (folder,) = tmp_path.iterdir()
    html = (folder / "compare.html").read_text()
    runs = sorted(p.name for p in folder.iterdir() if (p / "report.html").is_file())
    assert len(runs) == 2 and all(f'href="{run}/report.html"' in html for run in runs)
    assert "<td>canary</td>" in html and "<td>in-place</td>" in html
