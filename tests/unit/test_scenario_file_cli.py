"""Scenario files on the command line: `--config`, `--save-config`, and which value wins.

The run itself is replaced: `execute` raises with the RunOptions it was given, so each test sees exactly what
would have run, built by the command's own code, and nothing touches Docker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner, Result

from lab.cli import app
from lab.cli.inputs import ConfigOpt, FleetOpt
from lab.errors import BadInput
from lab.options import RunOptions
from lab.scenario_file import load

SCENARIO = """
strategy = "canary"
[params]
percents = [5, 100]
bake_s = 1.5
[fleet]
size = 2
[versions.v1]
env = { APP_LATENCY_MS = "5" }
[versions.v2]
scenario = "errors"
env = { APP_SEED = "7", APP_LATENCY_MS = "9" }
[probe]
rate = 100
mode = "fresh"
baseline = 0.5
settle = 0.5
[proxy]
next_upstream = "off"
[budgets]
max_failed = 3
"""


class Ran(Exception):
    """What `execute` was asked to run."""

    def __init__(self, config: RunOptions):
        super().__init__(config.strategy)
        self.config = config


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> list[RunOptions]:
    """Every RunOptions the commands build; the first `execute` stops the command."""
    import lab.cli.compare
    import lab.cli.run
    import lab.ports
    from lab.cli import inputs

    built: list[RunOptions] = []

    def recorded(*args: Any, **kwargs: Any) -> RunOptions:
        config = inputs.run_config(*args, **kwargs)
        built.append(config)
        return config

    def execute(config: RunOptions, *args: Any, **kwargs: Any) -> Any:
        raise Ran(config)

    for module in (lab.cli.run, lab.cli.compare):
        monkeypatch.setattr(module, "run_config", recorded)
        monkeypatch.setattr(module, "execute", execute)
    monkeypatch.setattr(lab.ports, "port_is_free", lambda port: True)
    return built


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def ran(result: Result) -> RunOptions:
    assert isinstance(result.exception, Ran), (result.stdout, result.stderr, result.exception)
    return result.exception.config


@pytest.fixture
def scenario(tmp_path: Path) -> Path:
    path = tmp_path / "scenario.toml"
    path.write_text(SCENARIO)
    return path


def test_a_file_alone_runs_its_scenario(runs: list[RunOptions], scenario: Path, tmp_path: Path) -> None:
    config = ran(invoke("run", "--config", scenario, "--out", tmp_path))
    assert config.strategy == "canary"
    assert dict(config.params) == {"percents": (5, 100), "bake_s": 1.5}
    assert (config.fleet_size, config.rate, config.mode) == (2, 100.0, "fresh")
    assert (config.baseline_s, config.settle_s, config.health_timeout_s) == (0.5, 0.5, 30.0)
    assert config.scenario == "errors" and config.proxy.next_upstream == "off"
    assert dict(config.v1_env) == {"APP_LATENCY_MS": "5"}
    assert dict(config.v2_env) == {"APP_FAIL_RATE": "0.2", "APP_SEED": "7", "APP_LATENCY_MS": "9"}


def test_options_given_on_the_command_line_win_over_the_file(
    runs: list[RunOptions], scenario: Path, tmp_path: Path
) -> None:
    args = ["--fleet", "4", "--mode", "keepalive", "-p", "bake_s=0.5", "--v2-env", "APP_SEED=8"]
    config = ran(invoke("run", "--config", scenario, *args, "--out", tmp_path))
    # --fleet 4 is the option's default, given explicitly: it still wins over the file's 2.
    assert (config.fleet_size, config.mode) == (4, "keepalive")
    assert config.rate == 100.0 and config.scenario == "errors"  # not given: the file's
    # Parameters and env win key by key: the file's others stay.
    assert dict(config.params) == {"percents": (5, 100), "bake_s": 0.5}
    assert dict(config.v2_env) == {"APP_FAIL_RATE": "0.2", "APP_SEED": "8", "APP_LATENCY_MS": "9"}
    assert dict(config.v1_env) == {"APP_LATENCY_MS": "5"}
    # --scenario on the command line replaces the file's release; the file's own env still applies.
    config = ran(invoke("run", "--config", scenario, "--scenario", "slow-boot", "--out", tmp_path))
    assert config.scenario == "slow-boot"
    assert dict(config.v2_env) == {"APP_BOOT_DELAY_S": "5", "APP_SEED": "7", "APP_LATENCY_MS": "9"}


def test_budgets_come_from_the_file_unless_given(scenario: Path, tmp_path: Path) -> None:
    out = tmp_path / "again.yaml"
    result = invoke("run", "--config", scenario, "--max-downtime-ms", "40", "--save-config", out)
    assert result.exit_code == 0, (result.stderr, result.exception)
    assert load(out).options["max_failed"] == 3 and load(out).options["max_downtime_ms"] == 40.0
    result = invoke("run", "--config", scenario, "--max-failed", "0", "--save-config", out)
    assert result.exit_code == 0 and load(out).options["max_failed"] == 0


def test_a_file_budget_decides_the_exit_code(
    scenario: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lab.cli.run
    from lab.analysis.summary import summarize
    from lab.model import ErrorClass, Sample
    from lab.record import RunRecord

    def execute(config: RunOptions, out_dir: Path, **kwargs: Any) -> Any:
        record = RunRecord(config, "fake01", "2024-05-01T12:00:00+00:00", 0.0, status="completed")
        record.samples = [
            Sample(i, i / 100, i / 100, i / 100 + 0.001, error=ErrorClass.REFUSED) for i in range(4)
        ]
        record.probe_started = 0.0
        return record, summarize(record.samples, [], target_rate=config.rate, fleet_size=2), out_dir

    monkeypatch.setattr(lab.cli.run, "execute", execute)
    monkeypatch.setattr("lab.ports.port_is_free", lambda port: True)
    result = invoke("run", "--config", scenario, "--json")
    assert result.exit_code == 3, (result.stdout, result.stderr, result.exception)  # 4 failed > the file's 3
    assert "failed requests 4 > 3" in result.stderr
    assert invoke("run", "--config", scenario, "--json", "--max-failed", "4").exit_code == 0


@pytest.mark.parametrize("suffix", [".toml", ".yaml", ".yml"])
def test_save_then_run_gives_the_same_run_config(runs: list[RunOptions], tmp_path: Path, suffix: str) -> None:
    options = [
        *("canary", "-n", "3", "--rate", "150", "--mode", "fresh", "--scenario", "errors"),
        *("--v1-env", "APP_LATENCY_MS=5", "--v2-env", "APP_FAIL_RATE=0.05", "--v2-env", "APP_SEED=3"),
        *("-p", "percents=5,100", "-p", "bake_s=1.5", "-p", "by=instances", "-p", "max_p99_ms=250"),
        *("--baseline", "0.5", "--settle", "1", "--health-timeout", "20", "--next-upstream", "error"),
        *("--max-failed", "2", "--max-downtime-ms", "12.5"),
        *("--v1-image", "shop:1.4", "--v1-port", "9000", "--v1-health-path", "/ready"),
    ]
    direct = ran(invoke("run", *options, "--out", tmp_path))
    path = tmp_path / f"saved{suffix}"
    result = invoke("run", *options, "--save-config", path)
    assert result.exit_code == 0 and result.exception is None, (result.stderr, result.exception)
    assert f"scenario written to {path}" in result.stderr
    assert len(runs) == 2  # the saving command built its config and ran nothing
    from_file = ran(invoke("run", "--config", path, "--out", tmp_path))
    assert from_file == direct
    assert (from_file.v1_app.image, from_file.v1_app.port) == ("shop:1.4", 9000)  # set, not defaults
    assert load(path).options["max_failed"] == 2 and load(path).options["max_downtime_ms"] == 12.5


def test_a_rolling_batch_and_a_preset_survive_the_round_trip(runs: list[RunOptions], tmp_path: Path) -> None:
    for options in (
        ["rolling", "-p", "batch=25%", "-p", "drain_s=0.5"],
        ["eb-rolling", "-p", "time_scale=0.002"],
    ):
        direct = ran(invoke("run", *options, "--out", tmp_path))
        path = tmp_path / "s.toml"
        assert invoke("run", *options, "--save-config", path).exit_code == 0
        assert ran(invoke("run", "--config", path, "--out", tmp_path)) == direct


def test_another_strategy_on_the_command_line_drops_the_files_parameters(
    runs: list[RunOptions], scenario: Path, tmp_path: Path
) -> None:
    result = invoke("run", "rolling", "--config", scenario, "-p", "batch=2", "--out", tmp_path)
    config = ran(result)
    assert config.strategy == "rolling" and dict(config.params) == {"batch": config.params["batch"]}
    assert str(config.params["batch"]) == "2"
    assert config.fleet_size == 2 and config.scenario == "errors"  # the rest of the scenario stays
    assert f"the parameters in {scenario} are canary's: not used for rolling" in result.stderr


def test_a_file_without_a_strategy_needs_one_on_the_command_line(
    runs: list[RunOptions], tmp_path: Path
) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text("fleet:\n  size: 5\n")
    result = invoke("run", "--config", path, "--out", tmp_path)
    assert isinstance(result.exception, BadInput) and result.exception.exit_code == 2
    assert "give a STRATEGY" in str(result.exception) and "--config that names one" in str(result.exception)
    config = ran(invoke("run", "red-black", "--config", path, "--out", tmp_path))
    assert config.strategy == "red-black" and config.fleet_size == 5


def test_compare_runs_the_files_scenario_for_every_strategy(
    runs: list[RunOptions], scenario: Path, tmp_path: Path
) -> None:
    result = invoke(
        "compare", "in-place", "canary:bake_s=1", "--config", scenario, "--rate", "50", "--out", tmp_path
    )
    assert isinstance(result.exception, Ran)
    assert [c.strategy for c in runs] == ["in-place", "canary"]
    # The file's [params] are not the comparison's: each strategy gets only what its spec names.
    assert [dict(c.params) for c in runs] == [{}, {"bake_s": 1.0}]
    for config in runs:
        assert (config.fleet_size, config.rate, config.mode, config.scenario) == (2, 50.0, "fresh", "errors")
        assert dict(config.v1_env) == {"APP_LATENCY_MS": "5"}
        assert config.v2_env["APP_SEED"] == "7" and config.proxy.next_upstream == "off"


def test_a_bad_file_stops_the_command_before_anything_runs(runs: list[RunOptions], tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[probe]\nrate = 'fast'\n")
    for command in ("run", "compare"):
        result = invoke(command, "--config", path, "--out", tmp_path)
        assert isinstance(result.exception, BadInput)
        assert str(result.exception) == f'{path}: probe.rate: expected a number, got "fast"'
    assert runs == []


def test_save_config_checks_everything_a_run_would(runs: list[RunOptions], tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    result = invoke("run", "canary", "-p", "nope=1", "--save-config", path)
    assert isinstance(result.exception, BadInput) and "nope" in str(result.exception)
    result = invoke("run", "canary", "--rate", "0", "--save-config", path)
    assert isinstance(result.exception, BadInput) and str(result.exception).startswith("--rate must be")
    assert not path.exists()


def test_a_field_the_command_has_no_option_for_is_refused(tmp_path: Path) -> None:
    narrow = typer.Typer()

    @narrow.command("narrow")
    def narrow_cmd(fleet_size: FleetOpt = 4, config_file: ConfigOpt = None) -> None:
        print(f"fleet {fleet_size}")

    @narrow.command("other")
    def other() -> None:  # a second command, so the app keeps its command names
        pass

    path = tmp_path / "s.toml"
    path.write_text("[fleet]\nsize = 3\n")
    assert CliRunner().invoke(narrow, ["narrow", "--config", str(path)]).stdout == "fleet 3\n"
    path.write_text("[fleet]\nsize = 3\n[probe]\nrate = 10\n")  # never dropped in silence
    result = CliRunner().invoke(narrow, ["narrow", "--config", str(path)])
    assert isinstance(result.exception, BadInput)
    assert str(result.exception) == f"{path}: probe.rate: `lab narrow` has no option for it"


def lab_process(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"LINES", "FORCE_COLOR", "TTY_COMPATIBLE"}}
    env.update(DOCKER_HOST="tcp://127.0.0.1:1", COLUMNS="80", NO_COLOR="1")
    return subprocess.run(
        [sys.executable, "-m", "lab", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "scenario.toml",
            "[fleet]\nsise = 2\n",
            "scenario.toml: fleet.sise: unknown field (did you mean 'size'?)",
        ),
        (
            "scenario.yaml",
            "probe:\n  rate: [1\n",
            "scenario.yaml: line 3, column 1: invalid YAML: expected ','",
        ),
        ("scenario.json", "{}", "scenario.json: extension '.json': use .toml, .yaml or .yml"),
        ("missing.toml", None, "missing.toml: no such file"),
    ],
)
def test_a_bad_file_is_one_error_line_and_exit_2(
    name: str, text: str | None, message: str, tmp_path: Path
) -> None:
    if text is not None:
        (tmp_path / name).write_text(text)
    result = lab_process("run", "--config", name, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr.startswith(f"lab: error: {message}") and result.stderr.count("\n") == 1, (
        result.stderr
    )


def test_save_config_in_a_process_needs_no_docker_and_reads_back(tmp_path: Path) -> None:
    result = lab_process(
        "run", "linear", "-n", "2", "--v2-env", "APP_FAIL_RATE=0.1", "--save-config", "s.yaml", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    loaded = load(tmp_path / "s.yaml")
    assert loaded.strategy == "linear" and loaded.options["fleet_size"] == 2
    assert loaded.env["v2"] == {"APP_FAIL_RATE": "0.1"}
