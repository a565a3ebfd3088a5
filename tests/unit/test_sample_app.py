"""The sample app's logic without sockets or Docker: settings, answers, failure dice, lifecycle."""

from __future__ import annotations

import ast
import json
import random
import signal
import sys
from pathlib import Path

import pytest

from sample_app import app
from sample_app.app import Lifecycle, Settings, SettingsError, SignalAction, State, request_delay_s, respond

APP_SOURCE = Path(app.__file__)


def settings(**env: str) -> Settings:
    return Settings.from_env(env, default_instance="host-1")


def answer(path: str, state: State, s: Settings | None = None, seed: int = 1) -> tuple[int, dict, dict]:
    status, headers, body = respond(path, state, s or settings(), random.Random(seed))
    return status, headers, json.loads(body)


# ---------------------------------------------------------------------------------------------------
# Settings


def test_defaults():
    s = settings()
    assert s == Settings(
        port=8080,
        version="v1",
        instance="host-1",
        boot_delay_s=0.0,
        fail_rate=0.0,
        seed=None,
        latency_ms=0.0,
        drain_s=0.0,
        fail_at_start=False,
        never_ready=False,
        ignore_sigterm=False,
    )


def test_instance_defaults_to_the_host_name(monkeypatch):
    monkeypatch.setattr(app.socket, "gethostname", lambda: "abc123")
    assert Settings.from_env({}).instance == "abc123"
    assert Settings.from_env({"APP_INSTANCE": "app-v2-1"}).instance == "app-v2-1"


def test_every_knob_is_read():
    s = settings(
        APP_PORT="9000",
        APP_VERSION="v2",
        APP_INSTANCE="app-v2-3",
        APP_BOOT_DELAY_S="2.5",
        APP_FAIL_RATE="0.25",
        APP_SEED="42",
        APP_LATENCY_MS="150",
        APP_DRAIN_S="3",
        APP_FAIL_AT_START="true",
        APP_NEVER_READY="yes",
        APP_IGNORE_SIGTERM="1",
        APP_HARD_STOP="on",
    )
    assert s == Settings(
        port=9000,
        version="v2",
        instance="app-v2-3",
        boot_delay_s=2.5,
        fail_rate=0.25,
        seed=42,
        latency_ms=150.0,
        drain_s=3.0,
        fail_at_start=True,
        never_ready=True,
        ignore_sigterm=True,
        hard_stop=True,
    )


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "on", " On "])
def test_truthy_flags(value):
    assert settings(APP_NEVER_READY=value).never_ready is True


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "", "  "])
def test_falsy_flags(value):
    assert settings(APP_IGNORE_SIGTERM=value).ignore_sigterm is False


def test_empty_values_mean_default():
    assert settings(APP_PORT="", APP_VERSION=" ", APP_FAIL_RATE="") == settings()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("APP_PORT", "0"),
        ("APP_PORT", "65536"),
        ("APP_PORT", "http"),
        ("APP_PORT", "80.5"),
        ("APP_BOOT_DELAY_S", "-1"),
        ("APP_BOOT_DELAY_S", "soon"),
        ("APP_BOOT_DELAY_S", "inf"),
        ("APP_FAIL_RATE", "1.5"),
        ("APP_FAIL_RATE", "-0.1"),
        ("APP_FAIL_RATE", "nan"),
        ("APP_FAIL_RATE", "30%"),
        ("APP_LATENCY_MS", "-5"),
        ("APP_DRAIN_S", "x"),
        ("APP_SEED", "abc"),
        ("APP_FAIL_AT_START", "maybe"),
        ("APP_NEVER_READY", "2"),
        ("APP_IGNORE_SIGTERM", "y"),
        ("APP_VERSION", "v 2"),
        ("APP_VERSION", "v2\r\nX-Evil: 1"),
        ("APP_INSTANCE", "x" * 129),
    ],
)
def test_invalid_values_are_named(name, value):
    with pytest.raises(SettingsError) as err:
        settings(**{name: value})
    message = str(err.value)
    assert message.startswith(f"{name}=")
    assert "invalid" in message
    assert "\n" not in message


