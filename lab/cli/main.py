"""The entry point: signals, and one line for every error instead of a traceback."""

from __future__ import annotations

import os
import signal
import sys
from types import FrameType

import typer

from lab.cli.app import app, err
from lab.errors import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, LabError


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # The first Ctrl-C (or a CI job's SIGTERM) starts the clean-up; later ones must not cut it short and
    # leave containers behind, so both are ignored from here on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> None:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(standalone_mode=False)
    except LabError as exc:
        err.print(f"lab: error: {exc}", markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("lab: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except typer.TyperException as exc:  # usage errors: a bad option value, a missing argument
        if exc.format_message():  # empty when no command was given: the help was printed instead
            err.print(f"lab: error: {exc.format_message()}", markup=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    except KeyboardInterrupt:
        err.print("lab: interrupted", markup=False)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # a bug: still one line; LAB_DEBUG=1 shows the traceback
        if os.environ.get("LAB_DEBUG") == "1":
            raise
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        err.print(f"lab: error: internal error: {message} (LAB_DEBUG=1 for details)", markup=False)
        sys.exit(EXIT_ERROR)
    sys.exit(code if isinstance(code, int) else EXIT_OK)
