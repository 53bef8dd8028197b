"""Loan books for the backtester: Maker ETH-B, the Aave (w)stETH snapshot, synthetic, files.

Maker ETH-B is rebuilt from the warehouse at any time, the Aave snapshot is rescaled to an event,
synthetic books are seeded and calibrated to the snapshot, and a user's own file is validated.

Book names (``--book``)
-----------------------
``maker-ethb``
    Maker ETH-B vaults rebuilt from ``vault_events`` at any time ``T`` between 2020-10-19 and
    2023-01-13 (the span of the vault history) by the machinery of ``cascade validate``
    (:func:`pipelines.backtests.maker_inputs.maker_state`): every event strictly before ``T``
    (to the second, so a window starting mid-day gets that day's deposits and repayments up to
    its start), the chain's rules (a full bark or a withdrawal of all collateral leaves no
    debt; a repayment never leaves debt under ``dust``), debt accrued by the rate accumulator
    (``JUG.ilks.duty``: the DAI debt at ``T``, stability fee included), and the 30-day warm-up
    that raises the collateral of a vault the chain did not bark where the rebuilt book was
    unsafe. Kept: vaults with debt above a 1-DAI numerical dust and with collateral. Maker's
    ``VAT.ilks.dust`` is *not* a filter: vaults under it (grandfathered) are still liquidated.
    Threshold ``1 / SPOTTER.ilks.mat`` and penalty ``chop`` (``DOG.ilks.chop``, before LIQ 2.0
    ``CAT.ilks.chop``) in force at ``T``, from ``risk_params``.
``aave-steth``
    The Lido Aave (w)stETH loan book of 2023-06-19 (``positions_snapshot`` buckets
    ``steth_aave`` = Aave v2 and ``steth_aave_v3``), indebted positions with health factor > 1.
    Debt is in ETH; collateral is converted to ETH-equivalent units with the snapshot's own
    health factor (``c_eq = HF · d / LT``, which folds in the 2023 wstETH/ETH rate of ≈ 1.13), so
    the book is an ETH-numeraire *shape* with price 1. It is moved to an event with
    :func:`backtest.rescale_book`: every health factor is kept, the debt is scaled to the
    requested size (default: the snapshot's debt valued at the ETH price of the snapshot day).
``synthetic``
    :func:`backtest.synthetic_book` calibrated to the Aave snapshot: health factors ``1 + X``
    with ``ln X`` normal (median and inter-quartile range of ``ln(HF − 1)`` on the snapshot),
    debt sizes Pareto with the Hill tail index of the top 2 % of debts; default 2,000 positions
    and $250M of debt (the order of ETH-B's debt ceiling in 2021-22), seeded (default seed 0),
    threshold 0.83 and bonus 5 % (Aave v3 WETH).
a file path
    CSV or Parquet with ``position_id, collateral_asset, collateral, debt,
    liquidation_threshold`` and optionally ``bonus`` (default 0.05). One collateral asset per
    file; fractions, not percents. A bad value raises
    :class:`~pipelines.errors.DataValidationError` naming the file, the column and the row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl

import backtest
from backtest import (
    Book,
    BookValidationError,
    LognormalExcessHF,
    ShapeFitError,
    SyntheticShape,
    book_fingerprint,
    rescale_book,
    synthetic_book,
)
from pipelines.backtests.maker_inputs import WARMUP_DAYS, maker_state
from pipelines.errors import CascadeError, DataValidationError, UnknownNameError
from pipelines.user_files import UserTable, parse_numbers, read_table

__all__ = [
    "BOOK_NAMES",
    "DEFAULT_FILE_BONUS",
    "LoadedBook",
    "MakerParams",
    "SyntheticShape",
    "aave_steth_book",
    "book_fingerprint",
    "fit_shape",
    "maker_book",
    "maker_params",
    "read_book_file",
    "resolve_book_name",
    "synthetic_shape",
    "synthetic_event_book",
]

#: Named books; anything else given to ``--book`` is read as a file path.
BOOK_NAMES = ("maker-ethb", "aave-steth", "synthetic")
#: Bonus of a user's book file without a ``bonus`` column (Aave v3 WETH).
DEFAULT_FILE_BONUS = 0.05
#: Numerical dust: vaults with less debt than this (DAI) are treated as closed.
MAKER_MIN_DEBT = 1.0
#: Collateral (ETH) below which an indebted vault is a data remnant (dropped, counted).
MAKER_MIN_COLLATERAL = 1e-6
#: Constructor defaults that a spell overrides in the same block (see :func:`maker_params`).
_CONSTRUCTOR_DEFAULTS = {
    "CLIPPER.buf": 1.0,
    "FLIPPER.ttl": 10_800.0,
    "FLIPPER.tau": 172_800.0,
    "FLIPPER.beg": 0.05,
}
_FILE_COLUMNS = ("position_id", "collateral_asset", "collateral", "debt", "liquidation_threshold")


@dataclass(frozen=True, kw_only=True, eq=False)
class LoadedBook:
    """A book plus what identifies it in run configs.

    Attributes
    ----------
    name : str
        Label stored in ``backtest_runs.book`` (``maker-ethb``, ``synthetic``, a file name…).
    asset : str
        Collateral asset (``ETH``…).
    book : backtest.Book
        The positions.
    spec : Mapping
        JSON-ready description (source, parameters, fingerprint) hashed into the run id.
    notes : tuple of str
        Rows dropped or assumptions made while building it.
    """

    name: str
    asset: str
    book: Book
    spec: Mapping[str, Any]
    notes: tuple[str, ...] = field(default=())


def _spec(kind: str, book: Book, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "n": len(book),
        "total_debt": book.total_debt,
        "sha256": book_fingerprint(book),
        **extra,
    }


# --- Maker ETH-B ---------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class MakerParams:
    """Maker ETH-B parameters in force at one time (``risk_params``, protocol ``maker``).

    ``cut`` and ``step_seconds`` (the ``abaci`` StairstepExponentialDecrease curve) are not in the
    parameter history; they are ETH-B's documented 0.99 every 60 s (REFERENCES.md).
    """

    at: datetime
    mat: float
    chop: float
    dust: float
    buf: float | None = None
    tail_seconds: float | None = None
    cusp: float | None = None
    chip: float | None = None
    tip_usd: float | None = None
    hole_usd: float | None = None
    cut: float = 0.99
    step_seconds: float = 60.0

    @property
    def liquidation_threshold(self) -> float:
        """``1 / mat``."""
        return 1.0 / self.mat

    @property
    def liq2(self) -> bool:
        """True once Liquidations 2.0 (``clip``/``dog``) was live for ETH-B (2021-05-06)."""
        return self.buf is not None

    def auction_kwargs(self) -> dict[str, Any]:
        """:class:`backtest.DutchAuction` keyword arguments for the parameters in force.

        Before LIQ 2.0 (no ``CLIPPER.*`` yet) only ``chop`` and ``dust`` are set; the rest
        keeps the library's ETH-B 2021 defaults.
        """
        out: dict[str, Any] = {"chop": self.chop, "dust_usd": self.dust}
        if self.liq2:
            out.update(cut=self.cut, step_seconds=self.step_seconds)
            for key in ("buf", "tail_seconds", "cusp", "chip", "tip_usd", "hole_usd"):
                value = getattr(self, key)
                if value is not None:
                    out[key] = value
        return out


_MAKER_PARAM_NAMES = {
    "SPOTTER.ilks.mat": "mat",
    "VAT.ilks.dust": "dust",
    "CLIPPER.buf": "buf",
    "CLIPPER.tail": "tail_seconds",
    "CLIPPER.cusp": "cusp",
    "CLIPPER.chip": "chip",
    "CLIPPER.tip": "tip_usd",
    "DOG.ilks.hole": "hole_usd",
}


def _latest_values(rows: list[tuple[str, datetime, float]]) -> dict[str, float]:
    """Latest value per parameter; same-block ties drop the contract's constructor default."""
    by_param: dict[str, tuple[datetime, list[float]]] = {}
    for param, ts, value in rows:
        current = by_param.get(param)
        if current is None or ts > current[0]:
            by_param[param] = (ts, [value])
        elif ts == current[0]:
            current[1].append(value)
    out: dict[str, float] = {}
    for param, (_ts, values) in by_param.items():
        default = _CONSTRUCTOR_DEFAULTS.get(param)
        kept = [v for v in values if v != default] or values
        out[param] = max(kept)
    return out


