"""GJR-GARCH(1,1,1) (asymmetric "leverage" GARCH), estimated with ``arch``."""

from __future__ import annotations

from forecasting.models.garch import GARCH

__all__ = ["GJRGARCH"]


class GJRGARCH(GARCH):
    """GJR-GARCH(1,1,1) (Glosten, Jagannathan & Runkle 1993).

    ``s2_t = omega + (alpha + gamma*[eps_{t-1} < 0]) * eps_{t-1}**2 + beta*s2_{t-1}``; multi-step
    forecasts use ``arch``'s ``omega + (alpha + gamma/2 + beta) * s2``. See
    :class:`~forecasting.models._arch.ArchVolatilityModel` for parameters and attributes.
    """

    name = "gjr"
    _vol = "GARCH"
    _o = 1
