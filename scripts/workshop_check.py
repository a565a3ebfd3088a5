#!/usr/bin/env python3
"""Check that every command in docs/workshop/*.md is valid, and (unless --static) run them all as written.

A runnable command is a line starting with `$ ` inside a ```console block; the lines after it in the
block are output shown to the reader and are not run. A command ending in `# exit N` (or `# exit N or M`)
is expected to exit with that code: a canary that rolls back exits 4. Any other exit fails the check.

Static checks need no Docker: every `lab` command must parse against the real command line (command,
options, types), name a known strategy and scenario, and pass the strategy's own parameter checks and
`run`'s input checks; `lab plan`, `strategies` and `scenarios` run for real. Compose commands must name
a compose file that exists and services it defines; `make` a target the Makefile has; `curl` a port of a
compose topology; anything else is an error, so the docs stay checkable.

The run executes each command with bash from the repository's root, `.venv/bin` first on PATH (as after
`. .venv/bin/activate`). Where only Compose v1 is installed, `docker compose` runs as `docker-compose`.
At the end it brings every compose project the docs use down, and fails if one of its lab runs left
containers: its runs carry DEPLOYLAB_OWNER (the caller's, else one of its own), so the runs of others on
the engine (other integration tests, with `make integration JOBS=2`) are not counted. The compose topologies
publish fixed ports (8088, 8089): nothing else may hold them meanwhile.

`--jobs N` runs the exercises in N lanes side by side after the index's commands (the set-up), each
exercise's commands in order in one lane: the exercises do not depend on each other. `make test` runs it
with 2 (tests/integration/test_workshop.py); `make workshop-check` in order, as a reader would.

Each command runs in a process group of its own. One that runs past TIMEOUT_S gets SIGINT (a `lab` cleans
up on it, as on Ctrl-C), GRACE_S to end, then SIGKILL to its whole group. A Ctrl-C of the check is passed
on the same way to every running command, and no further command starts.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.signals import sigint_ignored

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "workshop"
FENCE = re.compile(r"^```(\S*)\s*$")
EXIT_MARK = re.compile(r"\s+#\s*exit\s+(\d+(?:\s+or\s+\d+)*)\s*$")
COMPOSE_SUBCOMMANDS = {"up", "down", "ps", "exec", "stop", "start", "restart", "logs", "config", "top"}
TIMEOUT_S = 300
# What a command gets, after SIGINT (a timeout, Ctrl-C), to remove its runs as `lab` does on Ctrl-C
# before its whole process group is killed.
GRACE_S = 30


@dataclass(frozen=True)
class Command:
    file: Path
    line: int
    text: str  # as written, without the prompt and the exit mark
    exits: frozenset[int] = frozenset({0})

    @property
    def where(self) -> str:
        shown = self.file.relative_to(ROOT) if self.file.is_relative_to(ROOT) else self.file
        return f"{shown}:{self.line}"


@dataclass
class Problems:
    items: list[str] = field(default_factory=list)

    def add(self, command: Command, message: str) -> None:
        self.items.append(f"{command.where}: {message}: $ {command.text}")


def parse(path: Path) -> list[Command]:
    """The commands of one document, in order."""
    commands = []
    inside: str | None = None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(raw)
        if fence:
            inside = None if inside is not None else fence.group(1)
            continue
        if inside != "console" or not raw.startswith("$ "):
            continue
        text = raw[2:].strip()
        exits = frozenset({0})
        mark = EXIT_MARK.search(text)
        if mark:
            exits = frozenset(int(code) for code in mark.group(1).split(" or "))
            text = text[: mark.start()].rstrip()
        if text.endswith("\\"):
            raise ValueError(f"{path}:{number}: a command must fit on one line (no trailing backslash)")
        commands.append(Command(path, number, text, exits))
    if inside is not None:
        raise ValueError(f"{path}: a code block is never closed")
    return commands


def documents(docs: Path = DOCS) -> list[Path]:
    """The index first (its setup checks), then the exercises in their numbered order."""
    return sorted(docs.glob("*.md"), key=lambda p: (p.name != "README.md", p.name))


# -- static checks ----------------------------------------------------------------------------------


def _words(command: Command) -> list[list[str]]:
    """The simple commands a line runs: `a; b`, `a && b`, and the body of `for ...; do X; done`, split as
    the shell splits them (a quoted `&&` is part of its word)."""
    text = command.text
    loop = re.fullmatch(r"for \w+ in [^;]+; do (.+); done", text)
    if loop:
        text = loop.group(1)
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    simple: list[list[str]] = [[]]
    for token in lexer:
        if token in (";", "&&", "||"):
            simple.append([])
        else:
            simple[-1].append(token)
    return [words for words in simple if words]


def _check_lab(args: list[str]) -> str | None:
    """None if `lab ARGS` is valid for the command line as it is; else why not. The deploy command of a
    `lab measure` (after `--`) is checked too when it is `sh -c SCRIPT`."""
    if args[:1] == ["measure"] and "--" in args:
        deploy = args[args.index("--") + 1 :]
        if deploy[:2] == ["sh", "-c"] and len(deploy) == 3:
            problems = check(Command(ROOT, 0, deploy[2]))
            if problems:
                return f"in the deploy command: {'; '.join(problems)}"
    import typer
    import typer.main
    import typer.testing
    from typer.core import TyperGroup

    from lab.cli import app
    from lab.errors import LabError

    # Parse as `lab` would, without invoking anything: Typer's own parser resolves the command, its
    # options and their types (typer vendors click; `_protected_args` holds the subcommand's name).
    command = typer.main.get_command(app)
    try:
        ctx = command.make_context("lab", list(args))
        while isinstance(command, TyperGroup) and ctx._protected_args:
            name, sub, rest = command.resolve_command(ctx, [*ctx._protected_args, *ctx.args])
            if sub is None:
                return f"no command {name!r}"
            command, ctx = sub, sub.make_context(name, rest, parent=ctx)
    except typer.TyperException as exc:
        return exc.format_message() or "no command given"
    try:
        if ctx.info_name in {"run", "compare"}:
            _check_run_inputs(ctx.info_name, ctx.params)
        elif ctx.info_name in {"plan", "strategies", "scenarios"}:
            # No Docker: run them for real, as the reader will.
            result = typer.testing.CliRunner().invoke(app, list(args))
            if result.exit_code != 0:
                why = result.exception if isinstance(result.exception, LabError) else result.output.strip()
                return f"exits {result.exit_code}: {str(why)[-200:]}"
    except LabError as exc:
        return str(exc)
    return None


def _check_run_inputs(name: str, params: dict[str, object]) -> None:
    """What `run` and `compare` check before touching Docker, through the lab's own checks."""
    from lab.cli import inputs
    from lab.options import run_options

    if name == "run":
        specs = [(str(params["strategy"]), list(params.get("param") or []))]
    else:
        from lab.cli.app import DEFAULT_COMPARISON

        names = params.get("names") or DEFAULT_COMPARISON
        specs = [(spec.split(":")[0], spec.split(":")[1:]) for spec in names]  # type: ignore[union-attr]
    wanted = [
        name
        for name, p in inspect.signature(run_options).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    ]
    for strategy, pairs in specs:
        chosen = inputs._strategy(strategy)
        given = {key: params[key] for key in wanted if key in params}
        given["port"] = None  # whether a port is free is for the moment of the run
        if isinstance(given.get("mix"), str):
            from lab.options import parse_mix

            given["mix"] = parse_mix(str(given["mix"]))
        inputs.run_config(chosen, inputs._params(chosen, pairs), **given)  # type: ignore[arg-type]


