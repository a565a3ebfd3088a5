"""What a run leaves behind, from a RunRecord built by hand: journal, samples, configs and the summary."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from lab.analysis.summary import Analysis, summarize
from lab.model import ErrorClass, Event, Sample
from lab.options import MeasureOptions, RunOptions
from lab.output import journal, report, terminal
from lab.record import RunRecord

T0 = 5000.0  # the monotonic clock's origin for this run: every time in the report is relative to it
RATE = 100.0
LATENCY = 0.004
N = 400  # 4 s of probing
FAILED = range(150, 160)  # 10 refused requests: one 100 ms downtime window
SWITCH = 250  # v2 from here on
LATE = (40, 41)  # sent, but late
SATURATED = (300,)  # never sent

CONFIGS = [
    ("initial", "# initial config\n"),
    ("step 1: route v2 100% over app-v2-1, app-v2-2", "# generation 1\n"),
    ("step 3: route v1 100% over app-v1-1", "# generation 2\n"),
]
SUMMARY_KEYS = {
    "strategy",
    "requests_sent",
    "requests_failed",
    "failures_by_class",
    "downtime_ms",
    "total_downtime_ms",
    "mixed_window_ms",
    "versions_seen",
    "flip_flops",
    "deploy_duration_s",
    "probe_rate_target",
    "probe_rate_achieved",
    "late_ticks",
}


def sample(i: int) -> Sample:
    scheduled = T0 + 0.5 + i / RATE
    if i in SATURATED:
        return Sample(i, scheduled, None, None, error=ErrorClass.SATURATED)
    sent = scheduled + (0.02 if i in LATE else 0.0)
    if i in FAILED:
        return Sample(i, scheduled, sent, sent + 0.001, error=ErrorClass.REFUSED)
    version = "v2" if i >= SWITCH else "v1"
    slot = i % 2 + 1
    return Sample(i, scheduled, sent, sent + LATENCY, 200, version, f"app-{version}-{slot}", late=i in LATE)


def make_record() -> RunRecord:
    config = RunOptions(
        strategy="blue-green",
        params={"rollback_window_s": 1.0},
        fleet_size=2,
        rate=RATE,
        v2_env={"APP_BOOT_DELAY_S": "1"},
    )
    events = [
        Event(0, "Start", "start app-v2-1, app-v2-2 and wait until healthy", T0 + 1.0, T0 + 2.0, True),
        Event(1, "Route", "route v2 100% over app-v2-1, app-v2-2", T0 + 2.0, T0 + 2.25),
        Event(2, "Pause", "pause 1 s (blue kept for rollback)", T0 + 2.25, T0 + 3.25),
        Event(3, "Stop", "stop app-v1-1, app-v1-2", T0 + 3.25, T0 + 3.5),
    ]
    return RunRecord(
        config=config,
        run_id="abc123",
        started_at="2024-05-01T12:00:00+00:00",
        t0=T0,
        events=events,
        samples=[sample(i) for i in range(N)],
        configs=list(CONFIGS),
        status="completed",
        probe_started=T0 + 0.4,
        probe_stopped=T0 + 4.6,
    )


@pytest.fixture
def record() -> RunRecord:
    return make_record()


@pytest.fixture
def analysis(record: RunRecord) -> Analysis:
    return summarize(record.samples, record.events, target_rate=RATE)


@pytest.fixture
def written(record: RunRecord, analysis: Analysis, tmp_path: Path) -> Path:
    out = tmp_path / "run"
    assert report.write_run(record, analysis, out) == out
    return out


def test_journal_has_input_steps_analysis_and_status(written: Path) -> None:
    journal = json.loads((written / "journal.json").read_text())
    assert {"input", "steps", "analysis", "status"} <= set(journal)
    assert journal["status"] == "completed"
    assert journal["run_id"] == "abc123"
    assert journal["input"]["strategy"] == "blue-green"
    assert journal["input"]["params"] == {"rollback_window_s": 1.0}
    assert journal["input"]["scenario"]["fleet_size"] == 2
    assert journal["input"]["scenario"]["v2_env"] == {"APP_BOOT_DELAY_S": "1"}
    assert journal["input"]["probe"]["rate"] == RATE
    assert journal["analysis"]["requests_failed"] == len(FAILED)
    assert journal["clock"]["origin_monotonic"] == T0


def test_journal_step_times_are_relative_to_the_start(written: Path, record: RunRecord) -> None:
    steps = json.loads((written / "journal.json").read_text())["steps"]
    assert [s["index"] for s in steps] == [0, 1, 2, 3]
    assert [s["kind"] for s in steps] == ["Start", "Route", "Pause", "Stop"]
    assert [s["detail"] for s in steps] == [e.detail for e in record.events]
    assert [s["start_s"] for s in steps] == pytest.approx([1.0, 2.0, 2.25, 3.25])
    assert [s["end_s"] for s in steps] == pytest.approx([2.0, 2.25, 3.25, 3.5])
    assert [s["duration_s"] for s in steps] == pytest.approx([1.0, 0.25, 1.0, 0.25])
    assert [s["result"] for s in steps] == [True, None, None, None]
    journal = json.loads((written / "journal.json").read_text())
    assert journal["probe"]["started_s"] == pytest.approx(0.4)
    assert journal["probe"]["stopped_s"] == pytest.approx(4.6)
    # the downtime window, too, is on the run's clock: failures sent from 0.5 + 1.5 s on
    (window,) = journal["analysis"]["downtime_windows"]
    assert window["start"] == pytest.approx(0.5 + FAILED[0] / RATE)


def test_samples_csv_has_one_row_per_sample(written: Path, record: RunRecord) -> None:
    with (written / "samples.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    with (written / "samples.csv").open(newline="") as fh:
        header = next(csv.reader(fh))
    assert header == [
        "seq",
        "scheduled_s",
        "sent_s",
        "finished_s",
        "latency_ms",
        "status",
        "version",
        "instance",
        "error",
        "late",
        "upstream",
        "client",
        "kind",
    ]
    assert len(rows) == N
    assert [int(r["seq"]) for r in rows] == list(range(N))

    ok = rows[10]
    assert float(ok["scheduled_s"]) == pytest.approx(0.5 + 10 / RATE)
    assert float(ok["sent_s"]) == pytest.approx(0.5 + 10 / RATE)
    assert float(ok["latency_ms"]) == pytest.approx(LATENCY * 1000)
    assert (ok["status"], ok["version"], ok["instance"], ok["error"], ok["late"]) == (
        "200",
        "v1",
        "app-v1-1",
        "",
        "0",
    )
    assert rows[SWITCH]["version"] == "v2"

    failed = rows[FAILED[0]]
    assert (failed["error"], failed["status"], failed["version"]) == ("refused", "", "")
    late = rows[LATE[0]]
    assert late["late"] == "1"
    assert float(late["latency_ms"]) == pytest.approx((0.02 + LATENCY) * 1000)  # from the scheduled time

    saturated = rows[SATURATED[0]]
    assert saturated["error"] == "client_saturation"
    assert saturated["sent_s"] == saturated["finished_s"] == saturated["latency_ms"] == ""
    # everything on the run's clock: small positive numbers, not the raw monotonic values
    assert all(0 < float(r["scheduled_s"]) < 5 for r in rows)


def test_one_file_per_rendered_config(written: Path) -> None:
    files = sorted((written / "configs").iterdir())
    assert len(files) == len(CONFIGS)
    assert [f.read_text() for f in files] == [text for _, text in CONFIGS]  # in order
    assert all(f.suffix == ".conf" for f in files)
    assert files[0].name.startswith("00-") and "initial" in files[0].name
    assert all(" " not in f.name and ":" not in f.name and "%" not in f.name for f in files)


def test_summary_has_every_figure_and_is_json(record: RunRecord, analysis: Analysis, tmp_path: Path) -> None:
    summary = journal.summary(record, analysis, tmp_path)
    assert set(summary) >= SUMMARY_KEYS
    assert json.loads(json.dumps(summary)) == summary

    sent = N - len(SATURATED)
    assert summary["strategy"] == "blue-green"
    assert summary["requests_sent"] == sent
    assert summary["requests_failed"] == len(FAILED)
    assert summary["failures_by_class"] == {"refused": len(FAILED)}
    # one window: from the first failure sent to the first success sent after it
    assert summary["downtime_ms"] == pytest.approx(len(FAILED) / RATE * 1000)
    assert summary["total_downtime_ms"] == summary["downtime_ms"]
    assert summary["mixed_window_ms"] == 0  # no v1 answer after the first v2 one
    assert summary["versions_seen"] == {"v1": SWITCH - len(FAILED), "v2": N - SWITCH - len(SATURATED)}
    assert summary["flip_flops"] == 0
    assert summary["deploy_duration_s"] == pytest.approx(2.5)  # first step start to last step end
    assert summary["probe_rate_target"] == RATE
    assert summary["probe_rate_achieved"] == pytest.approx(sent / (N / RATE), abs=0.05)
    assert summary["late_ticks"] == len(LATE) + len(SATURATED)
    assert summary["status"] == "completed"
    assert summary["output"] == str(tmp_path)
    assert journal.summary(record, analysis, None)["output"] is None


def row(table: str, label: str) -> str:
    """The value cell of the table row whose first cell is `label`."""
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip("│ ").split("│")]
        if len(cells) == 2 and cells[0] == label:
            return cells[1]
    raise AssertionError(f"no row {label!r} in:\n{table}")


def test_print_summary_shows_figures_with_units(
    record: RunRecord, analysis: Analysis, tmp_path: Path
) -> None:
    buf = io.StringIO()
    terminal.print_summary(Console(file=buf, width=120, color_system=None), record, analysis, tmp_path)
    text = buf.getvalue()
    sent = N - len(SATURATED)
    assert "blue-green: completed" in text
    assert f"{len(FAILED)} of {sent} (refused {len(FAILED)})" in text
    assert f"{len(FAILED) / RATE * 1000:.1f} ms in 1 window(s)" in text
    assert "2.50 s" in text  # deploy duration
    before, during = row(text, "latency p50 / p99 before"), row(text, "latency p50 / p99 during")
    # Before the first step (scheduled < 1.0 s): 50 answers, 48 after 4 ms, the 2 late ones after 24 ms;
    # nearest rank puts p99 on the 50th. During: 4 ms throughout (failures are not latencies).
    late_ms = (0.02 + LATENCY) * 1000
    assert before == f"{LATENCY * 1000:.1f} ms / {late_ms:.1f} ms"
    assert during == f"{LATENCY * 1000:.1f} ms / {LATENCY * 1000:.1f} ms"
    assert row(text, "downtime (longest)") == f"{len(FAILED) / RATE * 1000:.1f} ms"
    assert row(text, "mixed-version window") == "0.0 ms"
    assert row(text, "flip-flops (v1 after v2)") == "0"
    assert f"of {RATE:.1f} req/s (keepalive)" in text
    assert f"v1 {SWITCH - len(FAILED)}, v2 {N - SWITCH - len(SATURATED)}" in text
    assert f"{len(LATE) + len(SATURATED)} (sent late {len(LATE)}, not sent {len(SATURATED)})" in text
    assert str(tmp_path) in text


def test_print_summary_shows_the_error_and_failed_steps(record: RunRecord, tmp_path: Path) -> None:
    # Messages from nginx, Docker and the app are shown as they are, brackets included, never as markup.
    record.status, record.error = "failed", "nginx: [emerg] cannot open [/etc/nginx/lab.conf]"
    record.events.append(
        Event(
            4,
            "Start",
            "start app-v2-1 and wait until healthy",
            T0 + 3.6,
            T0 + 3.7,
            result=False,
            error="app-v2-1 exited with code 1: [bold]boom[/x]",
        )
    )
    buf = io.StringIO()
    analysis = summarize(record.samples, record.events, target_rate=RATE)
    terminal.print_summary(Console(file=buf, width=200, color_system=None), record, analysis, None)
    text = buf.getvalue()
    assert "blue-green: failed" in text
    assert "error: nginx: [emerg] cannot open [/etc/nginx/lab.conf]" in text
    assert "step 4 (start app-v2-1 and wait until healthy): app-v2-1 exited with code 1: [bold]boom[/x]" in (
        text
    )


def rolling_record() -> RunRecord:
    record = make_record()
    record.events = [
        Event(0, "Route", "route v1 100% over app-v1-2", T0 + 1.0, T0 + 1.2, None, None, 1),
        Event(1, "Stop", "stop app-v1-1", T0 + 1.2, T0 + 1.5, None, None, 1),
        Event(2, "Start", "start app-v2-1", T0 + 1.5, T0 + 2.5, True, None, 1),
        Event(3, "Route", "route over app-v2-1, app-v1-2", T0 + 2.5, T0 + 2.7, None, None, 2),
    ]
    return record


def test_capacity_over_time_in_the_summary_and_the_journal(tmp_path: Path) -> None:
    record = rolling_record()
    # Only the changes: 2 from the first step, 1 while slot 1 is out, 2 once v2 is routed in.
    assert terminal.capacity_line(record) == "2 at 1.0 s, 1 at 1.2 s, 2 at 2.7 s"
    report.write_run(record, summarize(record.samples, record.events, target_rate=RATE), tmp_path / "r")
    journal = json.loads((tmp_path / "r" / "journal.json").read_text())
    assert [p["in_service"] for p in journal["capacity"]] == [2, 1, 1, 1, 2]
    assert journal["capacity"][0]["at_s"] == 1.0


def test_print_summary_shows_a_measured_url_with_brackets_as_written(record: RunRecord) -> None:
    url = "http://127.0.0.1:8089/[/x]?[bold]y[/bold]"
    record.config = replace(record.config, strategy="measure", measure=MeasureOptions(url, ("true",)))
    buf = io.StringIO()
    analysis = summarize(record.samples, record.events, target_rate=RATE)
    terminal.print_summary(Console(file=buf, width=200, color_system=None), record, analysis, None)
    assert f"measure: completed ({url})" in buf.getvalue()
