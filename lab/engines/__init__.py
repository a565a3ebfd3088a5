"""Container engines, by name. Only this package imports an engine's SDK (`make lint` checks it), and only
when an engine is opened: `lab report` and `lab plan` run where Docker is not installed."""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from lab.engines.base import LABEL, RUN_LABEL, Engine, Fleet, Proxy, ProxyEndpoints
from lab.errors import BadInput, LabError

# name -> the module whose `open_engine(run_id, labels=...)` makes one run's engine
ENGINES = {"docker": "lab.engines.docker.local", "swarm": "lab.engines.docker.swarm"}

__all__ = ["ENGINES", "LABEL", "RUN_LABEL", "Engine", "Fleet", "Proxy", "ProxyEndpoints", "open_engine"]


def open_engine(
    name: str, run_id: str, *, labels: Mapping[str, str] | None = None, stop_grace_s: float = 10.0
) -> Engine:
    if name not in ENGINES:
        raise BadInput(f"unknown engine {name!r} (known: {', '.join(ENGINES)})")
    try:
        module = importlib.import_module(ENGINES[name])
    except ImportError as exc:  # the SDK is a dependency of the package; a broken install says which
        raise LabError(f"engine {name}: cannot import {exc.name or 'its SDK'} ({exc})") from None
    engine: Engine = module.open_engine(run_id, labels=labels, stop_grace_s=stop_grace_s)
    return engine
