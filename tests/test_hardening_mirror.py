"""Issue #14 on the real data: a corrupt mirror names *every* bad file, in one line, exit 2.

Before: a fresh ingest ended in ``RuntimeError: 3 source(s) failed`` with four tracebacks
(exit 1), and on an already loaded warehouse only the first of three bad files was named.
The test builds a mirror holding three real registered files, loads them, then corrupts all
three and runs ``cascade ingest`` against a loaded and a fresh warehouse.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from hardening_faults import flush, placeholder, record

from pipelines.catalog.registry import load_registry
from pipelines.cli.main import main

pytestmark = pytest.mark.integration  # real registered files from the mirror

SOURCES = (
    "mryamz__web3-analytics-tool/csvData/borrow-SUSHI.csv",
    "mryamz__web3-analytics-tool/csvData/borrow-AAVE.csv",
    "lukmol__gamlss-btc-VaR/data/funding_rates.csv",
)


@pytest.fixture(scope="module", autouse=True)
def _fault_table():
    yield
    flush()


def _ingest(db: Path, capsys) -> tuple[int, str, str]:
    capsys.readouterr()
    argv = ["ingest", "--db", str(db)]
    for name in SOURCES:
        argv += ["--source", name]
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_corrupt_mirror_names_every_bad_file(tmp_path, mirror_dir, monkeypatch, capsys):
    entries = {e.name: e for e in load_registry()}
    mirror = tmp_path / "mirror"
    for name in SOURCES:
        target = mirror / entries[name].file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(mirror_dir / entries[name].file, target)
    monkeypatch.setenv("CASCADE_DATA_MIRROR", str(mirror))
    placeholder(mirror, "MIRROR")
    placeholder(tmp_path, "TMP")
    loaded = tmp_path / "loaded.duckdb"
    assert _ingest(loaded, capsys)[0] == 0
    for name in SOURCES:
        with open(mirror / entries[name].file, "ab") as handle:
            handle.write(b"\n# corrupted\n")

    code, _, err = _ingest(loaded, capsys)
    lines = err.strip().splitlines()
    record(
        "corrupt mirror (3 bad files), warehouse already loaded",
        "cascade ingest --db W --source S1 --source S2 --source S3",
        code,
        lines[0] if lines else "",
    )
    assert code == 2 and len(lines) == 1 and "3 source file(s) failed verification" in lines[0]
    assert all(name in lines[0] for name in SOURCES)

    code, _, err = _ingest(tmp_path / "fresh.duckdb", capsys)
    lines = [line for line in err.strip().splitlines() if line.startswith("error: ")]
    record(
        "corrupt mirror (3 bad files), fresh warehouse",
        "cascade ingest --db W --source S1 --source S2 --source S3",
        code,
        lines[0] if lines else err,
    )
    assert code == 2 and len(lines) == 1 and "3 source(s) failed to ingest" in lines[0]
    assert all(name in lines[0] for name in SOURCES)
    assert "Traceback" not in err
