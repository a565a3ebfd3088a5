"""deploy lab in any test suite: the `deploy_lab` fixture (docs/pytest-plugin.md).

    def test_rolling_drops_nothing(deploy_lab):
        result = deploy_lab.run("rolling", batch=1, drain_s=1)
        assert result.requests_failed == 0

pytest loads this module through the package's ``pytest11`` entry point in every session, wherever the
package is installed; so loading it costs nothing and needs nothing. Docker, testcontainers and the runner
load when a test first calls ``deploy_lab.run`` or ``deploy_lab.build``.

Built on testcontainers where it gives something: its ``DockerClient`` finds the engine as the user's
other container tests do (``DOCKER_HOST``, ``~/.testcontainers.properties``, registry auth), its
``DockerImage`` builds a v1 or v2 from a Dockerfile (tagged per session, untagged when it ends), and every
container and network of a run carries its session label, so a Ryuk reaper the suite started anyway
also removes what a killed pytest left. The lab never starts Ryuk itself: its own clean-up runs after
every run, and once more at the end of the session.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from lab.model import AppSpec
from lab.options import ProxySettings, RunOptions

if TYPE_CHECKING:
    from lab.analysis.summary import Analysis
    from lab.engines.docker.testcontainers_session import SessionEngine
    from lab.model import Event, Sample
    from lab.record import RunRecord

log = logging.getLogger("lab.pytest")
log.setLevel(logging.INFO)  # a run's progress shows under "Captured log call" when its test fails

RUNS_INI = "deploy_lab_runs"
NO_DOCKER_INI = "deploy_lab_no_docker"
EXPECTED = ("completed", "rolled_back")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("deploy-lab", "deploy lab (the deploy_lab fixture)")
    group.addoption(
        "--deploy-lab-runs",
        metavar="DIR",
        default=None,
        help=f"write deploy lab's run folders under DIR (overrides the {RUNS_INI} ini option)",
    )
    parser.addini(
        RUNS_INI,
        "folder for deploy lab's run folders, relative to the rootdir (default: pytest's temporary "
        "directory, basetemp/deploy-lab)",
        default="",
    )
    parser.addini(
        NO_DOCKER_INI,
        "what a test using deploy_lab does when Docker is not reachable: fail (default) or skip",
        default="fail",
    )


# -- results ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, repr=False)
class LabResult:
    """One run: its status and run folder, and every figure of ``lab.analysis.Analysis`` as an attribute
    (``requests_failed``, ``downtime_ms``, ``mixed_window_ms``, ``versions_seen``, ``blast_radius`` ...)."""

    strategy: str
    status: str  # completed or rolled_back (a failed run fails the test instead)
    error: str | None
    notes: tuple[str, ...]
    folder: Path  # journal.json, samples.csv, configs/ ...
    analysis: Analysis
    record: RunRecord

    @property
    def samples(self) -> list[Sample]:
        return self.record.samples

    @property
    def events(self) -> list[Event]:
        return self.record.events

    def to_dict(self) -> dict[str, Any]:
        """What `lab run --json` prints for this run: figures rounded, times relative to its start."""
        from lab.output.journal import summary

        return summary(self.record, self.analysis, self.folder)

    def __getattr__(self, name: str) -> Any:
        analysis = self.__dict__.get("analysis")
        if name.startswith("__") or analysis is None:
            raise AttributeError(name)
        try:
            return getattr(analysis, name)
        except AttributeError:
            figures = ", ".join(f.name for f in dataclasses.fields(analysis))
            raise AttributeError(f"a deploy lab result has no {name!r}; its figures: {figures}") from None

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *(f.name for f in dataclasses.fields(self.analysis))})

    def __repr__(self) -> str:
        a = self.analysis
        return (
            f"<deploy lab {self.strategy} {self.status}: {a.requests_failed:,} of {a.requests_sent:,} "
            f"failed, downtime {a.downtime_ms:,.1f} ms, mixed window {a.mixed_window_ms:,.1f} ms; "
            f"{self.folder}>"
        )


# -- the session: one engine connection, the images, what to clean up -------------------------------


class LabSession:
    """What every test of a session shares. Connects to Docker, and checks the lab's images, on first use.
    The engine itself is lab/engines/docker/testcontainers_session.py: the plugin never imports Docker."""

    def __init__(self, config: pytest.Config, runs_dir: Path) -> None:
        self.config = config
        self.runs_dir = runs_dir
        self._engine: SessionEngine | None = None
        self.runs: list[Path] = []
        self._unreachable: str | None = None
        self._ready = False

    @property
    def engine(self) -> SessionEngine:
        """Docker and testcontainers load here, when a test first needs the engine."""
        if self._engine is None:
            from lab.engines.docker.testcontainers_session import SessionEngine

            self._engine = SessionEngine()
        return self._engine

    def say(self, line: str) -> None:
        """A line on the terminal right away (not captured): building the images takes minutes."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        capture = self.config.pluginmanager.get_plugin("capturemanager")
        if reporter is not None:
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                reporter.ensure_newline()
                reporter.write_line(f"deploy lab: {line}")
        log.info(line)

    def _no_docker(self, reason: str) -> NoReturn:
        if self.config.getini(NO_DOCKER_INI).strip().lower() == "skip":
            pytest.skip(f"deploy lab: {reason}")
        pytest.fail(f"deploy lab: {reason} (set {NO_DOCKER_INI} = skip to skip instead)", pytrace=False)

    def connect(self) -> None:
        """Connect and make sure the lab's images are there, once per session."""
        from lab.errors import DockerUnavailable, LabError

        if self._ready:
            return
        if self._unreachable is not None:  # once per session, not a timeout per test
            self._no_docker(self._unreachable)
        try:
            self.engine.connect()
        except DockerUnavailable as exc:
            self._unreachable = str(exc)
        if self._unreachable is not None:  # outside the except: the test shows one line, not a chain
            self._no_docker(self._unreachable)
        try:
            self.engine.ensure_lab_images(self.say)
        except LabError as exc:
            pytest.fail(f"deploy lab: {exc}", pytrace=False)
        self._ready = True

    def image_tag(self, path: Path, dockerfile: str, buildargs: Mapping[str, str]) -> str:
        """The folder, Dockerfile and build args, and this session's id: each session tags its own."""
        return self.engine.image_tag(path, dockerfile, buildargs, _image_slug(path.name))

    def build(self, path: Path, dockerfile: str, buildargs: Mapping[str, str]) -> str:
        """Build an image from a Dockerfile, once per session; the tag to run it by."""
        from lab.errors import LabError

        self.connect()
        tag = self.image_tag(path, dockerfile, buildargs)
        try:
            return self.engine.build(path, dockerfile, buildargs, tag, self.say)
        except LabError as exc:
            pytest.fail(f"deploy lab: {exc}", pytrace=False)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close(self.say)


