"""Named errors and warnings of the backtest library; every message says how to fix the problem."""

from __future__ import annotations


class BacktestError(Exception):
    """Base class of every error raised on purpose by :mod:`backtest`."""


class BookValidationError(BacktestError, ValueError):
    """A loan book column holds a bad value; the message names the column and the 1-based row.

    Parameters
    ----------
    column : str
        Offending column.
    row : int or None
        1-based row of the first offending value, ``None`` when the whole column is wrong.
    message : str
        What is wrong and how to fix it.
    """

    def __init__(self, column: str, row: int | None, message: str) -> None:
        self.column = column
        self.row = row
        self.reason = message
        where = f"column {column!r}" + (f", row {row}" if row is not None else "")
        super().__init__(f"{where}: {message}")


class PathValidationError(BacktestError, ValueError):
    """A price path (or a per-step input such as a threshold path) is malformed."""


class ImpactConfigError(BacktestError, ValueError):
    """An impact model was configured with an impossible parameter."""


class PolicyConfigError(BacktestError, ValueError):
    """A policy was configured with an impossible parameter."""


class PolicyParameterError(PolicyConfigError):
    """Parameters that no part of a policy accepts.

    Parameters
    ----------
    policy : str
        Policy name.
    parameters : tuple of str
        The parameters no part accepts.
    accepted : tuple of str
        The parameters the policy (with its base or parts) accepts.
    """

    def __init__(self, policy: str, parameters: tuple[str, ...], accepted: tuple[str, ...]) -> None:
        self.policy = policy
        self.parameters = tuple(parameters)
        self.accepted = tuple(accepted)
        names = ", ".join(repr(p) for p in self.parameters)
        what = "parameter" if len(self.parameters) == 1 else "parameters"
        verb = "does" if len(self.parameters) == 1 else "do"
        super().__init__(
            f"{what} {names} {verb} not apply to policy {policy!r}; "
            f"its parameters: {', '.join(self.accepted)}"
        )

    def __reduce__(self) -> tuple[type, tuple[str, tuple[str, ...], tuple[str, ...]]]:
        return (type(self), (self.policy, self.parameters, self.accepted))


class MissingThresholdPathError(PolicyConfigError):
    """A dynamic policy (``dynamic_ltv``…) was built without a threshold path."""


class UnknownPolicyError(BacktestError, KeyError):
    """A policy name that the registry does not know; the message lists the known names."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ResultMismatchError(BacktestError, ValueError):
    """Two results cannot be compared because they ran on different books, paths or impacts."""


class CascadeDidNotSettleError(BacktestError, RuntimeError):
    """A step's cascade rounds did not reach a fixed point within the round limit."""


class ShapeFitError(BacktestError, ValueError):
    """A book has too few positions to fit its health-factor law and debt-size tail."""


class StepTooCoarseError(PolicyConfigError):
    """A user-given policy time scale is shorter than one bar of the price path.

    A look-back, cool-down, batch interval or staged interval below one step would silently
    collapse to one step; the factory refuses it instead (defaults are clamped to one bar and
    recorded, see :func:`backtest.build_policy`).

    Parameters
    ----------
    policy : str
        Policy name.
    parameter : str
        The parameter (``*_seconds``) that is too short.
    seconds : float
        Its value.
    step_seconds : float
        Bar size of the path.
    """

    def __init__(self, policy: str, parameter: str, seconds: float, step_seconds: float) -> None:
        self.policy = policy
        self.parameter = parameter
        self.seconds = float(seconds)
        self.step_seconds = float(step_seconds)
        super().__init__(
            f"policy {policy!r}: {parameter}={seconds:g} s is shorter than one bar of the path "
            f"({step_seconds:g} s); give at least {step_seconds:g} s or use a finer path"
        )

    def __reduce__(self) -> tuple[type, tuple[str, str, float, float]]:
        return (type(self), (self.policy, self.parameter, self.seconds, self.step_seconds))
