"""Named errors and warnings of the forecasting library.

Every message says what went wrong *and* how to fix it, in the spirit of ``arch``'s
``DataScaleWarning`` / ``ConvergenceWarning``.
"""

from __future__ import annotations

__all__ = [
    "ForecastingError",
    "InvalidBarsError",
    "NotEnoughHistoryError",
    "NotFittedError",
    "HorizonNotFittedError",
    "UnknownModelError",
    "ForecastingWarning",
    "ModelConvergenceWarning",
]


class ForecastingError(ValueError):
    """Base class of every error raised by :mod:`forecasting`."""


class InvalidBarsError(ForecastingError):
    """Bars or returns are malformed (missing column, unsorted, non-positive prices, NaN)."""


class NotEnoughHistoryError(ForecastingError):
    """Too few observations before the first forecast origin to fit the model."""


class NotFittedError(ForecastingError, ValueError, AttributeError):
    """A model was used before :meth:`fit`.

    A ``ValueError`` and an ``AttributeError``, as scikit-learn's ``NotFittedError`` (this
    module does not import scikit-learn, so that light users of the library stay light).
    """


class HorizonNotFittedError(ForecastingError):
    """A direct (horizon-specific) model was asked for a horizon it was not fitted for."""


class UnknownModelError(ForecastingError, KeyError):
    """A model name is not in :data:`forecasting.models.MODELS`."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ForecastingWarning(UserWarning):
    """Base class of every warning emitted by :mod:`forecasting`."""


class ModelConvergenceWarning(ForecastingWarning):
    """The optimizer of an ``arch`` model did not converge; the estimates were kept."""


def not_enough_history(what: str, have: int, need: int, fix: str) -> NotEnoughHistoryError:
    """Build a :class:`NotEnoughHistoryError` with a uniform, actionable message."""
    return NotEnoughHistoryError(
        f"{what}: {have} observation(s) available but at least {need} are needed. {fix}"
    )
