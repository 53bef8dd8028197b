-- Policy-parameter search (docs/optimize.md): derived results of `cascade optimize`.
-- One search (search_id = hash of events, families, trials, seed and the scenarios) writes:
--   policy_frontier: every evaluated parameter set per event and family. trial >= 0: an NSGA-II
--     trial of the search on that event; trial = -1: a reference point (the family's default
--     parameters, policy 'dutch_auction@gauntlet'); trial = -2: a leave-one-event-out
--     candidate evaluated on an event; held_out = TRUE: the parameters chosen on the other
--     events, evaluated on this (held-out) event.
--   policy_robust: one row per family and held-out event: the choice, its in-sample mean and its
--     held-out result, beside the family's default parameters on the same events.
CREATE TABLE IF NOT EXISTS policy_frontier (
    search_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, policy VARCHAR NOT NULL,
    params JSON NOT NULL, capital_recovery DOUBLE, peak_price_deviation DOUBLE,
    borrower_loss_usd DOUBLE, bad_debt_usd DOUBLE, total_loss_usd DOUBLE, liquidated_usd DOUBLE,
    on_front BOOLEAN NOT NULL, held_out BOOLEAN NOT NULL, seed INTEGER NOT NULL,
    trial INTEGER NOT NULL, created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS policy_robust (
    search_id VARCHAR NOT NULL, policy VARCHAR NOT NULL, held_out_event VARCHAR NOT NULL,
    params JSON NOT NULL, rule VARCHAR NOT NULL, within_budget BOOLEAN NOT NULL,
    in_capital_recovery DOUBLE, in_total_loss_usd DOUBLE, in_borrower_loss_usd DOUBLE,
    in_peak_price_deviation DOUBLE,
    out_capital_recovery DOUBLE, out_total_loss_usd DOUBLE, out_borrower_loss_usd DOUBLE,
    out_peak_price_deviation DOUBLE,
    default_in_total_loss_usd DOUBLE, default_out_capital_recovery DOUBLE,
    default_out_total_loss_usd DOUBLE, default_out_borrower_loss_usd DOUBLE,
    default_out_peak_price_deviation DOUBLE
);

CREATE TABLE IF NOT EXISTS optimize_searches (
    search_id VARCHAR PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL, config JSON NOT NULL,
    study_storage VARCHAR, seconds DOUBLE
);
