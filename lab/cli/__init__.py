"""The `lab` command: a thin layer over the runner, the planner and the runtime.

One module per group of commands; importing them registers the commands on `app`.
"""

from lab.cli import compare, images, info, measure, report, run  # noqa: F401  (registers the commands)
from lab.cli.app import DEFAULT_COMPARISON, app
from lab.cli.main import main

__all__ = ["DEFAULT_COMPARISON", "app", "main"]