def maker_params(con: duckdb.DuckDBPyConnection, at: datetime) -> MakerParams:
    """ETH-B parameters in force at ``at`` (latest ``effective_ts <= at``).

    Several changes of one parameter in the same block (a spell deploying a contract, then
    setting it) are resolved by dropping the contract's constructor default (``Clipper.buf``
    = 1.0, ``Flipper.ttl`` = 3 h, ``tau`` = 2 days, ``beg`` = 5 %): on 2021-05-06 ``buf`` is
    1.30, not 1.0.

    Raises
    ------
    CascadeError
        When ``at`` is before ETH-B's first parameters (2020-10-19).
    """
    rows = con.execute(
        "SELECT parameter, effective_ts, value FROM risk_params "
        "WHERE protocol = 'maker' AND market = 'ETH-B' AND effective_ts <= ? "
        "ORDER BY parameter, effective_ts, value",
        [at],
    ).fetchall()
    latest = _latest_values(rows)
    if "SPOTTER.ilks.mat" not in latest:
        raise CascadeError(
            f"no Maker ETH-B parameters in force at {at:%Y-%m-%d %H:%M}: ETH-B starts on "
            "2020-10-19 (run `cascade ingest` if the warehouse is empty, or use --book synthetic)"
        )
    chop = latest.get("DOG.ilks.chop", latest.get("CAT.ilks.chop", 0.13))
    kwargs = {attr: latest[p] for p, attr in _MAKER_PARAM_NAMES.items() if p in latest}
    return MakerParams(at=at, chop=chop, **kwargs)


