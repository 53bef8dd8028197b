"""Source adapters: one module per family of file formats.

Importing this package registers every adapter with
:func:`pipelines.ingest.adapters.base.register_adapter`; each module is imported explicitly
(a new adapter module must be added here).
"""

from pipelines.ingest.adapters import (  # noqa: F401 - imported to register the adapters
    aave,
    binance_csv,
    coinglass,
    compound,
    cryptodatadownload,
    daily_series,
    freqtrade,
    hyperliquid,
    lido,
    maker,
    ohlcv_common,
    parquet_ohlcv,
    reference,
    stablesims,
    theglory,
)
