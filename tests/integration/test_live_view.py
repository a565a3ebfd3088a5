"""`lab run` on a real fleet with stderr on a pseudo-terminal: the live view draws, and the run still cleans
up, whether it ends by itself or by Ctrl-C."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Terminal:
    """`python -m lab ...` with stderr on a pseudo-terminal (what a person sees) and stdout on a pipe."""

    def __init__(self, *args: str, cwd: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k not in {"FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR"}}
        env.update(TERM="xterm-256color", COLUMNS="110", LINES="40")
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lab", *args],
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=slave,
            text=True,
        )
        os.close(slave)
        self.screen = b""

    def read(self, timeout_s: float = 0.1) -> None:
        # Read all the time: a terminal nobody reads fills up and blocks the lab in its next write.
        while select.select([self.master], [], [], timeout_s)[0]:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the lab exited and closed its end
                return
            if not chunk:
                return
            self.screen += chunk
            timeout_s = 0.0

    def text(self) -> str:
        return ANSI.sub("", self.screen.decode(errors="replace"))

    def wait_for(self, pattern: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not re.search(pattern, self.text()):
            assert self.proc.poll() is None, f"the lab exited before {pattern!r}:\n{self.text()}"
            assert time.monotonic() < deadline, f"{pattern!r} not drawn within {timeout_s} s:\n{self.text()}"
            self.read()

    def finish(self, timeout_s: float = 120.0) -> tuple[int, str]:
        deadline = time.monotonic() + timeout_s
        while self.proc.poll() is None:
            if time.monotonic() > deadline:
                self.proc.kill()
                raise AssertionError(f"the lab did not finish within {timeout_s} s:\n{self.text()}")
            self.read()
        self.read()
        assert self.proc.stdout is not None
        stdout = self.proc.stdout.read()
        os.close(self.master)
        return self.proc.returncode, stdout


RUN = ["run", "blue-green", "--fleet", "2", "--baseline", "1", "--settle", "1"]


def test_run_on_a_terminal_draws_the_live_view_and_cleans_up(tmp_path: Path) -> None:
    term = Terminal(*RUN, "--out", str(tmp_path / "runs"), cwd=tmp_path)
    code, stdout = term.finish()
    screen = term.text()
    assert code == 0, screen + stdout
    # Drawn in place while the run went: the plan's progress, the routing, the share of answers.
    assert "\x1b[?25l" in term.screen.decode()  # the cursor hidden while the view redraws in place
    assert re.search(r"blue-green · step 1 \(2 of ~?7\): route v1 50%, v2 50% over", screen), screen
    assert re.search(r"routing now +v1 50% v2 50% +\(2 x v1 \+ 2 x v2 instances\)", screen)
    assert re.search(r"last second +[█▒]+ v1 \d+% v2 \d+% of [\d,]+ good answers", screen)
    assert re.search(r"probe rate +sent [\d,.]+ req/s of 200 req/s", screen)
    assert "blue-green · run completed" in screen  # the last frame stays
    assert "step 6 done in" in screen  # the step lines still print above the view
    # The results went to stdout, not to the terminal, after the view ended.
    assert "requests failed" in stdout and "last second" not in stdout
    assert "requests failed" not in screen


def test_ctrl_c_under_the_live_view_ends_it_and_cleans_up(tmp_path: Path) -> None:
    term = Terminal(*RUN, "--out", str(tmp_path / "runs"), cwd=tmp_path)
    term.wait_for(r"blue-green · step 2 \(3 of", timeout_s=90)  # blue and green both serve
    term.proc.send_signal(signal.SIGINT)
    code, stdout = term.finish()
    screen = term.text()
    assert code == 130, screen
    assert "blue-green · run interrupted" in screen
    # The clean-up's line comes after the view's last frame, on a line of its own.
    tail = screen[screen.rindex("run interrupted") :]
    assert re.search(r"^lab: error: interrupted; removed \d+ container\(s\)", tail, re.MULTILINE), tail
    assert stdout == ""
