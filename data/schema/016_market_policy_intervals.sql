-- Intervals over stress paths for the market-level policies (docs/market-replay.md#intervals-over-stress-paths):
-- derived results of `cascade attribute`, keyed by its run id. One row per (event, asset,
-- impact_y, policy, versus, metric); metric is an avoided figure of market_policy_results
-- (avoided_cascade_share, avoided_liq_usd, avoided_bad_debt_usd: status quo minus the policy,
-- positive = avoided) when versus = 'status_quo'; for policy = 'forecast_mm:model' and versus =
-- one of its controls (forecast_mm:constant, ...), the model's avoided figure minus the
-- control's (positive = the forecast did better). real = the real-path value; p5 / p50 / p95 over n_paths seeded stress
-- paths (filtered historical simulation fitted before the window, moving the fundamental path);
-- excludes_zero = the 5 %-95 % interval lies strictly on one side of 0.
CREATE TABLE IF NOT EXISTS market_policy_intervals (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    impact_y DOUBLE NOT NULL, policy VARCHAR NOT NULL, versus VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,
    n_paths INTEGER, seed BIGINT, paths_digest VARCHAR, fit_label VARCHAR,
    real DOUBLE, p5 DOUBLE, p50 DOUBLE, p95 DOUBLE, excludes_zero BOOLEAN
);