def maker_book(
    con: duckdb.DuckDBPyConnection, at: datetime, *, price: float | None = None
) -> LoadedBook:
    """Rebuild the Maker ETH-B book as it stood at ``at`` (events strictly before ``at``).

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    at : datetime
        Time of the book (UTC).
    price : float, optional
        ETH price at ``at`` (stored as the book's snapshot price).

    Returns
    -------
    LoadedBook
        Position ids are vault numbers (strings), in numeric order.

    Raises
    ------
    CascadeError
        When ``at`` is outside the vault history (2020-10-19 .. 2023-01-13).
    """
    span = con.execute(
        "SELECT min(ts), max(ts) FROM vault_events WHERE protocol = 'maker' AND ilk = 'ETH-B'"
    ).fetchall()[0]
    if span[0] is None:
        raise CascadeError("vault_events holds no Maker ETH-B history; run `cascade ingest`")
    first, last = span
    if not (first < at <= last):
        raise CascadeError(
            f"the Maker ETH-B vault history covers {first:%Y-%m-%d}..{last:%Y-%m-%d}; "
            f"{at:%Y-%m-%d %H:%M} is outside it. Use --book synthetic or --book aave-steth"
        )
    params = maker_params(con, at)
    # the replay's own book (cascade validate): fee-accrued debt, the chain's rules, events to
    # the second before ``at``, warm-up corrections
    state, rates, corrections = maker_state(con, at, mat=params.mat)
    debt = state.debt(rates, int(at.timestamp()))
    coll = state.collateral
    order = np.argsort([int(v) if v.isdigit() else -1 for v in state.vault.tolist()], kind="stable")
    vault, debt, coll, ink = state.vault[order], debt[order], coll[order], state.ink[order]
    indebted = debt > MAKER_MIN_DEBT
    no_coll = indebted & (ink <= MAKER_MIN_COLLATERAL)
    keep = indebted & ~no_coll
    n = int(keep.sum())
    lt = params.liquidation_threshold
    book = Book(
        position_id=vault[keep].astype(str),
        collateral=coll[keep],
        debt=debt[keep],
        liquidation_threshold=np.full(n, lt),
        bonus=np.full(n, params.chop),
        price=price,
    )
    notes = (
        f"{int(no_coll.sum())} indebted vaults without collateral dropped (gaps in the export)",
        f"debt accrued by JUG.ilks.duty to {at:%Y-%m-%d %H:%M:%S}; "
        f"{len(corrections)} vaults' collateral raised by the {WARMUP_DAYS}-day warm-up",
        f"threshold 1/mat = {lt:.6f}, chop = {params.chop}",
    )
    spec = _spec("maker-ethb", book, at=at, lt=lt, chop=params.chop)
    return LoadedBook(name="maker-ethb", asset="ETH", book=book, spec=spec, notes=notes)


