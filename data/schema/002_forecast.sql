-- Forecasting results. run_id = hash of the run's full config (pipelines.config.config_hash).

CREATE TABLE IF NOT EXISTS forecast_runs (
    run_id VARCHAR PRIMARY KEY, config JSON NOT NULL, created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS forecasts (
    run_id VARCHAR NOT NULL, model VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    origin_ts TIMESTAMPTZ NOT NULL, horizon_hours INTEGER NOT NULL, sigma DOUBLE NOT NULL,
    PRIMARY KEY (run_id, model, asset, origin_ts, horizon_hours)
);

-- Realized volatility of the same horizon, aligned with origin_ts (for scoring and plots).
CREATE TABLE IF NOT EXISTS realized_vol (
    run_id VARCHAR NOT NULL, asset VARCHAR NOT NULL, origin_ts TIMESTAMPTZ NOT NULL,
    horizon_hours INTEGER NOT NULL, realized_sigma DOUBLE, realized_return DOUBLE,
    PRIMARY KEY (run_id, asset, origin_ts, horizon_hours)
);

-- event_id = 'all' for the score over every forecast of the run.
CREATE TABLE IF NOT EXISTS forecast_scores (
    run_id VARCHAR NOT NULL, model VARCHAR NOT NULL, asset VARCHAR NOT NULL, event_id VARCHAR NOT NULL,
    metric VARCHAR NOT NULL, value DOUBLE,
    PRIMARY KEY (run_id, model, asset, event_id, metric)
);

CREATE TABLE IF NOT EXISTS margin_paths (
    run_id VARCHAR NOT NULL, model VARCHAR NOT NULL, asset VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    liquidation_threshold DOUBLE NOT NULL,
    PRIMARY KEY (run_id, model, asset, ts)
);
