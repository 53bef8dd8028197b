"""Typed backtest requests and run specs: what a user asks for, and what a run's id is the hash of.

* :class:`RunRequest` — what a person (CLI flag, sweep, notebook) asks for: names turned into
  validated values (:class:`BookName`, :class:`ImpactName`, a known policy name), options as
  typed fields. Defaults live here, in one place.
* :class:`RunSpec` — the resolved identity of a run: the event, the fingerprints of the book and
  of the price path it read, the impact model and policy parameters, the market calibration, the
  margin run behind a dynamic-LTV threshold path and the hash of the code that computes it. Its
  canonical JSON hash is the run id; nothing else enters (no hand-bumped version, no hash of the
  whole warehouse), so loading an unrelated asset changes no run id and any edit of the engine
  changes every one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.catalog.hashing import canonical_json, code_digest, config_hash
from pipelines.errors import UnknownNameError

__all__ = [
    "BACKTEST_CODE",
    "NO_MODEL",
    "BookName",
    "ImpactName",
    "RunRequest",
    "RunSpec",
    "backtest_code_version",
    "parse_impact",
]

#: ``forecast_model`` of a run whose policy uses no forecast.
NO_MODEL = "-"
#: The code whose every line can change a backtest result: the library and this stage.
BACKTEST_CODE = ("backtest/**/*.py", "pipelines/backtests/*.py")


@cache
def backtest_code_version() -> str:
    """sha256 prefix of :data:`BACKTEST_CODE` (computed once per process)."""
    return code_digest(*BACKTEST_CODE)


class BookName(StrEnum):
    """The built-in books (any other book name is a CSV/Parquet file of positions)."""

    MAKER_ETHB = "maker-ethb"
    AAVE_STETH = "aave-steth"
    SYNTHETIC = "synthetic"


class ImpactName(StrEnum):
    """Price-impact models of the simulation contract (``none`` = no feedback)."""

    SQRT = "sqrt"
    LINEAR = "linear"
    CPMM = "cpmm"
    NONE = "none"


def parse_impact(name: str | ImpactName) -> ImpactName:
    """An impact name as :class:`ImpactName`.

    Raises
    ------
    UnknownNameError
        Naming the known models.
    """
    try:
        return ImpactName(str(name).strip().lower())
    except ValueError:
        known = ", ".join(m.value for m in ImpactName)
        raise UnknownNameError(f"unknown impact model {name!r}; known: {known}") from None


def _plain(value: Any) -> Any:
    """JSON-ready copy: datetimes as ISO text, numpy as Python, non-finite floats as text."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, np.generic):
        return _plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclass(frozen=True, kw_only=True)
class RunRequest:
    """One backtest as asked for; :func:`pipelines.backtests.run.build_run_config` resolves it.

    Attributes
    ----------
    event : str or None
        Event id or window label (``W4``); ``None`` with ``prices``.
    policy : str
        Policy name (validated against the policy registry when resolved).
    forecast_model : str or None
        Model whose margin path drives a dynamic-LTV policy.
    threshold : str
        Threshold source of a dynamic-LTV policy: ``model`` (the forecast) or a control
        (``constant``, ``lagged``, ``shuffled``, ``oracle``); ignored by the other policies.
    book : str or None
        :class:`BookName` value or a positions file; ``None`` = the event's default book.
    impact : ImpactName
        Impact model (default ``sqrt``, calibrated per event).
    prices : path or None
        ``ts, price`` file replacing the event's path.
    asset : str or None
        Asset of a synthetic book and of the event path (default ``ETH``).
    policy_params : mapping
        Policy parameters given by the user (routed to the part of the policy that has them).
    impact_options : mapping
        ``depth_usd``, ``half_life_steps``, ``adv_usd``, ``sigma_day``, ``y``.
    book_options : mapping
        ``total_debt_usd``, ``n``, ``seed``.
    """

    event: str | None = None
    policy: str = "instant"
    forecast_model: str | None = None
    threshold: str = "model"
    book: str | None = None
    impact: ImpactName = ImpactName.SQRT
    prices: str | Path | None = None
    asset: str | None = None
    policy_params: Mapping[str, Any] = field(default_factory=dict)
    impact_options: Mapping[str, Any] = field(default_factory=dict)
    book_options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_overrides(
        cls, overrides: Mapping[str, Mapping[str, Any]] | None = None, **fields: Any
    ) -> RunRequest:
        """Build from the nested ``{"policy": …, "impact": …, "book": …}`` form."""
        overrides = overrides or {}
        known = {"policy", "impact", "book"}
        if set(overrides) - known:
            bad = ", ".join(sorted(set(overrides) - known))
            raise UnknownNameError(f"unknown override group(s) {bad}; known: book, impact, policy")
        impact = parse_impact(fields.pop("impact", ImpactName.SQRT))
        return cls(
            impact=impact,
            policy_params=dict(overrides.get("policy") or {}),
            impact_options=dict(overrides.get("impact") or {}),
            book_options=dict(overrides.get("book") or {}),
            **fields,
        )


@dataclass(frozen=True, kw_only=True)
class RunSpec:
    """The identity of one backtest run; ``run_id`` is the hash of its canonical JSON.

    Attributes
    ----------
    event_id : str or None
        Crash event (``None`` for a user's path).
    asset : str
        Collateral asset.
    book : dict
        Book kind, source and fingerprint (sha256 of its numeric columns).
    path : dict
        Path source, bar size and fingerprint (sha256 of times and prices).
    impact : dict
        The impact model's parameters.
    calibration : dict or None
        The market statistics the impact was calibrated from.
    policy : dict
        The policy's parameters (a threshold path enters as its length and sha256).
    forecast_model : str
        ``'-'`` for policies without a forecast.
    margin_run_id : str or None
        Forecast run whose margin path drives a dynamic-LTV policy.
    threshold_source : str
        ``'-'`` for policies without a threshold path, else ``model`` or the control's name.
    code_version : str
        :func:`backtest_code_version` of the code that computes the run.
    """

    event_id: str | None
    asset: str
    book: Mapping[str, Any]
    path: Mapping[str, Any]
    impact: Mapping[str, Any]
    calibration: Mapping[str, Any] | None
    policy: Mapping[str, Any]
    forecast_model: str = NO_MODEL
    margin_run_id: str | None = None
    threshold_source: str = NO_MODEL
    code_version: str = field(default_factory=backtest_code_version)

    def __post_init__(self) -> None:
        for name in ("book", "path", "impact", "calibration", "policy"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _plain(dict(value)))

    def as_dict(self) -> dict[str, Any]:
        """The JSON-ready fields (what ``backtest_runs.config`` stores)."""
        return {
            "event_id": self.event_id,
            "asset": self.asset,
            "book": dict(self.book),
            "path": dict(self.path),
            "impact": dict(self.impact),
            "calibration": None if self.calibration is None else dict(self.calibration),
            "policy": dict(self.policy),
            "forecast_model": self.forecast_model,
            "margin_run_id": self.margin_run_id,
            "threshold_source": self.threshold_source,
            "code_version": self.code_version,
        }

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): the text the run id hashes."""
        return canonical_json(self.as_dict())

    @property
    def run_id(self) -> str:
        """Hash of the full spec."""
        return config_hash(self.as_dict())

    @property
    def scenario_id(self) -> str:
        """Hash of the event, book, path and impact parts (shared by every policy)."""
        keys = ("code_version", "event_id", "asset", "book", "path", "impact")
        full = self.as_dict()
        return config_hash({k: full[k] for k in keys})
