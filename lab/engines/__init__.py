"""Everything that talks to a container engine lives in this package, behind `Runtime`."""

from lab.engines.base import LABEL, RUN_LABEL, ProxyEndpoints, Removed, Runtime

__all__ = ["LABEL", "RUN_LABEL", "ProxyEndpoints", "Removed", "Runtime"]
