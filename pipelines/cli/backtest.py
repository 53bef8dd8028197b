"""``cascade backtest`` and ``cascade validate`` (registered into :mod:`pipelines.cli.main`).

A single ``cascade backtest`` run calls :mod:`pipelines.backtests.run` directly and never starts
Prefect (its temporary server costs 10–20 s); ``--sweep`` runs the Prefect flow ``backtest``.
Nothing here imports Prefect at module import time.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from typing import Any

from pipelines.cli.names import (
    require_db,
    resolve_event,
    resolve_events,
    resolve_model,
    resolve_models,
    resolve_policies,
    resolve_policy,
)
from pipelines.cli.quiet import add_verbose_flag, prepare_prefect
from pipelines.cli.registry import command, with_args
from pipelines.errors import CascadeError

# (flag dest, type, help) of the policy parameters; dests are the library's field names.
_POLICY_FLAGS: tuple[tuple[str, Callable[[str], Any], str], ...] = (
    ("close_factor", float, "instant (and bases): share of the debt repaid (1.0; Aave 0.5)"),
    ("bonus", float, "liquidation bonus, overrides the book's (fraction)"),
    ("protocol_fee", float, "instant: share of the bonus kept by the protocol"),
    ("full_close_below_hf", float, "instant: close factor 1 below this health factor"),
    ("buf", float, "dutch_auction: start price / oracle price"),
    ("cut", float, "dutch_auction: stair-step multiplier"),
    ("step_seconds", float, "dutch_auction: seconds per stair step"),
    ("curve", str, "dutch_auction: stairstep or linear"),
    ("tau_seconds", float, "dutch_auction: linear curve duration"),
    ("tail_seconds", float, "dutch_auction: auction age that forces a reset"),
    ("cusp", float, "dutch_auction: price drop that forces a reset"),
    ("tip_usd", float, "dutch_auction: flat keeper reward"),
    ("chip", float, "dutch_auction: keeper reward share of tab"),
    ("chop", float, "dutch_auction: liquidation penalty"),
    ("hole_usd", float, "dutch_auction: per-collateral cap on debt in auctions"),
    ("global_hole_usd", float, "dutch_auction: global cap"),
    ("dust_usd", float, "dutch_auction: minimum vault debt"),
    ("taker_margin", float, "dutch_auction: discount takers require"),
    ("taker_capacity_usd", float, "dutch_auction: USD takers pay per step"),
    ("drop_threshold", float, "circuit_breaker: drop that halts liquidations"),
    ("lookback_steps", int, "circuit_breaker: look-back window (steps)"),
    ("cooldown_steps", int, "circuit_breaker: halt length (steps)"),
    ("capacity_usd", float, "liquidity_buffer: starting cash"),
    ("discount", float, "liquidity_buffer: discount on absorbed collateral"),
    ("unwind_usd_per_step", float, "liquidity_buffer: inventory sold per step"),
    ("interval_steps", int, "batch: clearing period (steps)"),
    ("target_health", float, "staged / dynamic_ltv: health after a stage"),
    ("min_interval_steps", int, "staged: steps between stages of a position"),
    ("max_discount", float, "staged: cap of the Euler discount"),
    ("penalty", float, "dynamic_ltv: deleveraging penalty"),
    ("max_step_change", float, "dynamic_ltv: ramp limit of the threshold per step"),
    ("reference_threshold", float, "dynamic_ltv: threshold the path is relative to"),
    ("sale_share", float, "batch: share of the queued debt liquidated per clearing"),
    ("horizon_steps", int, "schedule: steps over which a tranche is sold"),
    ("risk_aversion", float, "schedule: Almgren-Chriss risk aversion (per USD)"),
    ("A", float, "amm_bands: band width parameter (band width 1/A; crvUSD 100)"),
    ("n_bands", int, "amm_bands: number of bands (crvUSD 4-50)"),
    ("fee", float, "amm_bands: arbitrageur's edge per conversion"),
)


def _half_life(text: str) -> float:
    if text.strip().lower() in ("inf", "infinity", "none"):
        return math.inf
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of steps or 'inf'")
    return value


def _backtest_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--event", action="append", help="event id or window label (W1..W7)")
    p.add_argument(
        "--policy",
        action="append",
        help="policy name or scoreboard label (dutch, breaker, buffer, dynLTV, dynLTV:garch…); "
        "default instant",
    )
    p.add_argument("--forecast-model", action="append", help="model of the dynamic_ltv margin path")
    p.add_argument("--book", action="append", help="maker-ethb, aave-steth, synthetic or a file")
    p.add_argument("--prices", help="CSV/Parquet with ts, price (one row per step)")
    p.add_argument("--asset", help="asset of a synthetic book / event path (default ETH)")
    p.add_argument("--impact", action="append", help="sqrt (default), linear, cpmm or none")
    p.add_argument("--depth-usd", type=float, help="linear depth_usd / cpmm pool reserve (USD)")
    p.add_argument("--half-life-steps", type=_half_life, help="impact half-life in steps or inf")
    p.add_argument("--adv-usd", type=float, help="average daily volume for the sqrt law (USD)")
    p.add_argument("--sigma-day", type=float, help="daily volatility for the sqrt law")
    p.add_argument("--impact-y", type=float, help="sqrt-law prefactor Y (default 1)")
    p.add_argument("--book-debt-usd", type=float, help="debt of a synthetic/aave-steth book")
    p.add_argument("--book-positions", type=int, help="positions of a synthetic book (2000)")
    p.add_argument("--seed", type=int, help="seed of a synthetic book (0)")
    p.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    p.add_argument("--sweep", action="store_true", help="run a sweep with the Prefect flow")
    p.add_argument("--force", action="store_true", help="recompute a run already stored")
    group = p.add_argument_group("policy parameters (library names; see README, Backtesting)")
    for dest, typ, help_text in _POLICY_FLAGS:
        group.add_argument("--" + dest.replace("_", "-"), dest=dest, type=typ, help=help_text)
    group.add_argument("--euler-discount", action="store_true", default=None, help="staged")
    add_verbose_flag(p)


def _overrides(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    policy = {d: getattr(args, d) for d, _t, _h in _POLICY_FLAGS if getattr(args, d) is not None}
    if args.euler_discount:
        policy["euler_discount"] = True
    impact = {
        "depth_usd": args.depth_usd,
        "half_life_steps": args.half_life_steps,
        "adv_usd": args.adv_usd,
        "sigma_day": args.sigma_day,
        "y": args.impact_y,
    }
    book = {"total_debt_usd": args.book_debt_usd, "n": args.book_positions, "seed": args.seed}
    return {
        "policy": policy,
        "impact": {k: v for k, v in impact.items() if v is not None},
        "book": {k: v for k, v in book.items() if v is not None},
    }


def _one(args: argparse.Namespace, name: str) -> str | None:
    values = getattr(args, name)
    if not values:
        return None
    if len(values) > 1:
        flag = "--" + name.replace("_", "-")
        raise CascadeError(f"{flag} given {len(values)} times; one run takes one, or add --sweep")
    return values[0]


def _json_default(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


_SUMMARY = (
    ("n_positions_liquidated", "positions liquidated", "{:,}"),
    ("n_liquidations", "liquidation actions", "{:,}"),
    ("liquidated_usd", "liquidated debt (USD)", "{:,.0f}"),
    ("induced_usd", "induced by impact (USD)", "{:,.0f}"),
    ("amplification", "amplification", "{:.4f}"),
    ("max_cascade_depth", "max cascade depth", "{}"),
    ("cascade_episodes", "cascade episodes", "{}"),
    ("peak_price_deviation", "peak price deviation", "{:.4%}"),
    ("bad_debt_usd", "bad debt (USD)", "{:,.0f}"),
    ("borrower_loss_usd", "borrower loss (USD)", "{:,.0f}"),
    ("final_price", "final market price", "{:,.2f}"),
)


def _print_summary(row: dict[str, Any], cfg: Any, cached: bool) -> None:
    book = f"{cfg.book_name} ({len(cfg.book):,} positions, ${cfg.book.total_debt / 1e6:,.1f}M)"
    path = f"{len(cfg.path):,} steps of {cfg.path.step_seconds:g} s ({cfg.spec.path['source']})"
    impact = ", ".join(f"{k}={v}" for k, v in cfg.spec.impact.items())
    print(f"run {row['run_id']}{' (cached)' if cached else ''}")
    event = row["event_id"] or "-"
    print(f"  event   {event}   policy {row['policy']}  model {row['forecast_model']}")
    print(f"  book    {book}")
    print(f"  path    {path}")
    print(f"  impact  {impact}")
    for key, label, fmt in _SUMMARY:
        value = row.get(key)
        print(f"  {label:<24} {'-' if value is None else fmt.format(value)}")


def _resolve_names(args: argparse.Namespace) -> None:
    """Canonical event, policy and model names (aliases accepted) before any heavy import."""
    if args.sweep:
        args.event = resolve_events(args.event)
        args.policy, args.forecast_model = resolve_policies(
            args.policy, resolve_models(args.forecast_model)
        )
        return
    event, policy, model = (_one(args, n) for n in ("event", "policy", "forecast_model"))
    if model is not None:
        model = resolve_model(model)
    if policy is not None:
        policy, label_model = resolve_policy(policy)
        if label_model is not None and model not in (None, label_model):
            raise CascadeError(
                f"--policy names forecast model {label_model!r} but --forecast-model is {model!r}"
            )
        model = model or label_model
    args.event = None if event is None else [resolve_event(event)]
    args.policy = None if policy is None else [policy]
    args.forecast_model = None if model is None else [model]
    if not args.prices:  # only a user's own price path may start a new warehouse
        require_db(args.db, "backtest")


def _single(args: argparse.Namespace) -> int:
    from pipelines.backtests.books import BOOK_NAMES, read_book_file, resolve_book_name
    from pipelines.backtests.calibration import read_prices_file
    from pipelines.backtests.run import (
        build_run_config,
        existing_run_ids,
        read_metrics,
        run_output,
        write_result,
    )
    from pipelines.warehouse.connection import connect

    book = _one(args, "book")
    # Files are read and validated before the warehouse is opened: a bad file changes nothing.
    cache: dict[Any, Any] = {}
    if book is not None and book not in BOOK_NAMES:
        cache[("file", book)] = read_book_file(resolve_book_name(book))
    if args.prices:
        cache[("prices", str(args.prices))] = read_prices_file(args.prices)
    con = connect(args.db)
    try:
        cfg = build_run_config(
            con,
            event=_one(args, "event"),
            policy=_one(args, "policy") or "instant",
            forecast_model=_one(args, "forecast_model"),
            book=book,
            impact=_one(args, "impact") or "sqrt",
            prices=args.prices,
            asset=args.asset,
            overrides=_overrides(args),
            cache=cache,
        )
        cached = bool(existing_run_ids(con, [cfg.run_id])) and not args.force
        if not cached:
            write_result(con, cfg.run_id, cfg, run_output(cfg))
        row = read_metrics(con, cfg.run_id)
    finally:
        con.close()
    if args.json:
        print(json.dumps(row, default=_json_default, sort_keys=True))
    else:
        _print_summary(row, cfg, cached)
    return 0


def _sweep(args: argparse.Namespace) -> int:
    if args.prices:
        raise CascadeError("--prices applies to a single run; drop --sweep")
    require_db(args.db, "backtest --sweep")
    from pipelines.backtests.run import existing_run_ids, plan_sweep
    from pipelines.warehouse.connection import connect

    sweep = {
        "events": args.event,
        "policies": args.policy,
        "forecast_models": args.forecast_model,
        "books": args.book,
        "impacts": args.impact,
        "overrides": _overrides(args),
    }
    # Plan without Prefect first: when every run is cached, the temporary server is not started.
    con = connect(args.db)
    try:
        run_ids = [c.run_id for c in plan_sweep(con, **sweep)]
        todo = len(run_ids) - len(existing_run_ids(con, run_ids))
    finally:
        con.close()
    if todo:
        prepare_prefect(args)  # a reused server; Prefect's INFO logs only with --verbose
        from pipelines.backtests.flow import backtest_flow

        run_ids, _computed = backtest_flow(db_path=str(args.db), **sweep)
    else:
        print(
            f"all {len(run_ids)} runs of the sweep are stored (cache by run id); nothing to run",
            file=sys.stderr,
        )
    con = connect(args.db, read_only=True)
    try:
        frame = con.sql(
            "SELECT event_id, policy, forecast_model, book, impact, n_liquidations, "
            "round(liquidated_usd / 1e6, 3) AS liquidated_musd, "
            "round(induced_usd / 1e6, 3) AS induced_musd, round(amplification, 4) AS amp, "
            "max_cascade_depth, round(bad_debt_usd / 1e6, 3) AS bad_debt_musd, run_id "
            "FROM backtest_results WHERE list_contains(?, run_id) ORDER BY ALL",
            params=[run_ids],
        ).pl()
    finally:
        con.close()
    if args.json:
        print(frame.write_json())
    else:
        from pipelines.cli.registry import print_frame

        print_frame(frame)
    return 0


@command(
    "backtest",
    "simulate liquidation policies on a crash (one run, or --sweep via Prefect)",
    flag_aliases={
        "Y": "--impact-y",
        "y": "--impact-y",
        "pool_depth_usd": "--depth-usd",
        "total_debt_usd": "--book-debt-usd",
        "n": "--book-positions",
    },
)
@with_args(_backtest_args)
def cmd_backtest(args: argparse.Namespace) -> int:
    """One backtest run written to the warehouse (no Prefect), or a Prefect sweep."""
    _resolve_names(args)
    return _sweep(args) if args.sweep else _single(args)


def _validate_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON object: days (one object per day) and pooled (with pooled_held_out)",
    )
    p.add_argument(
        "--day",
        "--days",
        dest="days",
        default="all",
        help="all (default) or comma-separated YYYY-MM-DD LIQ 2.0 liquidation days",
    )
    p.add_argument(
        "--poke-minute",
        type=float,
        default=None,
        help="minute past the hour of the modelled OSM poke (default 0)",
    )
    p.add_argument(
        "--attention-hours",
        type=float,
        default=None,
        help="fix the owners' attention window (hours) instead of fitting it on the other fold "
        "(then no day is held out)",
    )
    p.add_argument(
        "--owner-margin",
        type=float,
        default=None,
        help="fix the owners' margin instead of fitting the rule on the other fold",
    )
    p.add_argument(
        "--median-spread",
        type=float,
        default=None,
        help="model the oracle relayers' dead-band: the OSM reads a median updated only when "
        "the market moves more than this fraction (e.g. 0.01; default: off)",
    )
    p.add_argument(
        "--markdown",
        default=None,
        help="also write the table and the missed/false vaults to this Markdown file",
    )
    p.add_argument(
        "--no-store",
        action="store_true",
        help="do not write validation_results / maker_validation (read-only warehouse)",
    )


@command("validate", "replay Maker ETH-B vault by vault on every LIQ 2.0 liquidation day")
@with_args(_validate_args)
def cmd_validate(args: argparse.Namespace) -> int:
    """Per-day and pooled precision/recall of the ETH-B replay against the real barks."""
    from pathlib import Path

    from pipelines.backtests.validate_maker import (
        POKE_MINUTE,
        format_table,
        store_validation,
        validate_maker,
    )
    from pipelines.warehouse.connection import connect
    from pipelines.warehouse.stamps import sources_digest

    days = (
        None
        if args.days.strip().lower() == "all"
        else [d.strip() for d in args.days.split(",") if d.strip()]
    )
    poke = POKE_MINUTE if args.poke_minute is None else args.poke_minute
    con = connect(args.db, read_only=args.no_store)
    try:
        result = validate_maker(
            con,
            days=days,
            poke_minute=poke,
            attention_hours=args.attention_hours,
            owner_margin=args.owner_margin,
            median_spread=args.median_spread or 0.0,
        )
        if not args.no_store:
            store_validation(con, result)
        data_id = sources_digest(con)
    finally:
        con.close()
    table = format_table(result)
    if args.markdown:
        Path(args.markdown).write_text(_validation_page(table, args, result, data_id))
    if args.json:
        print(json.dumps(result.as_dict(), default=_json_default))
    else:
        sys.stdout.write(table + "\n")
    return 0


#: The code a validation result depends on (its digest stamps the generated page).
_VALIDATION_CODE = (
    "backtest/maker.py",
    "pipelines/backtests/validate_maker.py",
    "pipelines/backtests/maker_inputs.py",
)


def _validation_page(table: str, args: argparse.Namespace, result: Any, data_id: str) -> str:
    """The Markdown page of ``cascade validate --markdown``, stamped with what produced it."""
    import hashlib
    from datetime import UTC, datetime

    from pipelines.warehouse.stamps import code_digest

    body = json.dumps(result.as_dict(), default=_json_default, sort_keys=True)
    result_id = hashlib.sha256(body.encode()).hexdigest()[:16]
    flags = " ".join(
        f
        for f in (
            "" if args.days == "all" else f"--day {args.days}",
            "" if args.poke_minute is None else f"--poke-minute {args.poke_minute:g}",
            "" if args.attention_hours is None else f"--attention-hours {args.attention_hours:g}",
            "" if args.owner_margin is None else f"--owner-margin {args.owner_margin:g}",
            "" if args.median_spread is None else f"--median-spread {args.median_spread:g}",
        )
        if f
    )
    return (
        "# Maker ETH-B replay validation (generated)\n\n"
        f"Written by `cascade validate {flags + ' ' if flags else ''}--markdown <file>`; "
        "do not edit by hand. "
        "Method: [backtesting]"
        "(../backtesting.md#validation-maker-eth-b-replays-cascade-validate).\n\n"
        f"> Validation `{result_id}` (hash of the `--json` result) · sources `{data_id}` · "
        f"code `{code_digest(_VALIDATION_CODE)}` · generated "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}\n\n" + table + "\n"
    )
