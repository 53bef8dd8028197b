-- cascade-lab warehouse schema. Version is the number in schema_version; bump SCHEMA_VERSION in
-- pipelines/warehouse/connection.py together with any change here. Every raw_* table carries `source` (the
-- registry name of the file it came from); the public views pick one row per key by source priority.

CREATE TABLE IF NOT EXISTS sources (
    source VARCHAR PRIMARY KEY, file VARCHAR, origin_repo VARCHAR, commit_sha VARCHAR, url VARCHAR,
    sha256 VARCHAR NOT NULL, adapter VARCHAR NOT NULL, priority INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ingest_log (
    source VARCHAR PRIMARY KEY, file VARCHAR NOT NULL, sha256 VARCHAR NOT NULL, rows BIGINT NOT NULL,
    loaded_at TIMESTAMPTZ NOT NULL, rules_applied JSON NOT NULL, rows_by_table JSON NOT NULL,
    adapter_version VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_prices (
    asset VARCHAR NOT NULL, market VARCHAR NOT NULL, venue VARCHAR NOT NULL, bar_seconds INTEGER NOT NULL,
    ts TIMESTAMPTZ NOT NULL, open DOUBLE NOT NULL, high DOUBLE NOT NULL, low DOUBLE NOT NULL,
    close DOUBLE NOT NULL, volume DOUBLE, source VARCHAR NOT NULL
);
-- No index on raw_prices: each adapter already guarantees one bar per (series, ts) within its
-- source (validate_ohlcv), an ART index would triple the load time, and the `prices` view
-- resolves overlaps between sources. tests/test_ingest_flow.py checks both properties.

CREATE TABLE IF NOT EXISTS raw_funding (
    asset VARCHAR NOT NULL, venue VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    interval_seconds INTEGER NOT NULL, rate DOUBLE NOT NULL, source VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_open_interest (
    asset VARCHAR NOT NULL, venue_set VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    interval_seconds INTEGER NOT NULL, oi_usd DOUBLE, oi_stable_usd DOUBLE, oi_coinm_usd DOUBLE,
    source VARCHAR NOT NULL
);

-- pct is signed: -1 = bids within 1 % below mid, +1 = asks within 1 % above.
CREATE TABLE IF NOT EXISTS raw_orderbook_depth (
    asset VARCHAR NOT NULL, market VARCHAR NOT NULL, venue VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    pct DOUBLE NOT NULL, depth_qty DOUBLE, notional_usd DOUBLE, source VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_trades (
    asset VARCHAR NOT NULL, venue VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, price DOUBLE NOT NULL,
    amount DOUBLE NOT NULL, side VARCHAR, trade_id VARCHAR, source VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_defi_liquidations (
    protocol VARCHAR NOT NULL, chain VARCHAR, ts TIMESTAMPTZ NOT NULL, collateral_asset VARCHAR,
    debt_asset VARCHAR, collateral_amount DOUBLE, collateral_usd DOUBLE, debt_repaid_usd DOUBLE,
    borrower VARCHAR, liquidator VARCHAR, position_ref VARCHAR, tx_hash VARCHAR, source VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_cex_liquidations (
    asset VARCHAR NOT NULL, venue_set VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    interval_seconds INTEGER NOT NULL, long_usd DOUBLE, short_usd DOUBLE, total_usd DOUBLE,
    events BIGINT, adl_usd DOUBLE, source VARCHAR NOT NULL
);

-- event_type: create | deposit | withdraw | mint | repay | liquidation
CREATE TABLE IF NOT EXISTS raw_vault_events (
    protocol VARCHAR NOT NULL, ilk VARCHAR NOT NULL, vault_id VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL,
    block BIGINT, event_type VARCHAR NOT NULL, collateral_delta DOUBLE, debt_delta DOUBLE,
    urn VARCHAR, source VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_positions_snapshot (
    protocol VARCHAR NOT NULL, snapshot_ts TIMESTAMPTZ NOT NULL, position_id VARCHAR NOT NULL,
    collateral_asset VARCHAR NOT NULL, collateral DOUBLE NOT NULL, debt_asset VARCHAR, debt DOUBLE NOT NULL,
    liquidation_threshold DOUBLE NOT NULL, ltv DOUBLE, health_factor DOUBLE, bucket VARCHAR,
    source VARCHAR NOT NULL
);

-- Long format: one row per (protocol, market, network, parameter, effective_ts). Fractions, not percent.
CREATE TABLE IF NOT EXISTS raw_risk_params (
    protocol VARCHAR NOT NULL, market VARCHAR NOT NULL, network VARCHAR, parameter VARCHAR NOT NULL,
    value DOUBLE, value_text VARCHAR, effective_ts TIMESTAMPTZ, source VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_gas_prices (
    ts TIMESTAMPTZ NOT NULL, percentile VARCHAR NOT NULL, gwei DOUBLE, source VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_dex_reserves (
    pool VARCHAR NOT NULL, ts TIMESTAMPTZ NOT NULL, reserve_base DOUBLE, reserve_quote DOUBLE,
    base_asset VARCHAR, quote_asset VARCHAR, source VARCHAR NOT NULL
);

-- Files with no natural table (analysis summaries, daily aggregates): one JSON record per row.
CREATE TABLE IF NOT EXISTS raw_source_documents (
    source VARCHAR NOT NULL, record_no BIGINT NOT NULL, kind VARCHAR, payload JSON NOT NULL
);

CREATE TABLE IF NOT EXISTS raw_reference_figures (
    event VARCHAR, protocol_or_venue VARCHAR, metric VARCHAR, value DOUBLE, unit VARCHAR,
    source_ref VARCHAR, url VARCHAR, note VARCHAR, event_id VARCHAR, source VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    event_id VARCHAR PRIMARY KEY, window_label VARCHAR, name VARCHAR NOT NULL,
    start_ts TIMESTAMPTZ NOT NULL, end_ts TIMESTAMPTZ NOT NULL, description VARCHAR
);

-- Public views ------------------------------------------------------------------------------------

CREATE OR REPLACE VIEW prices AS
SELECT p.asset, p.market, p.venue, p.bar_seconds, p.ts, p.open, p.high, p.low, p.close, p.volume, p.source
FROM raw_prices p LEFT JOIN sources s ON s.source = p.source
QUALIFY row_number() OVER (PARTITION BY p.asset, p.market, p.venue, p.bar_seconds, p.ts
                           ORDER BY coalesce(s.priority, 0), p.source) = 1;

CREATE OR REPLACE VIEW funding AS SELECT * FROM raw_funding;
CREATE OR REPLACE VIEW open_interest AS SELECT * FROM raw_open_interest;
CREATE OR REPLACE VIEW orderbook_depth AS SELECT * FROM raw_orderbook_depth;
CREATE OR REPLACE VIEW trades AS SELECT * FROM raw_trades;
CREATE OR REPLACE VIEW defi_liquidations AS SELECT * FROM raw_defi_liquidations;
CREATE OR REPLACE VIEW cex_liquidations AS SELECT * FROM raw_cex_liquidations;
CREATE OR REPLACE VIEW vault_events AS SELECT * FROM raw_vault_events;
CREATE OR REPLACE VIEW positions_snapshot AS SELECT * FROM raw_positions_snapshot;
CREATE OR REPLACE VIEW risk_params AS SELECT * FROM raw_risk_params;
CREATE OR REPLACE VIEW gas_prices AS SELECT * FROM raw_gas_prices;
CREATE OR REPLACE VIEW dex_reserves AS SELECT * FROM raw_dex_reserves;
CREATE OR REPLACE VIEW source_documents AS SELECT * FROM raw_source_documents;
CREATE OR REPLACE VIEW reference_figures AS SELECT * EXCLUDE (source) FROM raw_reference_figures;
