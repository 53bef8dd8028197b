-- Keeper agents and the LIQ 1.2 flip-auction replay (docs/keepers.md): `cascade keepers`.
--   keeper_runs: one row per run (run_id = hash of the event, inputs' fingerprints, keeper,
--     book and flipper parameters, variants and seeds), with the config and the published
--     reference figures it is compared with.
--   keeper_replays: one row per run, variant and seed: the replay's figures.
CREATE TABLE IF NOT EXISTS keeper_runs (
    run_id VARCHAR PRIMARY KEY, event_id VARCHAR NOT NULL, config JSON NOT NULL,
    ref_zero_bid_share DOUBLE, ref_deficit_dai DOUBLE, ref_zero_bid_collateral_usd DOUBLE,
    seconds DOUBLE,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS keeper_replays (
    run_id VARCHAR NOT NULL, event_id VARCHAR NOT NULL, variant VARCHAR NOT NULL,
    seed INTEGER NOT NULL, vaults_bitten INTEGER, auctions INTEGER, settled INTEGER,
    zero_bid_auctions INTEGER, zero_bid_share DOUBLE, debt_liquidated_dai DOUBLE,
    dai_raised DOUBLE, deficit_dai DOUBLE, gross_shortfall_dai DOUBLE,
    zero_bid_collateral_usd DOUBLE, gas_spent_dai DOUBLE, txs INTEGER, reverted_txs INTEGER,
    median_delay_seconds DOUBLE, p90_delay_seconds DOUBLE
);
