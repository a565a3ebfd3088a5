"""`lab measure URL -- COMMAND`: what clients of any service saw while any deploy command ran."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lab.cli.app import app, out
from lab.cli.execute import exit_with, run_target
from lab.cli.inputs import BaselineOpt, ClientsOpt, JsonOpt, LiveOpt, ModeOpt, OutOpt, RateOpt, TestersOpt
from lab.options import RequestOptions, RunOptions, check_number, measure_options, parse_headers

if TYPE_CHECKING:
    from lab.pipeline import RunResult


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
    clients: ClientsOpt = RunOptions.clients,
    testers: TestersOpt = RunOptions.testers,
    max_downtime_ms: Annotated[
        float | None, typer.Option(help="Budget: exit 3 if the longest downtime exceeds it.")
    ] = None,
    max_failed: Annotated[int | None, typer.Option(help="Budget: exit 3 if more requests failed.")] = None,
    out_dir: OutOpt = Path("runs"),
    as_json: JsonOpt = False,
    live: LiveOpt = True,
) -> None:
    """Probe URL while COMMAND deploys it, and report what clients saw.

    The lab probes a baseline (the version it sees most is the old one), starts COMMAND in its own \
process group, keeps probing until it exits, then for --settle seconds. Every line COMMAND prints is \
kept with its time. Ctrl-C stops COMMAND (SIGINT, then SIGTERM, then SIGKILL) and keeps what was measured.

    Exit codes: 0 deployed, 1 lab error, 2 bad input (an unreachable URL, a baseline with no good \
answer, a command not found), 3 budget exceeded, 5 the command failed, 130 interrupted.
    """
    from lab.experiments import Budgets, verdict
    from lab.output import journal, terminal

    options = measure_options(
        url,
        command or (),
        rate=rate,
        mode=mode,
        baseline=baseline,
        settle=settle,
        duration=duration,
        timeout=timeout,
        headers=parse_headers(header),
        insecure=insecure,
        ok=ok,
        version_header=version_header,
        version_from_body=version_from_body,
        old=old,
        clients=clients,
        testers=testers,
    )
    argv = options.measure.command if options.measure else ()
    if max_downtime_ms is not None:
        check_number("--max-downtime-ms", max_downtime_ms, "max_downtime_ms")
    if max_failed is not None:
        check_number("--max-failed", max_failed, "max_failed")
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
        title=f"measure {options.measure.url if options.measure else url}",  # without credentials
        run_id=secrets.token_hex(3),
        on_interrupt=show,
        phases=MEASURE_PHASES,
    )
    show(result)
    exit_with(verdict(result.record, result.analysis, budgets))
