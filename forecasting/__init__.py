"""cascade-lab forecasting: pure volatility-forecasting library (numpy/polars in, typed out).

Never imports Prefect or DuckDB. Main entry points:

* :func:`log_returns`, :func:`resample_bars`, :func:`realized_variance`, :func:`realized_targets`
* models in :mod:`forecasting.models` and the :data:`MODELS` registry
* :func:`walk_forward` — honest out-of-sample forecasts
* :func:`score_forecasts` — QLIKE, MSE, Mincer–Zarnowitz, Diebold–Mariano, VaR backtests
* :func:`score_window`, :func:`score_pooled` — scores per window and pooled across windows;
  :func:`horizon_scale` — square-root-of-time scaling to a target horizon
* :func:`liquidation_threshold_path` — sigma path → dynamic liquidation threshold
* :func:`plot_forecast_window` — forecast vs realized volatility around a crash
* :func:`simulate_paths`, :func:`fit_at_origin` — seeded price paths from the GARCH fit at an
  origin (filtered historical simulation or Student-t innovations)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: Public name → the submodule that defines it. Submodules load on first use (PEP 562), so
#: ``import forecasting`` is cheap and code that needs only the margin or returns helpers never
#: imports scikit-learn, arch or matplotlib.
_EXPORTS: dict[str, str] = {
    "AAVE_V3_WETH": "margin",
    "fit_at_origin": "paths",
    "simulate_paths": "paths",
    "CoverageTest": "scores",
    "DieboldMariano": "scores",
    "EGARCH": "models",
    "EWMA": "models",
    "ForecastingError": "errors",
    "ForecastingWarning": "errors",
    "GARCH": "models",
    "GJRGARCH": "models",
    "HAR": "models",
    "HGBCorrection": "models",
    "HGBHarCorrection": "models",
    "HGBVol": "models",
    "HorizonNotFittedError": "errors",
    "InvalidBarsError": "errors",
    "MAKER_ETH_B": "margin",
    "MODELS": "models",
    "MarginPolicy": "margin",
    "MincerZarnowitz": "scores",
    "ModelConvergenceWarning": "errors",
    "NotEnoughHistoryError": "errors",
    "NotFittedError": "errors",
    "RFVol": "models",
    "Span": "pooling",
    "TAIL_METHODS": "tails",
    "UnknownModelError": "errors",
    "VolatilityModel": "models",
    "align_features": "features",
    "check_bars": "returns",
    "christoffersen": "scores",
    "diebold_mariano": "scores",
    "horizon_scale": "pooling",
    "infer_bar_seconds": "returns",
    "kupiec_pof": "scores",
    "liquidation_threshold_path": "margin",
    "log_returns": "returns",
    "make_model": "models",
    "mincer_zarnowitz": "scores",
    "mse": "scores",
    "nearest_horizon": "pooling",
    "next_bar_hour": "features",
    "plot_forecast_window": "plots",
    "qlike": "scores",
    "realized_targets": "returns",
    "realized_variance": "returns",
    "recent_drawdown": "features",
    "regularize_bars": "returns",
    "resample_bars": "returns",
    "score_forecasts": "scores",
    "score_frame": "pooling",
    "score_pooled": "pooling",
    "score_window": "pooling",
    "solvency_threshold": "margin",
    "tail_quantile": "tails",
    "var_column": "tails",
    "var_hits": "scores",
    "var_multipliers": "tails",
    "walk_forward": "walkforward",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'forecasting' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"forecasting.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from forecasting.errors import (
        ForecastingError,
        ForecastingWarning,
        HorizonNotFittedError,
        InvalidBarsError,
        ModelConvergenceWarning,
        NotEnoughHistoryError,
        NotFittedError,
        UnknownModelError,
    )
    from forecasting.features import align_features, next_bar_hour, recent_drawdown
    from forecasting.margin import (
        AAVE_V3_WETH,
        MAKER_ETH_B,
        MarginPolicy,
        liquidation_threshold_path,
        solvency_threshold,
    )
    from forecasting.models import (
        EGARCH,
        EWMA,
        GARCH,
        GJRGARCH,
        HAR,
        MODELS,
        HGBCorrection,
        HGBHarCorrection,
        HGBVol,
        RFVol,
        VolatilityModel,
        make_model,
    )
    from forecasting.paths import fit_at_origin, simulate_paths
    from forecasting.plots import plot_forecast_window
    from forecasting.pooling import (
        Span,
        horizon_scale,
        nearest_horizon,
        score_frame,
        score_pooled,
        score_window,
    )
    from forecasting.returns import (
        check_bars,
        infer_bar_seconds,
        log_returns,
        realized_targets,
        realized_variance,
        regularize_bars,
        resample_bars,
    )
    from forecasting.scores import (
        CoverageTest,
        DieboldMariano,
        MincerZarnowitz,
        christoffersen,
        diebold_mariano,
        kupiec_pof,
        mincer_zarnowitz,
        mse,
        qlike,
        score_forecasts,
        var_hits,
    )
    from forecasting.tails import TAIL_METHODS, tail_quantile, var_column, var_multipliers
    from forecasting.walkforward import walk_forward

__all__ = [
    "TAIL_METHODS",
    "tail_quantile",
    "var_column",
    "var_multipliers",
    "AAVE_V3_WETH",
    "EGARCH",
    "EWMA",
    "GARCH",
    "GJRGARCH",
    "HAR",
    "MAKER_ETH_B",
    "MODELS",
    "CoverageTest",
    "DieboldMariano",
    "ForecastingError",
    "ForecastingWarning",
    "HGBVol",
    "HGBCorrection",
    "HGBHarCorrection",
    "HorizonNotFittedError",
    "InvalidBarsError",
    "MarginPolicy",
    "MincerZarnowitz",
    "ModelConvergenceWarning",
    "NotEnoughHistoryError",
    "NotFittedError",
    "RFVol",
    "Span",
    "UnknownModelError",
    "VolatilityModel",
    "align_features",
    "fit_at_origin",
    "simulate_paths",
    "check_bars",
    "christoffersen",
    "diebold_mariano",
    "horizon_scale",
    "infer_bar_seconds",
    "kupiec_pof",
    "liquidation_threshold_path",
    "log_returns",
    "make_model",
    "mincer_zarnowitz",
    "mse",
    "nearest_horizon",
    "next_bar_hour",
    "plot_forecast_window",
    "qlike",
    "realized_targets",
    "realized_variance",
    "recent_drawdown",
    "regularize_bars",
    "resample_bars",
    "score_forecasts",
    "score_frame",
    "score_pooled",
    "score_window",
    "solvency_threshold",
    "var_hits",
    "walk_forward",
]
