#!/usr/bin/env python3
"""Run every measurement the docs quote, in order, and keep what each command printed and wrote.

    .venv/bin/python scripts/docs_measure.py [OUT]          # default OUT: /tmp/docs-measure/<YYYYMMDD>
    .venv/bin/python scripts/docs_measure.py --list         # the steps, in order, and where they are quoted
    .venv/bin/python scripts/docs_measure.py OUT --only ws4 # only the steps whose name contains ws4

Each step is one command, run from the repository's root with `.venv/bin` first on PATH, as written in the
docs (with `--no-live`, and `--out` pointing into OUT so that its run folders land there). For step NN it
writes `OUT/NN-<name>/`: `command.txt`, `stdout.txt`, `stderr.txt`, `exit.txt`, `setup.txt` (set-up and
clean-up commands, such as a compose pair brought up around a `lab measure`) and the run folders under
`runs/`. `OUT/steps.tsv` and `OUT/steps.json` list every step with its exit code, wall time and the commit
measured (`+dirty` when lab/ or sample_app/ differed from it: the lab is installed editable); one line per
step goes to stdout as it ends. A step whose exit is not the one expected is flagged, not fatal: the next
steps still run (the docs quote rollbacks and budgets too). Tables are printed 200 columns wide, as
`lab compare` writes compare.txt.

Standard library only; runs `.venv/bin/lab` (and the workshop checker, pytest and docker-compose for the
workshop's compose exercise and `lab measure`) as subprocesses. The first step, `lab images`, builds any
image that is missing. Needs the Docker engine to itself for the whole run: 44 steps, about 25 minutes on a
2-core machine (23 min 9 s for the 42 of 1 December 2026, before the `--settle 2` and `--settle 12` runs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
LAB = str(BIN / "lab")
PYTHON = str(BIN / "python")
BLUE_GREEN = "compose/blue-green/compose.yaml"
BASELINE = "compose/baseline/compose.yaml"


@dataclass
class Step:
    name: str
    where: str  # the docs that quote it
    argv: list[str]  # `lab ...` is run as .venv/bin/lab; `{runs}` becomes the step's runs/ folder
    exits: tuple[int, ...] = (0,)
    before: list[list[str]] = field(default_factory=list)  # set-up commands (their output is kept too)
    after: list[list[str]] = field(default_factory=list)  # clean-up commands, run even if the step failed
    move_runs: bool = False  # the command writes to the repo's runs/: move the new folders to the step's
    files: dict[str, str] = field(default_factory=dict)  # written into the step's folder first (executable)


def compose_program() -> list[str]:
    """`docker compose` if the plugin answers, else `docker-compose` (as scripts/workshop_check.py does)."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise SystemExit("docs_measure: neither `docker compose` nor `docker-compose` is installed")


def _lab(command: str) -> list[str]:
    """`lab ...` as the docs write it, split as the shell would, with `--out {runs}` added (before a
    measure's `--`) so that the run folders land in the step's folder."""
    argv = shlex.split(command)
    at = argv.index("--") if "--" in argv else len(argv)
    return [*argv[:at], "--out", "{runs}", *argv[at:]]