def _compose_services(compose_file: Path) -> set[str]:
    body = compose_file.read_text(encoding="utf-8").split("\nservices:\n", 1)[-1]
    return set(re.findall(r"^  ([a-z0-9][a-z0-9-]*):\s*$", body, re.MULTILINE))


def _check_compose(args: list[str]) -> str | None:
    files = [args[i + 1] for i, a in enumerate(args[:-1]) if a == "-f"]
    if not files:
        return "name the compose file with -f (the docs run from the repository's root)"
    path = ROOT / files[0]
    if not path.is_file():
        return f"no compose file {files[0]}"
    rest = [a for i, a in enumerate(args) if a != "-f" and (i == 0 or args[i - 1] != "-f")]
    if not rest or rest[0] not in COMPOSE_SUBCOMMANDS:
        return f"not a compose command checked here: {rest[:1]}"
    services = _compose_services(path)
    named = [a for a in rest[1:] if not a.startswith("-")]
    if rest[0] in {"exec", "stop", "start", "restart", "logs"}:
        targets = named[:1] if rest[0] == "exec" else named
        unknown = [s for s in targets if s not in services]
        if unknown:
            return f"no service {', '.join(unknown)} in {files[0]}"
    return None


def _check_curl(args: list[str]) -> str | None:
    from lab.compose_files import topologies

    ports = {t.port for t in topologies()}
    urls = [a for a in args[1:] if a.startswith("http")]
    for url in urls:
        match = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\S*", url)
        if not match or int(match.group(1)) not in ports:
            return f"{url} is not a compose topology's proxy ({', '.join(map(str, sorted(ports)))})"
    return None if urls else "curl without a URL"


