"""A real `lab run canary` leaves a report.html that renders in headless Chromium, with nothing fetched."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_lab
from PIL import Image

from lab.output.chart.layout import VERSION_COLOURS

CHROMIUM = shutil.which("chromium")
WINDOW = (1200, 1400)
EXTERNAL = re.compile(r"""(?:src|href|xlink:href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("runs")
    args = ["run", "canary", "--fleet", "2", "--baseline", "1", "--settle", "1"]
    args += ["-p", "bake_s=1.5", "--json", "--out", str(out)]
    # Past the timeout run_lab sends SIGINT, on which the CLI cleans up; the leak fixture checks it did.
    proc = run_lab(args, timeout=240)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["status"] == "completed", summary
    yield Path(summary["output"])


def chromium(*args: str, profile: Path, timeout_s: float = 90.0) -> subprocess.CompletedProcess[str]:
    """Headless Chromium in a session of its own, so its helper processes die with it even when the test
    fails or times out."""
    assert CHROMIUM
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    cmd += ["--no-first-run", "--disable-extensions", f"--user-data-dir={profile}", *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    finally:
        with contextlib.suppress(ProcessLookupError):  # every process Chromium started, whatever happened
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


@pytest.fixture
def browser_profile(tmp_path: Path) -> Path:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (make system-deps installs it on Debian)")
    return tmp_path / "profile"


def near(pixel: tuple[int, ...], hex_colour: str, tolerance: int = 12) -> bool:
    target = (int(hex_colour[1:3], 16), int(hex_colour[3:5], 16), int(hex_colour[5:7], 16))
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, target, strict=True))


def test_the_run_folder_holds_the_report_and_both_images(run_folder: Path) -> None:
    for name in (
        "report.html",
        "timeline.svg",
        "timeline.png",
        "samples.csv",
        "samples.jsonl",
        "journal.json",
    ):
        assert (run_folder / name).is_file(), name
    image = Image.open(run_folder / "timeline.png")
    assert image.format == "PNG" and image.width >= 1000


def test_the_report_references_nothing_outside_itself(run_folder: Path) -> None:
    html = (run_folder / "report.html").read_text()
    assert not EXTERNAL.search(html), EXTERNAL.search(html)
    assert not re.search(r"(?:src|href)\s*=\s*[\"']?\s*https?:", html, re.IGNORECASE)
    assert "<script" not in html.lower() and "<link" not in html.lower() and "@import" not in html
    assert "url(" not in html  # no font, image or stylesheet pulled in by CSS


def test_chromium_renders_the_timeline_with_both_versions_and_the_steps(
    run_folder: Path, browser_profile: Path, tmp_path: Path
) -> None:
    url = (run_folder / "report.html").as_uri()
    dom = chromium("--dump-dom", url, profile=browser_profile).stdout
    assert '<svg id="timeline"' in dom or re.search(r"<svg[^>]*\bid=\"timeline\"", dom)
    assert len(re.findall(r'class="bar v1"', dom)) > 3 and len(re.findall(r'class="bar v2"', dom)) > 3
    steps = len(json.loads((run_folder / "journal.json").read_text())["steps"])
    panels = len(re.findall(r'class="panel-title"', dom))
    assert panels == 4  # requests, clients (the run had 32), latency, capacity
    assert len(re.findall(r'class="step(?: failed)?"', dom)) == steps * panels  # a marker per step and panel
    assert "requests failed" in dom and "nginx configs" in dom  # the summary and the configs came too

    shot = tmp_path / "report.png"
    result = chromium(
        f"--screenshot={shot}", f"--window-size={WINDOW[0]},{WINDOW[1]}", url, profile=browser_profile
    )
    assert shot.is_file(), result.stderr[-2000:]
    image = Image.open(shot).convert("RGB")
    assert image.size == WINDOW
    data = image.tobytes()
    # Counted once by colour: `pixels.count` per distinct colour took 90 s of this test's 92.
    colours = Counter(zip(data[0::3], data[1::3], data[2::3], strict=True))
    pixels = image.width * image.height
    (background, _), *_ = colours.most_common(1)
    assert pixels - colours[background] > pixels * 0.05  # not a blank page
    assert len(colours) > 200  # text, bars and lines, anti-aliased: many colours
    v1 = sum(n for p, n in colours.items() if near(p, VERSION_COLOURS["old"]))
    v2 = sum(n for p, n in colours.items() if near(p, VERSION_COLOURS["new"]))
    assert v1 > 2000 and v2 > 2000, (v1, v2)  # the bars of both versions, drawn
