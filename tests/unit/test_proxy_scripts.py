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
    CANDIDATE_PATH,
    INLINE_CONFIG_MAX,
    NEW_WORKER_S,
    WORKER_TITLE,
    DockerProxy,
    old_workers,
    reload_script,
)
from lab.errors import ConfigRejected, LabError


def run(script: str) -> tuple[int, str, float]:
    started = time.monotonic()
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert done.stderr == ""  # a quoting mistake shows as a syntax error here
    return done.returncode, done.stdout.strip(), time.monotonic() - started


@pytest.fixture
def title() -> Iterator[str]:
    """A worker title of this test's own: nginx workers running on this host are not its to wait for.
    Whatever the test started under it goes at the end."""
    name = f"lab-test-worker-{uuid.uuid4().hex[:8]}"
    yield name
    subprocess.run(["pkill", "-f", name], check=False)


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


def new_worker(title: str, lives_s: float = 10) -> str:
    """What nginx's master does at a reload, in shell: a worker of the new config, in the background."""
    return f"(bash -c 'exec -a \"{title}\" sleep {lives_s}' >/dev/null 2>&1 &)"


def without_nginx(script: str, reload: str, check: str = "true", copy: str = "true") -> str:
    """`reload_script` with nginx's own commands stood in for (no nginx here): what is left is the shell
    around them, and the waits."""
    for command in ("nginx -t", "cp /etc/nginx/lab-candidate.conf /etc/nginx/nginx.conf", "nginx -s reload"):
        assert command in script
    script = script.replace("nginx -t", check)
    script = script.replace("cp /etc/nginx/lab-candidate.conf /etc/nginx/nginx.conf", copy)
    return script.replace("nginx -s reload", reload)


def test_the_reload_waits_for_the_workers_that_ran_before_it_and_not_for_new_ones(title: str) -> None:
    # The snapshot is taken before the reload: the new config's worker (it lives 10 s) is not an old
    # one, and the wait (up to 8 s) ends when the old one (0.5 s) has gone.
    with worker(title, 0.5):
        code, out, took = run(without_nginx(reload_script(8.0, title), new_worker(title)))
    assert (code, out) == (0, "old workers: 1 before, 0 left") and 0.4 <= took < 4.0


def test_the_wait_ends_at_its_timeout_with_the_old_workers_left(title: str) -> None:
    with worker(title, 30), worker(title, 30):
        code, out, took = run(without_nginx(reload_script(0.4, title), new_worker(title)))
    assert (code, out) == (0, "old workers: 2 before, 2 left") and 0.35 <= took < 3.0
    assert old_workers(f"some nginx output\n{out}\n") == (2, 2)


def test_a_reload_the_master_did_not_take_exits_5_without_waiting_for_the_old_workers(title: str) -> None:
    # `nginx -s reload` exits 0 even when the master then fails to load the config: no new worker comes,
    # and no old one would ever be told to go (the wait would run out, then the generation's).
    with worker(title, 30):
        code, out, took = run(without_nginx(reload_script(8.0, title), "true"))
    assert (code, out) == (5, "") and NEW_WORKER_S - 0.1 <= took < NEW_WORKER_S + 2.5


def test_a_rejected_config_is_neither_copied_nor_reloaded(title: str, tmp_path: Path) -> None:
    copied, reloaded = tmp_path / "copied", tmp_path / "reloaded"
    script = reload_script(8.0, title)
    code, out, _ = run(without_nginx(script, f"touch {reloaded}", check="false", copy=f"touch {copied}"))
    assert (code, out) == (3, "") and not copied.exists() and not reloaded.exists()


def test_without_a_wait_the_reload_neither_waits_for_the_old_workers_nor_counts(title: str) -> None:
    with worker(title, 30):
        code, out, took = run(without_nginx(reload_script(0.0, title), new_worker(title)))
    assert (code, out) == (0, "") and took < NEW_WORKER_S
    assert old_workers(out) == (None, None)


def test_without_a_wait_a_reload_the_master_did_not_take_still_exits_5(title: str) -> None:
    # Swarm's first reload waits for no old worker; a refused one must still not pass for one that took.
    with worker(title, 30):
        code, out, took = run(without_nginx(reload_script(0.0, title), "true"))
    assert (code, out) == (5, "") and NEW_WORKER_S - 0.1 <= took < NEW_WORKER_S + 2.5


