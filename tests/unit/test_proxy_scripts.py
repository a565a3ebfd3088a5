"""The proxy's side of a route: the shell it runs in its container (run here in `sh`, processes titled
like nginx's workers standing in for them), so a route step's wait for old workers waits and ends; and a
config's check, one exec, checked again only while an instance's name does not resolve."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.engines.docker.proxy import (
    OLD_WORKERS,
    WORKER_TITLE,
    DockerProxy,
    old_workers_left,
    reload_script,
)
from lab.errors import ConfigRejected


def run(script: str) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stderr == ""  # a quoting mistake shows as a syntax error here
    return done.stdout.strip(), time.monotonic() - started


@pytest.fixture
def title() -> str:
    """A worker title of this test's own: nginx workers running on this host are not its to wait for."""
    return f"lab-test-worker-{uuid.uuid4().hex[:8]}"


@contextmanager
def worker(title: str, lives_s: float) -> Iterator[subprocess.Popen[bytes]]:
    """A process titled like an nginx worker (its argv[0], as nginx sets its own), for `lives_s`."""
    proc = subprocess.Popen(["bash", "-c", f'exec -a "{title}" sleep {lives_s}'])
    try:
        deadline = time.monotonic() + 5
        while not Path(f"/proc/{proc.pid}/cmdline").read_bytes().startswith(title.encode()):
            assert time.monotonic() < deadline, "the stand-in worker never took its title"
            time.sleep(0.01)
        yield proc
    finally:
        proc.kill()
        proc.wait()


def reload_only(script: str, reload: str = "true") -> str:
    """`reload_script` with nginx's own commands left out (no nginx here): what is left is the wait."""
    for command in ("nginx -t", "cp /etc", "nginx -s reload"):
        assert command in script
    script = script.replace("nginx -t", "true").replace("cp /etc", "true /etc")
    return script.replace("nginx -s reload", reload)


def test_the_reload_waits_until_the_workers_that_ran_before_it_are_gone(title: str) -> None:
    with worker(title, 0.5):
        out, took = run(reload_only(reload_script(5.0, title)))
    assert out == f"{OLD_WORKERS}0" and 0.4 <= took < 4.0


def test_a_worker_that_started_after_the_reload_is_not_waited_for(title: str) -> None:
    # The snapshot is taken before the reload: a new config's worker (here one that starts as the
    # reload runs and lives 10 s) is not an old one, and the wait does not last its life.
    starts = f"(bash -c 'exec -a \"{title}\" sleep 10' >/dev/null 2>&1 &)"
    script = reload_only(reload_script(5.0, title), starts)
    try:
        out, took = run(script)
    finally:
        subprocess.run(["pkill", "-f", title], check=False)
    assert out == f"{OLD_WORKERS}0" and took < 2.0


def test_the_wait_ends_at_its_timeout_with_the_old_workers_left(title: str) -> None:
    with worker(title, 30), worker(title, 30):
        out, took = run(reload_only(reload_script(0.4, title)))
    assert out == f"{OLD_WORKERS}2" and 0.35 <= took < 3.0
    assert old_workers_left(f"some nginx output\n{out}\n") == 2


def test_without_a_wait_the_reload_prints_no_count(title: str) -> None:
    with worker(title, 30):
        out, took = run(reload_only(reload_script(0.0, title)))
    assert out == "" and took < 2.0
    assert old_workers_left(out) is None


def test_the_script_names_nginx_s_own_worker_title() -> None:
    assert f"^{WORKER_TITLE}" in reload_script(1.0) and WORKER_TITLE == "nginx: worker process"


class Api:
    """The engine's exec calls, answering each `sh -c` with the next (exit code, output) of a script."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers, self.execs, self.archives = list(answers), 0, 0

    def put_archive(self, name: str, path: str, data: bytes) -> bool:
        self.archives += 1
        return True

    def exec_create(self, name: str, cmd: list[str]) -> dict[str, str]:
        self.execs += 1
        return {"Id": str(self.execs)}

    def exec_start(self, exec_id: str) -> bytes:
        return self.answers[0][1].encode()

    def exec_inspect(self, exec_id: str) -> dict[str, int]:
        return {"ExitCode": self.answers.pop(0)[0]}


def proxy(api: Api) -> DockerProxy:
    return DockerProxy(SimpleNamespace(api=api), "abc123", "net", {}, "deploylab/proxy:1")  # type: ignore[arg-type]


NOT_FOUND = 'nginx: [emerg] host not found in upstream "app-v2-1:8080" in /etc/nginx/lab-candidate.conf:40'


def test_a_config_is_one_upload_and_one_exec() -> None:
    api = Api([(0, "")])
    assert proxy(api).apply_config("events {}") == (1, None)
    assert (api.archives, api.execs) == (1, 1)


def test_a_reload_that_waited_says_how_many_old_workers_were_left() -> None:
    api = Api([(0, f"{OLD_WORKERS}1\n")])
    assert proxy(api).apply_config("events {}", old_workers_s=7.0) == (1, 1)
    assert api.execs == 1


def test_a_name_that_resolves_on_the_second_check_passes_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    api = Api([(3, NOT_FOUND), (0, "")])
    assert proxy(api).apply_config("events {}").checks == 2


def test_a_name_that_never_resolves_is_rejected_after_three_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    api = Api([(3, NOT_FOUND)] * 3)
    with pytest.raises(ConfigRejected, match='host not found in upstream "app-v2-1:8080"'):
        proxy(api).apply_config("events {}")
    assert api.execs == 3


def test_any_other_rejection_is_final_at_once() -> None:
    api = Api([(3, 'nginx: [emerg] unknown directive "bogus"'), (0, "")])
    with pytest.raises(ConfigRejected, match="unknown directive"):
        proxy(api).apply_config("bogus;")
    assert api.execs == 1