# --- Aave (w)stETH snapshot ---------------------------------------------------------------------


def _aave_shape(con: duckdb.DuckDBPyConnection) -> tuple[Book, datetime, float, int]:
    """The snapshot as an ETH-numeraire book (price 1), its time, bonus and rows dropped."""
    frame = con.sql(
        "SELECT bucket, position_id, collateral, debt, liquidation_threshold, health_factor, "
        "snapshot_ts FROM positions_snapshot "
        "WHERE bucket IN ('steth_aave', 'steth_aave_v3') AND debt > 0 "
        "ORDER BY bucket, position_id"
    ).pl()
    if frame.height == 0:
        raise CascadeError(
            "positions_snapshot holds no Aave (w)stETH book (buckets steth_aave, "
            "steth_aave_v3); run `cascade ingest`"
        )
    hf = frame["health_factor"].cast(pl.Float64).to_numpy()
    ok = np.isfinite(hf) & (hf > 1.0)
    frame = frame.filter(pl.Series(ok))
    hf = hf[ok]
    debt = frame["debt"].to_numpy()
    lt = frame["liquidation_threshold"].to_numpy()
    version = np.where(frame["bucket"].to_numpy() == "steth_aave", "v2", "v3")
    ids = np.char.add(
        np.char.add(version.astype(str), ":"), frame["position_id"].to_numpy().astype(str)
    )
    bonus = _aave_bonus(con)
    book = Book(
        position_id=ids,
        collateral=hf * debt / lt,
        debt=debt,
        liquidation_threshold=lt,
        bonus=np.full(debt.size, bonus),
        price=1.0,
    )
    return book, frame["snapshot_ts"][0], bonus, int((~ok).sum())


def _aave_bonus(con: duckdb.DuckDBPyConnection) -> float:
    """Earliest Aave v3 Ethereum wstETH liquidation bonus in ``risk_params`` (else 0.05)."""
    rows = con.execute(
        "SELECT value FROM risk_params WHERE protocol = 'aave-v3' AND market = 'wstETH' "
        "AND network = 'ethereum' AND parameter = 'liquidation_bonus' "
        "ORDER BY effective_ts NULLS LAST, value LIMIT 1"
    ).fetchall()
    value = rows[0][0] if rows else None
    return float(value) if value is not None and 0 <= value < 1 else 0.05


def _eth_close_at(con: duckdb.DuckDBPyConnection, ts: datetime) -> float:
    rows = con.execute(
        "SELECT close FROM prices WHERE asset = 'ETH' AND market = 'spot' AND bar_seconds = 3600 "
        "AND ts <= ? ORDER BY ts DESC, venue LIMIT 1",
        [ts],
    ).fetchall()
    if not rows:
        raise CascadeError(f"no hourly ETH spot price before {ts}; run `cascade ingest`")
    return float(rows[0][0])


