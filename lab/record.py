"""What one run recorded: its options, every sample and step on the one clock, the outcome. Pure data;
lab/output turns it into the journal and the run folder."""

from __future__ import annotations

from dataclasses import dataclass, field

from lab.model import Event, Sample
from lab.options import ProxySettings, RunOptions


@dataclass(frozen=True)
class Removed:
    containers: int
    networks: int
    left: list[str] = field(default_factory=list)  # what could not be removed, and why
    services: int = 0  # Swarm services

    def __str__(self) -> str:
        text = f"{self.containers} container(s), {self.networks} network(s)"
        if self.services:
            text = f"{self.services} service(s), " + text
        if self.left:
            text += f"; could not remove {'; '.join(self.left)} (run `lab clean`)"
        return text


@dataclass
class RunRecord:
    """What a run did; lab/output/journal.py turns it into the journal."""

    config: RunOptions
    run_id: str
    started_at: str  # wall clock, once: everything else is on the monotonic clock
    t0: float  # monotonic time of the start, the origin of every relative time in the report
    events: list[Event] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    configs: list[tuple[str, str]] = field(default_factory=list)  # (label, rendered nginx.conf)
    status: str = "running"  # completed, rolled_back, failed, interrupted
    error: str | None = None
    error_exit: int = 1  # the exit code `error` calls for: 2 when it was bad input found during the run
    url: str | None = None  # where the probe sent its requests
    # The proxy's port on 127.0.0.1 (for people: curl, --keep); `url` may be its address on the run's
    # network instead, past Docker's userland proxy. None where the lab has no proxy (`lab measure`).
    published_url: str | None = None
    removed: Removed | None = None
    probe_started: float | None = None
    probe_stopped: float | None = None
    error_detail: str | None = None  # the traceback of an internal error, for the journal
    notes: list[str] = field(default_factory=list)  # what the reader should know: a setting dropped ...
    proxy: ProxySettings | None = None  # the settings the configs were rendered with
    # The version that served before and the new one, as the analysis took them (`lab measure` finds the
    # old one in its baseline); None where unknown.
    versions: tuple[str | None, str | None] = ("v1", "v2")
    # `lab measure`: the deploy command's argv, exit code, and every line it printed: (time, stream, line)
    command: tuple[str, ...] = ()
    command_exit: int | None = None
    output: list[tuple[float, str, str]] = field(default_factory=list)
    # Moments of the run's own machinery, on the one clock: setup_done, deploy_started, deploy_done,
    # teardown_started, teardown_done (lab/output/journal.py turns them into the phases' durations).
    marks: dict[str, float] = field(default_factory=dict)
