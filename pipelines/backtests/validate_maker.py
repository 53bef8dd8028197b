"""``cascade validate``: replay Maker ETH-B vault by vault on every LIQ 2.0 liquidation day.

The days are every UTC day with a real ETH-B liquidation (``defi_liquidations``, protocol
``maker-ethb``) from LIQ 2.0's start (the first ``CLIPPER.buf`` in ``risk_params``,
2021-05-06). For each day the stage reads from the warehouse and calls :mod:`backtest.maker`:

* **book**: every ``vault_events`` row (liquidations included) before :data:`WARMUP_DAYS` days
  earlier with the chain's rules (:func:`backtest.maker.vault_state`: a full bark or a withdrawal
  of all collateral leaves no debt, a repayment leaves no debt under ``VAT.ilks.dust``), debt
  accrued by the ``JUG.ilks.duty`` rate accumulator, then carried through those days' events and
  pokes by :func:`backtest.maker.warm_up`, which corrects a vault the book shows unsafe at a poke
  where the chain did not bark it (its collateral is raised to health 1). :func:`maker_state`
  gives the same book at any time (the backtests' ``maker-ethb`` book);
* **owners' events** of the day (deposit, withdraw, mint, repay) replayed in time order; an
  event up to the fitted keeper delay (:data:`DELAY_GRID`) after the modelled poke is applied
  before the keepers look (the real poke's time is not recorded).
  The day's real liquidations are *not* replayed (they are what the replay predicts);
* **OSM**: a poke every hour at minute :data:`POKE_MINUTE`; the current price is the market
  price read one poke earlier (Binance ETH/USDT, the finest bar stored: 1-min, 5-min, else the
  hourly open; optionally through the relayers' dead-band, ``median_spread``), the next price is
  the one read at the poke;
* **keepers** bark vaults unsafe at the current OSM price by more than the fitted tolerance
  (:data:`TOLERANCE_GRID`: health ``ink · price / mat / debt < 1 − tolerance``) with
  debt ≥ :data:`DUST_FRACTION` × ``VAT.ilks.dust`` in force that day; vaults with debt and no
  collateral in the rebuilt book are export gaps and never barked;
* **owners** act on the next OSM price: an owner who acted on the vault within the last
  ``attention_hours``, or whose vault the next price makes unsafe by less than ``margin``,
  defends a vault the next price makes unsafe (:class:`backtest.maker.OwnerRule`).

**Fitting and held-out days.** ``(attention_hours, margin)``, then the keepers'
``(delay, tolerance)`` given it, are fitted on the same days (:func:`_fit`). The days,
in date order, are split by parity into fold A (1st, 3rd, …) and fold B (2nd, 4th, …). The rule
fitted on fold A (best pooled F1 with recall ≥ :data:`FIT_MIN_RECALL`, grid
:data:`ATTENTION_GRID` × :data:`MARGIN_GRID`, then :data:`DELAY_GRID` × :data:`TOLERANCE_GRID`)
is applied to the days of fold B and vice versa, so
every day's figures are held out: its own barks never chose the rule applied to it.
``pooled_held_out`` pools exactly those figures. ``--attention-hours``/``--owner-margin`` fix the
rule instead, with the keeper delay :data:`KEEPER_DELAY` and no tolerance (then no day is
held out).

The reasons of false and missed vaults add what the rest of the record says (a later write-off of
the chain's rules, a later real bark, the owner's last action); the replay never reads it. Each
false or missed vault also gets a kind (:data:`FALSE_KINDS`, :data:`MISSED_KINDS`), counted in
the pooled figures.

Per vault the stage stores ``maker_validation`` and per day ``validation_results``
(``data/schema/005_validation.sql``).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np

from backtest.maker import (
    DayReplay,
    KeeperRule,
    Medianizer,
    OsmModel,
    OwnerRule,
    VaultEvents,
    VaultState,
    WriteOff,
    fit_owner_rule,
    replay_day,
    score,
    vault_states,
    write_offs,
)
from pipelines.backtests.books import maker_params
from pipelines.backtests.maker_inputs import (
    POKE_MINUTE,
    WARMUP_DAYS,
    MakerInputs,
    _epoch,
    load_inputs,
    maker_state,
    warm,
)
from pipelines.errors import CascadeError

__all__ = [
    "ATTENTION_GRID",
    "FALSE_KINDS",
    "MISSED_KINDS",
    "POKE_MINUTE",
    "DayResult",
    "VaultRow",
    "Validation",
    "format_table",
    "liq2_days",
    "load_inputs",
    "maker_state",
    "store_validation",
    "validate_maker",
]

#: Owners' margins tried when fitting (health at the next price ≥ 1 − margin is defended).
MARGIN_GRID = (0.0, 0.002, 0.005, 0.01)
#: Owners' attention windows (hours) tried when fitting.
ATTENTION_GRID = (0.0, 0.25, 0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0, 48.0)
#: Recall the fitted attention window must keep on the fitting days.
FIT_MIN_RECALL = 0.9
#: Vaults with debt under this fraction of ``VAT.ilks.dust`` are remnants keepers leave (the
#: smallest real ETH-B bark of the LIQ 2.0 days is 0.78 × the dust in force).
DUST_FRACTION = 0.25
#: Seconds after the modelled poke within which an owner's transaction is applied before the
#: keepers look, tried when fitting (the real poke's minute is not recorded; the real ETH-B barks
#: of these days come a median 24 s after the hour, a quarter of them 5 to 51 minutes after it).
DELAY_GRID = (60, 300, 600, 900)
#: Keepers' tolerance of the stand-in price tried when fitting (barked below health 1 − it).
TOLERANCE_GRID = (0.0, 0.002, 0.005)
#: Keeper delay and tolerance when the owners' rule is fixed on the command line.
KEEPER_DELAY = 60


@dataclass(frozen=True, kw_only=True)
class VaultRow:
    """One vault of one day: predicted and/or really liquidated, and why.

    ``kind`` classifies a false (:data:`FALSE_KINDS`) or missed (:data:`MISSED_KINDS`) vault;
    empty for a matched one.
    """

    day: str
    vault: str
    predicted: bool
    real: bool
    sim_ts: datetime | None
    real_ts: datetime | None
    sim_dai: float
    real_dai: float
    health: float | None
    reason: str
    kind: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON)."""
        return asdict(self)


