"""The probe in child processes, against a closed loopback port: no server, no network beyond this host."""

from __future__ import annotations

import socket
import time

import pytest

from lab.model import ErrorClass
from lab.probe.config import ProbeConfig
from lab.probe.process import ProbeProcess


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_probe_process_streams_samples_and_stops() -> None:
    config = ProbeConfig(f"http://127.0.0.1:{closed_port()}/", rate=200, workers=4)
    with ProbeProcess(config) as proc:
        assert proc.started_at is not None
        time.sleep(0.3)
        live = proc.new_samples()
        samples = proc.stop()
    assert proc.error is None
    assert live and len(samples) >= len(live)
    assert [s.seq for s in samples] == list(range(len(samples)))
    assert samples[0].scheduled == proc.started_at
    sent = [s for s in samples if s.sent is not None]  # a loaded machine may saturate a few ticks
    assert len(sent) > len(samples) / 2 and {s.error for s in sent} == {ErrorClass.REFUSED}
    assert proc.processes == 1 and not proc.alive()


def test_a_schedule_split_over_two_processes_is_the_same_schedule() -> None:
    config = ProbeConfig(f"http://127.0.0.1:{closed_port()}/", rate=400, workers=4)
    with ProbeProcess(config, processes=2) as proc:
        time.sleep(0.5)
        samples = proc.stop()
    assert proc.error is None and not proc.alive()
    assert proc.started_at is not None
    assert [s.seq for s in samples] == list(range(len(samples)))
    assert len(samples) >= 100  # 0.5 s at 400 req/s, give or take the stop
    for s in samples:  # one tick 0 for both children: exactly the one-process schedule
        assert s.scheduled == pytest.approx(proc.started_at + s.seq / 400, abs=1e-9)


def test_a_killed_probe_process_is_reported_not_hidden() -> None:
    config = ProbeConfig(f"http://127.0.0.1:{closed_port()}/", rate=100, workers=2)
    proc = ProbeProcess(config)
    proc.start()
    time.sleep(0.2)
    child = proc._children[0]._proc
    assert child is not None
    child.kill()
    samples = proc.stop()  # no exception: the runner stops the probe in a `finally` before cleaning up
    assert proc.error is not None and "without finishing" in proc.error
    seqs = [s.seq for s in samples]
    assert seqs == sorted(set(seqs))


def test_a_prelaunched_probe_probes_the_url_it_is_given_later() -> None:
    # The children start with a placeholder URL while the run sets up; the one they probe comes at start.
    pending = ProbeConfig("http://pending.invalid/", rate=200, workers=4, driver="asyncio")
    proc = ProbeProcess(pending, processes=2)
    proc.prelaunch()
    try:
        proc.retarget(f"http://127.0.0.1:{closed_port()}/")
        proc.start()
        time.sleep(0.2)
        samples = proc.stop()
    finally:
        proc.close()
    sent = [s for s in samples if s.sent is not None]
    assert sent and {s.error for s in sent} == {ErrorClass.REFUSED}  # not a DNS failure of pending.invalid
    assert [s.seq for s in samples] == list(range(len(samples)))


def test_a_prelaunched_probe_that_never_starts_goes_away() -> None:
    proc = ProbeProcess(ProbeConfig("http://pending.invalid/", rate=200, workers=4))
    proc.prelaunch()
    proc.close()
    assert not proc.alive()
