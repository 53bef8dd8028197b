-- Forecasting results (Prefect flow `forecast`, pipelines/forecasts/flow.py).
-- run_id = hash of the run's full config (pipelines.catalog.hashing.config_hash): assets, models, windows,
-- horizons, refit, margin preset, model parameters, code version and data version.
-- event_id names the forecast *window*: a crash event id of data/events.json (the crash window
-- plus the part of its `history_days` lead-in that follows the first `min_train` hours), or
-- 'range' for a --start/--end run. Lead-ins of nearby crashes overlap (W4's contains W3), so
-- filter on event_id when joining these tables.

CREATE TABLE IF NOT EXISTS forecast_runs (
    run_id VARCHAR PRIMARY KEY, config JSON NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    notes JSON, seconds DOUBLE
);

-- sigma: forecast standard deviation of the log return over the next horizon_hours, made at the
-- close of the bar that opens at origin_ts (uses closes up to that close, nothing later).
CREATE TABLE IF NOT EXISTS forecasts (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, model VARCHAR NOT NULL,
    asset VARCHAR NOT NULL, origin_ts TIMESTAMPTZ NOT NULL, horizon_hours INTEGER NOT NULL,
    sigma DOUBLE NOT NULL,
    PRIMARY KEY (run_id, event_id, model, asset, origin_ts, horizon_hours)
);

-- Realized volatility of the same horizon, aligned with origin_ts (for scoring and plots):
-- realized_sigma = sqrt(sum of squared hourly log returns over the horizon), realized_return =
-- log(close[origin + h] / close[origin]); no row where the horizon runs past the data.
CREATE TABLE IF NOT EXISTS realized_vol (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    origin_ts TIMESTAMPTZ NOT NULL, horizon_hours INTEGER NOT NULL, realized_sigma DOUBLE,
    realized_return DOUBLE,
    PRIMARY KEY (run_id, event_id, asset, origin_ts, horizon_hours)
);

-- scope 'crash': origins inside the crash window [start_ts, end_ts) of event_id;
-- scope 'window': every origin of the forecast window event_id (lead-in + crash).
-- event_id = 'all': pooled over every window of the run (for scope 'window', origins shared by
-- two overlapping windows are taken once, from the earlier window).
-- metric: n, qlike, mse, mz_alpha, mz_beta, mz_r2, dm_stat, dm_pvalue (QLIKE loss vs garch),
-- var95_* / var99_* (n, hit_rate, kupiec_lr, kupiec_p, ind_lr, ind_p, cc_lr, cc_p).
CREATE TABLE IF NOT EXISTS forecast_scores (
    run_id VARCHAR NOT NULL, model VARCHAR NOT NULL, asset VARCHAR NOT NULL, event_id VARCHAR NOT NULL,
    horizon_hours INTEGER NOT NULL, scope VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE,
    PRIMARY KEY (run_id, model, asset, event_id, horizon_hours, scope, metric)
);

-- Dynamic liquidation threshold from the 24 h forecast (sigma_24h; the 1 h forecast times
-- sqrt(24) when 24 h was not requested): in force from ts = origin_ts + 1 h.
CREATE TABLE IF NOT EXISTS margin_paths (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, model VARCHAR NOT NULL,
    asset VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, liquidation_threshold DOUBLE NOT NULL,
    sigma_24h DOUBLE NOT NULL,
    PRIMARY KEY (run_id, event_id, model, asset, ts)
);

-- Databases created before these tables gained event_id/horizon_hours/scope: add the columns so the
-- view below binds; pipelines.warehouse.forecast_store.ensure_forecast_tables rebuilds such (empty) tables
-- with their new primary keys before the first forecast run writes.
ALTER TABLE forecast_runs ADD COLUMN IF NOT EXISTS notes JSON;
ALTER TABLE forecast_runs ADD COLUMN IF NOT EXISTS seconds DOUBLE;
ALTER TABLE forecasts ADD COLUMN IF NOT EXISTS event_id VARCHAR;
ALTER TABLE realized_vol ADD COLUMN IF NOT EXISTS event_id VARCHAR;
ALTER TABLE forecast_scores ADD COLUMN IF NOT EXISTS horizon_hours INTEGER;
ALTER TABLE forecast_scores ADD COLUMN IF NOT EXISTS scope VARCHAR;
ALTER TABLE margin_paths ADD COLUMN IF NOT EXISTS event_id VARCHAR;
ALTER TABLE margin_paths ADD COLUMN IF NOT EXISTS sigma_24h DOUBLE;

-- Forecasts next to what happened (one row per forecast).
CREATE OR REPLACE VIEW forecast_vs_realized AS
SELECT f.run_id, f.event_id, f.model, f.asset, f.origin_ts, f.horizon_hours, f.sigma,
       r.realized_sigma, r.realized_return
FROM forecasts f
LEFT JOIN realized_vol r USING (run_id, event_id, asset, origin_ts, horizon_hours);
