"""Every command in docs/workshop is valid for the lab as it is; the checker itself finds what is not."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("workshop_check", ROOT / "scripts" / "workshop_check.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["workshop_check"] = module
    spec.loader.exec_module(module)
    return module


wc = _load()
EXERCISES = sorted((ROOT / "docs" / "workshop").glob("0*.md"))
SECTIONS = ("## Goal", "## Run", "## What you should see", "## Questions", "## What is going on")


def one(text: str, tmp_path: Path) -> list:
    doc = tmp_path / "doc.md"
    doc.write_text(text)
    return wc.parse(doc)


# -- the parser ------------------------------------------------------------------------------------


def test_only_prompted_lines_of_console_blocks_are_commands(tmp_path: Path) -> None:
    commands = one(
        "text\n"
        "```console\n$ lab strategies\nin-place   stop every v1 instance\n$ lab scenarios   # exit 0\n```\n"
        "```sh\n$ lab run nope\n```\n"
        "```console\n$ lab run canary -p bake_s=1  # exit 0 or 4\n```\n",
        tmp_path,
    )
    assert [(c.line, c.text, sorted(c.exits)) for c in commands] == [
        (3, "lab strategies", [0]),
        (5, "lab scenarios", [0]),
        (11, "lab run canary -p bake_s=1", [0, 4]),
    ]


def test_an_unclosed_block_or_a_continued_line_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="never closed"):
        one("```console\n$ lab strategies\n", tmp_path)
    with pytest.raises(ValueError, match="one line"):
        one("```console\n$ lab run in-place \\\n    --fleet 2\n```\n", tmp_path)


# -- the static check ------------------------------------------------------------------------------


def problems(text: str, tmp_path: Path) -> list[str]:
    [command] = one(f"```console\n$ {text}\n```\n", tmp_path)
    return wc.check(command)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("lab run in-place --fleet 3", None),
        ("lab run canary --fleet 2 --v2-env APP_FAIL_RATE=0.05 -p percents=10 -p bake_s=2", None),
        ("lab compare canary:percents=10:bake_s=0.5 in-place --fleet 2", None),
        ("lab plan blue-green --fleet 2 -p overlap_s=0", None),
        ("lab deploy in-place", "No such command"),
        ("lab run in-place --flet 3", "No such option"),
        ("lab run in-place --fleet 0", "--fleet must be"),
        (
            "lab measure http://127.0.0.1:8089/ -- sh -c 'docker compose -f compose/blue-green/compose.yaml "
            "exec -T proxy nginx -s reload && echo done'",
            None,
        ),
        (
            "lab measure http://127.0.0.1:8089/ -- sh -c 'docker compose -f compose/nope.yaml ps'",
            "no compose file",
        ),
        ("lab measure http://127.0.0.1:8089/ -- sh -c 'rm -rf x'", "in the deploy command: 'rm'"),
        ("lab run in-plaice", "unknown strategy"),
        ("lab run canary -p bake=2", "has no parameter 'bake'"),
        ("lab run canary -p percents=50,10", "rising percentages"),
        ("lab compare canary:bake=1", "has no parameter 'bake'"),
        ("lab run rolling --next-upstream never", "next_upstream 'never'"),
        ("lab run rolling --scenario oops", "unknown scenario"),
        ("lab plan blue-green -p overlap=0", "has no parameter 'overlap'"),
        ("docker compose -f compose/baseline/compose.yaml up -d", None),
        ("docker-compose -f compose/blue-green/compose.yaml exec -T proxy nginx -s reload", None),
        ("docker compose -f compose/nope/compose.yaml up -d", "no compose file"),
        ("docker compose -f compose/baseline/compose.yaml stop app-v2-1", "no service app-v2-1"),
        ("docker compose up -d", "-f"),
        ("for i in 1 2 3; do curl -s http://127.0.0.1:8088/; done", None),
        ("curl -s http://127.0.0.1:8080/", "not a compose topology's proxy"),
        ("make images", None),
        ("make imagez", "no make target imagez"),
        ("rm -rf runs", "not a command the checker knows"),
    ],
)
def test_check_accepts_valid_commands_and_names_the_problem_otherwise(
    text: str, why: str | None, tmp_path: Path
) -> None:
    found = problems(text, tmp_path)
    if why is None:
        assert found == []
    else:
        assert found and why in found[0], found


# -- the workshop as written -----------------------------------------------------------------------


def test_every_command_in_the_workshop_is_valid() -> None:
    assert wc.check_all() == []


def test_every_exercise_has_its_sections_and_commands() -> None:
    assert len(EXERCISES) >= 5
    for path in EXERCISES:
        text = path.read_text()
        positions = [text.find(section) for section in SECTIONS]
        assert -1 not in positions and positions == sorted(positions), (path.name, positions)
        assert wc.parse(path), f"{path.name} has no command to run"


def test_the_index_links_every_exercise() -> None:
    index = (ROOT / "docs" / "workshop" / "README.md").read_text()
    for path in EXERCISES:
        assert f"({path.name})" in index, path.name


def test_expected_exit_codes_are_the_labs_own() -> None:
    from lab.errors import EXIT_BUDGET, EXIT_OK, EXIT_ROLLED_BACK

    for path in wc.documents():
        for command in wc.parse(path):
            if command.text.startswith("lab "):
                assert command.exits <= {EXIT_OK, EXIT_BUDGET, EXIT_ROLLED_BACK}, command.where


def test_lab_runs_stay_small_enough_for_a_two_core_laptop() -> None:
    for path in wc.documents():
        for command in wc.parse(path):
            if re.match(r"lab (run|compare) ", command.text):
                fleet = re.search(r"(?:--fleet|-n) (\d+)", command.text)
                assert fleet and int(fleet.group(1)) <= 4, f"{command.where}: name --fleet, at most 4"


# -- lanes -----------------------------------------------------------------------------------------


def test_runs_started_counts_a_comparisons_runs(tmp_path: Path) -> None:
    commands = one(
        "```console\n$ lab plan in-place --fleet 2\n$ lab run in-place --fleet 2\n"
        "$ lab compare --repeat 3 canary:bake_s=1 canary:bake_s=5 --fleet 2\n"
        "$ lab compare in-place blue-green rolling --fleet 2\n```\n",
        tmp_path,
    )
    assert [wc.runs_started(c) for c in commands] == [0, 1, 6, 3]


def _document(tmp_path: Path, name: str, lines: list[str]) -> list:
    """A document of console commands, one per line, in a folder of its own."""
    (tmp_path / name).mkdir()
    return one("```console\n" + "".join(f"$ {line}\n" for line in lines) + "```\n", tmp_path / name)


def _meet(tmp_path: Path, me: str, other: str) -> str:
    """A command that says it has started and waits up to 5 s for `other` to say so: it exits 0 only if
    the two run at the same time."""
    return (
        f"touch {tmp_path}/{me}-up; for i in $(seq 500); do [ -e {tmp_path}/{other}-up ] && break; "
        f"sleep 0.01; done; [ -e {tmp_path}/{other}-up ]"
    )


def test_lanes_run_documents_side_by_side_each_in_order_and_a_failure_ends_only_its_document(
    tmp_path: Path,
) -> None:
    log = tmp_path / "log"
    docs = [
        _document(tmp_path, "a", [_meet(tmp_path, "a", "b"), f"echo a2 >> {log}", f"echo a3 >> {log}"]),
        _document(tmp_path, "b", [_meet(tmp_path, "b", "a"), "exit 3", f"echo b3 >> {log}"]),
        _document(tmp_path, "c", [f"echo c1 >> {log}"]),
    ]
    lanes: list = []
    shown: list[str] = []
    wc._in_lanes(
        docs,
        2,
        {"PATH": "/usr/bin:/bin"},
        "docker compose",
        lanes,
        wc.Children(),
        show=lambda h, o: shown.append(h),
    )
    written = log.read_text().split()
    # a's and b's first commands met: the two lanes ran side by side, not one after the other
    assert [code for lane in lanes for _, _, code in lane.timings if code != 3] == [0] * 5
    assert [w for w in written if w.startswith("a")] == ["a2", "a3"]  # in order, whatever the lanes
    assert "b3" not in written and "c1" in written  # b stopped at its failure; c still ran
    assert len(lanes) == 2 and sum(len(lane.timings) for lane in lanes) == 6
    failure = f"{docs[1][1].where}: exit 3, expected 0: $ exit 3"
    assert [f for lane in lanes for f in lane.failures] == [failure]
    assert f"FAILED: {failure}" in shown  # a lane's failure names its command among the others' output


def _alive(pid: int) -> bool:
    """Whether a process runs (a zombie, ended but not yet reaped by init, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


# A lab-like command: on SIGINT it cleans up (for `cleanup_s`) and exits 130; the `sleep` it started in
# the background ignores SIGINT, as a non-interactive shell's background jobs do, and holds the output
# pipe open.
def _lab_like(tmp_path: Path, name: str, cleanup_s: float = 0) -> str:
    return (
        f"trap 'sleep {cleanup_s}; echo cleaned > {tmp_path}/{name}-cleaned; exit 130' INT; sleep 60 & "
        f"echo $! > {tmp_path}/{name}-pid; touch {tmp_path}/{name}-up; wait"
    )


def _gone(tmp_path: Path, name: str) -> bool:
    """Whether the background `sleep` of `_lab_like` has ended, given a moment for init to reap it."""
    pid = int((tmp_path / f"{name}-pid").read_text())
    for _ in range(100):
        if not _alive(pid):
            return True
        time.sleep(0.02)
    return False


needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")


@needs_proc
def test_a_command_past_its_timeout_gets_sigint_then_its_whole_group_is_killed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wc, "TIMEOUT_S", 2)  # time enough to set its trap, even on a busy machine
    monkeypatch.setattr(wc, "GRACE_S", 1)
    code, _ = wc.Children().run(
        ["bash", "-c", _lab_like(tmp_path, "x")], True, cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}
    )
    assert code == -1
    assert (tmp_path / "x-cleaned").read_text() == "cleaned\n"  # it was given its Ctrl-C first
    assert _gone(tmp_path, "x")  # what it started went too, not bash alone