def aave_steth_book(
    con: duckdb.DuckDBPyConnection, *, price: float, total_debt_usd: float | None = None
) -> LoadedBook:
    """The Aave (w)stETH snapshot shape moved to ``price`` and a debt of ``total_debt_usd``.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    price : float
        ETH price (USD) at which the health factors should hold (the event's start).
    total_debt_usd : float, optional
        Debt of the rescaled book; default the snapshot's ETH debt × the ETH price at the
        snapshot (≈ $1.3B).

    Returns
    -------
    LoadedBook
    """
    shape, snap_ts, bonus, dropped = _aave_shape(con)
    if total_debt_usd is None:
        total_debt_usd = shape.total_debt * _eth_close_at(con, snap_ts)
    book = rescale_book(shape, price, total_debt_usd, from_price=1.0)
    notes = (
        f"{dropped} positions with health factor <= 1 (or undefined) dropped",
        f"bonus {bonus} (Aave v3 wstETH, risk_params)",
    )
    spec = _spec("aave-steth", book, snapshot=snap_ts, price=price)
    return LoadedBook(name="aave-steth", asset="ETH", book=book, spec=spec, notes=notes)


# --- synthetic ----------------------------------------------------------------------------------


def fit_shape(book: Book, price: float, *, tail_fraction: float = 0.02) -> SyntheticShape:
    """:func:`backtest.fit_shape` with the pipeline's error.

    Raises
    ------
    CascadeError
        Fewer than 10 positions to fit.
    """
    try:
        return backtest.fit_shape(book, price, tail_fraction=tail_fraction)
    except ShapeFitError as exc:
        raise CascadeError(str(exc)) from None


def synthetic_shape(con: duckdb.DuckDBPyConnection) -> SyntheticShape:
    """The shape fitted on the Aave (w)stETH snapshot, or the library defaults without it."""
    try:
        shape_book, _ts, _bonus, _dropped = _aave_shape(con)
    except CascadeError:
        d = LognormalExcessHF()
        return SyntheticShape(mu=d.mu, sigma=d.sigma, size_alpha=1.35, source="library defaults")
    fitted = fit_shape(shape_book, 1.0)
    return SyntheticShape(
        mu=fitted.mu,
        sigma=fitted.sigma,
        size_alpha=fitted.size_alpha,
        source="aave-steth snapshot 2023-06-19",
    )


def synthetic_event_book(
    shape: SyntheticShape,
    *,
    price: float,
    asset: str = "ETH",
    n: int = 2_000,
    total_debt_usd: float = 250e6,
    seed: int = 0,
    liquidation_threshold: float = 0.83,
    bonus: float = 0.05,
) -> LoadedBook:
    """A seeded synthetic book with the given shape, at ``price``.

    Parameters
    ----------
    shape : SyntheticShape
        Health-factor law and size tail (:func:`synthetic_shape`).
    price : float
        Collateral price at which the health factors hold.
    asset : str, optional
        Collateral asset label.
    n, total_debt_usd, seed : optional
        Number of positions (2,000), total debt ($250M) and RNG seed (0).
    liquidation_threshold, bonus : float, optional
        Shared threshold and bonus (Aave v3 WETH: 0.83, 5 %).

    Returns
    -------
    LoadedBook
    """
    book = synthetic_book(
        n,
        price=price,
        seed=seed,
        hf_distribution=LognormalExcessHF(mu=shape.mu, sigma=shape.sigma),
        size_alpha=shape.size_alpha,
        total_debt=total_debt_usd,
        liquidation_threshold=liquidation_threshold,
        bonus=bonus,
    )
    spec = _spec(
        "synthetic",
        book,
        seed=seed,
        price=price,
        mu=shape.mu,
        sigma=shape.sigma,
        size_alpha=shape.size_alpha,
    )
    notes = (
        f"shape from {shape.source}: mu={shape.mu:.3f} sigma={shape.sigma:.3f} "
        f"alpha={shape.size_alpha:.3f}",
    )
    return LoadedBook(name="synthetic", asset=asset.upper(), book=book, spec=spec, notes=notes)


