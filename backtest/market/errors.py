"""Named errors of the market-wide replay library; each message says what to fix."""

from __future__ import annotations

from backtest.errors import BacktestError


class MarketInputError(BacktestError, ValueError):
    """A market series (open interest, prices, liquidations) is malformed.

    Parameters
    ----------
    series : str
        Which input (``"open interest"``, ``"prices"``, ...); the pipeline passes the table name.
    asset : str
        Asset of the series.
    index : int or None
        0-based position of the first offending step, when one step is at fault.
    ts : object, optional
        Timestamp of that step, when known.
    message : str
        What is wrong and how to fix it.
    """

    def __init__(
        self, series: str, asset: str, message: str, *, index: int | None = None, ts: object = None
    ) -> None:
        self.series = series
        self.asset = asset
        self.index = index
        self.ts = ts
        where = f"{series}, asset {asset}"
        if ts is not None:
            where += f", at {ts}"
        elif index is not None:
            where += f", step {index}"
        super().__init__(f"{where}: {message}")


class MarketConfigError(BacktestError, ValueError):
    """A cohort-model or replay parameter is impossible."""
