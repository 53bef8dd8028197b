-- Market-wide cascade replay (docs/market-replay.md): derived results of `cascade attribute`.
-- Every row carries the run id (hash of the attribution config and the input data).

CREATE TABLE IF NOT EXISTS market_runs (
    run_id VARCHAR PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL, config_json VARCHAR NOT NULL,
    code_version VARCHAR
);

-- Fitted cohort-model parameters per asset: held_out_event NULL = fit on all non-event days;
-- otherwise the fit with that event's days left out (and the other events' days included).
-- levered_share is the share in force at the held-out event's start (base row: after the last
-- fitted day); level_window_days the trailing window of the level rule (NULL = constant share),
-- share_scale its fitted scale b (docs/market-replay.md#1-the-leverage-book-cohort-model).
CREATE TABLE IF NOT EXISTS market_books (
    run_id VARCHAR NOT NULL, asset VARCHAR NOT NULL, held_out_event VARCHAR,
    levered_share DOUBLE, lev_median DOUBLE, lev_spread DOUBLE, funding_k DOUBLE,
    turnover_per_day DOUBLE, turnover_lev_exp DOUBLE, mmr DOUBLE, fit_loss DOUBLE,
    fit_days INTEGER, level_window_days INTEGER, share_scale DOUBLE,
    crowding_beta DOUBLE, crowding_long_mult DOUBLE, crowding_short_mult DOUBLE,
    reentry DOUBLE
);

CREATE TABLE IF NOT EXISTS liquidation_model_check (
    run_id VARCHAR NOT NULL, asset VARCHAR NOT NULL, day DATE NOT NULL,
    predicted_long_usd DOUBLE, reported_long_usd DOUBLE,
    predicted_short_usd DOUBLE, reported_short_usd DOUBLE, held_out_event VARCHAR
);

CREATE TABLE IF NOT EXISTS cascade_attribution (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    observed_drawdown DOUBLE, fundamental_drawdown DOUBLE, replayed_drawdown DOUBLE,
    replayed_fundamental_drawdown DOUBLE, cascade_share DOUBLE, observed_cascade_share DOUBLE,
    observed_liq_usd DOUBLE, replayed_liq_usd DOUBLE, defi_liq_usd DOUBLE,
    other_venue_liq_usd DOUBLE, critical_shock_24h_before DOUBLE, liq_10pct_24h_before_usd DOUBLE,
    max_cascade_depth INTEGER, drawdown_error DOUBLE, consistent BOOLEAN,
    sigma_day DOUBLE, adv_usd DOUBLE, oi_source VARCHAR, flow_source VARCHAR, note VARCHAR
);

CREATE TABLE IF NOT EXISTS market_paths (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL, observed DOUBLE, fundamental DOUBLE, replayed DOUBLE,
    observed_flow_usd DOUBLE, replayed_flow_usd DOUBLE, defi_flow_usd DOUBLE,
    other_venue_flow_usd DOUBLE
);

-- Hourly Greeks of the fitted book over each window's 7-day lead-in and the crash:
-- L(x) = USD liquidated by an instantaneous move of -x (without / with impact feedback),
-- delta = dL/dx at 10 %, and the critical shock x* (docs/market-replay.md#book-greeks).
CREATE TABLE IF NOT EXISTS book_greeks (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, asset VARCHAR NOT NULL,
    ts TIMESTAMPTZ NOT NULL, price DOUBLE, liq_5pct_usd DOUBLE, liq_10pct_usd DOUBLE,
    liq_20pct_usd DOUBLE, liq_10pct_feedback_usd DOUBLE, delta_10pct DOUBLE,
    critical_shock DOUBLE
);

-- Impact check outside the event windows: OLS of observed log returns on the returns the
-- square-root law predicts from the interval's net liquidation flow (docs/market-replay.md).
CREATE TABLE IF NOT EXISTS impact_check (
    run_id VARCHAR NOT NULL, asset VARCHAR NOT NULL, interval VARCHAR NOT NULL, n INTEGER,
    slope DOUBLE, slope_lo DOUBLE, slope_hi DOUBLE, intercept DOUBLE, r2 DOUBLE, verdict VARCHAR
);
