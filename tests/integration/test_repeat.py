"""`lab run --repeat` against a real engine: two whole runs, two folders, one repeat.json with medians."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import run_lab


def test_run_repeat_twice_measures_two_runs_and_their_median(tmp_path: Path) -> None:
    args = ["run", "blue-green", "--repeat", "2", "--fleet", "2", "--baseline", "0.5", "--settle", "0.5"]
    args += ["-p", "overlap_s=0.5", "-p", "rollback_window_s=0.5", "--json", "--out", str(tmp_path)]
    proc = run_lab(args, timeout=240)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # one object on stdout, nothing else

    assert doc["repeat"] == 2 and doc["runs_done"] == 2 and doc["statuses"] == {"completed": 2}
    first, second = doc["runs"]
    assert first["run_id"] != second["run_id"]
    for run in (first, second):
        assert run["requests_sent"] > 100 and run["versions_seen"].get("v2", 0) > 0
        folder = Path(run["output"])
        assert folder.parent == Path(doc["output"]) and (folder / "samples.csv").is_file()
        assert json.loads((folder / "journal.json").read_text())["run_id"] == run["run_id"]

    deploy = doc["aggregates"]["deploy_duration_s"]
    durations = sorted(r["deploy_duration_s"] for r in (first, second))
    assert (deploy["min"], deploy["max"], deploy["runs"]) == (durations[0], durations[1], 2)
    assert deploy["median"] == round(sum(durations) / 2, 4)  # the median of two is their midpoint
    assert deploy["ci"]["level"] == 0.5  # [min, max] of two runs: a 50 % interval, said as such
    sent = doc["aggregates"]["requests_failed"]
    assert sent["runs"] == 2 and sent["min"] == min(r["requests_failed"] for r in (first, second))
    assert json.loads((Path(doc["output"]) / "repeat.json").read_text()) == doc
