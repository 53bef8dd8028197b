-- Market-level policies on the market-wide replay (docs/market-replay.md#market-level-policies):
-- derived results of `cascade attribute`, keyed by its run id. impact_y is the square-root-law
-- prefactor of the replay (1 = the calibrated law, 6 = the order of the impact-check slope).

-- One row per (event, asset, impact_y, policy). avoided_* = status quo minus the policy (same
-- event, asset and impact_y): positive = the policy avoided that much. deferred_usd = positions
-- past their liquidation price still open plus the insurance fund's inventory at the window end.
CREATE TABLE IF NOT EXISTS market_policy_results (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    impact_y DOUBLE NOT NULL, seq INTEGER, policy VARCHAR NOT NULL, params VARCHAR,
    defi_book VARCHAR,
    fundamental_drawdown DOUBLE, replayed_drawdown DOUBLE, cascade_share DOUBLE,
    liquidated_usd DOUBLE, bad_debt_usd DOUBLE, deferred_usd DOUBLE, peak_deferred_usd DOUBLE,
    halted_hours INTEGER, fund_absorbed_usd DOUBLE, fund_unwound_usd DOUBLE, fund_pnl_usd DOUBLE,
    defi_liq_usd DOUBLE, defi_observed_usd DOUBLE, defi_bad_debt_usd DOUBLE,
    max_cascade_depth INTEGER, avoided_cascade_share DOUBLE, avoided_liq_usd DOUBLE,
    avoided_bad_debt_usd DOUBLE, note VARCHAR
);

-- Hourly replayed close and liquidations under each policy (the pictures).
CREATE TABLE IF NOT EXISTS market_policy_paths (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    impact_y DOUBLE NOT NULL, policy VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    fundamental DOUBLE, replayed DOUBLE, liquidated_usd DOUBLE, defi_liq_usd DOUBLE
);

-- Auto-deleveraging replayed on the status-quo book at the hour of the largest long
-- liquidations: who absorbs the deficit under the queue (profit x leverage) and pro-rata rules.
CREATE TABLE IF NOT EXISTS market_adl (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    impact_y DOUBLE NOT NULL, rule VARCHAR NOT NULL, ts TIMESTAMPTZ, price DOUBLE,
    target_usd DOUBLE, adl_usd DOUBLE, eligible_usd DOUBLE, cohorts_hit INTEGER,
    high_lev_share DOUBLE, mean_leverage DOUBLE, max_cohort_fraction DOUBLE, mean_profit DOUBLE,
    note VARCHAR
);