@needs_proc
def test_ctrl_c_reaches_every_lanes_command_starts_no_other_and_a_second_one_cuts_nothing_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(wc, "GRACE_S", 1)
    monkeypatch.setattr(wc, "TIMEOUT_S", 10)  # a broken stop fails the test instead of hanging it
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("a Ctrl-C is raised in the main thread")
    log = tmp_path / "log"
    docs = [
        _document(tmp_path, "a", [_lab_like(tmp_path, "a", cleanup_s=0.6), f"echo a2 >> {log}"]),
        _document(tmp_path, "b", [_lab_like(tmp_path, "b", cleanup_s=0.6), f"echo b2 >> {log}"]),
        _document(tmp_path, "c", [f"echo c1 >> {log}"]),
    ]

    def press_ctrl_c() -> None:
        for _ in range(500):
            if (tmp_path / "a-up").exists() and (tmp_path / "b-up").exists():
                break
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGINT)  # a real signal: it wakes the main thread's wait
        time.sleep(0.2)
        os.kill(os.getpid(), signal.SIGINT)  # impatient, while the commands still clean up

    lanes: list = []
    children = wc.Children()
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever the test runner set
    try:
        threading.Thread(target=press_ctrl_c, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            wc._in_lanes(
                docs, 2, {"PATH": "/usr/bin:/bin"}, "docker compose", lanes, children, lambda h, o: None
            )
    finally:
        signal.signal(signal.SIGINT, before)
    assert children.stopped.is_set()
    assert (tmp_path / "a-cleaned").exists() and (tmp_path / "b-cleaned").exists()
    assert not log.exists()  # neither a's nor b's next command, nor c, was started
    assert [code for lane in lanes for _, _, code in lane.timings] == [130, 130]
    assert _gone(tmp_path, "a") and _gone(tmp_path, "b")  # the second Ctrl-C left no group running
