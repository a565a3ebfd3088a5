"""The workshop's commands, every one as docs/workshop prints it (scripts/workshop_check.py), as an
integration test. The exercises run in two lanes, each exercise's commands in order in one lane: they are
independent of each other, and their runs spend most of their time in the pauses they ask for, so the
longest item of the suite (3 to 4 minutes one after the other) takes about half as long. Its commands
assert exit codes, which a busier machine does not change (a rollback that the bake's length forces, a
budget whose verdict may go either way is written `# exit 0 or 3`)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_workshop_command_runs_as_written() -> None:
    venv_bin = str(Path(sys.executable).parent)  # where `lab` is, as after `. .venv/bin/activate`
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "workshop_check.py"), "--bin", venv_bin, "--jobs", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"total, (\d+) of \1 command\(s\) run", done.stdout), done.stdout[-3000:]
