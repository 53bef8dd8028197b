"""The `forecast` flow on the real ingested warehouse: tables, run ids, honesty, CLI."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta

import duckdb
import polars as pl
import pytest

import forecasting as fcst
from pipelines.cli.main import main
from pipelines.errors import CascadeError
from pipelines.forecasts.compute import compute_forecast_run, prepare_inputs
from pipelines.forecasts.data import load_hourly_bars
from pipelines.forecasts.plan import build_config, forecast_windows
from pipelines.warehouse.connection import connect
from pipelines.warehouse.forecast_store import FORECAST_TABLES, ensure_forecast_tables

pytestmark = pytest.mark.integration  # needs the real-data mirror

EVENT = "2022-06-13-celsius-3ac"  # W4: a 24 h crash window
CRASH_START = datetime(2022, 6, 13, tzinfo=UTC)
SMALL = {"assets": ["BTC"], "models": ["ewma", "garch", "har", "hgb"], "events": ["W4"]}


def _copy(src, dst_dir, name: str = "w.duckdb"):
    dst = dst_dir / name
    shutil.copy(src, dst)
    return dst


def _rows(db, sql: str, params: list | None = None) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        frame = con.sql(sql, params=params or []).pl()
    finally:
        con.close()
    return frame.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


@pytest.fixture(scope="module")
def small_run(ingested_db, prefect_harness, tmp_path_factory):
    """BTC, W4, ewma/garch/har/hgb, both horizons: one flow run shared by the tests below."""
    from pipelines.forecasts.flow import forecast_flow

    db = _copy(ingested_db, tmp_path_factory.mktemp("forecast"))
    run_id = forecast_flow(db_path=str(db), **SMALL)
    return db, run_id


def test_flow_fills_every_table(small_run):
    db, run_id = small_run
    runs = _rows(db, "SELECT run_id, config, notes FROM forecast_runs")
    assert runs["run_id"].to_list() == [run_id]
    config = json.loads(runs["config"][0])
    assert config["assets"] == ["BTC"] and config["horizons"] == [1, 24]
    assert config["code_version"] and config["data_version"]

    fc = _rows(
        db,
        "SELECT model, horizon_hours, count(*) AS n, min(origin_ts) AS first, "
        "max(origin_ts) AS last, min(sigma) AS lo FROM forecasts WHERE run_id = ? GROUP BY ALL",
        [run_id],
    )
    assert fc.height == 8  # 4 models x 2 horizons
    assert (fc["lo"] > 0).all()
    # the crash window and the lead-in after min_train = 720 h are forecast, nothing later
    assert (fc["last"] == datetime(2022, 6, 13, 23, tzinfo=UTC)).all()
    assert (fc["first"] < CRASH_START - timedelta(days=50)).all()

    rz = _rows(db, "SELECT * FROM forecast_vs_realized WHERE run_id = ?", [run_id])
    assert rz["realized_sigma"].null_count() == 0  # bars are loaded past the window end
    assert rz.height == fc["n"].sum()

    scores = _rows(db, "SELECT * FROM forecast_scores WHERE run_id = ?", [run_id])
    keys = scores.select("event_id", "scope").unique().sort("event_id", "scope").rows()
    assert keys == [(EVENT, "crash"), (EVENT, "window"), ("all", "crash"), ("all", "window")]
    crash = scores.filter(pl.col("event_id") == EVENT, pl.col("scope") == "crash")
    n = crash.filter(pl.col("metric") == "n", pl.col("horizon_hours") == 1)["value"]
    assert n.to_list() == [24.0] * 4
    metrics = set(scores["metric"])
    for m in ("qlike", "mse", "mz_r2", "dm_stat", "dm_pvalue", "var95_hit_rate", "var99_hit_rate"):
        assert m in metrics
    for m in ("var99_kupiec_p", "var99_ind_p", "var99_cc_p"):
        assert m in metrics
    dm_models = set(scores.filter(pl.col("metric") == "dm_stat")["model"])
    assert dm_models == {"ewma", "har", "hgb"}  # against garch

    margins = _rows(db, "SELECT * FROM margin_paths WHERE run_id = ?", [run_id])
    assert margins.height == fc.filter(pl.col("horizon_hours") == 24)["n"].sum()
    assert margins["liquidation_threshold"].min() >= 0.73 - 1e-12  # AAVE_V3_WETH floor
    assert margins["liquidation_threshold"].max() <= 0.83 + 1e-12  # cap
    assert margins["liquidation_threshold"].min() < 0.83  # the crash tightens it
    joined = margins.join(
        _rows(
            db,
            "SELECT model, origin_ts + INTERVAL 1 HOUR AS ts, sigma FROM forecasts "
            "WHERE run_id = ? AND horizon_hours = 24",
            [run_id],
        ),
        on=["model", "ts"],
    )
    assert joined.height == margins.height
    assert (joined["sigma"] - joined["sigma_24h"]).abs().max() < 1e-15


def test_same_config_same_run_id_and_rerun_is_skipped(small_run):
    from pipelines.forecasts.flow import forecast_flow

    db, run_id = small_run
    before = _rows(db, "SELECT created_at FROM forecast_runs WHERE run_id = ?", [run_id])
    again = forecast_flow(
        db_path=str(db),
        assets=["btc"],
        models=["har", "hgb", "garch", "ewma"],
        events=[EVENT],
        horizons=[24, 1],
    )
    assert again == run_id
    after = _rows(db, "SELECT created_at FROM forecast_runs WHERE run_id = ?", [run_id])
    assert after.equals(before)
    con = connect(db, read_only=True)
    try:
        other = build_config(con, **{**SMALL, "refit_every": 12}).run_id
    finally:
        con.close()
    assert other != run_id


def test_changing_prices_after_t_leaves_earlier_forecasts_unchanged(small_run, tmp_path):
    """Walk-forward honesty through the whole pipeline (warehouse → flow → tables).

    hgb is included: its drawdown and stress features go through the as-of alignment.
    """
    from pipelines.forecasts.flow import forecast_flow

    db, run_id = small_run
    t = CRASH_START - timedelta(days=5, hours=7)
    altered = _copy(db, tmp_path, "altered.duckdb")
    con = duckdb.connect(str(altered))
    for table in FORECAST_TABLES:  # the same config must be recomputed on this copy
        con.execute(f"DELETE FROM {table}")
    con.execute(
        "UPDATE raw_prices SET open = open * 1.3, high = high * 1.6, low = low * 0.9, "
        "close = close * 1.5 WHERE asset = 'BTC' AND ts >= ?",
        [t],
    )
    con.execute(
        "DELETE FROM raw_prices WHERE asset = 'BTC' AND ts >= ? AND ts < ?",
        [t + timedelta(days=1), t + timedelta(days=2)],
    )
    con.close()
    # the run id hashes the rows the forecast reads: altered prices give a new run id
    new_id = forecast_flow(db_path=str(altered), **SMALL)
    assert new_id != run_id

    sql = (
        "SELECT model, origin_ts, horizon_hours, sigma FROM forecasts WHERE run_id = ? ORDER BY ALL"
    )
    orig, new = _rows(db, sql, [run_id]), _rows(altered, sql, [new_id])
    before_t = pl.col("origin_ts") < t
    assert orig.filter(before_t).height > 1000
    assert new.filter(before_t).equals(orig.filter(before_t))
    # the test has teeth: forecasts from t on do change
    after = orig.filter(~before_t).join(new, on=["model", "origin_ts", "horizon_hours"])
    assert (after["sigma"] != after["sigma_right"]).any()


STRESS_TABLES = ("funding", "open_interest", "cex_liquidations")
#: Every registered model that takes the stress features (hgb, rf, hgbc, hgbch).
EXOG_MODELS = [m for m, factory in fcst.MODELS.items() if factory.uses_exog]


def _ml_forecasts(db) -> tuple[pl.DataFrame, tuple[str, ...]]:
    con = connect(db, read_only=True)
    try:
        config = build_config(con, assets=["BTC"], models=EXOG_MODELS, events=["W4"])
        inputs, _ = prepare_inputs(con, config)
        run = compute_forecast_run(con, config)
    finally:
        con.close()
    fc = run.forecasts.select("model", "origin_ts", "horizon_hours", "sigma").sort(
        "model", "horizon_hours", "origin_ts"
    )
    return fc, inputs[0].exog_cols


def test_deleting_stress_features_after_t_leaves_earlier_forecasts_unchanged(ingested_db, tmp_path):
    """Causal input selection: feature coverage is judged only on data known at the first origin.

    The stress rows known after ``t`` (12 days before the W4 crash) are deleted in a copy of the
    warehouse; every forecast of every model with stress features (hgb, rf, hgbc, hgbch) made
    before ``t`` must stay bit-identical (they used to
    change because the features were dropped for not covering the window end).
    """
    t = CRASH_START - timedelta(days=12)
    orig, cols = _ml_forecasts(ingested_db)
    assert cols == ("drawdown_24", "funding_rate", "oi_change_1d", "cex_long_liq_log")
    altered = _copy(ingested_db, tmp_path, "no_features_after_t.duckdb")
    con = duckdb.connect(str(altered))
    for table in STRESS_TABLES:  # the views read raw_<table>
        con.execute(
            f"DELETE FROM raw_{table} WHERE asset = 'BTC' "
            "AND ts + to_seconds(interval_seconds) > ?",
            [t],
        )
        left = con.execute(
            f"SELECT count(*) FROM {table} WHERE asset = 'BTC' "
            "AND ts + to_seconds(interval_seconds) > ?",
            [t],
        ).fetchone()
        assert left == (0,)
    con.close()
    new, new_cols = _ml_forecasts(altered)
    assert new_cols == cols  # the same inputs are chosen
    before_t = pl.col("origin_ts") < t  # forecast at the close origin_ts + 1 h <= t
    assert set(orig["model"]) == set(EXOG_MODELS) >= {"hgb", "rf", "hgbc", "hgbch"}
    assert orig.filter(before_t).height > 2000
    assert new.filter(before_t).equals(orig.filter(before_t))
    # teeth: the forecasts after t, which lose their features, do change
    after = orig.filter(~before_t).join(new, on=["model", "origin_ts", "horizon_hours"])
    assert after.height > 0 and (after["sigma"] != after["sigma_right"]).any()


def test_hgb_on_a_short_range_uses_the_stress_features(ingested_db, prefect_harness, tmp_path):
    from pipelines.forecasts.flow import forecast_flow

    db = _copy(ingested_db, tmp_path)
    run_id = forecast_flow(
        db_path=str(db),
        assets=["ETH"],
        models=["garch", "hgb"],
        start="2024-08-04",
        end="2024-08-06T12:00",
    )
    fc = _rows(db, "SELECT * FROM forecasts WHERE run_id = ?", [run_id])
    assert set(fc["event_id"]) == {"range"}
    assert fc["origin_ts"].min() == datetime(2024, 8, 4, tzinfo=UTC)
    assert fc["origin_ts"].max() == datetime(2024, 8, 6, 11, tzinfo=UTC)
    assert fc.filter(pl.col("model") == "hgb").height == 60 * 2
    notes = " ".join(json.loads(_rows(db, "SELECT notes FROM forecast_runs")["notes"][0]))
    for feature in ("drawdown_24", "funding_rate", "oi_change_1d", "cex_long_liq_log"):
        assert feature in notes
    scores = _rows(db, "SELECT DISTINCT event_id, scope FROM forecast_scores ORDER BY ALL")
    assert scores.rows() == [
        ("2024-08-05-yen-carry-unwind", "crash"),  # the crash inside the range is scored too
        ("all", "crash"),
        ("all", "window"),
        ("range", "window"),
    ]


def test_sol_has_no_data_for_w1_and_is_skipped_with_a_note(ingested_db):
    con = connect(ingested_db, read_only=True)
    try:
        config = build_config(con, assets=["BTC", "SOL"], models=["ewma", "hgb"], events=["W1"])
        inputs, notes = prepare_inputs(con, config)
    finally:
        con.close()
    assert [(i.asset, i.window.window_id) for i in inputs] == [("BTC", config.windows[0].window_id)]
    assert any(n.startswith("SOL 2020-03-12-black-thursday: skipped") for n in notes)
    # open interest and CEX liquidations start after W1's history: HAR + drawdown + funding only
    assert inputs[0].exog_cols == ("drawdown_24", "funding_rate")
    features = [n for n in notes if n.startswith("BTC 2020-03-12-black-thursday: hgb/rf")]
    assert len(features) == 1 and "cex_long_liq_log: no BTC data known by 2020-01-12" in features[0]


def test_realized_variance_from_5_minute_bars_where_complete(ingested_db):
    con = connect(ingested_db, read_only=True)
    try:
        config = build_config(
            con, assets=["BTC"], models=["har"], events=["2024-08-05-yen-carry-unwind"]
        )
        (inp,), notes = prepare_inputs(con, config)
        hourly_cfg = build_config(
            con,
            assets=["BTC"],
            models=["har"],
            events=["2024-08-05-yen-carry-unwind"],
            intraday_rv=False,
        )
        (plain,), _ = prepare_inputs(con, hourly_cfg)
    finally:
        con.close()
    assert inp.rv_col == "rv" and inp.rv_source == "spot/binance/300s"
    assert any("realized variance from spot/binance/300s" in n for n in notes)
    assert plain.rv_col is None and hourly_cfg.run_id != config.run_id
    bars = inp.bars.with_columns(r2=pl.col("close").log().diff() ** 2).drop_nulls("r2")
    assert bars["rv"].null_count() == 0 and (bars["rv"] >= 0).all()
    # 5-minute RV is a smoother proxy of the same variance: similar level, far less dispersion
    ratio = bars["rv"].mean() / bars["r2"].mean()
    assert 0.5 < ratio < 2.0
    assert bars["rv"].std() / bars["rv"].mean() < bars["r2"].std() / bars["r2"].mean()


def test_falls_back_to_finer_bars_aggregated_to_hours(ingested_db, tmp_path):
    db = _copy(ingested_db, tmp_path)
    lo, hi = datetime(2022, 5, 1, tzinfo=UTC), datetime(2022, 5, 15, tzinfo=UTC)
    con = connect(db)
    try:
        ref = load_hourly_bars(con, "BTC", lo, hi)
        con.execute(
            "DELETE FROM raw_prices WHERE asset = 'BTC' AND market = 'spot' AND venue = 'binance' "
            "AND bar_seconds = 3600"
        )
        got = load_hourly_bars(con, "BTC", lo, hi)
    finally:
        con.close()
    assert ref.label == "spot/binance/3600s"
    assert got.label == "spot/binance/300s → 1h"
    both = ref.bars.join(got.bars, on="ts")
    assert both.height >= 0.99 * ref.bars.height
    assert (both["close"] / both["close_right"] - 1).abs().max() < 1e-9


def test_min_train_must_fit_into_the_history():
    with pytest.raises(CascadeError, match="--history-days 30"):
        forecast_windows(["W4"], history_days=20, min_train=720)
    with pytest.raises(CascadeError, match="either events or"):
        forecast_windows(["W4"], start="2024-01-01")


def test_old_forecast_tables_are_rebuilt(tmp_path):
    db = tmp_path / "old.duckdb"
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE forecast_scores (run_id VARCHAR NOT NULL, model VARCHAR NOT NULL, "
        "asset VARCHAR NOT NULL, event_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, "
        "value DOUBLE, PRIMARY KEY (run_id, model, asset, event_id, metric))"
    )
    con.close()
    con = connect(db)
    try:
        ensure_forecast_tables(con)
        keys = dict(
            con.execute(
                "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
                "WHERE constraint_type = 'PRIMARY KEY'"
            ).fetchall()
        )
    finally:
        con.close()
    for table, pk in FORECAST_TABLES.items():
        assert tuple(keys[table]) == pk


@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        ("--assets", "NOPE", ["unknown asset", "NOPE", "BTC", "ETH", "SOL"]),
        ("--models", "ewma,prophet", ["unknown forecast model", "prophet", "garch", "hgb"]),
        ("--events", "W9", ["unknown event", "W9", "2022-11-08-ftx"]),
        ("--horizon", "3d", ["horizon", "3d"]),
    ],
)
def test_cli_unknown_names_exit_2(ingested_db, capsys, flag, value, expected):
    assert main(["forecast", "--db", str(ingested_db), flag, value]) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err


def test_cli_forecasts_a_user_loaded_asset(
    mirror_dir, ingested_db, prefect_harness, tmp_path, capsys
):
    raw = pl.read_ipc(
        mirror_dir / "Roshan7869__algotrading/user_data/data/binance/ETH_USDT-1h.feather"
    )
    bars = (
        raw.rename({"date": "ts"})
        .filter(pl.col("ts") >= pl.datetime(2022, 2, 1, time_zone="UTC"))
        .head(150 * 24)
        .with_columns(pl.col("ts").dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    )
    csv = tmp_path / "my_eth.csv"
    bars.write_csv(csv)
    db = _copy(ingested_db, tmp_path)
    assert main(["ingest-prices", "--db", str(db), "--file", str(csv), "--asset", "MYETH"]) == 0
    plots = tmp_path / "plots"
    args = ["forecast", "--db", str(db), "--assets", "MYETH", "--models", "ewma,garch"]
    args += ["--start", "2022-06-10", "--end", "2022-06-16", "--horizon", "1h,24h"]
    assert main([*args, "--plots", str(plots)]) == 0
    out = capsys.readouterr().out
    assert "MYETH" in out and "run id:" in out
    run_id = out.rsplit("run id:", 1)[1].split()[0]
    fc = _rows(
        db, "SELECT DISTINCT asset, model FROM forecasts WHERE run_id = ? ORDER BY ALL", [run_id]
    )
    assert fc.rows() == [("MYETH", "ewma"), ("MYETH", "garch")]
    notes = _rows(db, "SELECT notes FROM forecast_runs WHERE run_id = ?", [run_id])["notes"][0]
    assert "spot/user/3600s" in notes
    assert (plots / "forecast_MYETH_2022-06-13-celsius-3ac.png").stat().st_size > 10_000
    assert (plots / "scores.md").read_text().count("| ewma |") == 4  # 2 horizons x 2 scopes
    # the same command again is recognised without starting Prefect
    assert main(args) == 0
    assert "already stored" in capsys.readouterr().out
