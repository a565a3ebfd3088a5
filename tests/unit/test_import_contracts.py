"""The architecture's promises that `lint-imports` alone cannot keep: every module is under its contract,
and the pure transforms run where the Docker SDK cannot be imported."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "lab"
ENGINE_FREE = "only the engines import an engine's SDK"


def contracts() -> dict[str, dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return {c["name"]: c for c in config["tool"]["importlinter"]["contracts"]}


def test_every_module_but_the_engines_is_forbidden_the_engine_sdk() -> None:
    top = {p.stem for p in LAB.glob("*.py") if p.stem not in ("__init__", "__main__")}
    top |= {p.name for p in LAB.iterdir() if (p / "__init__.py").is_file()}
    named = {m.removeprefix("lab.") for m in contracts()[ENGINE_FREE]["source_modules"]}
    assert named == top - {"engines"}, "add the new module to the contract in pyproject.toml"
    assert set(contracts()[ENGINE_FREE]["forbidden_modules"]) == {"docker", "testcontainers"}


def test_the_contracts_can_fail(tmp_path: Path) -> None:
    """lint-imports really reads this project: a forbidden import added in a copy breaks a contract."""
    copy = tmp_path / "lab"
    subprocess.run(["cp", "-r", str(LAB), str(copy)], check=True)
    (copy / "analysis" / "leak.py").write_text("import lab.pipeline\n")
    lint = Path(sys.executable).with_name("lint-imports")
    clean = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    broken = subprocess.run(
        [lint, "--config", str(ROOT / "pyproject.toml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert clean.returncode == 0, clean.stdout[-2000:]
    assert broken.returncode != 0 and "lab.analysis.leak -> lab.pipeline" in broken.stdout, broken.stdout


# A `docker` (and `testcontainers`) that cannot be imported, as where the SDK is not installed.
_NO_DOCKER = (
    "import sys; sys.modules['docker'] = None; sys.modules['testcontainers'] = None; "
    "sys.argv = ['lab', *sys.argv[1:]]; from lab.cli import main; main()"
)


def lab_without_docker(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _NO_DOCKER, *args], capture_output=True, text=True)


def test_plan_and_strategies_run_without_the_docker_sdk() -> None:
    done = lab_without_docker("plan", "canary", "--fleet", "2")
    assert done.returncode == 0, done.stderr
    assert "route v1 90%, v2 10%" in done.stdout and "upstream" in done.stdout
    assert lab_without_docker("strategies").returncode == 0


def test_report_rebuilds_a_run_folder_without_the_docker_sdk(tmp_path: Path) -> None:
    from lab.analysis.summary import summarize
    from lab.model import Sample
    from lab.options import RunOptions
    from lab.output import report
    from lab.record import RunRecord

    record = RunRecord(RunOptions("in-place"), "abc123", "2026-12-01T00:00:00+00:00", 0.0, status="completed")
    record.probe_started = 0.0
    record.samples = [Sample(i, i / 100, i / 100, i / 100 + 0.002, 200, "v1") for i in range(100)]
    folder = report.write_run(record, summarize(record.samples, [], target_rate=100.0), tmp_path / "run")
    (folder / "report.html").unlink()
    done = lab_without_docker("report", str(folder))
    assert done.returncode == 0, done.stderr
    assert (folder / "report.html").is_file()
    assert json.loads((folder / "journal.json").read_text())["status"] == "completed"
    refused = lab_without_docker("run", "in-place")  # the one thing that needs the SDK says so
    assert refused.returncode != 0
