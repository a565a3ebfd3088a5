"""`lab report` on files of another shape: one line naming the file and what is wrong, exit 2; never an
internal error, nor a report built from nothing. No Docker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lab.analysis.summary import summarize
from lab.cli import app
from lab.errors import BadInput
from lab.model import ErrorClass, Event, Sample
from lab.options import RunOptions
from lab.output import compare, report
from lab.output import html as html_report
from lab.output.repeat import compare_document
from lab.record import RunRecord

RATE = 100.0


def record(samples: int = 200, strategy: str = "canary") -> RunRecord:
    """A canary whose judge failed: a rollback, a few resets, v2 answering from sample 120."""
    events = [
        Event(0, "Start", "start app-v2-1", 0.2, 0.4, True, in_service=1),
        Event(1, "Route", "route v1 50%, v2 50%", 0.4, 0.5, in_service=2),
        Event(2, "Judge", "judge v2", 1.0, 1.1, False, "error rate 5% > 1%"),
        Event(3, "Route", "route v1 100%", 1.1, 1.2, in_service=1),
    ]
    rows = [
        Sample(i, i / RATE, i / RATE, i / RATE + 0.003, error=ErrorClass.RESET)
        if 80 <= i < 85
        else Sample(i, i / RATE, i / RATE, i / RATE + 0.003, 200, "v2" if 120 <= i < 150 else "v1")
        for i in range(samples)
    ]
    return RunRecord(
        RunOptions(strategy, fleet_size=1, rate=RATE),
        "abc123",
        "2026-12-01T00:00:00+00:00",
        0.0,
        events=events if samples else [],
        samples=rows,
        status="rolled_back" if samples else "failed",
        probe_started=0.0 if samples else None,
        probe_stopped=samples / RATE if samples else None,
    )


def run_folder(tmp_path: Path, samples: int = 200) -> Path:
    rec = record(samples)
    analysis = summarize(rec.samples, rec.events, target_rate=RATE, fleet_size=1)
    return report.write_run(rec, analysis, tmp_path / "run")


def a_row() -> dict[str, object]:
    rec = record()
    return compare.row(rec, summarize(rec.samples, rec.events, target_rate=RATE, fleet_size=1))


def compare_folder(tmp_path: Path, document: object) -> Path:
    folder = tmp_path / "cmp"
    folder.mkdir()
    (folder / "compare.json").write_text(json.dumps(document))
    return folder


def lab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lab", *args], capture_output=True, text=True, timeout=60)


def refused(path: Path) -> str:
    """`lab report PATH` must fail with BadInput: its one-line message."""
    result = CliRunner().invoke(app, ["report", str(path)])
    assert isinstance(result.exception, BadInput), (result.stdout, result.exception)
    message = str(result.exception)
    assert "\n" not in message and "Error" not in message, message  # no Python exception's name
    return message


def one_error_line(path: Path) -> str:
    """The real command: exit 2, nothing on stdout, one `lab: error:` line on stderr."""
    result = lab("report", str(path))
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and result.stdout == "", (result.returncode, result.stderr)
    assert len(lines) == 1 and lines[0].startswith("lab: error: "), result.stderr
    assert "internal error" not in lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------
# compare.json


def test_a_compare_json_of_numbers_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    folder = compare_folder(tmp_path, [1, 2])
    line = one_error_line(folder)
    assert line.endswith(
        f"{folder / 'compare.json'}: run 1 is an integer, expected an object (one run's figures)"
    )


def test_a_compare_json_whose_strategies_is_no_list_is_bad_input(tmp_path: Path) -> None:
    folder = compare_folder(tmp_path, {"runs": [a_row()], "strategies": "x"})
    assert (
        refused(folder) == f"{folder / 'compare.json'}: `strategies` is a string, expected a list of objects"
    )


@pytest.mark.parametrize(
    ("document", "got"),
    [
        ({"x": 1}, "got no `runs`"),
        ({"runs": []}, "got an empty `runs`"),
        ({"runs": {"a": 1}}, "got `runs` as an object"),
        ([], "got an empty list"),
        ("rows", "got a string"),
    ],
)
def test_a_compare_json_without_runs_is_refused_not_an_empty_page(
    tmp_path: Path, document: object, got: str
) -> None:
    folder = compare_folder(tmp_path, document)
    message = refused(folder)
    assert message.startswith(f"{folder / 'compare.json'}: expected ") and message.endswith(got), message
    assert "non-empty list" in message
    assert not (folder / "compare.html").exists()


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"downtime_ms": "12"}, "run 2: downtime_ms is a string, expected a number or null"),
        ({"strategy": None}, "run 2: strategy is null, expected a string"),
        ({"flip_flops": True}, "run 2: flip_flops is a boolean, expected an integer or null"),
        (
            {"failures_by_class": {"reset": "3"}},
            "run 2: failures_by_class.reset is a string, expected an integer",
        ),
        ({"rollback": {"step": 1}}, "run 2: rollback has no traffic_back_s"),
        ({"rollback": []}, "run 2: rollback is a list, expected an object or null"),
        (
            {"clients": {"count": 3, "saw_failure": 1, "flip_flopped": 1.5}},
            "clients.flip_flopped is a number",
        ),
    ],
)
def test_a_compare_row_of_another_shape_names_the_run_and_the_figure(
    tmp_path: Path, change: dict[str, object], problem: str
) -> None:
    folder = compare_folder(tmp_path, [a_row(), {**a_row(), **change}])
    assert problem in refused(folder)


def test_a_compare_row_without_a_figure_the_table_shows_is_refused(tmp_path: Path) -> None:
    row = a_row()
    del row["lowest_capacity"]
    assert refused(compare_folder(tmp_path, {"runs": [row]})).endswith(
        "compare.json: run 1: no lowest_capacity"
    )


def test_a_bad_compare_json_is_refused_before_any_run_report_is_rewritten(tmp_path: Path) -> None:
    folder = compare_folder(tmp_path, {"runs": []})
    run = run_folder(folder)
    (run / "report.html").unlink()
    refused(folder)
    assert not (run / "report.html").exists()


def test_what_lab_compare_writes_passes_the_check(tmp_path: Path) -> None:
    """No false alarm: the rows of a run that rolled back, of one that measured nothing, the --repeat
    document, and a row from before `clients` and `wall_s`."""
    rec = record(samples=0)
    failed = compare.row(rec, summarize([], [], target_rate=RATE))
    rows = [a_row(), failed]
    assert rows[0]["rollback"] and rows[0]["clients"] and failed["downtime_ms"] is None
    old = {k: v for k, v in a_row().items() if k not in ("clients", "wall_s")}
    for n, document in enumerate([rows, compare_document(rows * 2, ["canary"], 2), [old]]):
        path = tmp_path / f"{n}.json"
        path.write_text(json.dumps(document))
        assert compare.read_document(path) == document


def test_an_unreadable_compare_txt_costs_the_title_not_the_page(tmp_path: Path) -> None:
    folder = compare_folder(tmp_path, [a_row()])
    (folder / "compare.txt").write_bytes(b"\xff\xfe not text\n")
    html = html_report.write_compare_report(folder).read_text()
    assert "<h1>comparison</h1>" in html and "<td>canary</td>" in html


# ---------------------------------------------------------------------------------------------------
# samples.csv


def test_a_samples_csv_whose_header_is_not_the_labs_is_one_error_line_and_exit_2(tmp_path: Path) -> None:
    folder = run_folder(tmp_path)
    (folder / "samples.csv").write_text("garbage,,,\n")
    line = one_error_line(folder)
    assert line.endswith(
        f"{folder / 'samples.csv'} is not a lab samples file: its header row 'garbage,,,' has no seq, "
        "scheduled_s, sent_s, finished_s"
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("garbage,x\n1,2\n", "samples.csv is not a lab samples file: its header row 'garbage,x' has no seq"),
        (
            "seq,scheduled_s,sent_s,finished_s\n1,soon,,\n",
            "line 2: not a sample (scheduled_s 'soon' is not a number)",
        ),
        (
            "seq,scheduled_s,sent_s,finished_s\n1.5,0.5,,\n",
            "line 2: not a sample (seq '1.5' is not an integer)",
        ),
        ("seq,scheduled_s,sent_s,finished_s\n,,,\n", "line 2: not a sample (seq is empty)"),
        (
            "seq,scheduled_s,sent_s,finished_s,error\n1,0.5,,,bogus\n",
            "(error 'bogus' is not one of refused, reset,",
        ),
        ("seq,seq,scheduled_s,sent_s,finished_s\n1,2,0.5,,\n", "its header row names seq twice"),
    ],
)
def test_a_samples_csv_error_names_the_column_not_python_internals(
    tmp_path: Path, text: str, problem: str
) -> None:
    folder = run_folder(tmp_path)
    (folder / "samples.csv").write_text(text)
    message = refused(folder)
    assert problem in message and "Sample" not in message and "__init__" not in message, message


def test_a_header_without_rows_is_refused_when_the_journal_counts_requests(tmp_path: Path) -> None:
    folder = run_folder(tmp_path)
    header = (folder / "samples.csv").read_text().split("\n")[0]
    (folder / "samples.csv").write_text(header + "\n")
    assert (
        refused(folder) == f"{folder / 'samples.csv'} holds no samples, but journal.json counts 200 requests"
    )


def test_a_header_without_rows_is_a_report_when_the_run_measured_nothing(tmp_path: Path) -> None:
    """A run that failed at set-up: its samples.csv is a header alone, and `lab report` rebuilds it."""
    folder = run_folder(tmp_path, samples=0)
    assert len((folder / "samples.csv").read_text().splitlines()) == 1
    (folder / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, (result.stdout, result.exception)
    assert "Nothing was measured" in (folder / "report.html").read_text()


def test_a_samples_csv_cut_short_is_refused_not_drawn(tmp_path: Path) -> None:
    folder = run_folder(tmp_path)
    lines = (folder / "samples.csv").read_text().splitlines()
    (folder / "samples.csv").write_text("\n".join(lines[:-50]) + "\n")  # a copy that stopped at a row's end
    said = f"{folder / 'samples.csv'} holds 150 samples, but journal.json counts 200 requests"
    assert refused(folder) == said


@pytest.mark.parametrize("name", ["journal.json", "samples.csv"])
def test_a_file_of_the_run_folder_stands_for_its_folder(tmp_path: Path, name: str) -> None:
    folder = run_folder(tmp_path)
    (folder / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(folder / name)])
    assert result.exit_code == 0, (result.stdout, result.exception)
    assert (folder / "report.html").is_file()
