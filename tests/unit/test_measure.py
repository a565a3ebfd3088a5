"""`lab measure`'s parts without a network: the request it sends, how it reads a version, what counts as
good, its input checks, the deploy command's output and its process group, and what the journal keeps."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpcore
import httpx
import pytest
from typer.testing import CliRunner

from lab.analysis.summary import summarize
from lab.analysis.windows import flip_flops, mixed_version_window
from lab.cli import app
from lab.errors import BadInput
from lab.live.feed import SampleFeed
from lab.model import ErrorClass, Sample
from lab.options import (
    MeasureOptions,
    RequestOptions,
    RunOptions,
    measure_options,
    ok_text,
    parse_headers,
    parse_ok,
    parse_pattern,
    parse_url,
)
from lab.output import journal, report
from lab.probe.channel import Channel
from lab.probe.config import ProbeConfig
from lab.probe.schedule import run_probe, status_error
from lab.record import RunRecord
from lab.targets.command import CommandTarget, check_command, old_version

URL = "http://shop.test/"


# -- the request and its answer -------------------------------------------------------------------------


def wire(config: ProbeConfig, raw: bytes) -> tuple[tuple[Any, ...], bytes]:
    """One exchange over a mock network: what the channel made of the answer, and what it wrote."""
    written: list[bytes] = []

    class Backend(httpcore.MockBackend):
        def connect_tcp(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
            stream = super().connect_tcp(*args, **kwargs)
            original = stream.write

            def write(buffer: bytes, timeout: float | None = None) -> None:
                written.append(buffer)
                original(buffer, timeout)

            stream.write = write  # type: ignore[method-assign]
            return stream

    channel = Channel(config, network_backend=Backend([raw]))
    return channel.exchange(), b"".join(written)


def test_the_users_headers_go_on_every_request_and_theirs_win() -> None:
    config = ProbeConfig(URL, 1, headers=(("Host", "shop.example"), ("Authorization", "Bearer s3cret")))
    _, sent = wire(config, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert b"Host: shop.example\r\n" in sent and b"host: shop.test" not in sent.lower()
    assert b"Authorization: Bearer s3cret\r\n" in sent


def test_the_version_comes_from_the_header_the_user_names() -> None:
    raw = b"HTTP/1.1 200 OK\r\nX-Release: 1.4.2\r\nX-App-Version: v9\r\nContent-Length: 0\r\n\r\n"
    (status, version, _, _), _ = wire(ProbeConfig(URL, 1, version_header="x-release"), raw)
    assert (status, version) == (200, "1.4.2")


@pytest.mark.parametrize(
    ("pattern", "version"),
    [(r'"version":\s*"([^"]+)"', "2b7e9c1"), (r"build-\d+", "build-42"), (r"nothing (here)", None)],
)
def test_the_version_can_come_from_the_body(pattern: str, version: str | None) -> None:
    body = b'{"version": "2b7e9c1", "build": "build-42"}'
    raw = b"HTTP/1.1 200 OK\r\nX-App-Version: v1\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    (_, seen, _, _), _ = wire(ProbeConfig(URL, 1, version_from_body=pattern), raw)
    assert seen == version  # the body's, never the header's, once a pattern is given


@pytest.mark.parametrize(
    ("status", "ok", "error"),
    [
        (200, "200-399", None),
        (302, "200-399", None),
        (302, "200-299", ErrorClass.HTTP_OTHER),
        (204, "200,204", None),
        (201, "200,204", ErrorClass.HTTP_OTHER),
        (404, "200-399,404", None),
        (404, "200-399", ErrorClass.HTTP_4XX),
        (503, "200-599", None),
        (503, "200-399", ErrorClass.HTTP_5XX),
    ],
)
def test_ok_decides_which_statuses_are_good(status: int, ok: str, error: ErrorClass | None) -> None:
    assert status_error(status, parse_ok(ok)) is error


def test_a_status_outside_ok_is_a_failure_in_the_samples() -> None:
    out: list[Sample] = []
    config = ProbeConfig(URL, 200, workers=4, ok=parse_ok("200"))
    redirect = httpx.MockTransport(lambda r: httpx.Response(301, headers={"Location": "/x"}))
    run_probe(config, threading.Event(), out.extend, transport=redirect, max_requests=3)
    assert {(s.status, s.error) for s in out} == {(301, ErrorClass.HTTP_OTHER)}  # never followed


@pytest.mark.parametrize("text", ["200-", "abc", "99", "200-600", "300-200", ""])
def test_bad_ok_ranges_are_refused(text: str) -> None:
    with pytest.raises(BadInput, match="--ok"):
        parse_ok(text)
    assert ok_text(parse_ok("200-399, 404")) == "200-399,404"


# -- input checks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["shop.example", "ftp://shop.example/", "http://", "http://[::1"])
def test_a_url_must_be_http_or_https(url: str) -> None:
    with pytest.raises(BadInput):
        parse_url(url)
    assert parse_url("https://shop.example:8443/health?x=1") == "https://shop.example:8443/health?x=1"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://127.0.0.1:99999/", "port 99999 is not a TCP port"),
        ("http://127.0.0.1:0/", "port 0 is not a TCP port"),
        ("http://exa mple.com/", "holds a space"),
    ],
)
def test_a_url_that_names_no_reachable_place_is_bad_input_not_a_refused_connection(
    url: str, said: str
) -> None:
    with pytest.raises(BadInput, match=said):
        parse_url(url)


def test_credentials_in_the_url_become_a_redacted_authorization_header() -> None:
    options = measure_options("http://ann:s%40cret@shop.test:8080/health")
    assert options.measure is not None and options.measure.url == "http://shop.test:8080/health"
    # base64 of "ann:s@cret": the percent-encoding undone, as a browser does
    assert options.request.headers == (("Authorization", "Basic YW5uOnNAY3JldA=="),)
    assert options.request.shown_headers() == [["Authorization", "<redacted>"]]


def test_credentials_twice_and_a_password_in_an_error_are_refused_without_echoing_it() -> None:
    with pytest.raises(BadInput, match="give one"):
        measure_options("http://ann:pw@shop.test/", headers=(("Authorization", "Bearer x"),))
    with pytest.raises(BadInput) as bad:
        parse_url("http://ann:topsecret@shop.test:70000/")
    assert "topsecret" not in str(bad.value) and "ann:***@" in str(bad.value)
    # A password with an unescaped @ or / is masked whole, and httpx's own reason (it may quote it) is not
    # repeated.
    for url in ["http://ann:top@secret@shop.test:70000/", "http://ann:top/secret@shop.test:x/"]:
        with pytest.raises(BadInput) as bad:
            parse_url(url)
        assert "top" not in str(bad.value) and "secret" not in str(bad.value), str(bad.value)


def test_headers_are_name_colon_value() -> None:
    assert parse_headers(["Host: shop.example", "X-Empty:"]) == (("Host", "shop.example"), ("X-Empty", ""))
    for bad in ["Host shop.example", ": x", "Bad Name: x"]:
        with pytest.raises(BadInput, match="Name: value"):
            parse_headers([bad])


def test_a_body_pattern_must_compile_and_hold_one_group_at_most() -> None:
    assert parse_pattern(r"v(\d+)") == r"v(\d+)"
    with pytest.raises(BadInput, match="not a regular expression"):
        parse_pattern("v(")
    with pytest.raises(BadInput, match="one group at most"):
        parse_pattern(r"(a)(b)")


def test_a_command_that_cannot_start_is_bad_input(tmp_path: Path) -> None:
    check_command(("sh", "-c", "true"))
    with pytest.raises(BadInput, match="not on PATH"):
        check_command(("no-such-deploy-tool",))
    with pytest.raises(BadInput, match="command not found"):
        check_command((str(tmp_path / "switch.sh"),))
    script = tmp_path / "switch.sh"
    script.write_text("#!/bin/sh\n")
    with pytest.raises(BadInput, match="not executable"):
        check_command((str(script),))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["measure", "shop.example"], "is not an http or https URL"),
        (["measure", URL, "--rate", "0"], "--rate must be above 0"),
        (["measure", URL, "--mode", "turbo"], "--mode must be one of keepalive, fresh"),
        (["measure", URL, "--header", "Host shop"], "is not 'Name: value'"),
        (["measure", URL, "--ok", "2xx"], "--ok '2xx'"),
        (["measure", URL, "--version-from-body", "("], "is not a regular expression"),
        (["measure", URL, "--duration", "5", "--", "true"], "--duration is for a deploy by hand"),
        (["measure", URL, "--timeout", "0"], "--timeout must be above 0 up to 60"),
        (["measure", URL, "--", "no-such-deploy-tool"], "command not found: no-such-deploy-tool"),
        (["measure", URL, "--version-header", "X Bad"], "is not a header name"),
        (["measure", URL, "--", ""], "the deploy command is empty"),
    ],
)
def test_measure_refuses_bad_input_before_probing(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, args)
    assert isinstance(result.exception, BadInput), (result.stdout, result.exception)
    assert result.exception.exit_code == 2 and message in str(result.exception)


def test_bad_input_is_one_line_on_stderr_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lab", "measure", "http://127.0.0.1:9/", "--", "no-such-deploy-tool"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "lab: error: command not found: no-such-deploy-tool (not on PATH)\n"


# -- the baseline's version -------------------------------------------------------------------------------


def good(seq: int, version: str | None, t: float = 0.0) -> Sample:
    return Sample(seq, t + seq / 100, t + seq / 100, t + seq / 100 + 0.002, 200, version)


def test_the_old_version_is_the_one_the_baseline_saw_most() -> None:
    assert old_version([good(0, "1.4.2"), good(1, "1.4.2")]) == ("1.4.2", None)
    most, note = old_version([good(0, "a"), good(1, "b"), good(2, "a")])
    assert most == "a" and note is not None and "several versions (a 2, b 1)" in note
    none, note = old_version([good(0, None)])
    assert none is None and note is not None and "named a version" in note


def test_any_version_but_the_old_is_new_when_the_new_one_is_not_known() -> None:
    # A deploy that went 1.0 -> 1.1 and a client that saw 1.1, then 1.0 again, then 1.2.
    samples = [good(i, v) for i, v in enumerate(["1.0", "1.0", "1.1", "1.0", "1.2", "1.2"])]
    assert flip_flops(samples, "1.0", None) == 1
    window = mixed_version_window(samples, "1.0", None)
    assert window is not None and window.start == samples[2].finished and window.end == samples[3].finished
    a = summarize(samples, [], target_rate=100, old="1.0", new=None)
    assert (a.new_answers, a.flip_flops, a.lowest_capacity) == (3, 1, None)
    nothing = summarize([good(i, None) for i in range(5)], [], target_rate=100, old=None, new=None)
    assert (nothing.mixed_window_ms, nothing.flip_flops, nothing.new_answers) == (0.0, 0, 0)


# -- the deploy command ---------------------------------------------------------------------------------


class FakeRun:
    """What a target sees of the run, without a probe process."""

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.record = RunRecord(options, "cmd001", "2026-12-01T00:00:00+00:00", time.monotonic())
        self.feed = SampleFeed(options.rate, self.record.t0)
        self.probe = None
        self.lines: list[str] = []

    def hook(self, line: str, event: object) -> None:
        self.lines.append(line)


def command_options(*argv: str) -> RunOptions:
    return RunOptions("measure", measure=MeasureOptions(URL, tuple(argv)))


def test_the_commands_lines_are_kept_with_their_time_and_its_exit_code() -> None:
    script = "echo first; sleep 0.3; echo oops >&2; sleep 0.2; echo last; exit 3"
    run = FakeRun(command_options("sh", "-c", script))
    target = CommandTarget(run.options, hook=run.hook)
    before = time.monotonic()
    status = target.deploy(run)  # type: ignore[arg-type]
    assert status == "command_failed"
    record = run.record
    assert record.command_exit == 3 and record.error == "the deploy command exited with code 3"
    assert [(stream, line) for _, stream, line in record.output] == [
        ("stdout", "first"),
        ("stderr", "oops"),
        ("stdout", "last"),
    ]
    times = [at for at, _, _ in record.output]
    assert before <= times[0] and times[1] - times[0] >= 0.25  # stamped as they came, on the run's clock
    (event,) = record.events
    assert (event.kind, event.result, event.error) == (
        "Command",
        False,
        "the deploy command exited with code 3",
    )
    assert event.ended - event.started >= 0.3
    assert any("oops" in line for line in run.lines)  # shown as it came (the live view prints these)


def test_a_command_that_succeeds_completes_the_run() -> None:
    run = FakeRun(command_options(sys.executable, "-c", "print('rolled out')"))
    assert CommandTarget(run.options).deploy(run) == "completed"  # type: ignore[arg-type]
    assert run.record.command_exit == 0 and run.record.output[-1][1:] == ("stdout", "rolled out")


def test_stopping_the_command_stops_its_whole_group_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A deploy script that ignores SIGINT, and a child of its own that would outlive it.
    import lab.targets.command as command

    monkeypatch.setattr(command, "STOP_WAITS_S", (0.5, 0.5))
    log = tmp_path / "signals"
    script = (
        f"trap 'echo INT >> {log}' INT; trap 'echo TERM >> {log}; exit 143' TERM; "
        f"sleep 60 & echo $! > {tmp_path / 'child'}; while true; do sleep 0.05; done"
    )
    run = FakeRun(command_options("sh", "-c", script))
    target = CommandTarget(run.options)
    thread = threading.Thread(target=lambda: target.deploy(run), daemon=True)  # type: ignore[arg-type]
    thread.start()
    deadline = time.monotonic() + 5
    # Until the deploy thread holds the process too: under load the script can write its child's pid
    # before Popen has returned in this thread (the lab itself deploys and tears down in one thread).
    while (target.proc is None or not (tmp_path / "child").exists()) and time.monotonic() < deadline:
        time.sleep(0.02)
    child = int((tmp_path / "child").read_text())
    started = time.monotonic()
    target.teardown(run, keep=False)  # type: ignore[arg-type]
    assert time.monotonic() - started < 3
    assert log.read_text().split() == ["INT", "TERM"]  # SIGINT first; SIGTERM once it was ignored
    assert not alive(child)  # the script's child went with the group
    thread.join(5)
    assert run.record.command_exit is not None


def alive(pid: int) -> bool:
    """Running, not a zombie: a child whose parent exited may wait long for PID 1 to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def test_a_group_that_ignores_sigterm_gets_sigkill(monkeypatch: pytest.MonkeyPatch) -> None:
    import lab.targets.command as command

    monkeypatch.setattr(command, "STOP_WAITS_S", (0.2, 0.2))
    run = FakeRun(command_options("sh", "-c", "trap '' INT TERM; while true; do sleep 0.05; done"))
    target = CommandTarget(run.options)
    threading.Thread(target=lambda: target.deploy(run), daemon=True).start()  # type: ignore[arg-type]
    time.sleep(0.3)
    target.teardown(run, keep=False)  # type: ignore[arg-type]
    assert target.proc is not None and target.proc.returncode == -signal.SIGKILL