def steps() -> list[Step]:
    """Every measurement the docs quote, in order."""
    compose = compose_program()
    dc = " ".join(compose)
    result: list[Step] = []

    def add(name: str, where: str, command: str, exits: tuple[int, ...] = (0,), **kw: Any) -> None:
        result.append(Step(name, where, _lab(command), exits, **kw))

    # First: build any image that is missing or out of date (at once when they are current).
    result.append(
        Step("images", "README.md#commands (not a figure: the runs need the images)", [LAB, "images"])
    )
    # README.md "Strategies, side by side", docs/strategies.md "Side by side": both comparison tables, and
    # the repeated rolling comparison that "What the tables show" quotes.
    add("compare-default", "README.md, docs/strategies.md#the-default-scenario", "lab compare --no-live")
    add(
        "compare-errors",
        "docs/strategies.md#a-bad-release",
        "lab compare --no-live canary blue-green-all-at-once in-place --scenario errors",
    )
    add(
        "compare-rolling-hard-stop",
        "docs/strategies.md#what-the-tables-show",
        "lab compare --repeat 3 --no-live rolling rolling:drain_s=1 --next-upstream off",
    )
    # docs/statistics.md "Measured".
    add(
        "stats-compare-repeat3",
        "docs/statistics.md#measured",
        "lab compare --repeat 3 --no-live in-place rolling red-black blue-green",
    )
    add("stats-red-black-repeat5", "docs/statistics.md#measured", "lab run red-black --repeat 5 --no-live")
    # docs/results.md "The summary".
    add("results-blue-green", "docs/results.md#the-summary", "lab run blue-green --no-live")
    # README.md "Scenario files" (docs/config.md runs the same files, and quotes no figure).
    add(
        "config-canary-bad-release",
        "README.md#scenario-files",
        "lab run --config examples/canary-bad-release.yaml --no-live",
        exits=(0, 3, 4),
    )
    add(
        "config-rolling-ci-gate",
        "README.md#scenario-files",
        "lab run --config examples/rolling-ci-gate.toml --no-live",
        exits=(0, 3),
    )

    # The workshop, every command as written, once (it writes to the repo's runs/: moved to the step's).
    result.append(
        Step(
            "workshop-check",
            "docs/workshop/README.md#for-the-instructor",
            [PYTHON, "scripts/workshop_check.py"],
            move_runs=True,
        )
    )
    # Its "What you should see" tables: three runs of each command (in rounds), exercise 3's table.
    ex1, ex2, ex3, ex4 = (
        f"docs/workshop/0{n}"
        for n in ("1-downtime.md", "2-rolling-drain.md", "3-canary-bake.md", "4-mixed-window.md")
    )
    for i in (1, 2, 3):
        add(f"ws1-in-place-{i}", ex1, "lab run in-place --fleet 3 --no-live")
        add(f"ws1-blue-green-{i}", ex1, "lab run blue-green --fleet 3 --no-live")
    for i in (1, 2, 3):
        add(f"ws2-rolling-{i}", ex2, "lab run rolling --fleet 3 --no-live")
        add(f"ws2-hard-stop-{i}", ex2, "lab run rolling --fleet 3 --next-upstream off --no-live")
        add(
            f"ws2-drained-{i}",
            ex2,
            "lab run rolling --fleet 3 --next-upstream off -p drain_s=1 --max-failed 0 --no-live",
            exits=(0, 3),
        )
    add(
        "ws3-compare-repeat5",
        ex3,
        "lab compare --repeat 5 --no-live canary:percents=10:bake_s=1 canary:percents=10:bake_s=2"
        " canary:percents=10:bake_s=5 --fleet 2 --v2-env APP_FAIL_RATE=0.05 --baseline 1 --settle 1",
    )
    add("ws3-short-bake", ex3, "lab run canary --fleet 2 -p percents=10 -p bake_s=0.2 --no-live", exits=(4,))
    for i in (1, 2, 3):
        add(f"ws4-overlap-{i}", ex4, "lab run blue-green --fleet 2 --no-live")
        add(f"ws4-keepalive-{i}", ex4, "lab run blue-green --fleet 2 -p overlap_s=0 --no-live")
        add(f"ws4-fresh-{i}", ex4, "lab run blue-green --fleet 2 -p overlap_s=0 --mode fresh --no-live")

    # Exercise 5's `lab measure` of the switch by hand, three times, each on a pair brought up afresh.
    pair = f"{dc} -f {BLUE_GREEN}"
    up_pair, down_pair = shlex.split(f"{pair} up -d"), shlex.split(f"{pair} down -v --remove-orphans")
    switch = (
        f"{pair} exec -T proxy cp /etc/deploylab/nginx-green.conf /etc/nginx/nginx.conf"
        f" && {pair} exec -T proxy nginx -s reload"
    )
    for i in (1, 2, 3):
        add(
            f"ws5-measure-switch-{i}",
            "docs/workshop/05-compose.md",
            f"lab measure http://127.0.0.1:8089/ --no-live -- sh -c {shlex.quote(switch)}",
            before=[down_pair, up_pair],
            after=[down_pair],
        )

    # README.md "Measure your own deployment", docs/measure.md: switch.sh, and the baseline stopped and
    # started (the scripts as docs/measure.md prints them, with compose spelled as it is installed here).
    switch_sh = (
        f'#!/bin/sh\nset -e\ncompose="{pair}"\n'
        "$compose exec -T proxy cp /etc/deploylab/nginx-green.conf /etc/nginx/nginx.conf\n"
        '$compose exec -T proxy nginx -s reload\necho "switched to green"\n'
    )
    add(
        "measure-switch",
        "README.md#measure-your-own-deployment, docs/measure.md#measured-on-this-machine",
        "lab measure http://127.0.0.1:8089/ --no-live -- {step}/switch.sh",
        before=[down_pair, up_pair],
        after=[down_pair],
        files={"switch.sh": switch_sh},
    )
    base = f"{dc} -f {BASELINE}"
    instances = "app-v1-1 app-v1-2 app-v1-3"
    restart_sh = f"#!/bin/sh\nset -e\n{base} stop {instances}\n{base} start {instances}\n"
    # nginx's log (its "no live upstreams" lines) goes to the step's setup.txt before the pair goes down.
    for settle in ("8", "2", "12"):
        add(
            f"measure-restart-settle{settle}",
            "README.md#measure-your-own-deployment, docs/measure.md#measured-on-this-machine",
            f"lab measure http://127.0.0.1:8088/ --settle {settle} --no-live -- {{step}}/restart.sh",
            before=[shlex.split(f"{base} down -v --remove-orphans"), shlex.split(f"{base} up -d")],
            after=[
                shlex.split(f"{base} logs --no-color proxy"),
                shlex.split(f"{base} down -v --remove-orphans"),
            ],
            files={"restart.sh": restart_sh},
        )

    # README.md "In your CI", docs/pytest-plugin.md: the example test file's three deployments.
    result.append(
        Step(
            "pytest-example",
            "README.md#in-your-ci-the-pytest-plugin, docs/pytest-plugin.md",
            [str(BIN / "pytest"), "-p", "no:cacheprovider", "-v", "docs/examples/test_deploy.py"]
            + ["--deploy-lab-runs", "{runs}"],
        )
    )
    return result


