"""The `lab` command without Docker: listing, planning, and the one-line error contract.

CliRunner calls the Typer app directly and so bypasses lab.cli.main(), which is what turns errors into
`lab: error: ...` and exit codes: that contract is checked on a real `python -m lab` process.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import docker
import pytest
from rich.console import Console
from typer.testing import CliRunner

from lab import strategies
from lab.cli import app
from lab.errors import BadInput
from lab.live.feed import SampleFeed
from lab.model import ErrorClass, Event, Instance, Route, Sample, describe, fleet
from lab.options import RunOptions
from lab.record import RunRecord
from lab.targets.fleet.nginx import ProxySettings, render_config
from lab.targets.fleet.plan import Topology

URL_NOWHERE = "http://127.0.0.1:9/"  # never contacted: the input is refused first
NO_DOCKER = "tcp://127.0.0.1:1"  # nothing listens there: any Docker call fails at once
STEP_LINE = re.compile(r"^ {0,2}(\d+)  (\S.*)$")
CONFIG_START = "# Rendered by deploy lab: "


def names(instances: tuple[Instance, ...]) -> str:
    return ", ".join(inst.name for inst in instances)


def lab(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LINES", "FORCE_COLOR", "TTY_COMPATIBLE"}}
    env.update(DOCKER_HOST=NO_DOCKER, COLUMNS="80", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def step_lines(output: str) -> list[tuple[int, str]]:
    return [(int(m.group(1)), m.group(2)) for line in output.splitlines() if (m := STEP_LINE.match(line))]


def printed_configs(output: str) -> list[str]:
    """Each printed nginx.conf, from its header comment to the closing brace of its http block."""
    configs = []
    lines = output.splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith(CONFIG_START):
            http = lines.index("http {\n", i)
            end = lines.index("}\n", http)
            configs.append("".join(lines[i : end + 1]))
    return configs


def expected_steps(name: str, size: int, window: float, overlap: float = 2.0) -> list[str]:
    old, new = fleet("v1", size), fleet("v2", size)
    both = [
        f"route v1 50%, v2 50% over {names(old + new)}",
        f"pause {overlap:g} s (blue and green both serve, v2 at 50%)",
    ]
    return {
        "in-place": [
            f"stop {names(old)}",
            f"start {names(new)} and wait until healthy",
            f"route v2 100% over {names(new)}",
        ],
        "blue-green": [
            f"start {names(new)} and wait until healthy",
            *(both if overlap else []),
            f"route v2 100% over {names(new)}",
            f"pause {window:g} s (blue kept for rollback)",
            f"check health of {names(new)}",
            f"stop {names(old)}",
        ],
    }[name]


def expected_routes(name: str, size: int, overlap: float = 2.0) -> list[Route]:
    old, new = fleet("v1", size), fleet("v2", size)
    # While both serve, a tester's request (X-Canary: always) reaches green.
    both = [Route.split({old: 50, new: 50}, canary=new)] if name == "blue-green" and overlap else []
    return [*both, Route.even(new)]


def assert_plan_output(output: str, name: str, size: int, window: float, overlap: float = 2.0) -> None:
    old = fleet("v1", size)
    steps = step_lines(output)
    assert steps == list(enumerate(expected_steps(name, size, window, overlap)))
    assert f"# initial: route v1 100% over {names(old)}" in output

    configs = printed_configs(output)
    route_steps = [i for i, text in steps if text.startswith("route ")]
    assert len(configs) == 1 + len(route_steps)
    # Printed verbatim: nothing wrapped at the terminal's width, so it can be copied into nginx.
    # Numbered as the runner numbers them: 0 is the static config the proxy starts on, 1 the first route.
    assert configs[0] == render_config(Route.even(old), ProxySettings(), generation=1, title="initial")
    routes = expected_routes(name, size, overlap)
    for generation, (index, config, route) in enumerate(
        zip(route_steps, configs[1:], routes, strict=True), start=2
    ):
        title = f"step {index}: {describe(route)}"
        assert config == render_config(route, ProxySettings(), generation=generation, title=title)


def assert_one_error_line(result: subprocess.CompletedProcess[str], code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("lab: error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------------
# In process, with CliRunner


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to reach Docker fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("plan touched Docker")

    monkeypatch.setattr(docker, "from_env", refuse)
    monkeypatch.setattr(docker.DockerClient, "__init__", refuse)
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)


def test_strategies_lists_every_registered_strategy() -> None:
    result = CliRunner().invoke(app, ["strategies"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(strategies.EVERY)  # the plans, and Swarm's own update
    for name, strategy in strategies.EVERY.items():
        line = next(line for line in lines if line.split()[0] == name)
        assert strategy.summary in line
        for param in strategy.defaults():
            assert f"{param}=" in line


@pytest.mark.parametrize("size", [1, 3])
@pytest.mark.parametrize("name", ["in-place", "blue-green"])
def test_plan_prints_numbered_steps_and_configs_without_docker(name: str, size: int, no_docker: None) -> None:
    result = CliRunner().invoke(app, ["plan", name, "--fleet", str(size)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"# {name}: {strategies.REGISTRY[name].summary}\n")
    assert_plan_output(result.output, name, size, window=2.0)


def test_plan_passes_parameters_to_the_strategy(no_docker: None) -> None:
    result = CliRunner().invoke(app, ["plan", "blue-green", "-n", "2", "-p", "rollback_window_s=7.5"])
    assert result.exit_code == 0, result.output
    assert_plan_output(result.output, "blue-green", 2, window=7.5)
    cmd = ["plan", "blue-green", "-n", "2", "-p", "rollback_window_s=1", "-p", "overlap_s=0"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, result.output
    assert_plan_output(result.output, "blue-green", 2, window=1, overlap=0)


def test_plan_without_configs_prints_only_steps(no_docker: None) -> None:
    result = CliRunner().invoke(app, ["plan", "in-place", "--no-configs"])
    assert result.exit_code == 0, result.output
    assert printed_configs(result.output) == []
    assert "upstream" not in result.output
    assert [i for i, _ in step_lines(result.output)] == [0, 1, 2]


def test_bad_input_is_a_lab_error_with_exit_code_2_in_process() -> None:
    result = CliRunner().invoke(app, ["plan", "nope"])
    assert isinstance(result.exception, BadInput)
    assert result.exception.exit_code == 2
    assert "nope" in str(result.exception)


# ---------------------------------------------------------------------------------------------------
# A real process: what a user and CI see


def test_plan_in_a_process_needs_no_docker(tmp_path: Path) -> None:
    result = lab("plan", "blue-green", "--fleet", "4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert_plan_output(result.stdout, "blue-green", 4, window=2.0)


def test_plan_in_a_process_prints_long_lines_whole(tmp_path: Path) -> None:
    result = lab("plan", "in-place", "--fleet", "16", "--no-configs", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert step_lines(result.stdout) == list(enumerate(expected_steps("in-place", 16, 0)))


def test_unknown_strategy_is_one_error_line(tmp_path: Path) -> None:
    result = lab("plan", "nope", cwd=tmp_path)
    line = assert_one_error_line(result, 2, "'nope'")
    for name in strategies.REGISTRY:
        assert name in line
    assert_one_error_line(lab("run", "nope", cwd=tmp_path), 2, "'nope'")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["plan", "in-place", "--fleet", "0"], "--fleet"),
        (["plan", "in-place", "--fleet", "17"], "--fleet"),
        (["plan", "in-place", "--fleet", "abc"], "--fleet"),
        (["run", "in-place", "--fleet", "0"], "--fleet"),
        (["run", "blue-green", "--rate", "-1"], "--rate"),
        (["run", "blue-green", "--rate", "0"], "--rate"),
        (["run", "blue-green", "--mode", "x"], "--mode"),
        (["run", "blue-green", "--baseline", "-1"], "--baseline"),
        (["run", "blue-green", "--port", "70000"], "--port"),
        (["plan", "in-place", "-p", "unknown=1"], "unknown"),
        (["run", "in-place", "-p", "unknown=1"], "unknown"),
        (["plan", "blue-green", "-p", "rollback_window_s=-1"], "rollback_window_s"),
        (["plan", "blue-green", "-p", "rollback_window_s=soon"], "rollback_window_s"),
        (["plan", "blue-green", "-p", "NOEQUALS"], "NOEQUALS"),
        (["run", "blue-green", "--v2-env", "NOEQUALS"], "NOEQUALS"),
        (["run", "blue-green", "--v1-env", "=1"], "--v1-env"),
        (["run", "blue-green", "--bogus-option"], "--bogus-option"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bad_input_is_one_error_line_and_exit_2(args: list[str], fragment: str, tmp_path: Path) -> None:
    # `run` must refuse these before it touches Docker (unreachable here), or the exit code would be 1.
    assert_one_error_line(lab(*args, cwd=tmp_path), 2, fragment)
    assert not (tmp_path / "runs").exists()  # the default --out, relative to the working folder


def test_run_without_docker_is_one_error_line_and_exit_1(tmp_path: Path) -> None:
    result = lab("run", "blue-green", "--out", str(tmp_path / "runs"), cwd=tmp_path)
    line = assert_one_error_line(result, 1, "Docker")
    assert "127.0.0.1" in line or "not reachable" in line


# ---------------------------------------------------------------------------------------------------
# `run` end to end with the runner and Docker replaced: the verdict, --json and the progress lines


class FakeRunner:
    """Stands in for lab.pipeline.Run: a 2 s run at 100 req/s whose v2 start failed `failures` requests."""

    status = "completed"
    failures = 0
    hook_line = "step 0 done in 1.00 s: app-v2-1 exited with code 1: [/app/main.py] [bold]x"

    def __init__(
        self,
        config: RunOptions,
        target: object,
        *,
        keep: bool = False,
        hook: Callable[[str, object], None],
        **_: object,
    ) -> None:
        self.config, self.hook = config, hook
        self.record = RunRecord(config, "fake01", "2024-05-01T12:00:00+00:00", 100.0)
        self.feed = SampleFeed(config.rate, self.record.t0)  # what the live view reads; fed by FeedingRunner

    def execute(self, *, wait_teardown: bool = True) -> RunRecord:
        return self.run()  # looked up on the class, so a test can replace `run`

    def finish(self) -> None:
        """Nothing was made, so nothing is being removed."""

    def run(self) -> RunRecord:
        self.hook(self.hook_line, None)
        t0, rate = self.record.t0, self.config.rate
        samples = []
        for i in range(int(2 * rate)):
            t = t0 + i / rate
            if 50 <= i < 50 + self.failures:
                samples.append(Sample(i, t, t, t + 0.001, error=ErrorClass.REFUSED))
            else:
                samples.append(Sample(i, t, t, t + 0.003, 200, "v1" if i < 100 else "v2", "app-x-1"))
        self.record.samples = samples
        self.record.probe_started = t0
        self.record.events = [Event(0, "Start", "start app-v2-1", t0 + 0.4, t0 + 1.2, True)]
        self.record.configs = [("initial", "# initial\n")]
        self.record.status = self.status
        return self.record


@pytest.fixture
def fake_run(monkeypatch: pytest.MonkeyPatch) -> type[FakeRunner]:
    import lab.engines
    import lab.pipeline
    import lab.ports

    class Runner(FakeRunner):
        pass

    monkeypatch.setattr(lab.pipeline, "Run", Runner)
    monkeypatch.setattr(lab.engines, "open_engine", lambda name, run_id, **kw: object())
    monkeypatch.setattr(lab.ports, "port_is_free", lambda port: True)
    return Runner


@pytest.mark.parametrize(
    ("status", "failures", "args", "code"),
    [
        ("completed", 0, [], 0),
        ("completed", 10, ["--max-failed", "10", "--max-downtime-ms", "100"], 0),  # 10 failures: 100 ms
        ("completed", 10, ["--max-failed", "9"], 3),
        ("completed", 10, ["--max-downtime-ms", "99"], 3),
        ("rolled_back", 0, [], 4),
        ("failed", 0, [], 1),
    ],
)
def test_run_exit_code_is_the_verdict(
    status: str, failures: int, args: list[str], code: int, fake_run: type[FakeRunner], tmp_path: Path
) -> None:
    fake_run.status, fake_run.failures = status, failures
    cmd = ["run", "blue-green", "--rate", "100", "--out", str(tmp_path), "--json", *args]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    summary = json.loads(result.stdout)  # one JSON object on stdout, nothing else
    assert summary["requests_sent"] == 200 and summary["probe_rate_target"] == 100.0
    assert summary["strategy"] == "blue-green" and summary["status"] == status
    assert summary["requests_failed"] == failures
    assert summary["downtime_ms"] == pytest.approx(failures * 10)
    assert (Path(summary["output"]) / "journal.json").is_file()
    assert Path(summary["output"]).parent == tmp_path
    if code == 3:
        assert result.stderr.startswith("lab: error: budget exceeded")


def test_run_progress_and_summary_show_messages_verbatim(fake_run: type[FakeRunner], tmp_path: Path) -> None:
    fake_run.failures = 3
    cmd = ["run", "blue-green", "--out", str(tmp_path), "-p", "rollback_window_s=1"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert FakeRunner.hook_line in result.stderr.replace("\n", "")
    assert "requests failed" in result.stdout and "3 of 400 (refused 3)" in result.stdout  # default 200/s
    (folder,) = tmp_path.iterdir()
    journal = json.loads((folder / "journal.json").read_text())
    assert journal["input"]["params"] == {"rollback_window_s": 1.0}
    assert journal["input"]["probe"]["rate"] == 200.0


# ---------------------------------------------------------------------------------------------------
# lab compare, with the fake runner: one row per strategy, one folder for everything


def test_compare_runs_each_strategy_once_and_writes_one_table(
    fake_run: type[FakeRunner], tmp_path: Path
) -> None:
    fake_run.failures = 2
    cmd = ["compare", "in-place", "rolling:drain_s=1", "--out", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    rows = json.loads(result.stdout)
    assert [r["strategy"] for r in rows] == ["in-place", "rolling:drain_s=1"]
    assert all(r["requests_failed"] == 2 and r["failures_by_class"] == {"refused": 2} for r in rows)
    (folder,) = tmp_path.iterdir()
    assert json.loads((folder / "compare.json").read_text()) == rows
    assert "rolling:drain_s=1" in (folder / "compare.txt").read_text()
    runs = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(runs) == 2 and "in-place" in runs[0] and "rolling" in runs[1]
    journal = json.loads(next(folder.glob("*rolling*/journal.json")).read_text())
    assert journal["input"]["params"] == {"drain_s": 1.0}


def test_compare_default_is_every_strategy_without_presets_plus_drained_rolling() -> None:
    from lab.cli import DEFAULT_COMPARISON
    from lab.strategies import PRESETS, REGISTRY

    assert DEFAULT_COMPARISON[-1] == "rolling:drain_s=1"
    assert set(DEFAULT_COMPARISON[:-1]) == set(REGISTRY) - set(PRESETS)


def test_compare_default_on_swarm_adds_swarms_own_update_and_only_there() -> None:
    from lab.cli import DEFAULT_COMPARISON
    from lab.cli.app import default_comparison

    assert default_comparison("docker") == DEFAULT_COMPARISON
    assert default_comparison("swarm") == [*DEFAULT_COMPARISON, "swarm-rolling"]


def test_compare_checks_every_spec_before_running_any(fake_run: type[FakeRunner], tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["compare", "in-place", "rolling:nope=1", "--out", str(tmp_path)])
    assert isinstance(result.exception, BadInput) and "nope" in str(result.exception)
    assert list(tmp_path.iterdir()) == []  # nothing ran


def test_scenario_sets_v2_env_and_explicit_env_wins(fake_run: type[FakeRunner], tmp_path: Path) -> None:
    cmd = ["run", "canary", "--scenario", "errors", "--v2-env", "APP_SEED=3", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    journal = json.loads(next(tmp_path.glob("*/journal.json")).read_text())
    assert journal["input"]["scenario"]["name"] == "errors"
    assert journal["input"]["scenario"]["v2_env"] == {"APP_FAIL_RATE": "0.2", "APP_SEED": "3"}
    result = CliRunner().invoke(app, ["run", "canary", "--scenario", "nope", "--out", str(tmp_path)])
    assert isinstance(result.exception, BadInput) and "unknown scenario" in str(result.exception)


def test_compare_keeps_the_table_of_the_runs_before_an_interrupt(
    fake_run: type[FakeRunner], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def run(self: FakeRunner) -> RunRecord:
        calls.append(self.config.strategy)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return FakeRunner.run(self)

    monkeypatch.setattr(fake_run, "run", run)
    result = CliRunner().invoke(app, ["compare", "in-place", "rolling", "red-black", "--out", str(tmp_path)])
    assert result.exit_code == 130
    (folder,) = tmp_path.iterdir()
    rows = json.loads((folder / "compare.json").read_text())
    assert [r["strategy"] for r in rows] == ["in-place"] and calls == ["in-place", "rolling"]


# ---------------------------------------------------------------------------------------------------
# --repeat on run and compare, with a fake runner whose figures change from run to run


def vary(
    fake_run: type[FakeRunner],
    monkeypatch: pytest.MonkeyPatch,
    failures: list[int],
    statuses: list[str] | None = None,
) -> list[str]:
    """Run k fails failures[k] requests (10 ms of downtime each at 100 req/s) and ends with statuses[k];
    a `failed` run fails before the probe starts. Returns the strategies in the order they ran."""
    calls: list[str] = []

    def run(self: FakeRunner) -> RunRecord:
        k = len(calls)
        calls.append(self.config.strategy)
        self.failures = failures[k % len(failures)]
        self.status = (statuses or ["completed"])[k % len(statuses or ["completed"])]
        if self.status == "failed":
            self.record.status, self.record.error = "failed", "docker went away"
            return self.record
        return FakeRunner.run(self)

    monkeypatch.setattr(fake_run, "run", run)
    return calls


def table_cells(output: str, first: str) -> list[str]:
    line = next(li for li in output.splitlines() if li.startswith(f"│ {first} "))
    return [c.strip() for c in line.split("│")[1:-1]]


def test_run_repeat_prints_each_run_then_medians_and_keeps_every_folder(
    fake_run: type[FakeRunner], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vary(fake_run, monkeypatch, [10, 0, 4])  # downtime 100, 0, 40 ms
    cmd = ["run", "blue-green", "--rate", "100", "--repeat", "3", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, cmd, env={"COLUMNS": "200"})
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert "run 1/3: completed, 10 of 200 failed, downtime 100.0 ms" in result.stdout
    assert "run 2/3: completed, 0 of 200 failed, downtime 0.0 ms" in result.stdout
    assert "run 3/3: completed, 4 of 200 failed, downtime 40.0 ms" in result.stdout
    cells = table_cells(result.stdout, "downtime (longest)")
    assert cells == ["downtime (longest)", "40.0 ms", "0.0–100.0 ms", "–", "0.0–100.0 ms (75%)", "3 of 3"]
    assert table_cells(result.stdout, "requests failed")[1:3] == ["4", "0–10"]
    (parent,) = tmp_path.iterdir()
    assert parent.name.endswith("-repeat-blue-green")
    assert len([p for p in parent.iterdir() if (p / "journal.json").is_file()]) == 3
    saved = json.loads((parent / "repeat.json").read_text())
    assert [r["downtime_ms"] for r in saved["runs"]] == [100.0, 0.0, 40.0]


def test_run_repeat_json_is_one_object_with_runs_and_aggregates(
    fake_run: type[FakeRunner], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vary(fake_run, monkeypatch, [10, 0, 4, 6])
    cmd = ["run", "blue-green", "--rate", "100", "--repeat", "4", "--out", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    doc = json.loads(result.stdout)
    assert doc["repeat"] == 4 and doc["strategy"] == "blue-green" and doc["statuses"] == {"completed": 4}
    assert [r["run"] for r in doc["runs"]] == [1, 2, 3, 4]
    assert [r["requests_failed"] for r in doc["runs"]] == [10, 0, 4, 6]
    downtime = doc["aggregates"]["downtime_ms"]
    assert (downtime["median"], downtime["min"], downtime["max"], downtime["runs"]) == (50.0, 0.0, 100.0, 4)
    assert downtime["ci"] == {"low": 0.0, "high": 100.0, "level": 0.875}
    assert doc["aggregates"]["requests_failed"]["median"] == 5
    assert json.loads((Path(doc["output"]) / "repeat.json").read_text()) == doc


@pytest.mark.parametrize(
    ("failures", "statuses", "args", "code", "message"),
    [
        # the median (40 ms) is within 50 ms, run 1 (100 ms) is not: a budget holds for every run
        ([10, 0, 4], None, ["--max-downtime-ms", "50"], 3, "budget exceeded in 1 of 3 runs: run 1: downtime"),
        ([10, 0, 4], None, ["--max-downtime-ms", "100", "--max-failed", "10"], 0, ""),
        ([0, 0, 0], ["completed", "rolled_back", "completed"], [], 4, ""),
        ([0, 0, 0], ["completed", "failed", "rolled_back"], [], 1, "run(s) failed: run 2: docker went away"),
    ],
)
def test_run_repeat_exit_code_covers_every_run(
    failures: list[int],
    statuses: list[str] | None,
    args: list[str],
    code: int,
    message: str,
    fake_run: type[FakeRunner],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    vary(fake_run, monkeypatch, failures, statuses)
    cmd = ["run", "blue-green", "--rate", "100", "--repeat", "3", "--out", str(tmp_path), "--json", *args]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    assert result.stderr.startswith(f"lab: error: {message}") if message else result.stderr == ""
    doc = json.loads(result.stdout)
    if "failed" in (statuses or []):
        failed = doc["runs"][1]
        assert failed["status"] == "failed" and failed["downtime_ms"] is None
        assert doc["aggregates"]["downtime_ms"]["runs"] == 2 and doc["aggregates"]["downtime_ms"]["of"] == 3


def test_run_repeat_keeps_the_runs_before_an_interrupt(
    fake_run: type[FakeRunner], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def run(self: FakeRunner) -> RunRecord:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return FakeRunner.run(self)

    monkeypatch.setattr(fake_run, "run", run)
    result = CliRunner().invoke(app, ["run", "in-place", "--repeat", "5", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 130 and len(calls) == 3
    (parent,) = tmp_path.iterdir()
    saved = json.loads((parent / "repeat.json").read_text())
    assert [r["run"] for r in saved["runs"]] == [1, 2]
    assert saved["aggregates"]["downtime_ms"]["runs"] == 2 and saved["runs_done"] == 2


def test_compare_repeat_interleaves_and_reports_medians_and_downtime(
    fake_run: type[FakeRunner], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # in-place runs first in every round and fails 10, 12, 8 requests; rolling fails none
    calls = vary(fake_run, monkeypatch, [10, 0, 12, 0, 8, 0])
    cmd = ["compare", "in-place", "rolling", "--rate", "100", "--repeat", "3", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, cmd, env={"COLUMNS": "250"})
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert calls == ["in-place", "rolling"] * 3  # round by round, not in-place three times first
    assert "6/6 (round 3/3): rolling" in result.stderr
    cells = table_cells(result.stdout, "in-place")
    assert cells[:5] == ["in-place", "3", "completed 3", "10 (8–12)", "100.0 ms (80.0–120.0)"]
    assert table_cells(result.stdout, "rolling")[3:5] == ["0 (0–0)", "0.0 ms (0.0–0.0)"]
    expected_line = (
        "rolling and in-place: downtime cannot be told apart (0.0–0.0 ms vs 80.0–120.0 ms, N=3 each): "
        "no test of N=3 each can reach p < 0.05 (the smallest p is 0.1), though every rolling run was lower"
    )
    assert expected_line in result.stdout.replace("\n", " ")
    (folder,) = tmp_path.iterdir()
    doc = json.loads((folder / "compare.json").read_text())
    assert [(r["strategy"], r["round"]) for r in doc["runs"]] == [
        (s, n) for n in (1, 2, 3) for s in ("in-place", "rolling")
    ]
    assert [r["requests_failed"] for r in doc["runs"]] == [10, 0, 12, 0, 8, 0]
    in_place = doc["strategies"][0]["aggregates"]
    assert in_place["downtime_ms"]["median"] == 100.0 and in_place["downtime_ms"]["ci"]["level"] == 0.75
    assert doc["downtime"][0]["told_apart"] is False and doc["downtime"][0]["smallest_p"] == 0.1
    assert expected_line in (folder / "compare.txt").read_text().replace("\n", " ")
    assert len([p for p in folder.iterdir() if p.is_dir()]) == 6


def test_compare_repeat_json_names_the_lower_downtime_when_n_allows(
    fake_run: type[FakeRunner], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vary(fake_run, monkeypatch, [0, 10, 0, 12, 0, 8, 0, 9])
    cmd = [
        "compare",
        "rolling",
        "in-place",
        "--rate",
        "100",
        "--repeat",
        "4",
        "--out",
        str(tmp_path),
        "--json",
    ]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    (pair,) = json.loads(result.stdout)["downtime"]
    assert pair["told_apart"] is True and pair["lower"] == "rolling" and pair["p_value"] < 0.05
    assert pair["line"].startswith("rolling's downtime is lower than in-place's")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["run", "blue-green", "--repeat", "0"], "--repeat must be from 1 up to 50, got 0"),
        (["run", "blue-green", "--repeat", "51"], "--repeat must be from 1 up to 50, got 51"),
        (["run", "blue-green", "--repeat", "-3"], "--repeat"),
        (["run", "blue-green", "--repeat", "two"], "--repeat"),
        (["run", "blue-green", "--repeat", "2", "--keep"], "--keep"),
        (["compare", "in-place", "--repeat", "0"], "--repeat"),
        (["compare", "in-place", "--repeat", "1.5"], "--repeat"),
        (["compare", "in-place", "rolling", "in-place", "--repeat", "2"], "in-place given twice"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else v,
)
def test_bad_repeat_is_one_error_line_and_exit_2(args: list[str], fragment: str, tmp_path: Path) -> None:
    assert_one_error_line(lab(*args, cwd=tmp_path), 2, fragment)
    assert not (tmp_path / "runs").exists()


# ---------------------------------------------------------------------------------------------------
# The live view through `lab run`: drawn on a terminal, plain lines elsewhere, nothing under --json


class FeedingRunner(FakeRunner):
    """FakeRunner whose run also goes through the feed as the real runner does, on a clock that runs five
    times faster than the wall's, so half a second of test covers the run's 2 s of probing."""

    hold: Callable[[], bool] | None = None  # step 1 lasts until this is true (at most 10 s more)

    def __init__(self, config: RunOptions, runtime: object, **kwargs: Any) -> None:
        super().__init__(config, runtime, **kwargs)
        real_start = time.monotonic()
        self.clock = lambda: self.record.t0 + 5 * (time.monotonic() - real_start)
        old, new = fleet("v1", 1), fleet("v2", 1)
        plan = strategies.get(config.strategy).plan
        self.feed = SampleFeed(
            config.rate,
            self.record.t0,
            plan=lambda: (plan(old, new, **dict(config.params)), Topology(frozenset(old), Route.even(old))),
            clock=self.clock,
            every_s=0.01,
        )

    def run(self) -> RunRecord:
        record = FakeRunner.run(self)  # the samples and the verdict
        arrived = [s for s in record.samples]

        class Probe:
            def new_samples(self_) -> list[Sample]:
                # Whatever was finished by now on the fast clock, as a probe hands samples over.
                now = self.clock()
                ready = [s for s in arrived if (s.finished or s.scheduled) <= now]
                arrived[:] = [s for s in arrived if s not in ready]
                return ready

        self.feed.attach(Probe(), record.t0)
        self.feed.set_route(Route.even(fleet("v1", 1)))
        self.feed.set_phase("plan")
        self.feed.step_started(0, "start app-v2-1 and wait until healthy")
        while self.clock() < record.t0 + 1.2:
            time.sleep(0.01)
        self.feed.step_ended(0, "Start", True)
        self.feed.step_started(1, "route v1 50%, v2 50% over app-v1-1, app-v2-1")
        self.feed.set_route(Route.split({fleet("v1", 1): 50, fleet("v2", 1): 50}))
        while self.clock() < record.t0 + 2.2:
            time.sleep(0.01)
        # On a busy machine the view's thread may not have printed yet: a test waits on what it needs to
        # see (bounded), never on the wall clock alone.
        deadline = time.monotonic() + 10
        while self.hold is not None and not self.hold() and time.monotonic() < deadline:
            time.sleep(0.01)
        self.feed.set_phase("cleanup")
        self.feed.stopping()
        self.feed.detach()
        self.feed.finish(record.status)
        return record


@pytest.fixture
def feeding_run(fake_run: type[FakeRunner], monkeypatch: pytest.MonkeyPatch) -> StringIO:
    """The runner replaced by FeedingRunner; returns what a terminal on stderr would have received."""
    import lab.cli.execute
    import lab.cli.run
    import lab.live.view
    import lab.pipeline

    class Runner(FeedingRunner):
        failures = 3

    monkeypatch.setattr(lab.pipeline, "Run", Runner)
    monkeypatch.setattr(lab.live.view, "PLAIN_EVERY_S", 0.1)
    monkeypatch.setattr(lab.live.view, "REFRESH_PER_S", 20)
    screen = StringIO()
    terminal = Console(file=screen, force_terminal=True, width=100, color_system=None, highlight=False)
    monkeypatch.setattr(lab.cli.run, "err", terminal)
    monkeypatch.setattr(lab.cli.execute, "err", terminal)
    return screen


STATUS_LINE = re.compile(
    r"^t=[\d.]+ s  step \d \(\d/~?\d\)  route v1 [\d.]+%.*  answers (v1 \d+%.* of \d+|none yet)"
    r"  failed \d+.*req/s of 100 req/s.*  late \d+$",
    re.MULTILINE,
)


def test_json_draws_no_live_view_on_a_terminal(feeding_run: StringIO, tmp_path: Path) -> None:
    cmd = ["run", "blue-green", "--rate", "100", "--fleet", "1", "--out", str(tmp_path), "--json"]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert json.loads(result.stdout)["status"] == "completed"  # stdout: the one JSON object
    assert feeding_run.getvalue() == ""  # the terminal got nothing: no frame, no status line


def test_a_terminal_gets_the_live_view_and_its_last_frame_stays(
    feeding_run: StringIO, tmp_path: Path
) -> None:
    cmd = ["run", "blue-green", "--rate", "100", "--fleet", "1", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    drawn = feeding_run.getvalue()
    assert "\x1b[?25l" in drawn  # the cursor hidden while the view redraws in place
    assert "blue-green · step 1 (2 of ~7): route v1 50%, v2 50% over app-v1-1, app-v2-1" in drawn
    assert "routing now   v1 50% v2 50%  (1 x v1 + 1 x v2 instances)" in drawn
    assert "blue-green · run completed" in drawn  # the last frame, drawn when the run ended
    assert re.search(r"last second +[█▒]+ v1 \d+% v2 \d+% of \d+ good answers", drawn)
    assert re.search(r"failed so far 3 \(refused 3\)", drawn)
    assert not STATUS_LINE.search(drawn)
    assert "requests failed" in result.stdout  # the summary still prints, on stdout, after the view


@pytest.mark.parametrize("how", ["not a terminal", "--no-live"])
def test_plain_status_lines_when_not_a_terminal_or_asked(
    how: str, feeding_run: StringIO, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cmd = ["run", "blue-green", "--rate", "100", "--fleet", "1", "--out", str(tmp_path)]
    if how == "not a terminal":
        import lab.cli.execute
        import lab.cli.run

        plain = Console(file=feeding_run, width=100, highlight=False)
        monkeypatch.setattr(lab.cli.run, "err", plain)
        monkeypatch.setattr(lab.cli.execute, "err", plain)
    else:
        cmd.append("--no-live")
    import lab.pipeline

    def seen() -> bool:
        text = feeding_run.getvalue()
        return len(STATUS_LINE.findall(text)) >= 2 and "step 1 (2/~7)" in text

    monkeypatch.setattr(lab.pipeline.Run, "hold", staticmethod(seen))
    result = CliRunner().invoke(app, cmd)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    text = feeding_run.getvalue()
    assert "\x1b[" not in text and "good answers" not in text  # no frame, no cursor movement
    assert FakeRunner.hook_line in text.replace("\n", "")  # the step lines as before
    lines = STATUS_LINE.findall(text)
    assert len(lines) >= 2, text
    assert re.search(r"failed 3 \(refused 3\)", text)
    assert "step 1 (2/~7)  route v1 50% v2 50%" in text


@pytest.mark.parametrize(
    "command", [["run", "blue-green"], ["compare", "in-place"], ["measure", URL_NOWHERE]]
)
def test_an_out_folder_that_cannot_be_written_is_refused_before_anything_runs(
    tmp_path: Path, command: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)  # were the check gone, no engine would be reached
    afile = tmp_path / "afile"
    afile.write_text("")
    for out, said in [(afile, "is a file, not a folder"), (afile / "x", "is a file, not a folder")]:
        result = CliRunner().invoke(app, [*command, "--out", str(out)])
        assert isinstance(result.exception, BadInput) and said in str(result.exception), result.output
    result = CliRunner().invoke(app, [*command, "--out", "/proc/lab-out"])  # /proc takes no folder
    assert isinstance(result.exception, BadInput) and "cannot write in /proc" in str(result.exception)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]  # the check leaves nothing behind


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--base", "official", "export", "x.tar"], "--base is for `lab images` alone: `lab images export`"),
        (["--rebuild", "push", "127.0.0.1:5000"], "--rebuild is for `lab images` alone"),
        (["--rebuild", "--base", "debootstrap", "import", "x.tar"], "--rebuild and --base are for"),
    ],
)
def test_build_options_before_a_subcommand_that_builds_nothing_are_refused_not_ignored(
    args: list[str], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)  # were they ignored, no engine would be reached
    result = CliRunner().invoke(app, ["images", *args])
    assert isinstance(result.exception, BadInput) and said in str(result.exception)


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["run", "blue-green", "-p", "overlap_s=1", "-p", "overlap_s=2"], "parameter overlap_s given twice"),
        (["run", "blue-green", "--v2-env", "A=1", "--v2-env", "A=2"], "--v2-env A given twice: '1' and '2'"),
        (["compare", "rolling:batch=1:batch=2"], "rolling:batch=1:batch=2: parameter batch given twice"),
        (["compare", "in-place", "rolling:batch=0"], "rolling:batch=0: parameter batch"),
        (["run", "blue-green", "--v2-image", "shop:2", "--v2-health-path", ""], "--v2-health-path is empty"),
        (["images", "push", "127.0.0.1:99999"], "port 99999 is not a TCP port"),
        (["images", "push", "foo"], "registry 'foo' is not HOST[:PORT][/PATH]"),
    ],
)
def test_slips_are_named_before_the_engine_is_asked_anything(
    args: list[str], said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)  # an engine asked first would answer "not reachable"
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, BadInput) and said in str(result.exception), result.exception


def test_an_empty_config_is_said_to_be_empty_not_a_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)
    result = CliRunner().invoke(app, ["run", "--config", ""])
    assert isinstance(result.exception, BadInput) and str(result.exception).startswith("--config is empty")
