"""`lab measure URL -- COMMAND`: what clients of any service saw while any deploy command ran."""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import httpx
import typer

from lab.cli.app import app, out
from lab.cli.execute import exit_with, run_target
from lab.cli.inputs import BaselineOpt, JsonOpt, LiveOpt, ModeOpt, OutOpt, RateOpt
from lab.errors import BadInput
from lab.options import (
    MeasureOptions,
    RequestOptions,
    RunOptions,
    check_mode,
    check_number,
    parse_ok,
)

if TYPE_CHECKING:
    from lab.pipeline import RunResult

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110's token: what a header name may be


def parse_url(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise BadInput(f"{url!r} is not a URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise BadInput(f"{url!r} is not an http or https URL (e.g. http://127.0.0.1:8089/)")
    return url


def parse_headers(values: list[str] | None) -> tuple[tuple[str, str], ...]:
    headers = []
    for value in values or []:
        name, sep, text = value.partition(":")
        if not sep or not _TOKEN.fullmatch(name.strip()):
            raise BadInput(f"--header {value!r} is not 'Name: value' (e.g. --header 'Host: shop.example')")
        if "\r" in text or "\n" in text:
            raise BadInput(f"--header {name.strip()}: a value cannot hold a line break")
        headers.append((name.strip(), text.strip()))
    return tuple(headers)


def parse_pattern(pattern: str | None) -> str | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise BadInput(f"--version-from-body {pattern!r} is not a regular expression: {exc}") from None
    if compiled.groups > 1:
        raise BadInput(
            f"--version-from-body {pattern!r}: one group at most (the version), got {compiled.groups}"
        )
    return pattern


@app.command("measure")
def measure_cmd(
    url: Annotated[str, typer.Argument(help="Your service, as its clients reach it (http or https).")],
    command: Annotated[
        list[str] | None,
        typer.Argument(
            help="Your deploy command, after `--` (kubectl rollout restart ..., kamal deploy, ./switch.sh). "
            "Without one: probe until --duration or Ctrl-C, while you deploy by hand.",
            show_default=False,
        ),
    ] = None,
    rate: RateOpt = RunOptions.rate,
    mode: ModeOpt = RunOptions.mode,
    baseline: BaselineOpt = RunOptions.baseline_s,
    settle: Annotated[
        float | None,
        typer.Option(help="Seconds of probing after the command ends (default 2; 0 without a command)."),
    ] = None,
    duration: Annotated[
        float | None,
        typer.Option(help="Without a command: seconds to probe after the baseline (default: until Ctrl-C)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take to connect, and to answer.")] = (
        RunOptions.probe_timeout_s
    ),
    header: Annotated[
        list[str] | None,
        typer.Option(
            "--header",
            "-H",
            help="A request header 'Name: value' (repeatable): a Host for an ingress, an Authorization "
            "(its value is never written to the run folder).",
        ),
    ] = None,
    insecure: Annotated[
        bool, typer.Option("--insecure", "-k", help="https: accept any certificate (a self-signed one).")
    ] = False,
    ok: Annotated[
        str, typer.Option(help="Statuses that count as a good answer, e.g. 200-399 or 200,204.")
    ] = "200-399",
    version_header: Annotated[
        str, typer.Option(help="The response header that names the version that answered.")
    ] = RequestOptions.version_header,
    version_from_body: Annotated[
        str | None,
        typer.Option(
            help="A regular expression over the body that names the version instead (its group, or the "
            "match), e.g. 'version: (\\S+)'.",
            show_default=False,
        ),
    ] = None,
    old: Annotated[
        str | None,
        typer.Option(
            "--old",
            help="The version that served before the deploy (default: the one the baseline saw most).",
            show_default=False,
        ),
    ] = None,
    max_downtime_ms: Annotated[
        float | None, typer.Option(help="Budget: exit 3 if the longest downtime exceeds it.")
    ] = None,
    max_failed: Annotated[int | None, typer.Option(help="Budget: exit 3 if more requests failed.")] = None,
    out_dir: OutOpt = Path("runs"),
    as_json: JsonOpt = False,
    live: LiveOpt = True,
) -> None:
    """Probe URL while COMMAND deploys it, and report what clients saw.

    The lab probes a baseline (the version it sees is the old one), starts COMMAND in its own process group,
    keeps probing until it exits, then for --settle seconds. Every line COMMAND prints is kept with its time.
    Ctrl-C stops COMMAND (SIGINT, then SIGTERM, then SIGKILL) and keeps what was measured.

    Exit codes: 0 deployed, 1 lab error, 2 bad input (an unreachable URL, a baseline with no good answer, a
    command not found), 3 budget exceeded, 5 the command failed, 130 interrupted.
    """
    from lab.experiments import Budgets, verdict
    from lab.output import journal, terminal

    argv = tuple(command or ())
    check_number("--rate", rate, "rate")
    check_number("--baseline", baseline, "baseline")
    check_mode(mode)
    if settle is not None:
        check_number("--settle", settle, "settle")
    if duration is not None:
        if argv:
            raise BadInput(
                "--duration is for a deploy by hand: with a command, the command's end ends the run"
            )
        check_number("--duration", duration, "duration")
    if not 0 < timeout <= 60:
        raise BadInput(f"--timeout must be above 0 up to 60, got {timeout:g}")
    if max_downtime_ms is not None:
        check_number("--max-downtime-ms", max_downtime_ms, "max_downtime_ms")
    if max_failed is not None:
        check_number("--max-failed", max_failed, "max_failed")
    if not version_header.strip() or not _TOKEN.fullmatch(version_header):
        raise BadInput(f"--version-header {version_header!r} is not a header name")
    request = RequestOptions(
        headers=parse_headers(header),
        insecure=insecure,
        ok=parse_ok(ok),
        version_header=version_header,
        version_from_body=parse_pattern(version_from_body),
    )
    options = RunOptions(
        "measure",
        rate=rate,
        mode=mode,
        baseline_s=baseline,
        settle_s=settle if settle is not None else (RunOptions.settle_s if argv else 0.0),
        probe_timeout_s=timeout,
        request=request,
        measure=MeasureOptions(parse_url(url), argv, duration, old),
    )
    from lab.live.view import MEASURE_PHASES
    from lab.targets.command import CommandTarget, check_command

    check_command(argv)  # before anything is probed
    budgets = Budgets(max_downtime_ms, max_failed)

    def show(result: RunResult) -> None:
        record, analysis, folder = result.record, result.analysis, result.folder
        if as_json:
            print(json.dumps(journal.summary(record, analysis, folder)))
        elif record.probe_started is not None:  # nothing was measured before the probe started
            terminal.print_summary(out, record, analysis, folder)

    result = run_target(
        CommandTarget(options),
        options,
        out_dir,
        keep=False,
        quiet=as_json,
        live=live,
        title=f"measure {url}",
        run_id=secrets.token_hex(3),
        on_interrupt=show,
        phases=MEASURE_PHASES,
    )
    show(result)
    exit_with(verdict(result.record, result.analysis, budgets))