def _expand(argv: list[str], runs: Path, folder: Path) -> list[str]:
    out = [a.replace("{runs}", str(runs)).replace("{step}", str(folder)) for a in argv]
    if out and out[0] == "lab":
        out[0] = LAB
    return out


def _shown(argv: list[str]) -> str:
    """The command as the docs write it: `lab ...`, `.venv/bin/python ...`."""
    shown = list(argv)
    if shown[0] == LAB:
        shown[0] = "lab"
    elif shown[0].startswith(str(BIN)):
        shown[0] = os.path.relpath(shown[0], ROOT)
    return shlex.join(shown)


def run_step(number: int, step: Step, out: Path, env: dict[str, str]) -> dict[str, object]:
    folder = out / f"{number:02d}-{step.name}"
    runs = folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    for name, text in step.files.items():
        path = folder / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o755)
    argv = _expand(step.argv, runs, folder)
    commit = _commit()
    (folder / "command.txt").write_text(_shown(argv) + "\n", encoding="utf-8")
    repo_runs = ROOT / "runs"
    before_runs = set(repo_runs.iterdir()) if repo_runs.is_dir() else set()
    with open(folder / "setup.txt", "w", encoding="utf-8") as log:
        for command in step.before:
            log.write(f"$ {shlex.join(command)}\n")
            log.flush()
            subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    started = time.monotonic()
    try:
        with (
            open(folder / "stdout.txt", "w", encoding="utf-8") as so,
            open(folder / "stderr.txt", "w", encoding="utf-8") as se,
        ):
            code = subprocess.run(
                argv, cwd=ROOT, env=env, stdout=so, stderr=se, stdin=subprocess.DEVNULL
            ).returncode
    except KeyboardInterrupt:
        code = 130
        raise
    finally:
        wall = time.monotonic() - started
        with open(folder / "setup.txt", "a", encoding="utf-8") as log:
            for command in step.after:
                log.write(f"$ {shlex.join(command)}\n")
                log.flush()
                subprocess.run(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        if step.move_runs and repo_runs.is_dir():
            for new in sorted(set(repo_runs.iterdir()) - before_runs):
                shutil.move(str(new), str(runs / new.name))
    (folder / "exit.txt").write_text(f"{code}\n", encoding="utf-8")
    return {
        "commit": commit,
        "number": number,
        "name": step.name,
        "where": step.where,
        "command": _shown(argv),
        "exit": code,
        "expected": list(step.exits),
        "wall_s": round(wall, 1),
        "folder": str(folder),
    }


def _commit() -> str:
    """The code measured: HEAD, and `+dirty` when the working tree differs from it (the lab is installed
    editable, so a change to lab/ during the measurement is measured from the next step on)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "--", "lab", "sample_app"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _minutes(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m else f"{s} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="docs_measure", description=__doc__.splitlines()[0])
    today = dt.date.today().strftime("%Y%m%d")
    parser.add_argument("out", nargs="?", type=Path, default=Path("/tmp/docs-measure") / today)
    parser.add_argument("--only", metavar="TEXT", action="append", help="only steps whose name contains TEXT")
    parser.add_argument("--list", action="store_true", help="print the steps and exit")
    args = parser.parse_args(argv)
    plan = steps()
    chosen = [
        (n, s) for n, s in enumerate(plan, start=1) if not args.only or any(t in s.name for t in args.only)
    ]
    if args.list:
        for n, s in chosen:
            print(f"{n:02d}  {s.name:28} {_shown(s.argv)}\n    quoted in {s.where}")
        return 0
    if not Path(LAB).exists():
        raise SystemExit(f"docs_measure: no {LAB}: run `make install` first")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    # Tables 200 columns wide, as `lab compare` writes compare.txt (stdout is a file, not a terminal).
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "COLUMNS": "200"}
    print(f"docs_measure: {len(chosen)} step(s) into {out}", flush=True)
    done: list[dict[str, object]] = []
    started = time.monotonic()
    try:
        for n, step in chosen:
            row = run_step(n, step, out, env)
            done.append(row)
            flag = (
                ""
                if row["exit"] in step.exits
                else f"  UNEXPECTED (want {' or '.join(map(str, step.exits))})"
            )
            print(
                f"[{n:02d}/{len(plan):02d}] {row['wall_s']:7.1f} s  exit {row['exit']:<3} {step.name:28} "
                f"{row['commit']}  $ {row['command']}{flag}",
                flush=True,
            )
    finally:
        total = time.monotonic() - started
        (out / "steps.json").write_text(
            json.dumps({"total_s": round(total, 1), "steps": done}, indent=2) + "\n", encoding="utf-8"
        )
        with open(out / "steps.tsv", "w", encoding="utf-8") as tsv:
            tsv.write("number\tname\texit\twall_s\tcommit\tcommand\n")
            for row in done:
                tsv.write(
                    f"{row['number']}\t{row['name']}\t{row['exit']}\t{row['wall_s']}\t{row['commit']}\t"
                    f"{row['command']}\n"
                )
        print(f"docs_measure: {len(done)} step(s) in {_minutes(total)}; {out}/steps.tsv", flush=True)
    expected = {s.name: s.exits for _, s in chosen}
    return 1 if any(r["exit"] not in expected[str(r["name"])] for r in done) else 0


if __name__ == "__main__":
    sys.exit(main())
