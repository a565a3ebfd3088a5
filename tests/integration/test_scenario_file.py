"""A scenario file run for real: `lab run --config`, and the journal records the file's settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import run_lab

from lab.scenario_file import load

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "rolling-ci-gate.toml"


def test_lab_run_config_runs_the_files_scenario(tmp_path: Path) -> None:
    scenario = load(EXAMPLE)
    # One option over the file, to see it win in the journal too.
    args = ["run", "--config", str(EXAMPLE), "--rate", "80"]
    env = {**os.environ, "NO_COLOR": "1"}
    result = run_lab([*args, "--out", str(tmp_path), "--json"], timeout=300, env=env)
    # 0: deployed within the file's budgets; 3: a request failed, over the file's budget of 0. Both are
    # verdicts of a run that went through; anything else is not.
    assert result.returncode in (0, 3), result.stderr
    summary = json.loads(result.stdout)
    assert summary["status"] == "completed"
    if result.returncode == 3:
        assert summary["requests_failed"] > 0 and "budget exceeded" in result.stderr
    else:
        assert summary["requests_failed"] == 0 and summary["downtime_ms"] == 0

    journal = json.loads((Path(summary["output"]) / "journal.json").read_text())
    given = journal["input"]
    assert given["strategy"] == "rolling" == scenario.strategy
    assert given["params"] == {"drain_s": 0.5} == scenario.params
    assert given["scenario"]["fleet_size"] == scenario.options["fleet_size"] == 2
    assert given["scenario"]["v2_env"] == scenario.env["v2"] == {"APP_BOOT_DELAY_S": "0.2"}
    assert given["probe"]["rate"] == 80.0  # the command line's, over the file's 100
    assert given["probe"]["baseline_s"] == scenario.options["baseline"] == 1.0
    assert given["probe"]["settle_s"] == scenario.options["settle"] == 1.0
    # The run did what the file asked: two v2 instances replaced v1 one at a time, each drained first.
    steps = [s["detail"] for s in journal["steps"]]
    assert sum(d.startswith("start app-v2-") for d in steps) == 2, steps
    assert sum(d == "pause 0.5 s (drain app-v1-1)" or d == "pause 0.5 s (drain app-v1-2)" for d in steps) == 2
