-- Backtest results. run_id = hash of the run's full config (book, path, impact and policy
-- parameters); scenario_id = hash of the book, path and impact parts only, so runs that differ
-- only by policy share it; default_params = the policy ran with its defaults (no user
-- overrides). Metric definitions: backtest.metrics.Metrics.

CREATE TABLE IF NOT EXISTS backtest_runs (
    run_id VARCHAR PRIMARY KEY, scenario_id VARCHAR NOT NULL, event_id VARCHAR,
    policy VARCHAR NOT NULL, forecast_model VARCHAR NOT NULL,
    threshold_source VARCHAR NOT NULL DEFAULT '-', book VARCHAR NOT NULL,
    impact VARCHAR NOT NULL, asset VARCHAR, n_positions BIGINT, n_steps INTEGER,
    step_seconds DOUBLE, start_ts TIMESTAMPTZ, end_ts TIMESTAMPTZ,
    default_params BOOLEAN NOT NULL, config JSON NOT NULL,
    sim_seconds DOUBLE, created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS backtest_metrics (
    run_id VARCHAR PRIMARY KEY,
    n_liquidations BIGINT, n_positions_liquidated BIGINT, liquidated_usd DOUBLE,
    seized_usd DOUBLE, sold_usd DOUBLE, induced_usd DOUBLE, n_induced BIGINT,
    amplification DOUBLE, max_cascade_depth INTEGER, cascade_episodes INTEGER,
    peak_price_deviation DOUBLE, bad_debt_usd DOUBLE, borrower_loss_usd DOUBLE,
    liquidator_profit_usd DOUBLE, protocol_revenue_usd DOUBLE, time_to_clear_steps BIGINT,
    cleared BOOLEAN, in_flight_collateral DOUBLE, in_flight_debt_usd DOUBLE, final_price DOUBLE,
    cf_n_liquidations BIGINT, cf_liquidated_usd DOUBLE, cf_bad_debt_usd DOUBLE,
    cf_sold_usd DOUBLE, cf_final_price DOUBLE,
    repeat_liquidation_rounds INTEGER, unhealthy_open_debt_usd DOUBLE,
    in_flight_shortfall_usd DOUBLE, underwater_debt_usd DOUBLE, underwater_shortfall_usd DOUBLE,
    total_loss_usd DOUBLE
);

-- One row per step; cf_* = the zero-impact counterfactual of the same step.
CREATE TABLE IF NOT EXISTS backtest_steps (
    run_id VARCHAR NOT NULL, step INTEGER NOT NULL, ts TIMESTAMPTZ, p_exo DOUBLE,
    p_open DOUBLE, p_mkt DOUBLE, impact DOUBLE, rounds INTEGER, cascade_depth INTEGER,
    repeat_rounds INTEGER, n_liquidations BIGINT, liquidated_usd DOUBLE, seized_usd DOUBLE, sold_usd DOUBLE,
    repaid_usd DOUBLE, bad_debt_usd DOUBLE, borrower_loss_usd DOUBLE,
    liquidator_profit_usd DOUBLE, protocol_revenue_usd DOUBLE,
    cf_n_liquidations BIGINT, cf_liquidated_usd DOUBLE,
    PRIMARY KEY (run_id, step)
);

-- The current answer per question: one run per (event, book, policy, forecast model, threshold
-- source, impact). A sweep (or a single run) with the pipeline's default parameters marks its runs
-- current; older and ad-hoc runs stay in the raw tables and in `backtest_results`.
CREATE TABLE IF NOT EXISTS backtest_current (
    event_id VARCHAR NOT NULL, book VARCHAR NOT NULL, policy VARCHAR NOT NULL,
    forecast_model VARCHAR NOT NULL, threshold_source VARCHAR NOT NULL, impact VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL, marked_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (event_id, book, policy, forecast_model, threshold_source, impact)
);

-- Every stored run with its metrics (history included).
CREATE OR REPLACE VIEW backtest_results AS
SELECT r.event_id, r.policy, coalesce(r.forecast_model, '-') AS forecast_model,
       r.threshold_source, r.book, r.impact, r.asset, m.* EXCLUDE (run_id), r.default_params,
       r.scenario_id, r.run_id, r.created_at
FROM backtest_runs r JOIN backtest_metrics m USING (run_id);

-- The baseline of each book: its protocol's real mechanism (Maker ETH-B → the LIQ 2.0 auction;
-- every other book → Aave-style `instant`, close factor 0.5, full close below HF 0.95).
CREATE OR REPLACE MACRO baseline_policy(book) AS
    CASE WHEN book = 'maker-ethb' THEN 'dutch_auction' ELSE 'instant' END;

-- Exactly one current run per (event, book, policy, forecast model, impact): the policies with
-- their own mechanism or the model's forecast (threshold controls are in `forecast_value`).
CREATE OR REPLACE VIEW policy_scoreboard AS
SELECT s.* EXCLUDE (created_at, threshold_source), baseline_policy(s.book) AS baseline_policy
FROM backtest_results s JOIN backtest_current c USING (run_id)
WHERE s.threshold_source IN ('-', 'model');

