"""The leverage-book fit under the rule variants tried, with the model-check figures of each.

Documentation helper (``docs/market-replay.md``, section 1): every variant is fitted on the
non-event days and checked leave-one-event-out exactly as ``cascade attribute`` does; nothing is
written. ``python -m pipelines.attribution.fit_variants --db cascade.duckdb`` (read-only; about
ten minutes on the shared 2-core machine; variants with the same bars and grid share their
candidates' runs).
"""

from __future__ import annotations

import polars as pl

from backtest.market.crash_level import CRASH_LEVEL_KS
from backtest.market.fit import DEFAULT_CROWDING_BETAS, DEFAULT_CROWDING_DAYS, DEFAULT_GRID
from pipelines.attribution.compute import (
    AttributionConfig,
    _daily_series,
    _fit_asset,
    _fit_runs,
    _pooled_selections,
)
from pipelines.attribution.summary import model_check_summary
from pipelines.warehouse import attribution_store as store

__all__ = ["VARIANTS", "variant_table"]

#: The grid of the first version of the fit (daily bars, 54 candidates).
DAILY_GRID: dict[str, tuple[float, ...]] = {
    "lev_median": (5.0, 10.0, 20.0),
    "lev_spread": (1.5,),
    "funding_k": (0.0, 0.5),
    "turnover_per_day": (0.1, 0.3, 1.0),
    "turnover_lev_exp": (0.0, 1.0, 2.0),
}

#: A wider hourly grid (48 candidates, a superset of the default 8): lower median leverage and
#: wider mixtures put more of the book in low tiers, which only deep moves liquidate.
WIDE_HOURLY_GRID: dict[str, tuple[float, ...]] = {
    "lev_median": (3.0, 5.0, 10.0, 20.0),
    "lev_spread": (1.0, 1.5, 2.5),
    "funding_k": (0.0,),
    "turnover_per_day": (0.3, 1.0),
    "turnover_lev_exp": (1.0, 2.0),
}

#: The default hourly grid before the intraday re-entry share (8 candidates): every variant
#: uses it unless it sets ``grid``.
HOURLY_GRID: dict[str, tuple[float, ...]] = {
    k: v for k, v in DEFAULT_GRID.items() if k != "reentry"
}

#: Trailing windows (days) of the funding crowding forms compared.
CROWDING_WINDOWS = (7, 14, 30, 60, 90, 120, 180)

#: Variant name → config overrides (everything else as in :class:`AttributionConfig`, without
#: the crowding rule unless the variant sets ``crowding_days`` and on :data:`HOURLY_GRID` unless
#: it sets ``grid``).
VARIANTS: dict[str, dict] = {
    "daily bars, constant share (first version)": {
        "fit_bar_hours": 24, "grid": DAILY_GRID, "level_windows": (None,), "fit_min_drop": 0.0,
    },
    "daily bars, share grows with funding": {
        "fit_bar_hours": 24, "level_windows": (None,), "fit_min_drop": 0.0,
        "grid": {**DAILY_GRID, "funding_lev_k": (0.0, 0.05, 0.1)},
    },
    "daily bars, trailing level": {"fit_bar_hours": 24, "grid": DAILY_GRID, "fit_min_drop": 0.0},
    "hourly bars (intraday rule), constant share": {"level_windows": (None,), "fit_min_drop": 0.0},
    "hourly bars (intraday rule), trailing level": {"fit_min_drop": 0.0},
    "hourly bars, trailing level, wider grid (median 3-20, spread 1-2.5)": {
        "grid": WIDE_HOURLY_GRID, "fit_min_drop": 0.0,
    },
    "hourly bars, trailing level, loss on non-event days with a fall >= 5 %": {},
    **{
        f"... + funding crowding of the share, {k}-day trailing funding": {
            "crowding_days": k, "crowding_feature": "funding_share",
            "crowding_betas": (-0.3, -0.2, -0.1, -0.05, *DEFAULT_CROWDING_BETAS),
        }
        for k in CROWDING_WINDOWS
    },
    **{
        f"... + open-interest growth crowding of the share, {k}-day growth": {
            "crowding_days": k, "crowding_feature": "oi_growth",
            "crowding_betas": (-20.0, -10.0, -5.0, 0.0, 5.0, 10.0, 20.0, 40.0),
        }
        for k in (14, 30)
    },
    **{
        f"... + sign-aware funding crowding, {k}-day trailing funding": {"crowding_days": k}
        for k in CROWDING_WINDOWS
    },
    # session 5, for W2 BTC, in this order, each on top of the 90-day sign-aware form above
    **{
        f"... 90-day + crash-day level ({mode}), k selected from {{0, 3, 5, 10}}": {
            "crowding_days": DEFAULT_CROWDING_DAYS, "crash_level_ks": CRASH_LEVEL_KS,
            "crash_level_mode": mode,
        }
        for mode in ("excess", "level")
    },
    **{
        f"... 90-day + crash-day level ({mode}), k = {k} forced": {
            "crowding_days": DEFAULT_CROWDING_DAYS, "crash_level_ks": (k,),
            "crash_level_mode": mode,
        }
        for mode in ("excess", "level")
        for k in CRASH_LEVEL_KS[1:]
    },
    "... 90-day, crowding beta pooled across the assets": {
        "crowding_days": DEFAULT_CROWDING_DAYS, "pool_assets": "beta",
    },
    "... 90-day, crowding beta and candidate pooled across the assets": {
        "crowding_days": DEFAULT_CROWDING_DAYS, "pool_assets": "beta_candidate",
    },
    "... 90-day + intraday re-entry share 0, 0.5 or 1 with the candidate (first grid)": {
        "crowding_days": DEFAULT_CROWDING_DAYS,
        "grid": {**HOURLY_GRID, "reentry": (0.0, 0.5, 1.0)},
    },
    # the loss profile over the share (each forced), then a finer grid
    **{
        f"... 90-day + intraday re-entry share {rho} forced": {
            "crowding_days": DEFAULT_CROWDING_DAYS, "grid": {**HOURLY_GRID, "reentry": (rho,)},
        }
        for rho in (0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75, 1.0)
    },
    "... 90-day + intraday re-entry share 0, 0.25, 0.5, 0.75 or 1 with the candidate": {
        "crowding_days": DEFAULT_CROWDING_DAYS,
        "grid": {**HOURLY_GRID, "reentry": (0.0, 0.25, 0.5, 0.75, 1.0)},
    },
    "... 90-day + intraday re-entry share 0, 0.25 or 0.5 with the candidate (final)": {
        "crowding_days": DEFAULT_CROWDING_DAYS, "grid": DEFAULT_GRID,
    },
}  # fmt: skip


