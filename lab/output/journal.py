"""The journal and the `--json` object of a run: one dict each, built from its record and analysis.

The journal borrows the shape of Chaos Toolkit's: the input, one timed record per step, the analysis
and one overall status, written once at the end. Times in it are seconds since the run began
(`clock.origin_monotonic`), on the clock that stamped both the probe's samples and the steps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lab import __version__
from lab.analysis.rollout import capacity_timeline
from lab.analysis.summary import Analysis, version_share
from lab.model import Sample
from lab.options import ok_text
from lab.record import RunRecord

SHARE_BIN_S = 0.5
SAMPLE_COLUMNS = [
    "seq",
    "scheduled_s",
    "sent_s",
    "finished_s",
    "latency_ms",
    "status",
    "version",
    "instance",
    "error",
    "late",
    "upstream",  # nginx's X-Lab-Upstream: every server tried, the last one answered
    "client",  # which of the probe's clients sent it
    "kind",  # what it asked for: get, post, slow, stream
]


def _rel(t: float | None, origin: float) -> float | None:
    return None if t is None else round(t - origin, 6)


# Columns computed from a Sample rather than copied from its field of the same name.
_DERIVED: dict[str, Callable[[Sample, float], Any]] = {
    "scheduled_s": lambda s, t0: _rel(s.scheduled, t0),
    "sent_s": lambda s, t0: _rel(s.sent, t0),
    "finished_s": lambda s, t0: _rel(s.finished, t0),
    "latency_ms": lambda s, t0: None if s.finished is None else round((s.finished - s.scheduled) * 1000, 3),
    "error": lambda s, t0: s.error.value if s.error else None,
}


def sample_record(s: Sample, t0: float) -> dict[str, Any]:
    """One sample as every export writes it, in SAMPLE_COLUMNS order: None where nothing was measured.
    A column not derived above is the Sample field of that name, so a new field needs only its column."""
    return {name: _DERIVED[name](s, t0) if name in _DERIVED else getattr(s, name) for name in SAMPLE_COLUMNS}


def csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    return int(value) if isinstance(value, bool) else value


def command_record(record: RunRecord) -> dict[str, Any]:
    return {
        "argv": list(record.command),
        "exit_code": record.command_exit,
        "output": [
            {"at_s": round(at - record.t0, 4), "stream": stream, "line": line}
            for at, stream, line in record.output
        ],
    }


def timings(record: RunRecord) -> dict[str, float | None]:
    """How long each phase of the run took, in seconds: what the lab spent on its own machinery (setup,
    teardown) beside the probing it was asked for (baseline, deploy, settle). None: not reached."""
    m, t0 = record.marks, record.t0

    def span(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else round(end - start, 3)

    probing = record.probe_started
    wall = span(t0, m.get("teardown_done"))
    # The floor: the waits the run was asked for (the baseline, the plan's pauses, the settle), which no
    # machinery can shorten. The rest of the wall time is the lab's own, and the app's boots.
    cfg = record.config
    pauses = sum(e.ended - e.started for e in record.events if e.kind == "Pause")
    waited = round(cfg.baseline_s + pauses + cfg.settle_s, 3)
    return {
        "setup_s": span(t0, m.get("setup_done")),
        "probe_start_s": span(m.get("setup_done"), probing),
        "baseline_s": span(probing, m.get("deploy_started")),
        "deploy_s": span(m.get("deploy_started"), m.get("deploy_done")),
        "settle_s": span(m.get("deploy_done"), record.probe_stopped),
        "teardown_s": span(m.get("teardown_started"), m.get("teardown_done")),
        "wall_s": wall,
        "waited_s": waited,
        "overhead_s": None if wall is None else round(wall - waited, 3),
    }


def journal(record: RunRecord, analysis: Analysis) -> dict[str, Any]:
    cfg = record.config
    measure, request = cfg.measure, cfg.request
    origin = record.t0
    return {
        "lab_version": __version__,
        "run_id": record.run_id,
        "started_at": record.started_at,
        "clock": {"origin_monotonic": origin, "unit": "s"},
        "input": {
            "strategy": cfg.strategy,
            # A parsed value (a Batch) as it is written on the command line: `2`, `25%`.
            "params": {
                key: value if isinstance(value, int | float | str | tuple | list | None) else str(value)
                for key, value in cfg.params.items()
            },
            # The lab's own fleet; null for `lab measure`, which deploys nothing of its own.
            "scenario": None
            if measure
            else {
                "name": cfg.scenario,
                "fleet_size": cfg.fleet_size,
                "v1_env": dict(cfg.v1_env),
                "v2_env": dict(cfg.v2_env),
                "v1_app": dataclasses.asdict(cfg.v1_app),
                "v2_app": dataclasses.asdict(cfg.v2_app),
            },
            "probe": {
                "rate": cfg.rate,
                "mode": cfg.mode,
                "timeout_s": cfg.probe_timeout_s,
                "baseline_s": cfg.baseline_s,
                "settle_s": cfg.settle_s,
                "clients": cfg.clients,
                "testers": cfg.testers,
                "mix": {kind: weight for kind, weight in cfg.mix},
                "request": {
                    "headers": request.shown_headers(),  # a secret's value is never written
                    "insecure": request.insecure,
                    "ok": ok_text(request.ok),
                    "version_header": request.version_header,
                    "version_from_body": request.version_from_body,
                },
            },
            "proxy": None if measure else dataclasses.asdict(record.proxy or cfg.proxy),
            "measure": None
            if measure is None
            else {
                "url": measure.url,
                "command": list(measure.command),
                "duration_s": measure.duration_s,
                "old_version": measure.old_version,
            },
        },
        # The version that served before and the new one, as the analysis took them.
        "versions": {"old": record.versions[0], "new": record.versions[1]},
        "probe": {
            # Where the requests went: on a fleet run, the proxy at its address on the run's network
            # where this host reaches it, else its published port (`published_url`, for people).
            "url": record.url,
            "published_url": record.published_url,
            "started_s": _rel(record.probe_started, origin),
            "stopped_s": _rel(record.probe_stopped, origin),
        },
        "steps": [
            {
                "index": e.index,
                "kind": e.kind,
                "detail": e.detail,
                "start_s": _rel(e.started, origin),
                "end_s": _rel(e.ended, origin),
                "duration_s": round(e.ended - e.started, 4),
                "result": e.result,
                "error": e.error,
                "in_service": e.in_service,
            }
            for e in record.events
        ],
        "analysis": analysis.to_dict(origin),
        # Bins of scheduled time from the probe's first tick: what each half second of clients got.
        "version_share": [b.to_dict(origin) for b in version_share(record.samples, bin_s=SHARE_BIN_S)],
        # Instances routed with traffic, as planned: from the first step, then after each step.
        "capacity": []
        if measure
        else [
            {"at_s": round(t - origin, 4), "in_service": n}
            for t, n in capacity_timeline(record.events, cfg.fleet_size)
        ],
        # `lab measure`: the deploy command, its exit code and every line it printed, on the run's clock.
        "command": None if measure is None else command_record(record),
        # The run's own wall time by phase: setup and teardown are the lab's overhead.
        "timings": timings(record),
        "status": record.status,
        "error": record.error,
        "error_detail": record.error_detail,
        "notes": record.notes,
    }


def summary(record: RunRecord, analysis: Analysis, out_dir: Path | None) -> dict[str, Any]:
    """The `--json` object: the analysis's figures first, then where to find the rest. A run that failed
    before the probe started measured nothing: its figures are null, not zero."""
    figures = analysis.to_dict(record.t0)
    if record.probe_started is None:
        figures = dict.fromkeys(figures)
    return {
        "strategy": record.config.strategy,
        **figures,
        "status": record.status,
        "error": record.error,
        "notes": record.notes,
        "run_id": record.run_id,
        "output": str(out_dir) if out_dir else None,
        "timings": timings(record),
        **(
            {}
            if record.config.measure is None
            else {
                "url": record.config.measure.url,
                "command": {"argv": list(record.command), "exit_code": record.command_exit},
                "versions": {"old": record.versions[0], "new": record.versions[1]},
            }
        ),
    }
