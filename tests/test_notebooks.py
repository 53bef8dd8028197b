"""The notebooks run top to bottom on real results, from the warehouse and from an export."""

import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.integration  # needs the real-data mirror

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
EVENTS = ["2020-03-12-black-thursday", "2022-06-13-celsius-3ac"]


@pytest.fixture(scope="module")
def results(ingested_db, tmp_path_factory, prefect_harness):
    """A small real pipeline run (2 events, every policy, one forecast model) and its export."""
    from pipelines.orchestration.pipeline import cascade_pipeline

    work = tmp_path_factory.mktemp("notebooks")
    db = work / "cascade.duckdb"
    shutil.copy(ingested_db, db)
    cascade_pipeline(
        db_path=str(db),
        events=EVENTS,
        forecast_models=["ewma"],
        report_dir=str(work / "reports"),
        export_dir=str(work / "export"),
        stress_paths=10,
    )
    return {"CASCADE_DB": db, "CASCADE_EXPORT": work / "export"}


def test_there_are_three_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_crash_data.ipynb",
        "02_volatility_forecasts.ipynb",
        "03_policy_backtests.ipynb",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("source", ["CASCADE_DB", "CASCADE_EXPORT"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, source, results, monkeypatch, tmp_path):
    monkeypatch.delenv("CASCADE_DB", raising=False)
    monkeypatch.delenv("CASCADE_EXPORT", raising=False)
    monkeypatch.setenv(source, str(results[source]))
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=180, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert pictures, f"{path.name} drew no plot"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert f"reading {results[source]}" in text