def test_the_config_rides_in_the_script_byte_for_byte_before_the_check(title: str, tmp_path: Path) -> None:
    candidate, checked = tmp_path / "candidate.conf", tmp_path / "checked.conf"
    config = 'events {}\n# it\'s $HOME, `date`, \\n, "quoted", %s and %%\nhttp { }\n'
    script = reload_script(0.0, title, config=config).replace(CANDIDATE_PATH, str(candidate), 1)
    code, out, _ = run(without_nginx(script, new_worker(title), check=f"cp {candidate} {checked} && true"))
    assert (code, out) == (0, "") and checked.read_text() == config


def test_an_empty_config_replaces_the_last_candidate(title: str, tmp_path: Path) -> None:
    candidate, checked = tmp_path / "candidate.conf", tmp_path / "checked.conf"
    candidate.write_text("events {}\n")  # an earlier config's
    script = reload_script(0.0, title, config="").replace(CANDIDATE_PATH, str(candidate), 1)
    code, _, _ = run(without_nginx(script, new_worker(title), check=f"cp {candidate} {checked} && true"))
    assert code == 0 and checked.read_text() == ""


def test_a_config_that_cannot_be_written_is_neither_checked_nor_reloaded(title: str, tmp_path: Path) -> None:
    checked, reloaded = tmp_path / "checked", tmp_path / "reloaded"
    script = reload_script(8.0, title, config="events {}").replace(
        CANDIDATE_PATH, str(tmp_path / "no" / "x"), 1
    )
    code, out, _ = run(without_nginx(script, f"touch {reloaded}", check=f"touch {checked}"))
    assert code == 4 and "cannot create" in out and not checked.exists() and not reloaded.exists()


def test_a_tiny_wait_is_still_a_limit() -> None:
    # GNU timeout takes 0 for no limit at all.
    assert "timeout 0.05 " in reload_script(0.001) and "timeout 0.00" not in reload_script(0.001)


def test_the_script_names_nginx_s_own_worker_title() -> None:
    assert f"'^{WORKER_TITLE}'" in reload_script(1.0) and WORKER_TITLE == "nginx: worker process"


class Api:
    """The engine's exec calls, answering each `sh -c` with the next (exit code, output) of a script."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers, self.execs, self.archives = list(answers), 0, 0
        self.cmds: list[list[str]] = []

    def put_archive(self, name: str, path: str, data: bytes) -> bool:
        self.archives += 1
        return True

    def exec_create(self, name: str, cmd: list[str]) -> dict[str, str]:
        self.execs += 1
        self.cmds.append(cmd)
        return {"Id": str(self.execs)}

    def exec_start(self, exec_id: str) -> bytes:
        return self.answers[0][1].encode()

    def exec_inspect(self, exec_id: str) -> dict[str, int]:
        return {"ExitCode": self.answers.pop(0)[0]}

    def logs(self, name: str, tail: int) -> bytes:
        return b"[emerg] host not found in upstream"


def proxy(api: Api) -> DockerProxy:
    return DockerProxy(SimpleNamespace(api=api), "abc123", "net", {}, "deploylab/proxy:1")  # type: ignore[arg-type]


NOT_FOUND = 'nginx: [emerg] host not found in upstream "app-v2-1:8080" in /etc/nginx/lab-candidate.conf:40'


def test_a_config_is_one_exec_with_the_config_in_it() -> None:
    api = Api([(0, "")])
    assert proxy(api).apply_config("events { worker_connections 77; }") == (1, None, None)
    assert (api.archives, api.execs) == (0, 1) and "worker_connections 77;" in api.cmds[0][-1]


def test_a_config_too_large_for_a_command_line_is_uploaded_first() -> None:
    api = Api([(0, "")])
    big = "events {}\n" + "# padding\n" * (INLINE_CONFIG_MAX // 10)
    assert proxy(api).apply_config(big) == (1, None, None)
    assert (api.archives, api.execs) == (1, 1) and "# padding" not in api.cmds[0][-1]


def test_a_reload_that_waited_says_how_many_old_workers_were_left() -> None:
    api = Api([(0, "old workers: 2 before, 1 left\n")])
    assert proxy(api).apply_config("events {}", old_workers_s=7.0) == (1, 1, 2)
    assert api.execs == 1


def test_a_reload_the_master_did_not_take_fails_with_the_proxy_log() -> None:
    api = Api([(5, "")])
    with pytest.raises(LabError, match=r"nginx did not take the new config: .*host not found"):
        proxy(api).apply_config("events {}", old_workers_s=7.0)


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