def test_every_invalid_value_is_reported_on_one_line():
    with pytest.raises(SettingsError) as err:
        settings(APP_FAIL_RATE="2", APP_DRAIN_S="x")
    message = str(err.value)
    assert "APP_FAIL_RATE='2'" in message and "APP_DRAIN_S='x'" in message
    assert "\n" not in message


def test_main_exits_2_on_invalid_knob_with_one_line(capfd):
    assert app.main({"APP_FAIL_RATE": "lots"}) == 2
    out, err = capfd.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and "APP_FAIL_RATE='lots'" in err


def test_main_exits_1_when_told_to_crash_at_start(capfd):
    assert app.main({"APP_FAIL_AT_START": "1", "APP_VERSION": "v9"}) == 1
    out, err = capfd.readouterr()
    assert err.count("\n") == 1 and "v9" in err and "crashed" in err


# ---------------------------------------------------------------------------------------------------
# Answers


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("path", ["/", "/healthz", "/nope"])
def test_every_answer_is_json_with_length_and_version_headers(path, state):
    s = settings(APP_VERSION="v2", APP_INSTANCE="app-v2-1")
    status, headers, body = respond(path, state, s, random.Random(0))
    assert headers["Content-Length"] == str(len(body))
    assert headers["Content-Type"] == "application/json"
    assert headers["X-App-Version"] == "v2"
    assert headers["X-Instance"] == "app-v2-1"
    payload = json.loads(body)
    assert payload["version"] == "v2" and payload["instance"] == "app-v2-1"


def test_root_when_ready():
    status, headers, payload = answer("/", State.READY, settings(APP_VERSION="v2"))
    assert status == 200
    assert payload == {"version": "v2", "instance": "host-1"}
    assert "Connection" not in headers  # keep-alive


def test_root_while_draining_is_still_served_but_closes_the_connection():
    status, headers, payload = answer("/", State.DRAINING)
    assert status == 200
    assert payload == {"version": "v1", "instance": "host-1"}
    assert headers["Connection"] == "close"


def test_root_while_booting_is_503():
    status, _, payload = answer("/", State.BOOTING)
    assert status == 503
    assert payload["status"] == "booting"


@pytest.mark.parametrize(
    ("state", "status"),
    [(State.BOOTING, 503), (State.READY, 200), (State.DRAINING, 503), (State.STOPPED, 503)],
)
def test_healthz_follows_the_state(state, status):
    got, headers, payload = answer("/healthz", state)
    assert got == status
    assert payload["status"] == state.value
    assert ("Connection" in headers) == (state in (State.DRAINING, State.STOPPED))


def test_unknown_path_is_404():
    assert answer("/favicon.ico", State.READY)[0] == 404


def statuses(fail_rate: str, n: int = 1000, seed: int = 7, state: State = State.READY) -> list[int]:
    s = settings(APP_FAIL_RATE=fail_rate)
    rng = random.Random(seed)
    return [respond("/", state, s, rng)[0] for _ in range(n)]


def test_fail_rate_zero_never_fails():
    assert set(statuses("0")) == {200}


def test_fail_rate_one_always_fails():
    assert set(statuses("1")) == {500}
    assert set(statuses("1", state=State.DRAINING)) == {500}


def test_fail_rate_is_about_right():
    failures = statuses("0.3").count(500)
    assert 240 <= failures <= 360  # 0.3 * 1000, sd about 14.5


def test_failures_are_repeatable_with_a_seed():
    assert statuses("0.5", n=200, seed=3) == statuses("0.5", n=200, seed=3)
    assert statuses("0.5", n=200, seed=3) != statuses("0.5", n=200, seed=4)


def test_injected_failure_keeps_the_version_headers():
    status, headers, body = respond("/", State.READY, settings(APP_FAIL_RATE="1"), random.Random(0))
    assert status == 500
    assert headers["X-App-Version"] == "v1"
    assert json.loads(body)["error"] == "injected failure"


def test_healthz_never_fails_and_never_rolls_the_dice():
    rng = random.Random(5)
    before = rng.getstate()
    assert respond("/healthz", State.READY, settings(APP_FAIL_RATE="1"), rng)[0] == 200
    assert rng.getstate() == before


