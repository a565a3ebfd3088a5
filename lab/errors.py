"""Errors the command line turns into one clear line and a non-zero exit, never a traceback."""

from __future__ import annotations


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
