"""Price adapters on the real mirror (every entry of data/registry/prices.json) and on bad files."""

from __future__ import annotations

import gzip
import json
import re
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines.errors import DataValidationError
from pipelines.ingest.adapters.base import AdapterOutput, SourceEntry, get_adapter
from pipelines.ingest.validate import validate_ohlcv

pytestmark = pytest.mark.integration  # needs the real-data mirror

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "data" / "registry" / "prices.json"
SCHEMA = REPO / "data" / "schema" / "001_core.sql"
TABLES = {"prices", "funding", "orderbook_depth", "trades"}
PRICE_FORMATS = {
    "freqtrade-feather",
    "freqtrade-json",
    "binance-kline-csv",
    "binance-ohlcv-csv",
    "binance-bookdepth-csv",
    "cryptodatadownload-csv",
    "parquet",
    "zip-csv",
    "csv.gz",
    "csv",
}
R = "Roshan7869__algotrading/user_data/data/binance/"
MISRORI = "misrori__binance_startegy/data/"
WINDOWS = {  # crash windows of the data README (UTC days, inclusive)
    "W1": ("2020-03-12", "2020-03-13"),
    "W2": ("2021-05-19", "2021-05-19"),
    "W3": ("2022-05-07", "2022-05-13"),
    "W4": ("2022-06-13", "2022-06-13"),
    "W5": ("2022-11-08", "2022-11-09"),
    "W6": ("2024-08-05", "2024-08-05"),
    "W7": ("2025-10-10", "2025-10-11"),
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def registry() -> list[SourceEntry]:
    return [SourceEntry(**e) for e in json.loads(REGISTRY.read_text())]


def schema_columns() -> dict[str, list[str]]:
    """Columns of each raw_* table (without ``source``), read from the schema SQL."""
    sql = SCHEMA.read_text()
    out = {}
    for table in TABLES:
        body = re.search(rf"CREATE TABLE IF NOT EXISTS raw_{table} \((.*?)\);", sql, re.S)
        assert body, table
        names = re.findall(r"(?:^|,)\s*([a-z_]+)\s+[A-Z]", body.group(1))
        out[table] = [n for n in names if n not in {"source", "PRIMARY"}]
    return out


@pytest.fixture(scope="module")
def loaded(mirror_dir: Path) -> dict[str, tuple[SourceEntry, AdapterOutput, float]]:
    """Every registered price source run through its adapter once: name -> (entry, output, s)."""
    results = {}
    for entry in registry():
        start = time.perf_counter()
        output = get_adapter(entry.adapter)(mirror_dir / entry.file, entry)
        results[entry.name] = (entry, output, time.perf_counter() - start)
    return results


def prices_of(loaded: dict, name: str) -> pl.DataFrame:
    return loaded[name][1].tables["prices"]


def rules_of(loaded: dict, name: str) -> dict[str, int]:
    return {r.rule: r.rows for r in loaded[name][1].rules}


# ---------------------------------------------------------------------------------------------
# The registry itself
# ---------------------------------------------------------------------------------------------


def test_registry_entries_are_complete() -> None:
    entries = registry()
    assert len(entries) == 71
    assert len({e.name for e in entries}) == 71
    for entry in entries:
        assert entry.format in PRICE_FORMATS, entry.name
        assert get_adapter(entry.adapter), entry.name
        assert isinstance(entry.priority, int) and 1 <= entry.priority <= 100, entry.name
        assert entry.params and entry.note, entry.name
    by_repo = {e.name.split("__")[0]: e.priority for e in entries}
    assert by_repo["Roshan7869"] == 10
    assert by_repo["andrewsiah"] == 90
    assert by_repo["misrori"] < by_repo["soneyjohnt"] < by_repo["andrewsiah"]


def test_registry_files_exist_with_their_size(mirror_dir: Path) -> None:
    for entry in registry():
        path = mirror_dir / entry.file
        assert path.is_file(), entry.file
        assert path.stat().st_size == entry.bytes, entry.file


# ---------------------------------------------------------------------------------------------
# Every file loads and validates
# ---------------------------------------------------------------------------------------------


def test_every_entry_loads_and_passes_validation(loaded: dict) -> None:
    columns = schema_columns()
    for name, (entry, output, _) in loaded.items():
        assert output.tables, name
        assert set(output.tables) <= TABLES, name
        for table, frame in output.tables.items():
            assert frame.height > 0, (name, table)
            assert set(frame.columns) <= set(columns[table]), (name, table, frame.columns)
            assert frame.schema["ts"] == pl.Datetime("us", "UTC"), (name, table)
        if "prices" in output.tables:
            prices = output.tables["prices"]
            validate_ohlcv(prices, file=entry.file)
            assert prices.columns == columns["prices"]
            assert prices["market"].unique().to_list() == [entry.params["market"]]
            assert prices["venue"].unique().to_list() == [entry.params["venue"]]
            assert prices["bar_seconds"].unique().to_list() == [entry.params["bar_seconds"]]
            assert prices["ts"].is_sorted(), name
            assert set(prices["asset"].unique()) <= {entry.params["asset"], "LUNA2"}, name
        for rule in output.rules:
            assert rule.rows > 0 and rule.detail, (name, rule)


def test_adapters_are_deterministic(loaded: dict, mirror_dir: Path) -> None:
    entry, first, _ = loaded[R + "BTC_USDT-1h.feather"]
    again = get_adapter(entry.adapter)(mirror_dir / entry.file, entry)
    assert again.tables["prices"].equals(first.tables["prices"])


def test_price_keys_do_not_collide_within_a_source(loaded: dict) -> None:
    key = ["asset", "market", "venue", "bar_seconds", "ts"]
    for name, (_, output, _) in loaded.items():
        if "prices" in output.tables:
            prices = output.tables["prices"]
            assert not prices.select(pl.struct(key).is_duplicated().any()).item(), name


# ---------------------------------------------------------------------------------------------
# Facts the data README states
# ---------------------------------------------------------------------------------------------


def test_btc_eth_hourly_backbone_has_no_gap_in_any_window(loaded: dict) -> None:
    for asset in ("BTC", "ETH"):
        bars = prices_of(loaded, f"{R}{asset}_USDT-1h.feather")
        assert bars["ts"].min() == utc(2018, 1, 1)
        assert bars["ts"].max().date() == utc(2026, 5, 16).date()
        for first, last in WINDOWS.values():
            start = datetime.fromisoformat(first).replace(tzinfo=UTC)
            end = datetime.fromisoformat(last).replace(tzinfo=UTC) + timedelta(days=1)
            inside = bars.filter(pl.col("ts").is_between(start, end, closed="left"))
            assert inside.height == (end - start) // timedelta(hours=1), (asset, first)


def test_black_thursday_is_in_the_btc_hourly_bars(loaded: dict) -> None:
    bars = prices_of(loaded, R + "BTC_USDT-1h.feather")
    day = bars.filter(pl.col("ts").is_between(utc(2020, 3, 12), utc(2020, 3, 14), closed="left"))
    assert day.height == 48
    assert day["low"].min() < 4_000  # Binance BTCUSDT printed 3,782 on 2020-03-13
    assert day.select((pl.col("ts").diff() == timedelta(hours=1)).all()).item()


def test_perp_mark_and_funding_from_roshan(loaded: dict) -> None:
    perp = prices_of(loaded, R + "futures/BTC_USDT_USDT-1h-futures.feather")
    assert perp["ts"].min() == utc(2019, 9, 8, 17)
    mark = prices_of(loaded, R + "futures/BTC_USDT_USDT-1h-mark.feather")
    assert mark["market"][0] == "mark" and (mark["volume"] == 0).all()
    funding = loaded[R + "futures/BTC_USDT_USDT-1h-funding_rate.feather"][1].tables["funding"]
    assert funding.columns == ["asset", "venue", "ts", "interval_seconds", "rate"]
    assert (funding["interval_seconds"] == 28_800).all()
    assert funding.select((pl.col("ts").diff().dt.total_seconds() == 28_800).all()).item() in (
        True,
        None,
    )
    assert funding["rate"][0] == pytest.approx(1e-4)
    assert funding["rate"].abs().max() < 0.01


def test_andrewsiah_rules_fire_with_the_readme_counts(loaded: dict) -> None:
    fillers = {"BTC": 117, "ETH": 119}
    for asset, n_fillers in fillers.items():
        name = f"andrewsiah__crypto-historical-data/Binance_{asset}USDT_1h.csv"
        rules = rules_of(loaded, name)
        assert rules == {
            "cdd_epoch_seconds": 28_584,
            "cdd_drop_seconds_duplicates": 2_649,  # the README's duplicated timestamps
            "cdd_date_text_ignored": 91,
            "cdd_sort_ascending": 36_062 - 2_649,
            "cdd_drop_filler_bars": n_fillers,
            "cdd_drop_bogus_first_bar": 1,
            "drop_partial_last_bars": 1,
        }
        dropped = {r.rule for r in loaded[name][1].rules if r.dropped}
        assert dropped == {
            "cdd_drop_seconds_duplicates",
            "cdd_drop_filler_bars",
            "cdd_drop_bogus_first_bar",
            "drop_partial_last_bars",
        }
        bars = prices_of(loaded, name)
        assert bars.height == 36_062 - 2_649 - n_fillers - 2
        assert bars["ts"].min() == utc(2017, 8, 17, 5)  # the bogus 04:00 bar is gone
        assert bars["ts"].max() == utc(2021, 6, 9, 23)  # the 2021-06-10 00:00 hour was open
        flat = (pl.col("volume") == 0) & (pl.col("high") == pl.col("low"))
        assert bars.filter(flat).is_empty()
        outage = bars.filter(pl.col("ts").is_between(utc(2018, 2, 8, 1), utc(2018, 2, 9, 9)))
        assert outage.is_empty()  # Binance was down; no placeholder fills the gap


def test_andrewsiah_agrees_with_binance_where_it_keeps_milliseconds_rows(loaded: dict) -> None:
    cdd = prices_of(loaded, "andrewsiah__crypto-historical-data/Binance_BTCUSDT_1h.csv")
    ref = prices_of(loaded, R + "BTC_USDT-1h.feather")
    joined = cdd.filter(pl.col("ts") >= utc(2020, 8, 1, 23)).join(ref, on="ts")
    assert joined.height > 7_000
    assert (joined["open"] == joined["open_right"]).all()


def test_cryofrost_has_one_exact_duplicate(loaded: dict) -> None:
    name = "cryofrost__freqtrade/user_data/data/binance/BTC_USDT-5m.json"
    assert rules_of(loaded, name) == {"drop_exact_duplicates": 1}
    bars = prices_of(loaded, name)
    assert bars.height == 33_959
    assert bars["ts"].max() == utc(2020, 3, 12, 21, 10)


def test_luna_rule_on_misrori(loaded: dict) -> None:
    luna = prices_of(loaded, MISRORI + "LUNAUSDT_1h.csv")
    old = luna.filter(pl.col("asset") == "LUNA")
    new = luna.filter(pl.col("asset") == "LUNA2")
    assert old["ts"].max() == utc(2022, 5, 13)
    assert new["ts"].min() == utc(2022, 5, 31, 6)
    assert old["close"].min() < 0.001  # the crash of the old coin ...
    assert new["close"].min() > 0.1  # ... never seen in the new one
    rules = rules_of(loaded, MISRORI + "LUNAUSDT_1h.csv")
    assert rules["luna2_relabel"] == new.height
    lunc = prices_of(loaded, MISRORI + "LUNCUSDT_1h.csv")
    assert lunc["asset"].unique().to_list() == ["LUNC"]
    assert lunc["ts"].min() == utc(2022, 9, 9, 8)
    assert rules_of(loaded, MISRORI + "LUNCUSDT_1h.csv")["lunc_label"] == lunc.height


def test_luna_rule_on_every_luna_file(loaded: dict) -> None:
    for name, (entry, output, _) in loaded.items():
        if entry.params.get("asset") != "LUNA":
            continue
        bars = output.tables["prices"]
        assert bars.filter(
            (pl.col("asset") == "LUNA") & (pl.col("ts") >= utc(2022, 5, 14))
        ).is_empty(), name
        assert bars.filter(
            (pl.col("asset") == "LUNA2") & (pl.col("ts") < utc(2022, 5, 28))
        ).is_empty(), name
    minute = prices_of(loaded, "yashosw10__Trading-bot/LUNAUSDT-1m-2022-05.csv")
    assert minute.filter(pl.col("asset") == "LUNA")["ts"].max() == utc(2022, 5, 13, 0, 39)
    assert minute.filter(pl.col("asset") == "LUNA2").height == 1_080


def test_partial_last_bars_dropped_and_ust_kept(loaded: dict, mirror_dir: Path) -> None:
    btc = prices_of(loaded, MISRORI + "BTCUSDT_1h.csv")
    ref = prices_of(loaded, R + "BTC_USDT-1h.feather")
    joined = btc.join(ref, on="ts")
    assert joined.height == btc.height
    assert (joined["close"] == joined["close_right"]).all()
    assert rules_of(loaded, MISRORI + "BTCUSDT_1h.csv") == {"drop_partial_last_bars": 1}
    assert rules_of(loaded, MISRORI + "USTUSDT_1h.csv") == {}
    assert prices_of(loaded, MISRORI + "USTUSDT_1h.csv")["ts"].max() == utc(2022, 5, 13)
    sol = prices_of(loaded, "soneyjohnt__binance_trading_bot/data/SOLUSDT_30m.csv")
    assert sol["ts"].max() == utc(2022, 6, 4, 23)


def test_ftt_gap_is_left_as_a_gap(loaded: dict) -> None:
    ftt = prices_of(loaded, MISRORI + "FTTUSDT_1h.csv")
    gaps = ftt.select(gap=pl.col("ts").diff().max()).item()
    assert gaps > timedelta(days=300)


def test_theglory_files(loaded: dict) -> None:
    base = "aaronwu2017__TheGlory/analysis/"
    mark = prices_of(loaded, base + "timeline/BTCUSD_PERP-1m-2025-10-10.zip")
    assert mark.height == 1_440 and mark["market"][0] == "mark"
    assert (mark["volume"] == 0).all()
    assert mark["ts"].min() == utc(2025, 10, 10)
    assert mark["low"].min() < 110_000  # the 21:xx crash
    depth = loaded[base + "timeline/BTCUSDT-bookDepth-2025-10-10.csv"][1].tables["orderbook_depth"]
    assert sorted(depth["pct"].unique().to_list()) == [-5, -4, -3, -2, -1, 1, 2, 3, 4, 5]
    assert depth["ts"].n_unique() == 2_879
    assert depth["market"][0] == "perp" and depth["venue"][0] == "binance"
    assert (depth["notional_usd"] > depth["depth_qty"]).all()
    trades = loaded[base + "spotandFutures/BTC/gemini/gemini_trades_2025-10-10_BTCUSD.csv.gz"]
    frame = trades[1].tables["trades"]
    assert frame.height == 24_706
    assert frame["ts"].min() == datetime(2025, 10, 10, 0, 0, 6, 843_000, tzinfo=UTC)
    assert set(frame["side"].unique()) == {"buy", "sell"}
    assert frame["venue"][0] == "gemini" and frame["asset"][0] == "BTC"


def test_lukmol_daily_series(loaded: dict) -> None:
    name = "lukmol__gamlss-btc-VaR/data/"
    daily = prices_of(loaded, name + "btc_price_volume.csv")
    assert (daily["bar_seconds"] == 86_400).all()
    assert daily.select(
        ((pl.col("open") == pl.col("close")) & (pl.col("high") == pl.col("low"))).all()
    ).item()
    assert rules_of(loaded, name + "btc_price_volume.csv")["close_only_bar"] == daily.height
    black_thursday = daily.filter(pl.col("ts") == utc(2020, 3, 12))
    assert black_thursday["close"][0] == pytest.approx(4_970.79, abs=0.01)
    funding = loaded[name + "funding_rates.csv"][1].tables["funding"]
    assert (funding["interval_seconds"] == 86_400).all()
    assert funding.height == 2_348


def test_lukmol_funding_is_the_daily_mean_of_binance_funding(loaded: dict) -> None:
    daily = loaded["lukmol__gamlss-btc-VaR/data/funding_rates.csv"][1].tables["funding"]
    eight_hourly = loaded[R + "futures/BTC_USDT_USDT-1h-funding_rate.feather"][1].tables["funding"]
    mean = eight_hourly.group_by(pl.col("ts").dt.truncate("1d")).agg(pl.col("rate").mean())
    joined = daily.join(mean, on="ts")
    assert joined.height == daily.height
    assert (joined["rate"] - joined["rate_right"]).abs().max() < 1e-12


# ---------------------------------------------------------------------------------------------
# Adapters are strict on bad files
# ---------------------------------------------------------------------------------------------


def entry_for(path: Path, adapter: str, fmt: str, **params: object) -> SourceEntry:
    return SourceEntry(
        name=path.name,
        file=str(path),
        origin_repo=None,
        commit=None,
        path=None,
        url=None,
        sha256="0" * 64,
        bytes=None,
        format=fmt,
        adapter=adapter,
        params=params,
    )


KEY = {"asset": "BTC", "market": "spot", "venue": "binance", "bar_seconds": 300}


def test_freqtrade_json_exact_duplicate_dropped_but_conflict_rejected(tmp_path: Path) -> None:
    rows = [[1583664000000, 1.0, 2.0, 0.5, 1.5, 3.0], [1583664300000, 1.5, 2.0, 1.0, 1.2, 4.0]]
    path = tmp_path / "BTC_USDT-5m.json"
    path.write_text(json.dumps([rows[0], rows[0], rows[1]]))
    entry = entry_for(path, "freqtrade_json", "freqtrade-json", **KEY)
    out = get_adapter("freqtrade_json")(path, entry)
    assert out.tables["prices"].height == 2
    assert [(r.rule, r.rows, r.dropped) for r in out.rules] == [("drop_exact_duplicates", 1, True)]
    path.write_text(json.dumps([rows[0], [*rows[0][:4], 1.6, 3.0], rows[1]]))
    with pytest.raises(DataValidationError, match="conflicting values") as err:
        get_adapter("freqtrade_json")(path, entry)
    assert (err.value.file, err.value.column, err.value.row) == (str(path), "ts", 2)


def test_freqtrade_json_ragged_row(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text("[[1583664000000, 1, 2, 0.5, 1.5, 3], [1583664300000, 1.5, 2]]")
    with pytest.raises(DataValidationError, match=r"\[ts_ms, o, h, l, c, v\]") as err:
        get_adapter("freqtrade_json")(path, entry_for(path, "freqtrade_json", "freqtrade-json"))
    assert err.value.row == 2


def test_ohlcv_csv_bad_date_and_wrong_symbol(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT_1h.csv"
    lines = [
        "date,open,high,low,close,volume,ticker",
        "2021-04-04 20:00:00,1,2,0.5,1.5,3,BTCUSDT",
        "2021-04-04 21:00,1.5,2,1,1.2,4,BTCUSDT",
    ]
    path.write_text("\n".join(lines) + "\n")
    params = {**KEY, "bar_seconds": 3600, "symbol_column": "ticker", "symbol": "BTCUSDT"}
    entry = entry_for(path, "ohlcv_csv", "binance-ohlcv-csv", **params)
    with pytest.raises(DataValidationError, match="unparseable timestamp") as err:
        get_adapter("ohlcv_csv")(path, entry)
    assert (err.value.column, err.value.row, err.value.row_kind) == ("date", 3, "file line")
    lines[2] = "2021-04-04 21:00:00,1.5,2,1,1.2,4,ETHUSDT"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match="symbol 'ETHUSDT'") as err:
        get_adapter("ohlcv_csv")(path, entry)
    assert (err.value.column, err.value.row) == ("ticker", 3)


def test_luna_bar_between_the_two_chains_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "LUNAUSDT_1h.csv"
    path.write_text(
        "date,open,high,low,close,volume\n"
        "2022-05-12 23:00:00,1,2,0.5,1.5,3\n"
        "2022-05-20 00:00:00,1.5,2,1,1.2,4\n"
    )
    entry = entry_for(
        path, "ohlcv_csv", "binance-ohlcv-csv", **{**KEY, "asset": "LUNA", "bar_seconds": 3600}
    )
    with pytest.raises(DataValidationError, match="cannot tell which LUNA") as err:
        get_adapter("ohlcv_csv")(path, entry)
    assert (err.value.column, err.value.row) == ("ts", 3)


def test_kline_zip_close_time_must_match_bar_size(tmp_path: Path) -> None:
    csv = (
        "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
        "taker_buy_volume,taker_buy_quote_volume,ignore\n"
        "1759968000000,10,11,9,10.5,0,1759968059999,0,60,0,0,0\n"
        "1759968060000,10.5,11,10,10.7,0,1759968179999,0,60,0,0,0\n"
    )
    path = tmp_path / "BTCUSD_PERP-1m.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSD_PERP-1m.csv", csv)
    entry = entry_for(
        path, "binance_kline_csv", "zip-csv", **{**KEY, "market": "mark", "bar_seconds": 60}
    )
    with pytest.raises(DataValidationError, match="does not end a 60 s bar") as err:
        get_adapter("binance_kline_csv")(path, entry)
    assert (err.value.column, err.value.row) == ("close_time", 3)


def test_cryptodatadownload_conflicting_pair_is_rejected(tmp_path: Path) -> None:
    header = "unix,date,symbol,open,high,low,close,Volume BTC,Volume USDT,tradecount"
    rows = [
        "1596326400000,2020-08-02 00:00:00,BTC/USDT,100,101,99,100.5,1,100,5",
        "1596322800000,2020-08-01 23:00:00,BTC/USDT,99,100.5,98,100,1,100,5",
        "1596322800.0,2020-08-01 11-PM,BTC/USDT,99,100.5,98,100,1,100,NULL",
        "1596319200.0,2020-08-01 10-PM,BTC/USDT,300,300,97,99,1,100,NULL",
    ]
    path = tmp_path / "Binance_BTCUSDT_1h.csv"
    path.write_text("\n".join([header, *rows]) + "\n")
    params = {**KEY, "bar_seconds": 3600, "symbol": "BTC/USDT"}
    entry = entry_for(path, "cryptodatadownload_csv", "cryptodatadownload-csv", **params)
    out = get_adapter("cryptodatadownload_csv")(path, entry)
    rules = {r.rule: r.rows for r in out.rules}
    assert rules == {
        "cdd_epoch_seconds": 2,
        "cdd_drop_seconds_duplicates": 1,
        "cdd_sort_ascending": 3,
        "cdd_drop_bogus_first_bar": 1,
        "drop_partial_last_bars": 1,
    }
    assert out.tables["prices"]["ts"].to_list() == [utc(2020, 8, 1, 23)]
    rows[2] = "1596322800.0,2020-08-01 11-PM,BTC/USDT,99,120,98,110,1,100,NULL"
    path.write_text("\n".join([header, *rows]) + "\n")
    with pytest.raises(DataValidationError, match="conflicting values") as err:
        get_adapter("cryptodatadownload_csv")(path, entry)
    assert (err.value.column, err.value.row) == ("unix", 4)


def test_gemini_trades_must_be_in_time_order(tmp_path: Path) -> None:
    lines = [
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount",
        "gemini,BTCUSD,1760054406843000,1760054406899497,1,buy,121758.75,0.01",
        "gemini,BTCUSD,1760054405000000,1760054422564029,2,sell,121767.61,0.02",
    ]
    path = tmp_path / "trades.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    entry = entry_for(
        path, "gemini_trades_csv", "csv.gz", asset="BTC", venue="gemini", symbol="BTCUSD"
    )
    with pytest.raises(DataValidationError, match="time order") as err:
        get_adapter("gemini_trades_csv")(path, entry)
    assert (err.value.column, err.value.row) == ("timestamp", 3)


def test_registry_params_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_text(json.dumps([[1583664000000, 1.0, 2.0, 0.5, 1.5, 3.0]]))
    with pytest.raises(ValueError, match="lacks params"):
        get_adapter("freqtrade_json")(path, entry_for(path, "freqtrade_json", "freqtrade-json"))
    bad = {**KEY, "market": "futures"}
    with pytest.raises(ValueError, match="market must be one of"):
        get_adapter("freqtrade_json")(
            path, entry_for(path, "freqtrade_json", "freqtrade-json", **bad)
        )
