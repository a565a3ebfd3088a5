"""The one pipeline every run goes through: set up, probe a baseline, deploy, settle, clean up, analyse,
write the run folder.

`Run` owns the probe's lifecycle and the clock; the target (`lab/targets/`) owns what is deployed. `run_once`
adds the analysis and the run folder. `lab run`, `lab measure`, `lab compare`, `--repeat`, the pytest
plugin and the integration tests all come through here.
"""

from __future__ import annotations

import contextlib
import math
import secrets
import threading
import time
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from lab.analysis.summary import Analysis, summarize
from lab.analysis.windows import new_version, still_failing
from lab.errors import LabError
from lab.live.feed import SampleFeed
from lab.model import ErrorClass
from lab.options import RunOptions
from lab.output import report, run_folder
from lab.probe.config import ProbeConfig
from lab.probe.process import ProbeProcess
from lab.record import RunRecord
from lab.signals import sigint_ignored
from lab.targets.base import EventHook, Probe, Target, no_hook

ProbeFactory = Callable[[ProbeConfig], Probe]
PENDING_URL = "http://pending.invalid/"  # the URL of a prelaunched probe until the target knows its own


Watch = Callable[[SampleFeed], AbstractContextManager[object]]  # the live view, around a run


def probe_config(url: str, options: RunOptions) -> ProbeConfig:
    # Enough workers to keep sending on schedule through a whole timeout of a hung server: with fewer,
    # every worker waits on the server and the ticks in between would be recorded as client saturation,
    # hiding server failures. Capped, because a thread per request in flight has a cost too.
    workers = min(1024, max(64, math.ceil(options.rate * options.probe_timeout_s * 1.25)))
    request = options.request
    return ProbeConfig(
        url=url,
        rate=options.rate,
        mode=options.mode,
        timeout_s=options.probe_timeout_s,
        workers=workers,
        headers=request.headers,
        insecure=request.insecure,
        ok=request.ok,
        version_header=request.version_header,
        version_from_body=request.version_from_body,
        clients=options.clients,
        testers=options.testers,
        mix=options.mix,
    )


class Run:
    """One run's probe lifecycle around a target: set-up, baseline, deploy, settle, clean-up."""

    def __init__(
        self,
        options: RunOptions,
        target: Target,
        *,
        run_id: str | None = None,
        probe_factory: ProbeFactory = ProbeProcess,
        keep: bool = False,
        hook: EventHook = no_hook,
    ):
        self.options, self.target = options, target
        self.probe_factory, self.keep, self.hook = probe_factory, keep, hook
        self.record = RunRecord(
            options,
            run_id or secrets.token_hex(3),
            datetime.now(UTC).isoformat(timespec="seconds"),
            time.monotonic(),
        )
        # Samples streamed from the probe while the run goes on, for a Judge and the live view.
        self.feed = SampleFeed(options.rate, self.record.t0, plan=target.outlook)
        self.probe: Probe | None = None
        self._teardown: threading.Thread | None = None
        self._teardown_error: BaseException | None = None

    def execute(self, *, wait_teardown: bool = True) -> RunRecord:
        """The run, whatever happens to it: its record says how it ended. A Ctrl-C is raised again once
        everything the run made is gone; with `wait_teardown=False`, once its removal has begun in a
        thread of its own, which `finish` waits for (the caller writes the run's folder meanwhile)."""
        record, options, mark = self.record, self.options, self.record.marks
        probe: Probe | None = None
        early = self._prelaunch()
        try:
            record.url = self.target.setup(self)
            mark["setup_done"] = time.monotonic()
            raw: Probe
            if early is not None:
                early.retarget(record.url)
                raw, early = early, None
            else:
                raw = self.probe_factory(probe_config(record.url, options))
            probe = self.probe = self.target.attach(raw)
            try:
                probe.start()
            except RuntimeError as exc:
                raise LabError(str(exc).splitlines()[0]) from None
            record.probe_started = probe.started_at
            self.feed.attach(probe, probe.started_at)
            self.feed.set_phase("baseline")
            self.hook(f"probing {record.url} at {options.rate:g} req/s ({options.mode})", None)
            time.sleep(options.baseline_s)
            self.target.after_baseline(self)
            self.feed.set_phase("plan")
            mark["deploy_started"] = time.monotonic()
            record.status = self.target.deploy(self)
            mark["deploy_done"] = time.monotonic()
            self.feed.set_phase("settle")
            time.sleep(options.settle_s)
        except KeyboardInterrupt:
            record.status, record.error = "interrupted", "interrupted by the user"
            raise
        except LabError as exc:
            record.status, record.error, record.error_exit = "failed", str(exc), exc.exit_code
        except Exception as exc:  # a bug or an engine surprise: still clean up and still write the journal
            record.status = "failed"
            record.error = f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]
            record.error_detail = traceback.format_exc()
        finally:
            self.feed.set_phase("cleanup")
            if early is not None:  # launched, never started: the setup failed
                early.close()
            with sigint_ignored():
                try:
                    if probe is not None:
                        self._stop_probe(probe)
                finally:  # whatever stopping the probe did, what the target made goes
                    if wait_teardown:
                        self._tear_down()
                        self.finish()
                    else:
                        self._teardown = threading.Thread(target=self._tear_down, name="teardown")
                        self._teardown.start()
        return record

    def _tear_down(self) -> None:
        record, mark = self.record, self.record.marks
        mark["teardown_started"] = time.monotonic()
        try:
            self.target.teardown(self, keep=self.keep and record.status != "interrupted")
        except BaseException as exc:  # raised by `finish`, in the caller's thread
            self._teardown_error = exc
        finally:
            mark["teardown_done"] = time.monotonic()
            self.feed.finish(record.status)

    def finish(self) -> None:
        """Wait until what the run made is gone (a teardown begun by `execute(wait_teardown=False)`), and
        raise what the teardown raised."""
        if self._teardown is not None:
            self._teardown.join()
            self._teardown = None
        error, self._teardown_error = self._teardown_error, None
        if error is not None:
            raise error

    def _prelaunch(self) -> ProbeProcess | None:
        """The probe's processes started before the target's setup, which takes seconds: their
        interpreters load meanwhile. Probes that cannot (a test's fake) start as ever, after it."""
        if self.probe_factory is not ProbeProcess:  # a test's fake probe: started after the setup
            return None
        probe = ProbeProcess(probe_config(PENDING_URL, self.options))
        try:
            probe.prelaunch()
        except (RuntimeError, OSError):  # they will be started again, the usual way, after the setup
            probe.close()
            return None
        return probe

    def _stop_probe(self, probe: Probe) -> None:
        record = self.record
        self.feed.stopping()
        record.samples = probe.stop()
        self.feed.detach()
        record.probe_stopped = time.monotonic()
        unsent = sum(1 for s in record.samples if s.error is ErrorClass.SATURATED)
        if unsent:
            record.notes.append(
                f"{unsent:,} ticks were not sent (client saturation): server failures while they were due "
                "are not counted, so failures may be undercounted"
            )
        # Only after a step: before one, nothing was deployed that probing longer would see recover.
        if record.events and (still := still_failing(record.samples)):
            record.notes.append(
                f"clients were still failing when the probe stopped (the last {still:,} requests sent "
                "failed): the last downtime window is cut short, the outage lasted at least that long; "
                "probe longer after the deployment (--settle)"
            )
        if probe.error and record.status not in {"failed", "interrupted"}:
            # A hole in the samples is not missing traffic: the run measured nothing there.
            last = (probe.error.strip().splitlines() or ["no message"])[-1]
            record.status = "failed"
            record.error = f"the probe failed: {last}"
            record.error_detail = probe.error


