"""``cascade validate`` bookkeeping on synthetic vaults: the kinds of false and missed vaults and
the stored columns (keepers' delay and tolerance, the kind of each vault)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from backtest.maker import RateAccumulator, Schedule, VaultEvents
from pipelines.backtests.maker_inputs import MakerInputs
from pipelines.backtests.validate_maker import (
    FALSE_KINDS,
    MISSED_KINDS,
    DayResult,
    Validation,
    VaultRow,
    _Record,
    store_validation,
)
from pipelines.warehouse.connection import connect

DAY = 1_700_006_400  # 2023-11-15 00:00 UTC
HOUR = 3600
FLAT = RateAccumulator(change_ts=np.array([0]), annual=np.array([0.0]))


def _inputs(rows: list[tuple[str, int, float, float, bool]]) -> MakerInputs:
    events = VaultEvents(
        vault=np.array([r[0] for r in rows]),
        ts=np.array([r[1] for r in rows]),
        collateral_delta=np.array([r[2] for r in rows]),
        dai_delta=np.array([r[3] for r in rows]),
        bark=np.array([r[4] for r in rows]),
    )
    return MakerInputs(
        events=events,
        owner_events=events.select(~events.bark),
        liquidations=events.select(events.bark),
        rates=FLAT,
        price_ts=np.array([0]),
        price=np.array([1000.0]),
        dust=Schedule(ts=np.array([0]), values=np.array([0.0])),
    )


def test_false_vault_kinds_follow_the_record() -> None:
    flag = DAY + 12 * HOUR
    record = _Record.of(
        _inputs(
            [
                # "off": its later full bark took 6,000 DAI of a rebuilt 9,000 (book off)
                ("off", DAY - 10 * 86_400, 10.0, 9_000.0, False),
                ("off", DAY + 5 * 86_400, -10.0, -6_000.0, True),
                # "later": barked three days later, the book right
                ("later", DAY - 10 * 86_400, 10.0, 6_000.0, False),
                ("later", DAY + 3 * 86_400, -10.0, -6_000.0, True),
                # "active": never barked, owner acted 30 minutes before the flag
                ("active", DAY - 10 * 86_400, 10.0, 6_000.0, False),
                ("active", flag - 1_800, 0.0, 100.0, False),
                # "idle": never barked, owner idle for ten days
                ("idle", DAY - 10 * 86_400, 10.0, 6_000.0, False),
            ]
        )
    )
    kinds = {v: record.kind(v, DAY, 6_000.0, flag) for v in ("off", "later", "active", "idle")}
    assert kinds == {
        "off": "book off",
        "later": "barked later",
        "active": "owner active",
        "idle": "not barked",
    }
    assert set(kinds.values()) == set(FALSE_KINDS)
    # what comes after the flag never makes an idle owner "active"
    after = _Record.of(
        _inputs(
            [
                ("idle", DAY - 10 * 86_400, 10.0, 6_000.0, False),
                ("idle", flag + 60, 1.0, 0.0, False),
            ]
        )
    )
    assert after.kind("idle", DAY, 6_000.0, flag) == "not barked"


def _row(vault: str, predicted: bool, real: bool, kind: str) -> VaultRow:
    t = datetime(2023, 11, 15, 12, tzinfo=UTC)
    return VaultRow(
        day="2023-11-15",
        vault=vault,
        predicted=predicted,
        real=real,
        sim_ts=t if predicted else None,
        real_ts=t if real else None,
        sim_dai=1_000.0 if predicted else 0.0,
        real_dai=1_000.0 if real else 0.0,
        health=0.99,
        reason="synthetic",
        kind=kind,
    )


def _validation() -> Validation:
    rows = (
        _row("1", True, True, ""),
        _row("2", True, False, "book off"),
        _row("3", True, False, "owner active"),
        _row("4", False, True, "never unsafe"),
    )
    day = DayResult(
        day="2023-11-15",
        fold="A",
        attention_hours=0.25,
        owner_margin=0.005,
        keeper_delay=900.0,
        tolerance=0.002,
        held_out=True,
        n_vaults=4,
        tp=1,
        fp=2,
        fn=1,
        precision=1 / 3,
        recall=0.5,
        simulated_dai=3_000.0,
        real_dai=2_000.0,
        matched_dai_within_2pct=1,
        bark_error_minutes=0.0,
        vaults=rows,
    )
    return Validation(days=(day,), owner_rule={}, poke_minute=0.0)


def test_pooled_counts_by_kind() -> None:
    pooled = _validation().pooled(held_out_only=True)
    assert pooled["false_by_kind"] == {
        k: int(k in ("book off", "owner active")) for k in FALSE_KINDS
    }
    assert pooled["missed_by_kind"] == {k: int(k == "never unsafe") for k in MISSED_KINDS}
    assert sum(pooled["false_by_kind"].values()) == pooled["fp"]
    assert sum(pooled["missed_by_kind"].values()) == pooled["fn"]
    (day,) = _validation().as_dict()["days"]
    assert [f["kind"] for f in day["false"]] == ["book off", "owner active"]


def test_stored_rows_carry_the_keepers_rule_and_the_kinds(tmp_path) -> None:
    con = connect(tmp_path / "w.duckdb")
    try:
        store_validation(con, _validation())
        stored = con.execute(
            "SELECT keeper_delay_seconds, tolerance, attention_hours, owner_margin, tp, fp "
            "FROM validation_results"
        ).fetchall()
        kinds = con.execute("SELECT vault, kind FROM maker_validation ORDER BY vault").fetchall()
    finally:
        con.close()
    assert stored == [(900.0, 0.002, 0.25, 0.005, 1, 2)]
    assert kinds == [("1", None), ("2", "book off"), ("3", "owner active"), ("4", "never unsafe")]


@pytest.mark.parametrize("table", ["validation_results", "maker_validation"])
def test_validation_tables_are_derived(table: str) -> None:
    from pipelines.warehouse import connection

    # a schema upgrade drops and recreates them (their columns changed in version 6)
    assert table in connection._DERIVED_TABLES
    assert connection.SCHEMA_VERSION >= 6