def variant_table(  # noqa: ANN001
    con, assets: tuple[str, ...] = ("BTC", "ETH"), match: str = ""
) -> pl.DataFrame:
    """One row per variant and asset: Spearman, worst-day ratios, base loss and re-entry share.

    Spearman over all reported days; ``fit_loss`` and ``reentry`` are the base fit's.
    ``match``: only the variants whose name contains it.
    """
    events = store.event_windows(con)
    rows = []
    runs: dict[tuple, object] = {}  # the candidates' runs, shared by variants of the same grid
    for name, overrides in VARIANTS.items():
        if match not in name:
            continue
        config = AttributionConfig(
            assets=assets, **{"crowding_days": None, "grid": HOURLY_GRID, **overrides}
        )
        keys = {a: (a, config.fit_bar_hours, repr(sorted(config.grid.items()))) for a in assets}
        for asset, key in keys.items():
            if key not in runs:
                series, d = _daily_series(store.daily_inputs(con, asset), asset)
                runs[key] = _fit_runs(con, asset, series, d, config)
        pooled = {}
        if config.pool_assets:
            fits = {a: runs[k] for a, k in keys.items()}
            pooled = _pooled_selections(con, assets, events, config, fits)
        for asset in assets:
            _, check, books, _ = _fit_asset(
                con, asset, events, config, [], fit=runs[keys[asset]],
                pooled=pooled.get(asset, (None, None))[1],
            )  # fmt: skip
            s = model_check_summary(check)
            val = dict(zip(s["scope"], s["value"]))
            ratios = {k.split(":", 1)[1][:10]: v for k, v in val.items() if ":" in k}
            base = books.filter(pl.col("held_out_event").is_null()).row(0, named=True)
            rows.append(
                {
                    "variant": name,
                    "asset": asset,
                    "spearman_long": val["spearman_long"],
                    "spearman_short": val["spearman_short"],
                    **{f"ratio {k}": v for k, v in ratios.items()},
                    "within_2x": sum(0.5 <= v <= 2 for v in ratios.values()),
                    "fit_loss": base["fit_loss"],
                    "reentry": base["reentry"],
                }
            )
    return pl.DataFrame(rows)


if __name__ == "__main__":  # pragma: no cover - documentation helper
    import argparse

    from pipelines.attribution.summary import markdown_table
    from pipelines.warehouse.connection import connect

    ap = argparse.ArgumentParser(description="the fit's model check under each rule variant")
    ap.add_argument("--db", required=True)
    ap.add_argument("--assets", default="BTC,ETH")
    ap.add_argument("--match", default="", help="only the variants whose name contains this")
    a = ap.parse_args()
    con = connect(a.db, read_only=True)
    print(markdown_table(variant_table(con, tuple(a.assets.upper().split(",")), a.match)))
