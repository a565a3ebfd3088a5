"""The workshop's commands, every one in order as docs/workshop prints it (scripts/workshop_check.py), as an
integration test: `make test` runs it beside the others on the session's workers, where it once ran alone
after them (3.3 minutes, the longest item of the suite)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_workshop_command_runs_as_written() -> None:
    venv_bin = str(Path(sys.executable).parent)  # where `lab` is, as after `. .venv/bin/activate`
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "workshop_check.py"), "--bin", venv_bin],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"total, (\d+) of \1 command\(s\) run", done.stdout), done.stdout[-3000:]