# -- what the run folder keeps -----------------------------------------------------------------------------


def test_an_authorization_header_is_sent_but_never_written(tmp_path: Path) -> None:
    secret = "Bearer s3cret-t0ken"
    request = RequestOptions(headers=(("Authorization", secret), ("Host", "shop.example"), ("Cookie", "a=b")))
    options = RunOptions("measure", request=request, measure=MeasureOptions(URL, ("./switch.sh",)))
    record = RunRecord(options, "abc123", "2026-12-01T00:00:00+00:00", 0.0, status="completed")
    record.probe_started, record.versions = 0.0, ("1.0", "1.1")
    record.command, record.command_exit = ("./switch.sh",), 0
    record.output = [(0.5, "stdout", "switched")]
    record.samples = [good(i, "1.0" if i < 50 else "1.1") for i in range(100)]
    analysis = summarize(record.samples, record.events, target_rate=100, old="1.0", new=None)
    folder = report.write_run(record, analysis, tmp_path / "run")
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            assert "s3cret" not in path.read_text(), path
    j = json.loads((folder / "journal.json").read_text())
    assert j["input"]["probe"]["request"]["headers"] == [
        ["Authorization", "<redacted>"],
        ["Host", "shop.example"],
        ["Cookie", "<redacted>"],
    ]
    assert j["command"] == {
        "argv": ["./switch.sh"],
        "exit_code": 0,
        "output": [{"at_s": 0.5, "stream": "stdout", "line": "switched"}],
    }
    assert j["versions"] == {"old": "1.0", "new": "1.1"} and j["scenario"] if "scenario" in j else True
    assert j["input"]["scenario"] is None and j["input"]["measure"]["url"] == URL
    summary = journal.summary(record, analysis, folder)
    assert summary["command"] == {"argv": ["./switch.sh"], "exit_code": 0} and summary["url"] == URL
    assert "s3cret" not in json.dumps(summary)