@dataclass(frozen=True, kw_only=True)
class DayResult:
    """Score of one replayed day."""

    day: str
    fold: str
    attention_hours: float
    owner_margin: float
    keeper_delay: float
    tolerance: float
    held_out: bool
    n_vaults: int
    tp: int
    fp: int
    fn: int
    precision: float
    recall: float
    simulated_dai: float
    real_dai: float
    matched_dai_within_2pct: int
    bark_error_minutes: float | None
    vaults: tuple[VaultRow, ...] = field(default=())

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for JSON): the vaults as ``missed`` and ``false`` lists."""
        out = {k: v for k, v in asdict(self).items() if k != "vaults"}
        out["missed"] = [_brief(v) for v in self.vaults if v.real and not v.predicted]
        out["false"] = [_brief(v) for v in self.vaults if v.predicted and not v.real]
        return out


def _brief(v: VaultRow) -> dict[str, Any]:
    return {"vault": v.vault, "kind": v.kind, "reason": v.reason}


#: Kinds of a false vault (:attr:`VaultRow.kind`), from the replay's output and, for the
#: explanation only, the rest of the record (:meth:`_Record.kind`); the first that applies.
FALSE_KINDS = (
    "book off",  # a later chain rule shows the rebuilt debt too high (an event the export misses)
    "barked later",  # the chain barked the vault on a later day
    "owner active",  # never barked; the owner acted on the vault within the hour before the flag
    "not barked",  # never barked; the owner idle for more than an hour
)
#: Kinds of a missed vault (:attr:`VaultRow.kind`): why the replay did not bark it that day.
MISSED_KINDS = (
    "owner rule",  # the fitted owners' rule made the owner defend
    "export gap",  # debt without collateral in the rebuilt book
    "tolerated",  # under health 1 but within the keepers' tolerance
    "dust",  # unsafe, but a remnant under the keepers' dust fraction
    "never unsafe",  # healthy at the modelled OSM price all day (lowest health given)
    "no debt",  # no debt or no collateral in the rebuilt book
)


def _by_kind(rows: list[VaultRow], kinds: tuple[str, ...]) -> dict[str, int]:
    return {k: sum(1 for v in rows if v.kind == k) for k in kinds}


@dataclass(frozen=True, kw_only=True)
class Validation:
    """All days, the owners' rules applied and the pooled figures."""

    days: tuple[DayResult, ...]
    owner_rule: dict[str, dict[str, float]]
    poke_minute: float

    def pooled(self, *, held_out_only: bool = False) -> dict[str, Any]:
        """Pooled ``tp``/``fp``/``fn``, precision, recall, DAI and timing figures."""
        rows = [d for d in self.days if d.held_out or not held_out_only]
        tp = sum(d.tp for d in rows)
        fp = sum(d.fp for d in rows)
        fn = sum(d.fn for d in rows)
        errors = [
            abs((v.sim_ts - v.real_ts).total_seconds()) / 60
            for d in rows
            for v in d.vaults
            if v.predicted and v.real and v.sim_ts and v.real_ts
        ]
        return {
            "days": len(rows),
            "tp": tp,
            "fp": fp,
            "fn": fn,
            "precision": tp / (tp + fp) if tp + fp else 1.0,
            "recall": tp / (tp + fn) if tp + fn else 1.0,
            "matched_dai_within_2pct": sum(d.matched_dai_within_2pct for d in rows),
            "bark_error_minutes": statistics.median(errors) if errors else None,
            "false_by_kind": _by_kind(
                [v for d in rows for v in d.vaults if v.predicted and not v.real], FALSE_KINDS
            ),
            "missed_by_kind": _by_kind(
                [v for d in rows for v in d.vaults if v.real and not v.predicted], MISSED_KINDS
            ),
        }

    def as_dict(self) -> dict[str, Any]:
        """The JSON of ``cascade validate --json``."""
        return {
            "days": [d.as_dict() for d in self.days],
            "owner_rule": self.owner_rule,
            "poke_minute": self.poke_minute,
            "pooled": {**self.pooled(), "pooled_held_out": self.pooled(held_out_only=True)},
        }


