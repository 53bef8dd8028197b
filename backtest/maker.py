"""Maker vault replay: stability-fee accrual, the OSM price, keepers and owners, per vault.

Pure library (numpy in, frozen results out). Times are integer epoch seconds (UTC).

The pieces, each a documented model of one contract or actor:

* :class:`RateAccumulator` — ``JUG.ilks.duty`` compounded per second. Maker stores a vault's debt
  as normalised ``art``; its DAI debt at ``t`` is ``art · rate(t)``. A draw or repay of ``x``
  DAI at ``t_i`` changes ``art`` by ``x / rate(t_i)``. ``duty`` in the parameter history is the
  annual rate ``a``: the per-second factor is ``(1 + a) ** (1 / 31_536_000)`` (``JUG.base`` is 0).
  The accumulator is continuous (as if ``drip`` were called every second); the real ``rate``
  moves only at each ``drip``, which changes debt by far less than a basis point.
* :func:`vault_state` — the book from the events, made consistent with the chain after each
  step (a full bark or a withdrawal of all collateral leaves no debt, a repayment leaves no debt
  under ``dust``, nothing negative); :func:`write_offs` lists what those rules removed (events
  the export misses), :class:`Schedule` holds a parameter history such as ``dust``.
* :class:`Medianizer` — the ``Median`` contract as relayers update it (a dead-band).
* :class:`OsmModel` — the Oracle Security Module: a keeper ``poke`` at ``HH:MM`` (``MM`` =
  ``poke_minute``) makes the value read at the previous poke current and reads the next one. The
  current price (what vaults are checked against) is therefore the market price one hour earlier,
  and the *next* price is public for an hour before it takes effect.
* :class:`KeeperRule` — keepers bark a vault that is unsafe at the current OSM price
  (``ink · price / mat < debt``) within seconds of the poke, unless its debt is a remnant under a
  fraction of ``dust``.
* :class:`OwnerRule` — owners watch the next OSM price. An owner whose vault is unsafe at the
  next price, but by less than ``margin`` (health at the next price ``≥ 1 − margin``), defends it
  before the poke (tops up or repays) — the real owners' actions already in the event log are
  replayed as they happened; this rule stands for the defence that the hour-delayed replay price
  cannot see. ``margin`` is fitted on days outside the validation set (:func:`fit_owner_rule`).

:func:`replay_day` plays a day: the book at the day start, the owners' events in time order
(each applied before the first poke after it), and at every poke the keepers' and owners' rules.
Nothing after a poke influences what the replay decides at that poke.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

__all__ = [
    "SECONDS_PER_YEAR",
    "Bark",
    "DayReplay",
    "KeeperRule",
    "Medianizer",
    "OsmModel",
    "OwnerRule",
    "RateAccumulator",
    "Schedule",
    "VaultEvents",
    "VaultState",
    "WriteOff",
    "fit_owner_rule",
    "replay_day",
    "score",
    "vault_state",
    "vault_states",
    "warm_up",
    "write_offs",
]

_T = TypeVar("_T")

#: DAI under which a rebuilt vault counts as closed (rounding of the export's amounts).
MIN_DEBT = 1.0
#: Collateral (ETH) under which an indebted rebuilt vault is an export gap, not a real vault.
MIN_COLLATERAL = 1e-6
#: ETH within which a liquidation's collateral (whole ETH in the export) took the whole vault.
BARK_ROUNDING = 0.5
#: Seconds in Maker's year (``duty`` is quoted as the rate compounded over 365 days).
SECONDS_PER_YEAR = 365 * 86_400


@dataclass(frozen=True, eq=False)
class RateAccumulator:
    """``rate(t)`` of one ilk from its ``duty`` history (``rate`` = 1 at ``change_ts[0]``).

    Parameters
    ----------
    change_ts : array of int
        Epoch seconds at which each annual rate took effect (increasing).
    annual : array of float
        Annual stability fee in force from ``change_ts[i]`` (0.04 = 4 %/year).
    """

    change_ts: np.ndarray
    annual: np.ndarray

    def __post_init__(self) -> None:
        ts = np.asarray(self.change_ts, dtype=np.int64)
        annual = np.asarray(self.annual, dtype=np.float64)
        if ts.ndim != 1 or ts.shape != annual.shape or ts.size == 0:
            raise ValueError("change_ts and annual must be equal-length, non-empty 1-d arrays")
        if (np.diff(ts) < 0).any():
            raise ValueError("change_ts must be increasing")
        if (annual <= -1).any():
            raise ValueError("annual rates must be > -1")
        per_second = np.log1p(annual) / SECONDS_PER_YEAR
        cum = np.concatenate([[0.0], np.cumsum(per_second[:-1] * np.diff(ts))])
        object.__setattr__(self, "change_ts", ts)
        object.__setattr__(self, "annual", annual)
        object.__setattr__(self, "_per_second", per_second)
        object.__setattr__(self, "_cum", cum)

    def log_rate(self, ts: np.ndarray | int) -> np.ndarray:
        """``ln rate(ts)`` (0 before the first change)."""
        t = np.asarray(ts, dtype=np.int64)
        i = np.searchsorted(self.change_ts, t, side="right") - 1
        ok = i >= 0
        j = np.where(ok, i, 0)
        out = self._cum[j] + self._per_second[j] * (t - self.change_ts[j])
        return np.where(ok, out, 0.0)

    def rate(self, ts: np.ndarray | int) -> np.ndarray:
        """``rate(ts)``."""
        return np.exp(self.log_rate(ts))


@dataclass(frozen=True, eq=False)
class VaultEvents:
    """Actions on vaults, one row per event, sorted by time then vault (stable).

    ``dai_delta`` is DAI drawn (+) or repaid (−) at the event's time; ``collateral_delta`` is
    collateral deposited (+) or withdrawn (−). ``bark`` flags the chain's liquidations (a
    bite/bark: ``collateral_delta`` = −collateral taken, ``dai_delta`` = −debt taken); every
    other row is an owner's ``frob``. Liquidations are not owners' actions: leave them out of an
    intraday replay (they are what it predicts).
    """

    vault: np.ndarray
    ts: np.ndarray
    collateral_delta: np.ndarray
    dai_delta: np.ndarray
    bark: np.ndarray | None = None

    def __post_init__(self) -> None:
        vault = np.asarray(self.vault).astype(str)
        ts = np.asarray(self.ts, dtype=np.int64)
        dc = np.nan_to_num(np.asarray(self.collateral_delta, dtype=np.float64))
        dd = np.nan_to_num(np.asarray(self.dai_delta, dtype=np.float64))
        bark = (
            np.zeros(ts.shape, dtype=bool)
            if self.bark is None
            else np.asarray(self.bark, dtype=bool)
        )
        if not (vault.shape == ts.shape == dc.shape == dd.shape == bark.shape) or ts.ndim != 1:
            raise ValueError(
                "vault, ts, collateral_delta, dai_delta and bark must be equal 1-d arrays"
            )
        order = np.lexsort((vault, ts))  # stable: same-vault rows of one time keep their order
        for name, arr in (
            ("vault", vault),
            ("ts", ts),
            ("collateral_delta", dc),
            ("dai_delta", dd),
            ("bark", bark),
        ):
            object.__setattr__(self, name, arr[order])

    def __len__(self) -> int:
        return int(self.ts.size)

    def select(self, keep: np.ndarray) -> VaultEvents:
        """The rows where ``keep`` is true."""
        return VaultEvents(
            vault=self.vault[keep],
            ts=self.ts[keep],
            collateral_delta=self.collateral_delta[keep],
            dai_delta=self.dai_delta[keep],
            bark=self.bark[keep],
        )

    def between(self, start: int | None, end: int | None) -> VaultEvents:
        """Events with ``start <= ts < end`` (``None`` = unbounded)."""
        keep = np.ones(len(self), dtype=bool)
        if start is not None:
            keep &= self.ts >= start
        if end is not None:
            keep &= self.ts < end
        return self.select(keep)


@dataclass(frozen=True, eq=False)
class VaultState:
    """Collateral ``ink`` and normalised debt ``art`` per vault (DAI debt = ``art · rate``).

    ``boost`` is collateral a :func:`warm_up` correction added on top of the recorded ``ink``
    (zero unless corrected); the vault's collateral is ``ink + boost``.
    """

    vault: np.ndarray
    ink: np.ndarray
    art: np.ndarray
    boost: np.ndarray | None = None

    def __post_init__(self) -> None:
        boost = np.zeros(np.shape(self.ink)) if self.boost is None else self.boost
        object.__setattr__(self, "boost", np.asarray(boost, dtype=np.float64))

    @property
    def collateral(self) -> np.ndarray:
        """Collateral of each vault (recorded ``ink`` plus any correction)."""
        return self.ink + self.boost

    def debt(self, rates: RateAccumulator, ts: int) -> np.ndarray:
        """DAI debt of each vault at ``ts``."""
        return self.art * float(rates.rate(ts))


@dataclass(frozen=True)
class WriteOff:
    """A correction one of the chain's rules made to the rebuilt book (see :class:`_Ledger`).

    ``dai`` is the rebuilt debt the rule removed: for a full bark, the rebuilt debt minus the
    debt the bark took (negative when the book had too little); for a close or a dust repayment,
    the rebuilt debt left.
    """

    vault: str
    ts: int
    rule: str
    dai: float


class _Ledger:
    """The mutable book behind :func:`vault_state`, :func:`warm_up` and :func:`replay_day`.

    Events are applied per vault and time (the export has no log index, so the rows of one vault
    at one block time are one step), then the step is made consistent with the chain:

    * **bark** — a liquidation whose collateral is within :data:`BARK_ROUNDING` ETH of the
      vault's recorded ``ink`` (or more) took the whole vault: ``ink = art = 0`` whatever the
      rebuilt debt was (``dog.bark`` and ``cat.bite`` take collateral in proportion to the debt
      taken, and the export rounds the collateral to whole ETH). A smaller one took part of it:
      its collateral and debt are subtracted.
    * **close** — a withdrawal that leaves no recorded collateral leaves no debt: ``vat.frob``
      refuses to withdraw collateral from an indebted vault below its liquidation ratio, so
      ``ink = 0`` implies ``art = 0``.
    * **dust** — a repayment that leaves debt under ``dust`` repaid it all: ``vat.frob`` refuses
      to leave ``0 < art · rate < dust``.
    * neither ``ink`` nor ``art`` is ever negative.

    Each rule writes off what the export misses (a repayment without a vault number, the
    rounding of a wipe-all); only the step's own events and the past are used.
    """

    def __init__(self, state: VaultState, more: Sequence[str] = ()) -> None:
        self.index = {v: i for i, v in enumerate(state.vault.tolist())}
        for v in more:
            if v not in self.index:
                self.index[v] = len(self.index)
        n = len(self.index)
        m = state.vault.size
        self.ink = np.zeros(n)
        self.art = np.zeros(n)
        self.boost = np.zeros(n)
        self.ink[:m], self.art[:m], self.boost[:m] = state.ink, state.art, state.boost
        self.rules: dict[str, int] = {"bark": 0, "close": 0, "dust": 0}
        self.writeoffs: list[WriteOff] = []

    @property
    def ids(self) -> np.ndarray:
        return np.array(list(self.index), dtype=str)

    def state(self) -> VaultState:
        return VaultState(
            vault=self.ids, ink=self.ink.copy(), art=self.art.copy(), boost=self.boost.copy()
        )

    def apply(
        self,
        events: VaultEvents,
        lo: int,
        hi: int,
        rates: RateAccumulator,
        dust: Callable[[int], float] | None = None,
    ) -> None:
        """Apply ``events[lo:hi]`` (``hi`` must not split a vault's rows of one time)."""
        if hi <= lo:
            return
        ts = events.ts[lo:hi]
        vault = events.vault[lo:hi]
        dc = events.collateral_delta[lo:hi]
        dd = events.dai_delta[lo:hi] / rates.rate(ts)
        bark = events.bark[lo:hi]
        # ends of the (vault, time) steps
        last = np.r_[(ts[1:] != ts[:-1]) | (vault[1:] != vault[:-1]), True]
        start = 0
        for end in (np.flatnonzero(last) + 1).tolist():
            self._step(
                vault[start], int(ts[start]), dc[start:end], dd[start:end], bark[start:end],
                rates, dust,
            )  # fmt: skip
            start = end

    def _step(
        self,
        v: str,
        t: int,
        dc: np.ndarray,
        dart: np.ndarray,
        bark: np.ndarray,
        rates: RateAccumulator,
        dust: Callable[[int], float] | None,
    ) -> None:
        i = self.index.get(v)
        if i is None:
            i = self.index[v] = len(self.index)
            self.ink = np.r_[self.ink, 0.0]
            self.art = np.r_[self.art, 0.0]
            self.boost = np.r_[self.boost, 0.0]
        own = ~bark
        ink = self.ink[i] + float(dc[own].sum())
        art = self.art[i] + float(dart[own].sum())
        rate = float(rates.rate(t))
        if bark.any():
            taken = -float(dc[bark].sum())
            if taken >= ink - BARK_ROUNDING:
                self.writeoffs.append(
                    WriteOff(v, t, "bark", (art + float(dart[bark].sum())) * rate)
                )
                ink = art = 0.0
                self.boost[i] = 0.0
                self.rules["bark"] += 1
            else:
                ink -= taken
                art += float(dart[bark].sum())
        if (dc[own] < 0).any() and ink <= MIN_COLLATERAL:
            if art * rate > MIN_DEBT:
                self.rules["close"] += 1
                self.writeoffs.append(WriteOff(v, t, "close", art * rate))
            ink = art = 0.0
            self.boost[i] = 0.0
        if dust is not None and (dart[own] < 0).any() and art > 0:
            if art * rate < dust(t):
                self.writeoffs.append(WriteOff(v, t, "dust", art * rate))
                art = 0.0
                self.rules["dust"] += 1
        self.ink[i] = max(ink, 0.0)
        self.art[i] = max(art, 0.0)


@dataclass(frozen=True, eq=False)
class Schedule:
    """A parameter's history as a step function: ``values[i]`` holds from ``ts[i]`` on.

    Before ``ts[0]`` the value is ``values[0]``.
    """

    ts: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        ts = np.asarray(self.ts, dtype=np.int64)
        values = np.asarray(self.values, dtype=np.float64)
        if ts.ndim != 1 or ts.shape != values.shape or ts.size == 0 or (np.diff(ts) < 0).any():
            raise ValueError("ts and values must be equal-length, non-empty, ts increasing")
        object.__setattr__(self, "ts", ts)
        object.__setattr__(self, "values", values)

    def __call__(self, t: int) -> float:
        """The value in force at ``t``."""
        i = int(np.searchsorted(self.ts, t, side="right")) - 1
        return float(self.values[max(i, 0)])


def vault_states(
    events: VaultEvents,
    rates: RateAccumulator,
    times: Sequence[int],
    *,
    dust: Callable[[int], float] | None = None,
) -> list[VaultState]:
    """:func:`vault_state` at each of ``times`` (increasing), in one pass over the events."""
    if any(b < a for a, b in zip(times, times[1:], strict=False)):
        raise ValueError("times must be increasing")
    ledger = _Ledger(VaultState(vault=np.zeros(0, str), ink=np.zeros(0), art=np.zeros(0)))
    out = []
    cursor = 0
    for at in times:
        stop = int(np.searchsorted(events.ts, at, side="left"))
        ledger.apply(events, cursor, stop, rates, dust)
        cursor = max(cursor, stop)
        out.append(ledger.state())
    return out


def write_offs(
    events: VaultEvents,
    rates: RateAccumulator,
    *,
    dust: Callable[[int], float] | None = None,
) -> tuple[WriteOff, ...]:
    """Every correction the chain's rules make while rebuilding the book from ``events``."""
    ledger = _Ledger(VaultState(vault=np.zeros(0, str), ink=np.zeros(0), art=np.zeros(0)))
    ledger.apply(events, 0, len(events), rates, dust)
    return tuple(ledger.writeoffs)


def vault_state(
    events: VaultEvents,
    rates: RateAccumulator,
    at: int,
    *,
    dust: Callable[[int], float] | None = None,
) -> VaultState:
    """Every vault's state from the events strictly before ``at`` (see :class:`_Ledger`).

    Vaults are in order of first event. ``dust(t)``, when given, is ``VAT.ilks.dust`` in force
    at ``t`` (the dust rule is off without it).
    """
    ev = events.between(None, at)
    ledger = _Ledger(VaultState(vault=np.zeros(0, str), ink=np.zeros(0), art=np.zeros(0)))
    ledger.apply(ev, 0, len(ev), rates, dust)
    return ledger.state()


@dataclass(frozen=True)
class Medianizer:
    """Maker's ``Median`` contract as its relayers update it: a dead-band on the market price.

    The relayer writes a new median on chain when the market has moved more than ``spread``
    from the value stored, or when that value is ``expiration_seconds`` old (Maker's oracle
    configuration for ETH/USD: ``oracleSpread`` 1 %, ``oracleExpiration``). Between updates
    the OSM reads the stored, stale value.
    """

    spread: float = 0.01
    expiration_seconds: int = 86_400

    def path(self, price_ts: np.ndarray, price: np.ndarray) -> np.ndarray:
        """The stored median at each ``price_ts`` (a step function like the market path)."""
        p = np.asarray(price, dtype=np.float64)
        ts = np.asarray(price_ts, dtype=np.int64)
        out = np.empty_like(p)
        if p.size == 0:
            return out
        m, since = float(p[0]), int(ts[0])
        for i, (t, x) in enumerate(zip(ts.tolist(), p.tolist(), strict=True)):
            if abs(x / m - 1.0) > self.spread or t - since >= self.expiration_seconds:
                m, since = x, t
            out[i] = m
        return out


@dataclass(frozen=True)
class OsmModel:
    """Hourly-poked, one-hour-delayed oracle.

    Parameters
    ----------
    poke_minute : float
        Minute past the hour of each poke (0 = on the hour, when ``hop`` allows it).
    hop_seconds : int
        Seconds between pokes (Maker's ``hop`` = 3600).
    read_lag_minutes : float
        Age of the medianizer value the OSM reads at a poke (the medianizer itself is updated
        by relayers only when the price has moved enough, so it trails the market).
    """

    poke_minute: float = 0.0
    hop_seconds: int = 3600
    read_lag_minutes: float = 0.0

    def pokes(
        self, start: int, end: int, price_ts: np.ndarray, price: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pokes in ``[start, end)`` with the current and next OSM price at each.

        ``price_ts``/``price`` is the market price as a step function (``price[i]`` holds from
        ``price_ts[i]``); the value read at a poke is the last market price at or before it.

        Returns
        -------
        (poke_ts, current, next) : arrays
            ``current[k]`` = read at ``poke_ts[k] − hop`` (in force from ``poke_ts[k]``),
            ``next[k]`` = read at ``poke_ts[k]`` (public from ``poke_ts[k]``).
        """
        offset = int(round(self.poke_minute * 60))
        first = start - ((start - offset) % self.hop_seconds)
        if first < start:
            first += self.hop_seconds
        poke_ts = np.arange(first, end, self.hop_seconds, dtype=np.int64)
        reads = _step_value(
            np.asarray(price_ts, np.int64),
            np.asarray(price, float),
            (np.r_[poke_ts - self.hop_seconds, poke_ts[-1:]] if poke_ts.size else poke_ts)
            - int(round(self.read_lag_minutes * 60)),
        )
        return poke_ts, reads[:-1], reads[1:]


def warm_up(
    state: VaultState,
    events: VaultEvents,
    rates: RateAccumulator,
    poke_ts: np.ndarray,
    current: np.ndarray,
    *,
    mat: float,
    barked: VaultEvents,
    hop_seconds: int = 3600,
    dust: Callable[[int], float] | None = None,
) -> tuple[VaultState, dict[str, int]]:
    """Carry a book through past pokes, correcting it where the chain contradicts it.

    Every event (liquidations included) is applied in time order, with the chain's rules of
    :func:`vault_state`. At each poke, a vault the rebuilt book shows unsafe that the chain did
    *not* bark within ``hop_seconds`` (no row of ``barked`` for it in ``[poke, poke + hop)``)
    proves the book understates its collateral or overstates its debt: its ``boost`` is raised
    to health 1 at that poke's price (the least the chain's survival implies). The boost is
    dropped when the vault is closed or barked. Only the past is used: the result is the book
    at the end of the last poke.

    Returns
    -------
    (VaultState, corrections)
        The corrected book (vaults of ``state`` and of ``events``) and the number of
        corrections per vault.
    """
    ledger = _Ledger(state, events.vault.tolist())
    bark_idx = np.array([ledger.index.get(v, -1) for v in barked.vault.tolist()], dtype=np.int64)
    corrections: dict[str, int] = {}
    ids = ledger.ids
    cursor = 0
    for k, t in enumerate(np.asarray(poke_ts, dtype=np.int64).tolist()):
        stop = int(np.searchsorted(events.ts, t, side="left"))
        ledger.apply(events, cursor, stop, rates, dust)
        cursor = max(cursor, stop)
        debt = ledger.art * float(rates.rate(t))
        coll = ledger.ink + ledger.boost
        live = (debt > MIN_DEBT) & (ledger.ink > MIN_COLLATERAL)
        with np.errstate(divide="ignore", invalid="ignore"):
            health = np.where(live, coll * current[k] / mat / debt, np.inf)
        unsafe = live & (health < 1.0)
        if unsafe.any():
            window = (barked.ts >= t) & (barked.ts < t + hop_seconds)
            unsafe[bark_idx[window & (bark_idx >= 0)]] = False
            for i in np.flatnonzero(unsafe).tolist():
                ledger.boost[i] = debt[i] * mat / current[k] - ledger.ink[i]
                corrections[ids[i]] = corrections.get(ids[i], 0) + 1
    ledger.apply(events, cursor, len(events), rates, dust)
    return ledger.state(), corrections


def _step_value(ts: np.ndarray, values: np.ndarray, at: np.ndarray) -> np.ndarray:
    i = np.searchsorted(ts, at, side="right") - 1
    if (i < 0).any():
        raise ValueError("no market price at or before a poke; give a longer price path")
    return values[i]


@dataclass(frozen=True)
class KeeperRule:
    """Keepers bark unsafe vaults soon after each poke, unless the debt is a dust remnant.

    ``dog.bark`` takes a vault whole when what it would leave is under ``dust`` (so a vault
    under dust *can* be barked, and is: the data holds barks of vaults at 0.78 × dust), and the
    keeper is paid ``tip + chip · tab``. What no keeper barks are the remnants a rebuilt book
    leaves (tens to hundreds of DAI where a repayment in the export fell short of the debt):
    vaults with debt under ``fraction · dust`` are not barked.

    An owner's transaction at most ``delay_seconds`` after the modelled poke is applied before
    the keepers look. The real poke is a keeper's transaction at a time the model does not
    know: an owner's action a few minutes after the modelled ``HH:MM`` on a vault the chain did
    not bark came, as far as the record shows, before the real poke and its keepers. The
    replay's verdict at a poke is therefore known only ``delay_seconds`` after it.

    ``tolerance`` is the stand-in price's error allowance: a vault is barked when its health at
    the modelled OSM price is under ``1 - tolerance`` (the modelled price is the market price at
    the previous poke, not the OSM's own value, which the mirror does not hold). A vault within
    the tolerance stays and is looked at again at the next poke.
    """

    dust: float = 0.0
    fraction: float = 1.0
    delay_seconds: int = 0
    tolerance: float = 0.0

    def barkable(self, debt: np.ndarray) -> np.ndarray:
        """Vaults a keeper would bark (given unsafe)."""
        return debt >= self.fraction * self.dust

    def unsafe(self, health: np.ndarray) -> np.ndarray:
        """Vaults unsafe enough at the modelled price for a keeper to bark."""
        return health < 1.0 - self.tolerance


@dataclass(frozen=True)
class OwnerRule:
    """Which owners act on the next OSM price before it takes effect.

    An owner whose vault the next price makes unsafe (health at the next price < 1) defends it
    before the next poke — adds collateral up to health ``1 + buffer`` at the next price — when

    * the owner is *attentive*: acted on the vault (deposit, withdraw, draw, repay) within the
      last ``attention_hours`` before the poke, or
    * the vault is unsafe at the next price by less than ``margin``.

    A vault already unsafe at the current price is barked: the rule only acts an hour ahead.
    ``attention_hours = 0`` and ``margin = 0`` turn the rule off.
    """

    attention_hours: float = 0.0
    margin: float = 0.0
    buffer: float = 0.01

    def defends(self, health_next: np.ndarray, idle_seconds: np.ndarray) -> np.ndarray:
        """Vaults whose owners act before the next poke (``idle_seconds`` since last action)."""
        attentive = idle_seconds <= self.attention_hours * 3600.0
        close = health_next >= 1.0 - self.margin
        return (health_next < 1.0) & (attentive | close)


@dataclass(frozen=True)
class Bark:
    """One vault barked by the replay."""

    vault: str
    ts: int
    debt: float
    collateral: float
    price: float
    health: float


@dataclass(frozen=True, eq=False)
class DayReplay:
    """What a day's replay did.

    ``barks`` are the vaults barked (first bark per vault), ``defended`` the vaults whose
    owners the :class:`OwnerRule` made act (vault → poke time), ``min_health`` the lowest
    health at a current OSM price per vault with debt (vault → (health, ts, debt)), ``defence``
    the next OSM price and the health at it when the owners' rule first acted (vault → (price,
    health)), ``tolerated`` the vaults under health 1 but within the keepers' ``tolerance``,
    ``dusty`` the
    vaults unsafe but below dust, ``gaps`` the vaults with debt but no collateral in the rebuilt
    book (the chain never holds one: an event missing from the export; never barked).
    """

    barks: tuple[Bark, ...]
    defended: dict[str, int] = field(default_factory=dict)
    min_health: dict[str, tuple[float, int, float]] = field(default_factory=dict)
    dusty: frozenset[str] = frozenset()
    gaps: frozenset[str] = frozenset()
    defence: dict[str, tuple[float, float]] = field(default_factory=dict)
    tolerated: frozenset[str] = frozenset()

    @property
    def barked(self) -> frozenset[str]:
        """Ids of the vaults barked."""
        return frozenset(b.vault for b in self.barks)


def replay_day(
    start_state: VaultState,
    events: VaultEvents,
    rates: RateAccumulator,
    poke_ts: np.ndarray,
    current: np.ndarray,
    nxt: np.ndarray,
    *,
    mat: float,
    keeper: KeeperRule,
    owner: OwnerRule,
    last_action: dict[str, int] | None = None,
    dust: Callable[[int], float] | None = None,
) -> DayReplay:
    """Replay one day of owners' events and pokes.

    Parameters
    ----------
    start_state : VaultState
        The book at the day start.
    events : VaultEvents
        Owners' events of the day (no liquidations); an event at ``t`` is applied before the
        keepers look at the first poke at or after ``t − keeper.delay_seconds``, with the
        chain's rules of :func:`vault_state`.
    rates : RateAccumulator
        Stability-fee accumulator.
    poke_ts, current, nxt : arrays
        Pokes and the current and next OSM prices (:meth:`OsmModel.pokes`).
    mat : float
        Liquidation ratio (``SPOTTER.ilks.mat``).
    keeper, owner : KeeperRule, OwnerRule
        Actors' rules.
    last_action : dict, optional
        Time of each vault's last owner action before the day (for :class:`OwnerRule`).
    dust : callable, optional
        ``VAT.ilks.dust`` in force at a time (for the ledger's dust rule).
    """
    ledger = _Ledger(start_state, events.vault.tolist())
    ids = ledger.ids
    n = ids.size
    last = np.full(n, np.iinfo(np.int64).min // 2, dtype=np.int64)  # last owner action
    if last_action is not None:
        for v, ts in last_action.items():
            if v in ledger.index:
                last[ledger.index[v]] = ts
    ev_idx = np.array([ledger.index[v] for v in events.vault.tolist()], dtype=np.int64)
    alive = np.ones(n, dtype=bool)  # not barked yet
    barks: list[Bark] = []
    defended: dict[str, int] = {}
    defence: dict[str, tuple[float, float]] = {}
    min_health: dict[str, tuple[float, int, float]] = {}
    dusty: set[str] = set()
    gaps: set[str] = set()
    tolerated: set[str] = set()
    cursor = 0
    for k, t in enumerate(np.asarray(poke_ts, dtype=np.int64).tolist()):
        # owners' transactions up to the keepers' latency after the poke win the race
        stop = int(np.searchsorted(events.ts, t + keeper.delay_seconds, side="right"))
        if stop > cursor:
            ledger.apply(events, cursor, stop, rates, dust)
            np.maximum.at(last, ev_idx[cursor:stop], events.ts[cursor:stop])
            cursor = stop
        ink = ledger.ink + ledger.boost
        debt = ledger.art * float(rates.rate(t))
        indebted = alive & (debt > MIN_DEBT)
        gap = indebted & (ledger.ink <= MIN_COLLATERAL)
        for i in np.flatnonzero(gap).tolist():
            gaps.add(ids[i])
        live = indebted & ~gap
        with np.errstate(divide="ignore", invalid="ignore"):
            health = np.where(live, ink * current[k] / mat / debt, np.inf)
            health_next = np.where(live, ink * nxt[k] / mat / debt, np.inf)
        for i in np.flatnonzero(live & (health < 1.5)).tolist():
            v = ids[i]
            if v not in min_health or health[i] < min_health[v][0]:
                min_health[v] = (float(health[i]), t, float(debt[i]))
        for i in np.flatnonzero(live & (health < 1.0) & ~keeper.unsafe(health)).tolist():
            tolerated.add(ids[i])
        unsafe = live & keeper.unsafe(health)
        ok = keeper.barkable(debt)
        for i in np.flatnonzero(unsafe & ~ok).tolist():
            dusty.add(ids[i])
        for i in np.flatnonzero(unsafe & ok).tolist():
            barks.append(
                Bark(
                    vault=ids[i],
                    ts=t,
                    debt=float(debt[i]),
                    collateral=float(ink[i]),
                    price=float(current[k]),
                    health=float(health[i]),
                )
            )
            alive[i] = False
        # owners see the next price: those the rule makes act top up before the next poke,
        # to health 1 + buffer at the next price
        react = live & alive & owner.defends(health_next, t - last) & ~(health < 1.0)
        for i in np.flatnonzero(react).tolist():
            defended.setdefault(ids[i], t)
            defence.setdefault(ids[i], (float(nxt[k]), float(health_next[i])))
            ledger.boost[i] = debt[i] * mat * (1.0 + owner.buffer) / nxt[k] - ledger.ink[i]
    return DayReplay(
        barks=tuple(barks),
        defended=defended,
        min_health=min_health,
        dusty=frozenset(dusty),
        gaps=frozenset(gaps),
        defence=defence,
        tolerated=frozenset(tolerated),
    )


def score(predicted: Sequence[str] | frozenset[str], real: Sequence[str]) -> dict[str, float]:
    """``tp``, ``fp``, ``fn``, ``precision``, ``recall`` of a predicted vault set.

    Precision is 1 when nothing is predicted and nothing happened (0 when something happened);
    the same for recall.
    """
    p, r = set(predicted), set(real)
    tp, fp, fn = len(p & r), len(p - r), len(r - p)
    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else (1.0 if not r else 0.0),
        "recall": tp / (tp + fn) if tp + fn else (1.0 if not p else 0.0),
    }


def fit_owner_rule(
    replay: Callable[[_T], Sequence[tuple[frozenset[str], Sequence[str]]]],
    grid: Sequence[_T],
    *,
    min_recall: float = 0.9,
) -> _T:
    """The owner-rule parameter with the best pooled F1 on the fitting days.

    ``replay(value)`` returns, per fitting day, the predicted and the real vaults. Among the
    values whose pooled recall is at least ``min_recall`` (all of them if none) the one with the
    highest F1 wins; ties go to the first in ``grid``.
    """
    best: tuple[_T, float] | None = None
    candidates = []
    for m in grid:
        tp = fp = fn = 0
        for pred, real in replay(m):
            s = score(pred, real)
            tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
        recall = tp / (tp + fn) if tp + fn else 1.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0
        candidates.append((m, recall, f1))
    eligible = [c for c in candidates if c[1] >= min_recall] or candidates
    for m, _recall, f1 in eligible:
        if best is None or f1 > best[1] + 1e-12:
            best = (m, f1)
    assert best is not None
    return best[0]