def _slug(text: str) -> str:
    """A test's name as a folder name: the run folders of `test_x[a b]` under `test_x-a-b`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:80]


def _image_slug(text: str) -> str:
    """A folder's name as a path component of an image reference: lowercase letters and digits joined by
    dashes, as Docker's grammar takes them (`MyShop` or `_shop` would be refused as a tag)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80].strip("-")


# -- what a test holds -----------------------------------------------------------------------------


def _kwargs_names(message: str) -> str:
    """The command line's option names in a message, as the keyword arguments of `run`."""
    return re.sub(r"--([a-z0-9][a-z0-9-]*)", lambda m: m.group(1).replace("-", "_"), message)


def _env(env: Mapping[str, object] | None, name: str) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        pytest.fail(
            f"deploy_lab.run: {name} must be a mapping of names to values, got {env!r}", pytrace=False
        )
    return {str(key): str(value) for key, value in env.items()}


class DeployLab:
    """The `deploy_lab` fixture: runs a deployment on a real fleet and returns what clients saw."""

    def __init__(self, session: LabSession, test_name: str) -> None:
        self.session = session
        self.test_name = test_name

    @staticmethod
    def app(
        image: str, port: int = 8080, health_path: str = "/healthz", serves: Sequence[str] | None = None
    ) -> AppSpec:
        """Your own image as a version: the port it listens on, the path that answers 200 when ready, and
        what it serves of a mix (`["get", "post"]`; default get). It must exist in the engine (built or
        pulled): the lab never pulls."""
        try:
            return AppSpec(image, port, health_path, None if serves is None else tuple(serves))
        except ValueError as exc:
            pytest.fail(f"deploy_lab.app: {exc}", pytrace=False)

    def build(
        self,
        path: str | Path,
        *,
        port: int = 8080,
        health_path: str = "/healthz",
        dockerfile: str = "Dockerfile",
        buildargs: Mapping[str, str] | None = None,
    ) -> AppSpec:
        """Build your app from a Dockerfile (testcontainers' DockerImage), once per session for the same
        folder, Dockerfile and build args, and removed at the end of the session."""
        folder = Path(path).resolve()
        if not (folder / dockerfile).is_file():
            pytest.fail(f"deploy_lab.build: no {dockerfile} in {folder}", pytrace=False)
        try:  # before minutes of building
            AppSpec(port=port, health_path=health_path)
        except ValueError as exc:
            pytest.fail(f"deploy_lab.build: {exc}", pytrace=False)
        tag = self.session.build(folder, dockerfile, {k: str(v) for k, v in (buildargs or {}).items()})
        return AppSpec(tag, port, health_path)

    def config(
        self,
        strategy: str,
        *,
        v1: AppSpec | str | None = None,
        v2: AppSpec | str | None = None,
        fleet: int = RunOptions.fleet_size,
        rate: float = RunOptions.rate,
        mode: str = RunOptions.mode,
        scenario: str = RunOptions.scenario,
        v1_env: Mapping[str, object] | None = None,
        v2_env: Mapping[str, object] | None = None,
        baseline: float = RunOptions.baseline_s,
        settle: float = RunOptions.settle_s,
        health_timeout: float = RunOptions.health_timeout_s,
        next_upstream: str = ProxySettings.next_upstream,
        clients: int = RunOptions.clients,
        testers: int = RunOptions.testers,
        mix: str | Mapping[str, int] = "get=1",
        engine: str = RunOptions.engine,
        params: Mapping[str, Any] | None = None,
        **strategy_params: Any,
    ) -> RunOptions:
        """The run `run` would make, checked as `lab run` checks its options; no Docker needed."""
        from lab import strategies
        from lab.errors import BadInput
        from lab.options import parse_mix, run_options

        try:
            chosen = strategies.get(strategy)
            chosen_params = chosen.coerce({**(params or {}), **strategy_params})
        except (strategies.UnknownStrategy, ValueError) as exc:
            message = exc.args[0] if isinstance(exc, LookupError) and exc.args else str(exc)
            pytest.fail(f"deploy_lab.run: {message}", pytrace=False)
        apps = [self.app(v) if isinstance(v, str) else v for v in (v1, v2)]
        for name, spec in zip(("v1", "v2"), apps, strict=True):
            if spec is not None and not isinstance(spec, AppSpec):
                pytest.fail(
                    f"deploy_lab.run: {name} must be deploy_lab.app(...) or an image name", pytrace=False
                )
        try:
            config = run_options(
                chosen.name,
                chosen_params,
                fleet_size=fleet,
                rate=rate,
                mode=mode,
                v1_env=_env(v1_env, "v1_env"),
                v2_env=_env(v2_env, "v2_env"),
                scenario=scenario,
                port=None,
                baseline=baseline,
                settle=settle,
                health_timeout=health_timeout,
                next_upstream=next_upstream,
                v1_app=apps[0],
                v2_app=apps[1],
                clients=clients,
                testers=testers,
                mix=parse_mix(mix if isinstance(mix, str) else ",".join(f"{k}={w}" for k, w in mix.items())),
                engine=engine,
            )
        except BadInput as exc:
            pytest.fail(f"deploy_lab.run: {_kwargs_names(str(exc))}", pytrace=False)
        return dataclasses.replace(config, port=None)  # any free port: tests may run side by side

    def run(self, strategy: str, *, expect: str | None = "completed", **settings: Any) -> LabResult:
        """Deploy v1 -> v2 with `strategy` while probing; fail the test unless the run ends `expect`
        (completed, rolled_back, or None for either). Keyword arguments: those of `config`, and the
        strategy's parameters (`batch=1`, `bake_s=1.5` ...)."""
        if expect is not None and expect not in EXPECTED:
            pytest.fail(f"deploy_lab.run: expect must be one of {', '.join(EXPECTED)} or None", pytrace=False)
        config = self.config(strategy, **settings)
        return self.execute(config, expect=expect)

    def measure(
        self,
        url: str,
        command: Sequence[str] | None = None,
        *,
        expect: str | None = "completed",
        headers: Mapping[str, str] | None = None,
        **settings: Any,
    ) -> LabResult:
        """Probe your service at `url` while your deploy `command` runs (`lab measure`): no Docker of the
        lab's, nothing deployed by it. Fails the test unless the run ends `expect` (completed, or
        command_failed when the command is meant to fail; None for either). Keyword arguments: `rate`,
        `mode`, `baseline`, `settle`, `duration` (without a command), `timeout`, `headers` (a mapping),
        `insecure`, `ok` ("200-399"), `version_header`, `version_from_body`, `old`."""
        from lab.errors import BadInput
        from lab.options import measure_options
        from lab.targets.command import check_command

        if expect is not None and expect not in ("completed", "command_failed"):
            pytest.fail("deploy_lab.measure: expect must be completed, command_failed or None", pytrace=False)
        if isinstance(command, str):
            pytest.fail(
                "deploy_lab.measure: command is a list of arguments, e.g. ['kubectl', 'rollout', ...]",
                pytrace=False,
            )
        try:
            options = measure_options(
                url, tuple(command or ()), headers=tuple((headers or {}).items()), **settings
            )
            check_command(options.measure.command if options.measure else ())
        except BadInput as exc:
            pytest.fail(f"deploy_lab.measure: {_kwargs_names(str(exc))}", pytrace=False)
        except TypeError as exc:  # an unknown keyword argument
            pytest.fail(f"deploy_lab.measure: {exc}", pytrace=False)
        return self.execute(options, expect=expect)

    def execute(self, config: RunOptions, *, expect: str | None = "completed") -> LabResult:
        """Run `config` (from `config`, `measure`'s, or one of your own): clean-up included, whatever
        happens."""
        from lab.pipeline import run_once
        from lab.targets.base import Target

        run_id = secrets.token_hex(3)
        target: Target
        if config.measure is not None:
            from lab.targets.command import CommandTarget

            target = CommandTarget(config)
            log.info("run %s: measuring %s at %g req/s", run_id, config.measure.url, config.rate)
        else:
            from lab.targets.select import fleet_target

            self.session.connect()
            engine = self.session.engine.engine(run_id, config.engine, config.stop_grace_s)
            target = fleet_target(config, engine)
            log.info(
                "run %s: %s on %d instance(s) per version at %g req/s",
                run_id,
                config.strategy,
                config.fleet_size,
                config.rate,
            )
        done = run_once(
            config,
            target,
            out_dir=self.session.runs_dir / self.test_name,
            run_id=run_id,
            hook=lambda line, _event: log.info(line),
        )
        record, analysis, folder = done.record, done.analysis, done.folder
        assert folder is not None
        self.session.runs.append(folder)
        result = LabResult(
            config.strategy, record.status, record.error, tuple(record.notes), folder, analysis, record
        )
        where = f"(run folder: {folder})"
        if record.status == "failed":
            pytest.fail(
                f"deploy lab: the {config.strategy} run failed: {record.error} {where}", pytrace=False
            )
        if expect is not None and record.status != expect:
            why = f": {analysis.rollback.reason}" if analysis.rollback else ""
            why = f": {record.error}" if record.status == "command_failed" else why
            pytest.fail(
                f"deploy lab: {config.strategy} ended {record.status}, expected {expect}{why} {where}",
                pytrace=False,
            )
        return result


def _runs_dir(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = config.getoption("--deploy-lab-runs") or config.getini(RUNS_INI).strip()
    if given:
        path = Path(given).expanduser()
        return path if path.is_absolute() else config.rootpath / path
    return tmp_path_factory.getbasetemp() / "deploy-lab"


_SESSION = pytest.StashKey[LabSession]()


@pytest.fixture(scope="session")
def deploy_lab_session(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LabSession]:
    """The session's engine connection and built images (connected on first use)."""
    session = LabSession(request.config, _runs_dir(request.config, tmp_path_factory))
    request.config.stash[_SESSION] = session
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def deploy_lab(deploy_lab_session: LabSession, request: pytest.FixtureRequest) -> DeployLab:
    """Run deployments on a real fleet behind nginx: ``deploy_lab.run("rolling", batch=1)``."""
    return DeployLab(deploy_lab_session, _slug(request.node.name) or "test")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    session = config.stash.get(_SESSION, None)
    if session is not None and session.runs:
        terminalreporter.write_sep("-", "deploy lab")
        terminalreporter.write_line(f"{len(session.runs)} run(s); run folders under {session.runs_dir}")