-- Each current run against the current default-parameter baseline of the same scenario (event,
-- book, path and impact model with its parameters): the book's real mechanism. Positive
-- avoided_* = better than the baseline.
CREATE OR REPLACE VIEW avoided_cascades AS
SELECT s.event_id, s.policy, s.forecast_model, s.book, s.impact, s.asset, s.baseline_policy,
       b.induced_usd - s.induced_usd AS avoided_induced_usd,
       b.cascade_episodes - s.cascade_episodes AS avoided_episodes,
       b.bad_debt_usd - s.bad_debt_usd AS avoided_bad_debt_usd,
       b.total_loss_usd - s.total_loss_usd AS avoided_total_loss_usd,
       b.peak_price_deviation - s.peak_price_deviation AS avoided_peak_deviation,
       b.borrower_loss_usd - s.borrower_loss_usd AS avoided_borrower_loss_usd,
       b.liquidated_usd - s.liquidated_usd AS avoided_liquidated_usd,
       s.scenario_id, s.run_id, b.run_id AS baseline_run_id
FROM policy_scoreboard s
JOIN policy_scoreboard b
  ON b.policy = s.baseline_policy AND b.default_params AND b.scenario_id = s.scenario_id;

-- The value of a forecast: each current forecast-driven run against its threshold controls (same
-- book, path, impact and policy; only the threshold path differs). Loss-type metrics (lower is
-- better). captured_share = (best_control − model) / (best_control − oracle), NULL when the
-- oracle does not beat the best control.
CREATE OR REPLACE VIEW forecast_value AS
WITH runs AS (
    SELECT s.* FROM backtest_results s JOIN backtest_current c USING (run_id)
    WHERE s.threshold_source <> '-'
), long AS (
    UNPIVOT (SELECT event_id, book, policy, forecast_model, impact, threshold_source,
                    total_loss_usd, bad_debt_usd, borrower_loss_usd, liquidated_usd,
                    induced_usd, peak_price_deviation
             FROM runs)
    ON total_loss_usd, bad_debt_usd, borrower_loss_usd, liquidated_usd, induced_usd,
       peak_price_deviation
    INTO NAME metric VALUE value
), wide AS (
    SELECT event_id, book, policy, forecast_model, impact, metric,
           max(value) FILTER (threshold_source = 'model') AS model,
           max(value) FILTER (threshold_source = 'constant') AS constant,
           max(value) FILTER (threshold_source = 'lagged') AS lagged,
           max(value) FILTER (threshold_source = 'shuffled') AS shuffled,
           max(value) FILTER (threshold_source = 'oracle') AS oracle
    FROM long GROUP BY ALL
)
SELECT *,
       least(constant, lagged, shuffled) AS best_control,
       CASE WHEN least(constant, lagged, shuffled) - oracle > 1e-9
            THEN (least(constant, lagged, shuffled) - model)
                 / (least(constant, lagged, shuffled) - oracle) END AS captured_share,
       model < least(constant, lagged, shuffled) - 1e-9 AS beats_controls
FROM wide;

-- Intervals over stress paths (FHS around each event; pipelines.backtests.stress): one row per
-- run × metric × (n_paths, seed). `real` is the run's metric on the real path.
CREATE TABLE IF NOT EXISTS backtest_intervals (
    run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, n_paths INTEGER NOT NULL,
    seed BIGINT NOT NULL, paths_digest VARCHAR NOT NULL, real DOUBLE, median DOUBLE,
    lo DOUBLE, hi DOUBLE, p95 DOUBLE,
    PRIMARY KEY (run_id, metric, n_paths, seed)
);

-- The scoreboard's intervals, ranked per (event, book, impact, metric) by median (lower is
-- better); `overlaps_best` = this policy's 90 % interval overlaps the best policy's, so the two
-- cannot be told apart on the stress paths.
CREATE OR REPLACE VIEW policy_intervals AS
WITH latest AS (
    SELECT i.* FROM backtest_intervals i
    QUALIFY row_number() OVER (PARTITION BY run_id, metric ORDER BY n_paths DESC, seed) = 1
), joined AS (
    SELECT s.event_id, s.book, s.impact, s.policy, s.baseline_policy, i.metric, i.real,
           i.median, i.lo, i.hi, i.p95, i.n_paths, i.seed, s.run_id
    FROM policy_scoreboard s JOIN latest i USING (run_id)
)
SELECT j.*,
       rank() OVER (PARTITION BY event_id, book, impact, metric ORDER BY median) AS rank,
       j.lo <= b.hi AND b.lo <= j.hi AS overlaps_best
FROM joined j
JOIN (SELECT event_id, book, impact, metric, arg_min(lo, median) AS lo, arg_min(hi, median) AS hi
      FROM joined GROUP BY ALL) b USING (event_id, book, impact, metric);
