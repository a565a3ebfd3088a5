"""The proxy's side of a route: the shell it runs in its container (run here in `sh`, a file standing in
for nginx's workers), so a route step's wait for old workers waits and ends; and a config's check, one
exec, checked again only while an instance's name does not resolve."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from lab.engines.docker.proxy import COUNT_WORKERS, DockerProxy, wait_workers_script
from lab.errors import ConfigRejected


def run(script: str) -> tuple[str, float]:
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stderr == ""  # a quoting mistake shows as a syntax error here
    return done.stdout.strip(), time.monotonic() - started


def test_the_wait_lasts_until_the_old_workers_are_gone(tmp_path: Path) -> None:
    workers = tmp_path / "workers"
    workers.write_text("4\n")  # two of the new config, two old ones shutting down
    timer = threading.Timer(0.5, workers.write_text, ("2\n",))
    timer.start()
    try:
        out, took = run(wait_workers_script(2, 5.0, count=f"cat {workers}"))
    finally:
        timer.cancel()
    assert out == "2" and 0.45 <= took < 4.0


def test_the_wait_ends_at_its_timeout_with_the_count_it_saw(tmp_path: Path) -> None:
    workers = tmp_path / "workers"
    workers.write_text("3\n")
    out, took = run(wait_workers_script(2, 0.4, count=f"cat {workers}"))
    assert out == "3" and 0.35 <= took < 3.0


def test_the_real_count_runs_in_the_inner_shell() -> None:
    # At most -1 workers can never be: the loop runs until its timeout, unless the inner shell cannot
    # parse it (then it fails at once, with a syntax error on stderr).
    out, took = run(wait_workers_script(-1, 0.4))
    assert out.isdigit() and 0.35 <= took < 3.0
    assert COUNT_WORKERS in wait_workers_script(2, 1.0)


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
    assert proxy(api).apply_config("events {}") == 1
    assert (api.archives, api.execs) == (1, 1)


def test_a_name_that_resolves_on_the_second_check_passes_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda s: None)
    api = Api([(3, NOT_FOUND), (0, "")])
    assert proxy(api).apply_config("events {}") == 2


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