def _check_make(args: list[str]) -> str | None:
    targets = set(re.findall(r"^([a-z][a-z-]*):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    unknown = [a for a in args[1:] if "=" not in a and a not in targets]
    return f"no make target {', '.join(unknown)}" if unknown else None


def _check_diff(args: list[str]) -> str | None:
    missing = [a for a in args[1:] if not a.startswith("-") and not (ROOT / a).exists()]
    return f"no such file {', '.join(missing)}" if missing else None


CHECKS: dict[str, Callable[[list[str]], str | None]] = {
    "lab": lambda words: _check_lab(words[1:]),
    "docker-compose": lambda words: _check_compose(words[1:]),
    "curl": _check_curl,
    "make": _check_make,
    "diff": _check_diff,
    "echo": lambda words: None,
}


def check(command: Command) -> list[str]:
    """Why `command` would not run as written; empty when it is valid."""
    problems = []
    try:
        simple = _words(command)
    except ValueError as exc:
        return [f"cannot split: {exc}"]
    for words in simple:
        if words[:2] == ["docker", "compose"]:
            words = ["docker-compose", *words[2:]]
        checker = CHECKS.get(words[0])
        if checker is None:
            problems.append(f"{words[0]!r} is not a command the checker knows")
            continue
        why = checker(words)
        if why:
            problems.append(why)
    return problems


def check_all(docs: Path = DOCS) -> list[str]:
    problems = Problems()
    for path in documents(docs):
        for command in parse(path):
            for why in check(command):
                problems.add(command, why)
    return problems.items


# -- running ----------------------------------------------------------------------------------------


def compose_program() -> str:
    """How compose is spelled here: `docker compose` if the plugin answers, else `docker-compose`."""
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return "docker compose"
    if shutil.which("docker-compose"):
        return "docker-compose"
    raise SystemExit("workshop-check: neither `docker compose` nor `docker-compose` is installed")


def spelled(text: str, compose: str) -> str:
    return re.sub(r"(?<![\w-])docker compose(?=\s)", compose, text) if compose != "docker compose" else text


def lab_containers(owner: str) -> set[str]:
    """The lab's containers of `owner`: the check's own runs, not those of a test beside it."""
    from lab.engines.base import LABEL, OWNER_LABEL

    done = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={LABEL}", "--filter", f"label={OWNER_LABEL}={owner}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return set(done.stdout.split())


def runs_started(command: Command) -> int:
    """About how many lab runs a command starts: what orders the documents when lanes share them out."""
    words = [w for simple in _words(command) for w in simple]
    if words[:2] in (["lab", "run"], ["lab", "measure"]):
        return 1
    if words[:2] == ["lab", "compare"]:
        repeat = int(words[words.index("--repeat") + 1]) if "--repeat" in words[:-1] else 1
        named = sum(1 for w in words[2:] if ":" in w or w in _strategy_names())
        return repeat * max(named, 2)
    return 0


def _strategy_names() -> set[str]:
    from lab.strategies import EVERY

    return set(EVERY)


@dataclass
class Lane:
    """What one lane ran: each command's time and exit code, and what went wrong."""

    timings: list[tuple[Command, float, int]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Children:
    """The commands running now, each in a process group of its own, so that a timeout or a Ctrl-C
    reaches the `lab` under its `bash` (and under a pipe) too, not `bash` alone. A Ctrl-C sets `stopped`
    too: no lane starts another command after the clean-up has begun."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._running: set[subprocess.Popen[bytes]] = set()

    def run(self, argv: list[str], captured: bool, cwd: Path, env: dict[str, str]) -> tuple[int, bytes]:
        """Run to its end, or for TIMEOUT_S (then exit -1); its exit code and, if captured, its output."""
        with self._lock:
            if self.stopped.is_set():
                raise Stopped
            stdout = subprocess.PIPE if captured else None
            stderr = subprocess.STDOUT if captured else None
            process = subprocess.Popen(
                argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr, start_new_session=True
            )
            self._running.add(process)
        try:
            try:
                output, _ = process.communicate(timeout=TIMEOUT_S)
                return process.returncode, output or b""
            except subprocess.TimeoutExpired:
                return -1, _end(process)
            except BaseException:  # Ctrl-C with one lane: the main thread waited here
                self.stop()
                raise
        finally:
            with self._lock:
                self._running.discard(process)

    def stop(self) -> None:
        """Ctrl-C: no command starts any more; each running one gets SIGINT, as from a terminal, and
        GRACE_S to clean up, then SIGKILL to its whole group. A second Ctrl-C does not cut this short:
        the commands are in sessions of their own, out of the terminal's reach, so it would leave them
        running."""
        with sigint_ignored():
            with self._lock:
                self.stopped.set()
                running = list(self._running)
            for process in running:
                _signal_group(process, signal.SIGINT)
            deadline = time.monotonic() + GRACE_S
            for process in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(max(0.0, deadline - time.monotonic()))
            for process in running:
                _signal_group(process, signal.SIGKILL)


def _end(process: subprocess.Popen[bytes]) -> bytes:
    """A command past its timeout: SIGINT to its group, GRACE_S to clean up (its output still read), then
    SIGKILL to what is left of the group (`sleep &`); what it said."""
    _signal_group(process, signal.SIGINT)
    try:
        output, _ = process.communicate(timeout=GRACE_S)
    except subprocess.TimeoutExpired:
        _signal_group(process, signal.SIGKILL)
        try:
            output, _ = process.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # held open from outside its group (`lab measure`'s command)
            output = b""
    _signal_group(process, signal.SIGKILL)
    return output or b""


class Stopped(Exception):
    """A Ctrl-C came: the command was not started."""


def _signal_group(process: subprocess.Popen[bytes], sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group has ended
        os.killpg(process.pid, sig)


def run_commands(
    commands: list[Command],
    env: dict[str, str],
    compose: str,
    lane: Lane,
    show: Callable[[str, bytes], None],
    children: Children,
) -> None:
    """One document's commands in order; the first that exits other than expected ends it, since the
    later ones build on it, and so does a Ctrl-C. `show` gets each command's header and, when captured,
    its output."""
    for command in commands:
        header = f"\n$ {command.text}    ({command.where})"
        captured = show is not _stream
        if children.stopped.is_set():
            return
        if not captured:
            show(header, b"")
        t0 = time.monotonic()
        try:
            code, output = children.run(
                ["bash", "-c", spelled(command.text, compose)], captured, cwd=ROOT, env=env
            )
        except Stopped:
            return
        elapsed = time.monotonic() - t0
        lane.timings.append((command, elapsed, code))
        if captured:
            show(header, output)
        if code not in command.exits:
            want = " or ".join(map(str, sorted(command.exits)))
            failure = f"{command.where}: exit {code}, expected {want}: $ {command.text}"
            lane.failures.append(failure)
            show(f"FAILED: {failure}" if captured else f"FAILED: exit {code}, expected {want}", b"")
            return


def _stream(header: str, output: bytes) -> None:
    print(header, flush=True)


def run_all(commands: list[Command], bin_dir: Path, jobs: int = 1) -> int:
    """Run every command as written. With `jobs` > 1 the index's commands (the set-up) run first, alone,
    then the exercises in `jobs` lanes side by side, each exercise's commands in order in one lane
    (they are independent of each other: each starts and removes its own runs and compose projects, on
    ports of its own), the heaviest first; each command's output is printed whole once it has ended.
    Ctrl-C reaches every running command, starts no other, and the compose projects still come down."""
    compose = compose_program()
    if compose != "docker compose":
        print(f"note: Compose v2 is not installed: `docker compose` runs as `{compose}`", flush=True)
    from lab.engines.base import OWNER_VARIABLE

    # The runs carry an owner (the caller's, else one of the check's own), so what they leave behind is
    # told apart from the runs of anyone else on the engine (other tests, with `make integration JOBS=2`).
    owner = os.environ.get(OWNER_VARIABLE, "").strip() or f"workshop-check-{os.getpid()}"
    env = {**os.environ, OWNER_VARIABLE: owner, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    before = lab_containers(owner)
    compose_files = sorted({m for c in commands for m in re.findall(r"-f (\S+compose\.yaml)", c.text)})
    by_document: dict[Path, list[Command]] = {}
    for command in commands:
        by_document.setdefault(command.file, []).append(command)
    lanes: list[Lane] = []
    children = Children()
    started = time.monotonic()
    try:
        if jobs <= 1:
            lane = Lane()
            lanes.append(lane)
            for document in by_document.values():
                run_commands(document, env, compose, lane, _stream, children)
                if lane.failures:
                    break
        else:
            setup = [d for path, d in by_document.items() if path.name == "README.md"]
            lane = Lane()
            lanes.append(lane)
            for document in setup:
                run_commands(document, env, compose, lane, _stream, children)
            if not lane.failures:
                _in_lanes(
                    [d for path, d in by_document.items() if path.name != "README.md"],
                    jobs,
                    env,
                    compose,
                    lanes,
                    children,
                )
    finally:
        for file in compose_files:
            subprocess.run(
                [*spelled("docker compose", compose).split(), "-f", file, "down", "-v", "--remove-orphans"],
                cwd=ROOT,
                capture_output=True,
            )
    failures = [f for lane in lanes for f in lane.failures]
    left = lab_containers(owner) - before
    if left:
        failures.append(f"lab containers left behind: {' '.join(sorted(left))}")
    total = time.monotonic() - started
    order = {c: i for i, c in enumerate(commands)}
    timings = sorted((t for lane in lanes for t in lane.timings), key=lambda t: order[t[0]])
    print("\nworkshop-check: time per command" + (f" ({jobs} lanes after the set-up)" if jobs > 1 else ""))
    for command, elapsed, code in timings:
        print(f"  {elapsed:6.1f} s  exit {code:<3} {command.where}  $ {command.text[:90]}")
    print(f"  {total:6.1f} s  total, {len(timings)} of {len(commands)} command(s) run")
    for failure in failures:
        print(f"workshop-check: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _in_lanes(
    documents: list[list[Command]],
    jobs: int,
    env: dict[str, str],
    compose: str,
    lanes: list[Lane],
    children: Children,
    show: Callable[[str, bytes], None] | None = None,
) -> None:
    """The documents in `jobs` lanes, each lane taking the next document when it has ended one, the ones
    that start the most runs first, so that the longest is not left for last. A Ctrl-C (in the main
    thread, which waits here) goes on to every running command; the lanes end as their commands do."""
    import queue

    todo: queue.Queue[list[Command]] = queue.Queue()
    for document in sorted(documents, key=lambda d: -sum(runs_started(c) for c in d)):
        todo.put(document)
    printing = threading.Lock()

    def whole(header: str, output: bytes) -> None:
        with printing:
            print(header, flush=True)
            if output:
                sys.stdout.write(output.decode(errors="replace"))
                sys.stdout.flush()

    show = show or whole

    def lane_work(lane: Lane, ended: threading.Event) -> None:
        try:
            while not children.stopped.is_set():
                try:
                    document = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    run_commands(document, env, compose, lane, show, children)
                except Exception as exc:  # a lane's thread must not end unseen, its documents unrun
                    lane.failures.append(f"{document[0].where}: the check failed: {exc!r}")
        finally:
            ended.set()

    # Waited for through events, not Thread.join: on Python 3.11 a join that a Ctrl-C interrupts takes
    # the thread for ended, and the next join returns at once while its command still runs.
    ends = []
    for _ in range(min(jobs, len(documents))):
        lane = Lane()
        lanes.append(lane)
        ends.append(threading.Event())
        threading.Thread(target=lane_work, args=(lane, ends[-1]), daemon=True).start()
    try:
        for ended in ends:
            ended.wait()
    except BaseException:
        children.stop()
        for ended in ends:  # each lane ends as its command does, once stopped; a few seconds at most
            ended.wait(5)
        raise


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="workshop_check", description=__doc__.splitlines()[0])
    parser.add_argument("--static", action="store_true", help="check the commands only; run nothing")
    parser.add_argument("--only", metavar="NAME", help="run only the documents whose file name contains NAME")
    parser.add_argument("--list", action="store_true", help="print the commands in order and exit")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="run the exercises in N lanes side by side, each exercise in order (default 1: all in order)",
    )
    parser.add_argument(
        "--bin", type=Path, default=ROOT / ".venv" / "bin", help="put first on PATH (default: .venv/bin)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    commands = [c for path in documents() for c in parse(path) if not args.only or args.only in path.name]
    if args.list:
        for command in commands:
            print(f"{command.where}: $ {command.text}")
        return 0
    problems = check_all()
    for problem in problems:
        print(f"workshop-check: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"workshop-check: {len(commands)} command(s) valid", flush=True)
    if args.static:
        return 0
    if args.jobs < 1:
        parser.error("--jobs must be 1 or more")
    return run_all(commands, args.bin, args.jobs)


if __name__ == "__main__":
    sys.exit(main())
