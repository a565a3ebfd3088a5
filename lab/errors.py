"""Errors the command line turns into one clear line and a non-zero exit, never a traceback; and every exit
code the lab gives."""

from __future__ import annotations

# Exit codes: the verdict of a run, so CI can gate on it (lab/experiments.py decides which).
EXIT_OK = 0
EXIT_ERROR = 1  # a lab error: Docker, a rejected config, a probe that failed ...
EXIT_USAGE = 2  # bad input
EXIT_BUDGET = 3  # a budget (--max-downtime-ms, --max-failed) exceeded
EXIT_ROLLED_BACK = 4  # the deployment rolled back
EXIT_COMMAND_FAILED = 5  # `lab measure`: the deploy command itself exited non-zero
EXIT_INTERRUPTED = 130


class LabError(Exception):
    """Something the user can act on; the message is printed as it is."""

    exit_code = 1


class BadInput(LabError):
    exit_code = 2


class DockerUnavailable(LabError):
    pass


class ImagesMissing(LabError):
    pass


class PortInUse(LabError):
    pass


class ConfigRejected(LabError):
    """`nginx -t` refused a rendered config. The proxy goes on serving the previous one."""