@dataclass(frozen=True)
class RunResult:
    record: RunRecord
    analysis: Analysis
    folder: Path | None  # None: written nowhere


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run: what the run made is gone, and what it measured is in `result`'s folder."""

    def __init__(self, result: RunResult):
        super().__init__("interrupted by the user")
        self.result = result


def analyse(record: RunRecord, target: Target) -> Analysis:
    """The run's figures, and the versions they were taken for in the record (`lab measure` names the new
    one after the run: the version other than the old that answered most)."""
    record.versions = (target.old, target.new or new_version(record.samples, target.old))
    return summarize(
        record.samples,
        record.events,
        target_rate=record.config.rate,
        old=target.old,
        new=target.new,
        fleet_size=target.capacity,
        testers=record.config.testers,
    )


def folder_for(out_dir: Path, name: str, run_id: str) -> Path:
    return out_dir / f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{name}-{run_id}"


def run_once(
    options: RunOptions,
    target: Target,
    *,
    out_dir: Path | None,
    run_id: str | None = None,
    probe_factory: ProbeFactory = ProbeProcess,
    keep: bool = False,
    hook: EventHook = no_hook,
    watch: Watch | None = None,
) -> RunResult:
    """One run from set-up to its folder under `out_dir` (None: no folder). A Ctrl-C raises `Interrupted`
    once the run's objects are gone and what it measured is written."""
    run_id = run_id or secrets.token_hex(3)
    run = Run(options, target, run_id=run_id, probe_factory=probe_factory, keep=keep, hook=hook)
    interrupted = False
    with watch(run.feed) if watch is not None else contextlib.nullcontext():
        try:
            # The folder is written while the run's objects are removed: the removal waits on the engine
            # (0.8 to 1 s), the folder on this process (0.6 s or more, its charts), so side by side.
            run.execute(wait_teardown=False)
        except KeyboardInterrupt:
            interrupted = True
        except BaseException:
            with contextlib.suppress(Exception), sigint_ignored():
                run.finish()
            raise
        # The folder is what a Ctrl-C leaves the user: it must be whole, and the removal must end.
        with sigint_ignored():
            record, folder = run.record, None
            try:
                analysis = analyse(record, target)
                if out_dir is not None:
                    folder = report.write_run(record, analysis, folder_for(out_dir, target.name, run_id))
            except BaseException:  # the folder's own error is the one to raise; the removal still ends
                with contextlib.suppress(Exception):
                    run.finish()
                raise
            try:
                run.finish()
            except Exception as exc:  # said in the folder too, which is kept
                record.notes.append(f"removing what the run made failed: {str(exc).splitlines()[0]}")
                raise
            finally:
                if folder is not None:  # again, now with the tear-down's time and the run's wall time
                    run_folder.write_journal(record, analysis, folder)
    result = RunResult(record, analysis, folder)
    if interrupted:
        raise Interrupted(result)
    return result