# --- user file ----------------------------------------------------------------------------------


def _read_table(path: Path) -> UserTable:
    """The book file through the one reader of users' files (:func:`read_table`)."""
    return read_table(path, needs=f"columns {', '.join(_FILE_COLUMNS)}[, bonus]")


def _numeric(frame: pl.DataFrame, name: str, file: str) -> pl.DataFrame:
    """Column ``name`` parsed to Float64 by :func:`parse_numbers` (errors name the data row)."""
    return frame.with_columns(parse_numbers(frame.get_column(name), file, name))


def read_book_file(path: Path | str) -> LoadedBook:
    """Read and validate a user's book file (CSV or Parquet).

    Parameters
    ----------
    path : path
        File with ``position_id, collateral_asset, collateral, debt, liquidation_threshold``
        and optionally ``bonus`` (default :data:`DEFAULT_FILE_BONUS`).

    Returns
    -------
    LoadedBook
        Named after the file; the fingerprint hashes the numeric content.

    Raises
    ------
    DataValidationError
        Missing file or column, several collateral assets, a non-number, or a value rejected by
        :meth:`backtest.Book.from_frame` (e.g. a percent threshold); names file, column, row.
    """
    path = Path(path)
    table = _read_table(path)
    file, frame = table.file, table.frame
    ids = frame.get_column("position_id") if "position_id" in frame.columns else None
    if ids is not None and ids.dtype == pl.String:  # CSV text: integer ids stay integers
        as_int = ids.str.strip_chars().cast(pl.Int64, strict=False)
        if as_int.is_not_null().all():
            frame = frame.with_columns(as_int.alias("position_id"))
    missing = [c for c in _FILE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            file,
            missing[0],
            None,
            f"missing; a book file needs columns {list(_FILE_COLUMNS)} (+ optional 'bonus')",
        )
    if frame.height == 0:
        raise DataValidationError(file, None, None, "the book has no positions")
    assets = frame.get_column("collateral_asset").cast(pl.String)
    if assets.null_count():
        row = int(assets.is_null().arg_true()[0]) + 1
        raise DataValidationError(file, "collateral_asset", row, "is empty; name the asset")
    first = assets[0]
    other = assets != first
    if other.any():
        row = int(other.arg_true()[0]) + 1
        raise DataValidationError(
            file,
            "collateral_asset",
            row,
            f"{assets[row - 1]!r} differs from {first!r} (row 1); a book holds one collateral "
            "asset: split the file per asset",
        )
    if "bonus" not in frame.columns:
        frame = frame.with_columns(pl.lit(DEFAULT_FILE_BONUS).alias("bonus"))
    for name in ("collateral", "debt", "liquidation_threshold", "bonus"):
        frame = _numeric(frame, name, file)
    try:
        book = Book.from_frame(frame)
    except BookValidationError as exc:
        raise DataValidationError(file, exc.column, exc.row, exc.reason) from None
    spec = _spec("file", book, file=path.name)
    return LoadedBook(name=path.name, asset=str(first).upper(), book=book, spec=spec)


def resolve_book_name(name: str) -> str:
    """Return ``name`` if it is a known book name or an existing file, else raise.

    Raises
    ------
    UnknownNameError
        Neither a known book nor a file; the message lists the known names.
    """
    if name in BOOK_NAMES or Path(name).is_file():
        return name
    raise UnknownNameError(
        f"unknown book {name!r}; known books: {', '.join(BOOK_NAMES)}, or the path of a CSV or "
        "Parquet file with position_id, collateral_asset, collateral, debt, "
        "liquidation_threshold[, bonus]"
    )