def test_latency_applies_to_served_root_only():
    s = settings(APP_LATENCY_MS="250")
    assert request_delay_s("/", State.READY, s) == 0.25
    assert request_delay_s("/", State.DRAINING, s) == 0.25
    assert request_delay_s("/", State.BOOTING, s) == 0.0
    assert request_delay_s("/healthz", State.READY, s) == 0.0
    assert request_delay_s("/", State.READY, settings()) == 0.0


# ---------------------------------------------------------------------------------------------------
# Lifecycle


def test_boot_then_drain_then_stop():
    life = Lifecycle()
    assert life.state is State.BOOTING
    assert life.mark_ready() is True
    assert life.state is State.READY
    assert life.on_signal(signal.SIGTERM) is SignalAction.DRAIN
    assert life.state is State.DRAINING
    assert life.on_signal(signal.SIGTERM) is SignalAction.HURRY  # a second signal cuts the drain short
    assert life.state is State.DRAINING
    life.mark_stopped()
    assert life.state is State.STOPPED


def test_sigint_drains_like_sigterm():
    life = Lifecycle()
    life.mark_ready()
    assert life.on_signal(signal.SIGINT) is SignalAction.DRAIN
    assert life.state is State.DRAINING


def test_signal_while_booting_drains_and_ready_comes_too_late():
    life = Lifecycle()
    assert life.on_signal(signal.SIGTERM) is SignalAction.DRAIN
    assert life.mark_ready() is False
    assert life.state is State.DRAINING


def test_ignored_sigterm_changes_nothing_but_sigint_still_stops():
    life = Lifecycle(ignore_sigterm=True)
    life.mark_ready()
    assert life.on_signal(signal.SIGTERM) is SignalAction.IGNORE
    assert life.state is State.READY
    assert life.on_signal(signal.SIGINT) is SignalAction.DRAIN
    assert life.state is State.DRAINING


def test_never_ready_app_stays_booting():
    # run() simply never calls mark_ready(): / and /healthz both answer 503 "booting".
    life = Lifecycle()
    assert answer("/healthz", life.state)[0] == 503
    assert answer("/", life.state)[0] == 503


# ---------------------------------------------------------------------------------------------------
# The file itself


def test_app_uses_the_standard_library_only():
    tree = ast.parse(APP_SOURCE.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "app.py must be a standalone file"
            imported.add((node.module or "").split(".")[0])
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_app_parses_as_python_3_9():
    ast.parse(APP_SOURCE.read_text(), feature_version=(3, 9))


def test_dockerfile_runs_the_app_as_the_default_command():
    dockerfile = (APP_SOURCE.parent / "Dockerfile").read_text()
    assert "COPY app.py /app/app.py" in dockerfile
    assert 'CMD ["python3", "/app/app.py"]' in dockerfile
    assert "ARG BASE" in dockerfile and "ARG APP_VERSION" in dockerfile


# ---------------------------------------------------------------------------------------------------
# The kinds of request: writes, slow requests, streams


def test_a_write_is_created_and_only_on_write() -> None:
    s = settings(APP_VERSION="v2")
    status, headers, body = respond("/write", State.READY, s, random.Random(1), "POST")
    assert status == 201 and json.loads(body) == {"written": True, "version": "v2", "instance": "host-1"}
    assert headers["X-App-Version"] == "v2"
    assert respond("/", State.READY, s, random.Random(1), "POST")[0] == 404
    assert respond("/write", State.BOOTING, s, random.Random(1), "POST")[0] == 503


def test_a_slow_request_is_answered_like_the_page() -> None:
    assert answer("/slow", State.READY)[0] == 200 and answer("/slow", State.BOOTING)[0] == 503


@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, 1000), ({"ms": ["250"]}, 250), ({"ms": ["x"]}, 1000), ({"ms": ["99999"]}, 30000)],
)
def test_query_numbers_fall_back_and_are_capped(query: dict, expected: float) -> None:
    assert app.query_number(query, "ms", 1000, 30000) == expected


def test_a_stream_is_unbuffered_event_stream_with_the_version() -> None:
    headers = app.stream_headers(settings(APP_VERSION="v7"))
    assert headers["Content-Type"] == "text/event-stream" and headers["Transfer-Encoding"] == "chunked"
    assert headers["X-Accel-Buffering"] == "no" and headers["X-App-Version"] == "v7"