@dataclass(frozen=True, eq=False)
class _Day:
    day: str
    start: int
    state: Any
    events: VaultEvents
    pokes: tuple[np.ndarray, np.ndarray, np.ndarray]
    mat: float
    dust: float
    real: dict[str, tuple[float, datetime]]
    last_action: dict[str, int]


def liq2_days(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every UTC day with a real ETH-B liquidation since LIQ 2.0 started."""
    start = con.execute(
        "SELECT min(effective_ts) FROM risk_params WHERE protocol = 'maker' "
        "AND market = 'ETH-B' AND parameter = 'CLIPPER.buf'"
    ).fetchone()[0]
    if start is None:
        raise CascadeError("no Maker ETH-B LIQ 2.0 parameters; run `cascade ingest`")
    rows = con.execute(
        "SELECT DISTINCT strftime(ts, '%Y-%m-%d') AS d FROM defi_liquidations "
        "WHERE protocol = 'maker-ethb' AND ts >= ? ORDER BY d",
        [start],
    ).fetchall()
    return [r[0] for r in rows]


def _prepare_day(
    con: duckdb.DuckDBPyConnection,
    inputs: MakerInputs,
    day: str,
    osm: OsmModel,
    base: VaultState,
    warmup_days: int = WARMUP_DAYS,
) -> _Day:
    """The inputs of one day's replay; ``base`` is the book at the warm-up's start."""
    start_dt = datetime.fromisoformat(day).replace(tzinfo=UTC)
    end_dt = start_dt + timedelta(days=1)
    start, end = _epoch(start_dt), _epoch(end_dt)
    params = maker_params(con, start_dt)
    state, _ = warm(inputs, osm, base, start, warmup_days, params.mat)
    pokes = osm.pokes(start, end, inputs.price_ts, inputs.price)
    rows = con.execute(
        "SELECT position_ref, sum(debt_repaid_usd), min(ts) FROM defi_liquidations "
        "WHERE protocol = 'maker-ethb' AND ts >= ? AND ts < ? GROUP BY 1 ORDER BY 1",
        [start_dt, end_dt],
    ).fetchall()
    real = {str(r[0]): (float(r[1] or 0.0), r[2]) for r in rows}
    before = inputs.owner_events.between(None, start)
    last_action = dict(zip(before.vault.tolist(), before.ts.tolist(), strict=True))
    return _Day(
        day=day,
        start=start,
        state=state,
        events=inputs.owner_events.between(start, end),
        pokes=pokes,
        mat=params.mat,
        dust=params.dust,
        real=real,
        last_action=last_action,
    )


Rule = tuple[float, float, float, float]
"""(attention_hours, owner_margin, keeper_delay seconds, keepers' tolerance)."""


def _run(d: _Day, inputs: MakerInputs, rule: Rule) -> DayReplay:
    return replay_day(
        d.state,
        d.events,
        inputs.rates,
        *d.pokes,
        mat=d.mat,
        keeper=KeeperRule(
            dust=d.dust, fraction=DUST_FRACTION, delay_seconds=int(rule[2]), tolerance=rule[3]
        ),
        owner=OwnerRule(attention_hours=rule[0], margin=rule[1]),
        last_action=d.last_action,
        dust=inputs.dust,
    )


def _day_start(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(tzinfo=UTC)


def _dt(t: int) -> datetime:
    return datetime.fromtimestamp(t, tz=UTC)


@dataclass(frozen=True, eq=False)
class _Record:
    """What the rest of the record says about a vault (for the reasons only, never the replay)."""

    writeoffs: dict[str, list[WriteOff]]
    barked: dict[str, list[int]]
    owner: dict[str, np.ndarray]

    @classmethod
    def of(cls, inputs: MakerInputs) -> _Record:
        writeoffs: dict[str, list[WriteOff]] = {}
        for w in write_offs(inputs.events, inputs.rates, dust=inputs.dust):
            writeoffs.setdefault(w.vault, []).append(w)
        barked: dict[str, list[int]] = {}
        for v, t in zip(inputs.liquidations.vault.tolist(), inputs.liquidations.ts.tolist()):
            barked.setdefault(v, []).append(t)
        own = inputs.owner_events
        order = np.argsort(own.vault, kind="stable")
        vaults, starts = np.unique(own.vault[order], return_index=True)
        owner = dict(zip(vaults.tolist(), np.split(own.ts[order], starts[1:]), strict=True))
        return cls(writeoffs=writeoffs, barked=barked, owner=owner)

    def _book_off(self, vault: str, day_start: int, debt: float | None) -> WriteOff | None:
        big = max(1_000.0, 0.01 * (debt or 0.0))
        return next(
            (w for w in self.writeoffs.get(vault, []) if w.ts >= day_start and abs(w.dai) > big),
            None,
        )

    def kind(self, vault: str, day_start: int, debt: float, at: int) -> str:
        """The :data:`FALSE_KINDS` entry of a vault flagged at ``at`` and not barked that day."""
        if self._book_off(vault, day_start, debt) is not None:
            return "book off"
        if any(t >= day_start + 86_400 for t in self.barked.get(vault, [])):
            return "barked later"
        ts = self.owner.get(vault, np.zeros(0, np.int64))
        before = ts[ts <= at]
        if before.size and at - int(before[-1]) <= 3600:
            return "owner active"
        return "not barked"

    def notes(self, vault: str, day_start: int, debt: float | None, at: int | None) -> str:
        """Book check, later real barks and the owner's last action, as a reason suffix."""
        out = []
        end = day_start + 86_400
        off = self._book_off(vault, day_start, debt)
        if off is not None:
            what = {"bark": "its real bark", "close": "its close (all collateral withdrawn)"}
            how = "exceeded" if off.dai > 0 else "fell short of"
            out.append(
                f"book off: at {what.get(off.rule, off.rule)} on {_dt(off.ts):%Y-%m-%d} the "
                f"rebuilt debt {how} the chain's by {abs(off.dai):,.0f} DAI (an event missing "
                "from the export)"
            )
        later = [t for t in self.barked.get(vault, []) if t >= end]
        if later:
            out.append(f"really barked later, on {_dt(later[0]):%Y-%m-%d %H:%M}")
        if at is not None:
            ts = self.owner.get(vault, np.zeros(0, np.int64))
            before = ts[ts <= at]
            if before.size:
                hours = (at - int(before[-1])) / 3600
                out.append(f"owner's last action {hours:,.1f} h before")
        return "; ".join(out)


def _vault_rows(d: _Day, rep: DayReplay, record: _Record) -> tuple[VaultRow, ...]:
    barks = {b.vault: b for b in rep.barks}
    out = []
    for v in sorted(set(barks) | set(d.real), key=lambda s: (len(s), s)):
        b = barks.get(v)
        real = d.real.get(v)
        low = rep.min_health.get(v)
        kind = ""
        if b is not None:
            reason = (
                f"unsafe at OSM {b.price:.2f} at {_dt(b.ts):%H:%M} (health {b.health:.4f}, "
                f"debt {b.debt:,.0f} DAI)"
            )
            if real is None:
                reason += "; no real bark that day"
                kind = record.kind(v, d.start, b.debt, b.ts)
                extra = record.notes(v, d.start, b.debt, b.ts)
                reason += f"; {extra}" if extra else ""
        elif v in rep.defended:
            t = rep.defended[v]
            price, h = rep.defence[v]
            kind = "owner rule"
            reason = (
                f"owner rule: defended at {_dt(t):%H:%M} (next OSM price {price:.2f}, health "
                f"{h:.5f} at it; {record.notes(v, d.start, None, t) or 'no earlier owner action'})"
            )
        elif v in rep.gaps:
            kind = "export gap"
            reason = "debt without collateral in the rebuilt book (export gap; never barked)"
        elif v in rep.tolerated:
            kind = "tolerated"
            reason = (
                "under health 1 at the modelled OSM price but within the keepers' tolerance"
                + (f": lowest health {low[0]:.4f} at {_dt(low[1]):%H:%M}" if low else "")
            )
        elif v in rep.dusty:
            kind = "dust"
            reason = "unsafe but debt a remnant under the keepers' dust fraction"
        elif low is not None:
            kind = "never unsafe"
            reason = (
                f"never unsafe at the modelled OSM price: lowest health {low[0]:.4f} at "
                f"{_dt(low[1]):%H:%M} (debt {low[2]:,.0f} DAI)"
            )
        else:
            kind = "no debt"
            reason = "no debt or no collateral in the rebuilt book (health ≥ 1.5 all day)"
        if real is not None and b is None and v not in rep.defended:
            extra = record.notes(v, d.start, real[0], _epoch(real[1]))
            reason += f"; {extra}" if extra else ""
        out.append(
            VaultRow(
                day=d.day,
                vault=v,
                predicted=b is not None,
                real=real is not None,
                sim_ts=_dt(b.ts) if b else None,
                real_ts=real[1] if real else None,
                sim_dai=b.debt if b else 0.0,
                real_dai=real[0] if real else 0.0,
                health=b.health if b else (low[0] if low else None),
                reason=reason,
                kind=kind if (b is None) == (real is not None) else "",
            )
        )
    return tuple(out)


def _day_result(
    d: _Day,
    rep: DayReplay,
    fold: str,
    rule: Rule,
    held_out: bool,
    record: _Record,
) -> DayResult:
    s = score(rep.barked, list(d.real))
    rows = _vault_rows(d, rep, record)
    matched = [v for v in rows if v.predicted and v.real]
    errors = [
        abs((v.sim_ts - v.real_ts).total_seconds()) / 60 for v in matched if v.sim_ts and v.real_ts
    ]
    return DayResult(
        day=d.day,
        fold=fold,
        attention_hours=rule[0],
        owner_margin=rule[1],
        keeper_delay=rule[2],
        tolerance=rule[3],
        held_out=held_out,
        n_vaults=int((d.state.art > 0).sum()),
        tp=s["tp"],
        fp=s["fp"],
        fn=s["fn"],
        precision=s["precision"],
        recall=s["recall"],
        simulated_dai=float(sum(b.debt for b in rep.barks)),
        real_dai=float(sum(r[0] for r in d.real.values())),
        matched_dai_within_2pct=sum(
            1 for v in matched if v.real_dai and abs(v.sim_dai / v.real_dai - 1) <= 0.02
        ),
        bark_error_minutes=statistics.median(errors) if errors else None,
        vaults=rows,
    )


def _fit(replay: Any) -> Rule:
    """The owners' rule, then the keepers' delay and tolerance given it, on one fold's days.

    Two stages on the same fitting days (best pooled F1 with recall ≥ :data:`FIT_MIN_RECALL`,
    ties to the first value: the shorter delay, the smaller tolerance): first
    ``(attention_hours, margin)`` with the keeper delay :data:`KEEPER_DELAY` and no tolerance
    (the rule of the first pass), then ``(delay, tolerance)`` with that owners' rule.
    """
    a, m, _, _ = fit_owner_rule(
        replay,
        [(a, m, float(KEEPER_DELAY), 0.0) for m in MARGIN_GRID for a in ATTENTION_GRID],
        min_recall=FIT_MIN_RECALL,
    )
    return fit_owner_rule(
        replay,
        [(a, m, float(w), k) for k in TOLERANCE_GRID for w in DELAY_GRID],
        min_recall=FIT_MIN_RECALL,
    )


def validate_maker(
    con: duckdb.DuckDBPyConnection,
    *,
    days: list[str] | None = None,
    poke_minute: float = POKE_MINUTE,
    attention_hours: float | None = None,
    owner_margin: float | None = None,
    read_lag_minutes: float = 0.0,
    warmup_days: int = WARMUP_DAYS,
    median_spread: float = 0.0,
) -> Validation:
    """Replay ETH-B on LIQ 2.0 liquidation days and score each against the real barks.

    Parameters
    ----------
    con : duckdb.DuckDBPyConnection
        Warehouse connection.
    days : list of str, optional
        ``YYYY-MM-DD`` days to report (default: every LIQ 2.0 liquidation day). The fitted values
        always fitted on the folds of *all* liquidation days, so a filter does not change them.
    poke_minute : float
        Minute past the hour of the OSM poke.
    attention_hours : float, optional
        Fix the owners' attention window (hours) instead of fitting the rule (no day is then
        held out; the margin defaults to 0).
    owner_margin : float, optional
        Fix the owners' margin (the attention window defaults to 0).
    read_lag_minutes : float
        Age of the market price the OSM reads at a poke (0: the price at the poke).
    warmup_days : int
        Days over which the book is carried and corrected before each day (0: none).
    median_spread : float
        When > 0, the OSM reads :class:`backtest.maker.Medianizer` (a relayer dead-band of this
        fraction, Maker's ``oracleSpread``) instead of the market price.
    """
    all_days = liq2_days(con)
    wanted = all_days if days is None else list(days)
    unknown = [d for d in wanted if d not in all_days]
    if unknown:
        raise CascadeError(
            f"not LIQ 2.0 liquidation days of ETH-B: {', '.join(unknown)}; "
            f"known: {all_days[0]} .. {all_days[-1]} ({len(all_days)} days)"
        )
    inputs = load_inputs(con)
    osm = OsmModel(poke_minute=poke_minute, read_lag_minutes=read_lag_minutes)
    if median_spread > 0:
        inputs = replace(
            inputs, price=Medianizer(spread=median_spread).path(inputs.price_ts, inputs.price)
        )

    folds = {d: ("A" if i % 2 == 0 else "B") for i, d in enumerate(all_days)}
    fixed = None
    if attention_hours is not None or owner_margin is not None:
        fixed = (attention_hours or 0.0, owner_margin or 0.0, float(KEEPER_DELAY), 0.0)
    need = all_days if fixed is None else wanted
    need = sorted(need)
    bases = vault_states(
        inputs.events,
        inputs.rates,
        [_epoch(_day_start(d)) - max(warmup_days, 0) * 86_400 for d in need],
        dust=inputs.dust,
    )
    record = _Record.of(inputs)
    prepared = {
        d: _prepare_day(con, inputs, d, osm, base, warmup_days)
        for d, base in zip(need, bases, strict=True)
    }
    if fixed is None:

        def replays(fold: str):
            def run(m: Rule):
                return [
                    (_run(prepared[d], inputs, m).barked, list(prepared[d].real))
                    for d in all_days
                    if folds[d] == fold
                ]

            return run

        attention = {f: _fit(replays(f)) for f in ("A", "B")}
        other = {"A": "B", "B": "A"}
        results = []
        for d in wanted:
            m = attention[other[folds[d]]]
            results.append(
                _day_result(prepared[d], _run(prepared[d], inputs, m), folds[d], m, True, record)
            )
        fitted = {
            f"fitted_on_{f}": {
                "attention_hours": m[0],
                "margin": m[1],
                "keeper_delay_seconds": m[2],
                "tolerance": m[3],
            }
            for f, m in attention.items()
        }
    else:
        results = [
            _day_result(
                prepared[d],
                _run(prepared[d], inputs, fixed),
                folds[d],
                fixed,
                False,
                record,
            )
            for d in wanted
        ]
        fitted = {
            "fixed": {
                "attention_hours": fixed[0],
                "margin": fixed[1],
                "keeper_delay_seconds": fixed[2],
                "tolerance": fixed[3],
            }
        }
    return Validation(days=tuple(results), owner_rule=fitted, poke_minute=poke_minute)


def store_validation(con: duckdb.DuckDBPyConnection, validation: Validation) -> None:
    """Replace the stored rows of the validated days.

    Tables ``maker_validation`` and ``validation_results``.
    """
    days = [d.day for d in validation.days]
    created = datetime.now(UTC)
    con.begin()
    try:
        for d in days:
            con.execute("DELETE FROM maker_validation WHERE day = ?", [d])
            con.execute("DELETE FROM validation_results WHERE day = ?", [d])
        con.executemany(
            "INSERT INTO validation_results (day, fold, attention_hours, owner_margin, "
            "keeper_delay_seconds, tolerance, held_out, poke_minute, n_vaults, tp, fp, fn, "
            "precision, recall, simulated_dai, real_dai, matched_dai_within_2pct, "
            "bark_error_minutes, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.day, d.fold, d.attention_hours, d.owner_margin, d.keeper_delay,
                    d.tolerance, d.held_out, validation.poke_minute, d.n_vaults, d.tp, d.fp,
                    d.fn, d.precision, d.recall, d.simulated_dai, d.real_dai,
                    d.matched_dai_within_2pct, d.bark_error_minutes, created,
                )
                for d in validation.days
            ],
        )  # fmt: skip
        rows = [
            (
                v.day, v.vault, v.predicted, v.real, v.sim_ts, v.real_ts, v.sim_dai, v.real_dai,
                v.health, v.reason, v.kind or None,
            )
            for d in validation.days
            for v in d.vaults
        ]  # fmt: skip
        if rows:
            con.executemany(
                "INSERT INTO maker_validation (day, vault, predicted, real, sim_ts, real_ts, "
                "sim_dai, real_dai, health, reason, kind) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
        con.commit()
    except Exception:
        con.rollback()
        raise


def format_table(validation: Validation) -> str:
    """Markdown: one row per day, pooled figures, fitted values and the missed/false vaults."""
    lines = [
        "| day | fold | attention (h) | margin | delay (s) | tolerance | held out | real "
        "| predicted | tp | fp | fn "
        "| precision | recall | simulated DAI (M) | real DAI (M) | DAI within 2 % "
        "| bark error (min) |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: "
        "| ---: | ---: "
        "| ---: | ---: | ---: |",
    ]
    for r in validation.days:
        err = "–" if r.bark_error_minutes is None else f"{r.bark_error_minutes:.0f}"
        lines.append(
            f"| {r.day} | {r.fold} | {r.attention_hours:g} | {r.owner_margin:g} | "
            f"{r.keeper_delay:g} | {r.tolerance:g} | "
            f"{'yes' if r.held_out else 'no'} | "
            f"{r.tp + r.fn} | {r.tp + r.fp} | {r.tp} | {r.fp} | {r.fn} | {r.precision:.2f} | "
            f"{r.recall:.2f} | {r.simulated_dai / 1e6:.2f} | {r.real_dai / 1e6:.2f} | "
            f"{r.matched_dai_within_2pct}/{r.tp} | {err} |"
        )
    for label, p in (
        ("pooled (all days shown)", validation.pooled()),
        ("pooled (held-out days)", validation.pooled(held_out_only=True)),
    ):
        err = "–" if p["bark_error_minutes"] is None else f"{p['bark_error_minutes']:.0f}"
        lines.append("")
        lines.append(
            f"**{label}**: {p['days']} days, tp {p['tp']}, fp {p['fp']}, fn {p['fn']}, "
            f"precision {p['precision']:.3f}, recall {p['recall']:.3f}, "
            f"DAI within 2 % {p['matched_dai_within_2pct']}/{p['tp']}, "
            f"median bark error {err} min"
        )
        lines.append("")
        lines.append(
            f"**{label}, by kind**: false vaults "
            + ", ".join(f"{k} {n}" for k, n in p["false_by_kind"].items())
            + "; missed vaults "
            + ", ".join(f"{k} {n}" for k, n in p["missed_by_kind"].items())
        )
    attention = ", ".join(
        f"{k}: attention {v['attention_hours']:g} h, margin {v['margin']:g}, "
        f"keeper delay {v['keeper_delay_seconds']:g} s, tolerance {v['tolerance']:g}"
        for k, v in validation.owner_rule.items()
    )
    lines.append("")
    lines.append(
        f"owners' and keepers' rules: {attention}; OSM poke minute "
        f"{validation.poke_minute:g}; warm-up {WARMUP_DAYS} days"
    )
    lines.append("")
    for r in validation.days:
        for v in r.vaults:
            if v.predicted != v.real:
                kind = "missed" if v.real else "false"
                lines.append(f"- {r.day} {kind} vault {v.vault} ({v.kind}): {v.reason}")
    return "\n".join(lines)
