"""Run identity: the run id is the hash of a typed spec that includes the code computing it."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest

from pipelines.backtests.spec import (
    BACKTEST_CODE,
    BookName,
    ImpactName,
    RunRequest,
    RunSpec,
    backtest_code_version,
    parse_impact,
)
from pipelines.catalog.hashing import REPO_ROOT, code_digest
from pipelines.errors import UnknownNameError


def _spec(**changes) -> RunSpec:
    fields = dict(
        event_id="2021-05-19-china-ban-crash",
        asset="ETH",
        book={"kind": "synthetic", "sha256": "ab" * 32},
        path={"source": "prices", "step_seconds": 60.0, "sha256": "cd" * 32},
        impact={"model": "sqrt", "y": 1.0},
        calibration=None,
        policy={"name": "instant", "close_factor": 0.5},
    )
    fields.update(changes)
    return RunSpec(**fields)


@pytest.fixture
def code_copy(tmp_path: Path) -> Path:
    for package in ("backtest", "pipelines/backtests"):
        shutil.copytree(
            REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return tmp_path


def test_code_version_covers_the_engine(code_copy: Path) -> None:
    before = code_digest(*BACKTEST_CODE, root=code_copy)
    assert before == backtest_code_version()
    engine = code_copy / "backtest" / "engine.py"
    engine.write_text(engine.read_text() + "\n# one more line\n")
    after = code_digest(*BACKTEST_CODE, root=code_copy)
    assert after != before
    assert _spec(code_version=after).run_id != _spec(code_version=before).run_id


def test_code_version_covers_the_stage(code_copy: Path) -> None:
    before = code_digest(*BACKTEST_CODE, root=code_copy)
    run = code_copy / "pipelines" / "backtests" / "run.py"
    run.write_text(run.read_text().replace("def ", "def  ", 1))
    assert code_digest(*BACKTEST_CODE, root=code_copy) != before


def test_run_id_is_the_hash_of_the_spec_and_every_field_counts() -> None:
    base = _spec()
    assert base.run_id == _spec().run_id
    assert len(base.run_id) == 16
    variants = [
        _spec(event_id="2022-06-13-celsius-3ac"),
        _spec(asset="BTC"),
        _spec(book={"kind": "synthetic", "sha256": "ef" * 32}),
        _spec(path={"source": "prices", "step_seconds": 3600.0, "sha256": "cd" * 32}),
        _spec(impact={"model": "sqrt", "y": 0.9}),
        _spec(policy={"name": "instant", "close_factor": 1.0}),
        _spec(forecast_model="garch", margin_run_id="0123456789abcdef"),
    ]
    ids = {v.run_id for v in variants}
    assert base.run_id not in ids and len(ids) == len(variants)


def test_scenario_id_ignores_the_policy() -> None:
    a = _spec()
    b = _spec(policy={"name": "batch", "interval_steps": 10.0})
    assert a.scenario_id == b.scenario_id and a.run_id != b.run_id
    assert _spec(asset="BTC").scenario_id != a.scenario_id


def test_spec_is_frozen_json_ready_and_picklable() -> None:
    spec = _spec(policy={"name": "instant", "inf": float("inf")})
    with pytest.raises(AttributeError):
        spec.asset = "BTC"  # type: ignore[misc]
    assert '"inf":"inf"' in spec.to_json()
    assert pickle.loads(pickle.dumps(spec)).run_id == spec.run_id


def test_names_are_validated_at_the_boundary() -> None:
    assert parse_impact(" SQRT ") is ImpactName.SQRT
    with pytest.raises(UnknownNameError, match="known: sqrt, linear, cpmm, none"):
        parse_impact("cubic")
    assert BookName("maker-ethb") is BookName.MAKER_ETHB
    request = RunRequest.from_overrides({"policy": {"bonus": 0.05}}, event="W4", impact="linear")
    assert request.impact is ImpactName.LINEAR
    assert dict(request.policy_params) == {"bonus": 0.05}
    with pytest.raises(UnknownNameError, match="override group"):
        RunRequest.from_overrides({"polcy": {}}, event="W4")
