"""The first hour of a new user (#13): a fresh ``cascade run`` is quiet, its pictures are sound.

Integration tier (the real data mirror). One fresh ``cascade`` process runs the pipeline on a
small selection — one crash (W4), two policies given by their scoreboard labels, one forecast
model, no stress paths — against a local Prefect server of its own (``CASCADE_HOME`` in a
temporary folder, stopped at the end), as a user's first command would. Then:

* stderr has no ``ERROR`` and no ``Traceback`` and at most 20 lines (one line per stage);
* every PNG of the report opens (a valid PNG header) and has a sensible size;
* the report page links only to files that exist;
* with Chromium installed, the page renders in a real headless browser, every image loads
  (checked in the page itself) and a screenshot is kept (``CASCADE_ARTIFACTS`` or the test's
  folder) as a CI artefact; without Chromium that test is skipped and says how to install it.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CLI = [sys.executable, "-c", "import sys; from pipelines.cli.main import main; sys.exit(main())"]
ROOT = Path(__file__).resolve().parents[1]


def _env(home: Path, mirror_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        CASCADE_HOME=str(home),
        CASCADE_DATA_MIRROR=str(mirror_dir),
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.pop("DO_NOT_TRACK", None)  # the CLI must switch telemetry off by itself
    return env


@pytest.fixture(scope="module")
def fresh_run(tmp_path_factory, mirror_dir: Path):
    """``cascade run`` on a fresh warehouse: (completed process, report directory)."""
    work = tmp_path_factory.mktemp("first-hour")
    env = _env(work / "home", mirror_dir)
    db = work / "cascade.duckdb"
    argv = [
        *CLI, "run", "--db", str(db), "--event", "W4", "--policy", "instant",
        "--policy", "dutch", "--forecast-model", "ewma", "--stress-paths", "0",
    ]  # fmt: skip
    try:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    finally:
        subprocess.run([*CLI, "server", "stop"], env=env, capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc, work / "reports"


def test_fresh_run_stderr_is_short_and_clean(fresh_run) -> None:
    proc, _ = fresh_run
    lines = proc.stderr.splitlines()
    assert "ERROR" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) <= 20, proc.stderr
    for stage in ("ingest:", "forecast:", "backtest:", "report "):
        assert any(line.startswith(stage) for line in lines), (stage, proc.stderr)
    assert "backtest runs" in proc.stdout


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR", path
    return struct.unpack(">II", head[16:24])


def test_every_report_png_opens_with_a_sensible_size(fresh_run) -> None:
    _, reports = fresh_run
    pngs = sorted(reports.rglob("*.png"))
    assert any("scoreboard" in p.name for p in pngs), pngs
    assert any("event" in p.name for p in pngs), pngs
    for png in pngs:
        width, height = _png_size(png)
        assert 600 <= width <= 4000 and 300 <= height <= 4000, (png.name, width, height)
        assert png.stat().st_size > 10_000, png.name


def test_report_links_point_at_files(fresh_run) -> None:
    _, reports = fresh_run
    page = (reports / "index.html").read_text()
    targets = re.findall(r'(?:src|href)="([^"#]+)"', page)
    assert targets
    for target in targets:
        if re.match(r"[a-z]+:", target):  # http(s)/mailto: not a file of the report
            continue
        assert (reports / target).exists(), target


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


_PROBE = """<script>
window.addEventListener('load', function () {
  var bad = [];
  document.querySelectorAll('img').forEach(function (i) {
    if (!i.complete || i.naturalWidth === 0) bad.push(i.getAttribute('src'));
  });
  document.body.setAttribute('data-images', String(document.images.length));
  document.body.setAttribute('data-broken', bad.join('|'));
});
</script></body>"""


def test_report_renders_in_headless_chromium(fresh_run, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium on this machine: `apt-get install -y chromium` to run this test")
    _, reports = fresh_run
    probe = reports / "_probe.html"
    probe.write_text((reports / "index.html").read_text().replace("</body>", _PROBE, 1))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000"]
    try:
        dom = subprocess.run(
            [browser, *flags, "--dump-dom", probe.as_uri()],
            capture_output=True, text=True, timeout=180,
        ).stdout  # fmt: skip
    finally:
        probe.unlink()
    images = re.search(r'data-images="(\d+)"', dom)
    broken = re.search(r'data-broken="([^"]*)"', dom)
    assert images and broken, dom[-2000:]
    assert int(images.group(1)) >= 3
    assert broken.group(1) == "", f"images that did not load: {broken.group(1)}"
    shots = Path(os.environ.get("CASCADE_ARTIFACTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    shot = shots / "report-screenshot.png"
    subprocess.run(
        [browser, *flags, "--window-size=1280,4000", f"--screenshot={shot}",
         (reports / "index.html").as_uri()],
        capture_output=True, timeout=180,
    )  # fmt: skip
    assert shot.exists() and _png_size(shot)[0] == 1280
