"""The pytest plugin without Docker: how it loads, what it refuses, and what a result holds.

Tests that run pytest do it in a subprocess (pytester), in a folder of their own with no conftest: the
plugin must come from the package's entry point alone, as it does for a user.
"""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
import types
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from lab.analysis.summary import summarize
from lab.model import AppSpec, ErrorClass, Event, Sample
from lab.options import RunOptions
from lab.pytest_plugin import LabResult
from lab.record import RunRecord

pytest_plugins = ["pytester"]

NO_DOCKER = "tcp://127.0.0.1:1"  # nothing listens there: every Docker call fails at once


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_DOCKER)


def test_the_entry_point_names_the_plugin_module() -> None:
    (plugin,) = [e for e in entry_points(group="pytest11") if e.name == "deploy_lab"]
    assert plugin.value == "lab.pytest_plugin"


def test_loading_the_plugin_loads_neither_docker_nor_the_runner() -> None:
    code = (
        "import sys, lab.pytest_plugin; "
        "heavy = ('docker', 'testcontainers', 'lab.targets.fleet.target', 'httpx'); "
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_without_docker_a_test_fails_with_one_line_once_per_session(
    pytester: pytest.Pytester, no_docker: None
) -> None:
    pytester.makepyfile(
        """
        def test_one(deploy_lab):
            deploy_lab.run("rolling")

        def test_two(deploy_lab):
            deploy_lab.run("blue-green")
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "deploy lab: Docker is not reachable at tcp://127.0.0.1:1 (*Connection refused): is the engine "
            "running? (set deploy_lab_no_docker = skip to skip instead)"
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_without_docker_the_ini_option_skips_instead(pytester: pytest.Pytester, no_docker: None) -> None:
    pytester.makeini("[pytest]\ndeploy_lab_no_docker = skip\n")
    pytester.makepyfile("def test_one(deploy_lab):\n    deploy_lab.run('rolling')\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*deploy lab: Docker is not reachable*"])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            'run("rolling", bach=1)',
            "deploy_lab.run: strategy 'rolling' has no parameter 'bach' (parameters: *)",
        ),
        ('run("rolling", batch="lots")', "deploy_lab.run: parameter batch: 'lots' is neither a count*"),
        ('run("canary", percents=[50, 10])', "deploy_lab.run: *"),
        ('run("rollin")', "deploy_lab.run: unknown strategy 'rollin'*"),
        ('run("rolling", fleet=20)', "deploy_lab.run: fleet must be from 1 up to 16, got 20"),
        ('run("rolling", rate=0)', "deploy_lab.run: rate must be above 0 up to 5000, got 0"),
        ('run("rolling", mode="eager")', "deploy_lab.run: mode must be one of keepalive, fresh, got 'eager'"),
        (
            'run("rolling", next_upstream="sometimes")',
            "deploy_lab.run: next_upstream 'sometimes' is not valid*",
        ),
        ('run("rolling", v2_env={"APP_VERSION": "v9"})', "deploy_lab.run: v2_env cannot set APP_VERSION*"),
        (
            'run("rolling", v2="shop:2", scenario="errors")',
            "deploy_lab.run: scenario errors sets the sample*",
        ),
        (
            'run("rolling", expect="deployed")',
            "deploy_lab.run: expect must be one of completed, rolled_back*",
        ),
        ('run("rolling", v1=8080)', "deploy_lab.run: v1 must be deploy_lab.app(...) or an image name"),
        ('app("shop:1", port=0)', "deploy_lab.app: port must be a whole number from 1 to 65535, got 0"),
        ('app("shop:1", health_path="ready")', "deploy_lab.app: health path 'ready' must start with /*"),
        ('build("nowhere")', "deploy_lab.build: no Dockerfile in */nowhere"),
    ],
)
def test_bad_input_fails_the_test_with_a_clear_line_before_any_docker(
    pytester: pytest.Pytester, no_docker: None, call: str, message: str
) -> None:
    pytester.makepyfile(f"def test_it(deploy_lab):\n    deploy_lab.{call}\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([message])
    result.stdout.no_fnmatch_line("*Docker is not reachable*")  # refused before connecting


def test_config_is_the_run_without_running_it(pytester: pytest.Pytester, no_docker: None) -> None:
    pytester.makepyfile(
        """
        from lab.model import AppSpec

        def test_it(deploy_lab):
            v2 = deploy_lab.app("myorg/shop:1.5", port=8000, health_path="/ready")
            config = deploy_lab.config(
                "canary", v1="myorg/shop:1.4", v2=v2, fleet=2, rate=50, v2_env={"LEVEL": 3}, bake_s=1,
                params={"percents": "25,100"},
            )
            assert config.v1_app == AppSpec("myorg/shop:1.4")
            assert config.v2_app == AppSpec("myorg/shop:1.5", 8000, "/ready")
            assert (config.fleet_size, config.rate, dict(config.v2_env)) == (2, 50, {"LEVEL": "3"})
            assert config.params == {"percents": (25, 100), "bake_s": 1.0}
            assert config.port is None  # any free port: test sessions may run side by side
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_the_run_folder_comes_from_the_option_then_the_ini_then_pytests_tmp(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\ndeploy_lab_runs = lab-runs\n")
    pytester.makepyfile(
        """
        import pathlib

        def test_it(deploy_lab_session, request):
            given = request.config.getoption("--deploy-lab-runs")
            expected = given or str(request.config.rootpath / "lab-runs")
            assert str(deploy_lab_session.runs_dir) == expected
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
    pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--deploy-lab-runs", "/tmp/elsewhere"
    ).assert_outcomes(passed=1)


def test_without_a_setting_runs_go_under_pytests_basetemp(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        def test_it(deploy_lab_session, tmp_path_factory):
            assert deploy_lab_session.runs_dir == tmp_path_factory.getbasetemp() / "deploy-lab"
        """
    )
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


# -- images deploy_lab.build made -------------------------------------------------------------------


def test_two_sessions_building_the_same_folder_tag_images_of_their_own(pytester: pytest.Pytester) -> None:
    # Two pytest processes on one engine (xdist workers, two CI jobs): each removes its own tag at the
    # end, so a shared tag would delete the image the other session still runs.
    pytester.makepyfile(
        """
        from pathlib import Path

        def test_it(deploy_lab_session):
            tag = deploy_lab_session.image_tag(Path("/src/shop"), "Dockerfile", {"RELEASE": "1"})
            assert deploy_lab_session.image_tag(Path("/src/shop"), "Dockerfile", {"RELEASE": "1"}) == tag
            assert deploy_lab_session.image_tag(Path("/src/shop"), "Dockerfile", {"RELEASE": "2"}) != tag
            print("TAG", tag)
        """
    )
    tags = []
    for _ in range(2):
        done = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s")
        done.assert_outcomes(passed=1)
        (tag,) = re.findall(r"TAG (\S+)", done.stdout.str())
        tags.append(tag)
    assert tags[0] != tags[1]
    assert all(tag.startswith("deploylab-pytest/shop:") for tag in tags)


class FakeImages:
    def __init__(self, refuse: dict[str, Exception]) -> None:
        self.refuse = refuse
        self.calls: list[tuple[str, dict[str, object]]] = []

    def remove(self, image: str, **kwargs: object) -> None:
        self.calls.append((image, kwargs))
        if image in self.refuse:
            raise self.refuse[image]


class FakeBuilt:
    """What the session keeps of a testcontainers DockerImage: its tag, and its own engine client."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.closed = False

    def get_docker_client(self) -> FakeBuilt:
        return self

    @property
    def client(self) -> FakeBuilt:
        return self

    def close(self) -> None:
        self.closed = True


def test_the_session_removes_its_images_by_tag_never_forced_and_reports_one_in_use(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import docker.errors

    from lab.pytest_plugin import LabSession

    conflict = (
        'conflict: unable to remove repository reference "deploylab-pytest/b:2" (must force) '
        "- container 0123abcd is using its referenced image 4567"
    )
    in_use = docker.errors.APIError("409 Client Error: Conflict", explanation=conflict)
    images = FakeImages(
        {"deploylab-pytest/b:2": in_use, "deploylab-pytest/c:3": docker.errors.ImageNotFound("gone")}
    )
    client = types.SimpleNamespace(
        images=images,
        containers=types.SimpleNamespace(list=lambda **_: []),
        networks=types.SimpleNamespace(list=lambda **_: []),
    )
    config = types.SimpleNamespace(pluginmanager=types.SimpleNamespace(get_plugin=lambda _name: None))
    session = LabSession(config, tmp_path)  # type: ignore[arg-type]
    session.engine.client = client  # type: ignore[assignment]
    built = [FakeBuilt(f"deploylab-pytest/{name}") for name in ("a:1", "b:2", "c:3", "d:4")]
    session.engine.built = {(b.tag, "Dockerfile", ()): b for b in built}
    with caplog.at_level("INFO", logger="lab.pytest"):
        session.close()
    assert images.calls == [(b.tag, {}) for b in built]  # each by its tag, none forced, on past a refusal
    assert [r.getMessage() for r in caplog.records] == [f"left deploylab-pytest/b:2 in place: {conflict}"]
    assert all(b.closed for b in built)


# -- a result ----------------------------------------------------------------------------------------


def result(tmp_path: Path) -> LabResult:
    config = RunOptions("rolling", v2_app=AppSpec("shop:2", 8000, "/ready"))
    record = RunRecord(config, "abc123", "2026-01-01T00:00:00+00:00", 100.0)
    record.probe_started = 100.5
    record.status = "completed"
    record.events = [Event(1, "Route", "route v2 100%", 101.0, 101.2, in_service=4)]
    record.samples = [
        Sample(i, 100.5 + i / 100, 100.5 + i / 100, 100.51 + i / 100, 200, "v1") for i in range(50)
    ]
    record.samples += [
        Sample(50, 101.0, 101.0, 101.01, 502, "v2", error=ErrorClass.HTTP_5XX, upstream="10.0.0.5:8000")
    ]
    record.samples += [
        Sample(51 + i, 101.01 + i / 100, 101.01 + i / 100, 101.02 + i / 100, 200, "v2") for i in range(9)
    ]
    analysis = summarize(record.samples, record.events, target_rate=100, fleet_size=4)
    return LabResult("rolling", "completed", None, (), tmp_path, analysis, record)


def test_a_result_reads_every_figure_of_the_analysis(tmp_path: Path) -> None:
    r = result(tmp_path)
    assert (r.requests_failed, r.blast_radius, r.new_answers) == (1, 1, 10)
    assert r.downtime_ms == pytest.approx(10.0) and r.mixed_window_ms == 0
    assert r.versions_seen == {"v1": 50, "v2": 9}
    assert r.samples is r.record.samples and r.events == r.record.events
    assert {"requests_failed", "downtime_ms", "mixed_window_ms", "folder"} <= set(dir(r))
    with pytest.raises(AttributeError, match="no 'downtime'; its figures: requests_scheduled, "):
        r.downtime  # noqa: B018 (the attribute access is the test)
    assert "deploy lab rolling completed: 1 of 60 failed, downtime 10.0 ms" in repr(r)


def test_a_results_dict_is_what_lab_run_json_prints(tmp_path: Path) -> None:
    d = result(tmp_path).to_dict()
    assert (d["strategy"], d["status"], d["requests_failed"], d["output"]) == (
        "rolling",
        "completed",
        1,
        str(tmp_path),
    )
    assert d["downtime_windows"][0]["start"] == pytest.approx(1.0)  # seconds since the run began


def test_a_parsed_parameter_goes_into_the_journal_as_written(tmp_path: Path) -> None:
    # deploy_lab.run("rolling", batch=1) hands the runner a Batch: the journal must still be JSON.
    from lab.output.journal import journal
    from lab.strategies.base import Batch

    r = result(tmp_path)
    config = RunOptions("rolling", params={"batch": Batch.parse("25%"), "drain_s": 1.0})
    record = dataclasses.replace(r.record, config=config)
    written = journal(record, r.analysis)
    assert written["input"]["params"] == {"batch": "25%", "drain_s": 1.0}
    assert json.loads(json.dumps(written))["input"]["params"]["batch"] == "25%"


@pytest.mark.parametrize("folder", ["MyShop", "_shop", "shop..v2", "Shop Front (v2)", "---"])
def test_a_folders_tag_is_an_image_reference_docker_takes(folder: str) -> None:
    from lab.model import is_image_reference
    from lab.pytest_plugin import _image_slug

    slug = _image_slug(folder) or "app"  # image_tag's stand-in for a name with nothing left
    assert is_image_reference(f"deploylab-pytest/{slug}:0123456789ab-0123456789ab"), slug


def test_a_tests_run_folder_keeps_its_name_as_written() -> None:
    # The docs and the integration test find a test's runs under its own name (test_rolling_drops_nothing).
    from lab.pytest_plugin import _slug

    assert _slug("test_rolling_drops_nothing") == "test_rolling_drops_nothing"
    assert _slug("test_x[keepalive mode]") == "test_x-keepalive-mode"
