"""Volatility models (scikit-learn style estimators) and the ``MODELS`` registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from forecasting.errors import UnknownModelError
from forecasting.models._arch import ArchVolatilityModel
from forecasting.models.base import VolatilityModel
from forecasting.models.egarch import EGARCH
from forecasting.models.ewma import EWMA
from forecasting.models.garch import GARCH
from forecasting.models.gjr import GJRGARCH
from forecasting.models.har import HAR
from forecasting.models.hgb import HGBVol
from forecasting.models.hgbc import HGBCorrection, HGBHarCorrection
from forecasting.models.rf import RFVol

__all__ = [
    "MODELS",
    "make_model",
    "VolatilityModel",
    "ArchVolatilityModel",
    "EWMA",
    "GARCH",
    "GJRGARCH",
    "EGARCH",
    "HAR",
    "HGBVol",
    "HGBCorrection",
    "HGBHarCorrection",
    "RFVol",
]

#: Model name → factory (the class; call it with keyword parameters).
MODELS: dict[str, Callable[..., VolatilityModel]] = {
    "ewma": EWMA,
    "garch": GARCH,
    "gjr": GJRGARCH,
    "egarch": EGARCH,
    "har": HAR,
    "hgb": HGBVol,
    "rf": RFVol,
    "hgbc": HGBCorrection,
    "hgbch": HGBHarCorrection,
}


def make_model(name: str, **params: Any) -> VolatilityModel:
    """Build a model from the registry.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS` (``ewma``, ``garch``, ``gjr``, ``egarch``, ``har``, ``hgb``,
        ``rf``, ``hgbc``, ``hgbch``).
    **params
        Keyword parameters of the model's constructor.

    Returns
    -------
    VolatilityModel
        An unfitted estimator.

    Raises
    ------
    UnknownModelError
        If ``name`` is not registered.
    """
    try:
        factory = MODELS[name]
    except KeyError:
        raise UnknownModelError(
            f"unknown model {name!r}; choose one of {sorted(MODELS)} or register a factory in "
            "forecasting.models.MODELS"
        ) from None
    return factory(**params)
