-- Maker ETH-B replay validation (`cascade validate`, pipelines.backtests.validate_maker).
-- validation_results: one row per LIQ 2.0 liquidation day; fold = the day's fold (A = 1st, 3rd, …
-- day in date order, B = 2nd, 4th, …); attention_hours, owner_margin = the owners' rule applied
-- (fitted on the other fold when held_out); keeper_delay_seconds, tolerance = the keepers' rule
-- applied (fitted likewise); bark_error_minutes = median |simulated − real| first-bark time of
-- matched vaults.
CREATE TABLE IF NOT EXISTS validation_results (
    day VARCHAR PRIMARY KEY, fold VARCHAR, attention_hours DOUBLE, owner_margin DOUBLE,
    keeper_delay_seconds DOUBLE, tolerance DOUBLE, held_out BOOLEAN, poke_minute DOUBLE, n_vaults BIGINT, tp BIGINT, fp BIGINT, fn BIGINT,
    precision DOUBLE, recall DOUBLE,
    simulated_dai DOUBLE, real_dai DOUBLE, matched_dai_within_2pct BIGINT,
    bark_error_minutes DOUBLE, created_at TIMESTAMPTZ NOT NULL
);

-- One row per vault predicted and/or really liquidated on a day, with the replay's reason; kind =
-- the class of a false or missed vault (FALSE_KINDS / MISSED_KINDS in validate_maker; NULL for a
-- matched one).
CREATE TABLE IF NOT EXISTS maker_validation (
    day VARCHAR NOT NULL, vault VARCHAR NOT NULL, predicted BOOLEAN NOT NULL, real BOOLEAN NOT NULL,
    sim_ts TIMESTAMPTZ, real_ts TIMESTAMPTZ, sim_dai DOUBLE, real_dai DOUBLE, health DOUBLE,
    reason VARCHAR, kind VARCHAR,
    PRIMARY KEY (day, vault)
);
