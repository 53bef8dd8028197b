"""Pure liquidation-cascade backtesting: book × price path × impact model × policy → result.

No database, no orchestration: numpy/polars in, typed read-only results out.
"""

from backtest.book import (
    BOOK_COLUMNS,
    Book,
    LognormalExcessHF,
    liquidation_price,
    rescale_book,
    synthetic_book,
)
from backtest.compare import AvoidedCascades, compare
from backtest.engine import Result, simulate, simulate_dense
from backtest.errors import (
    BacktestError,
    BookValidationError,
    CascadeDidNotSettleError,
    ImpactConfigError,
    PathValidationError,
    PolicyConfigError,
    ResultMismatchError,
    UnknownPolicyError,
)
from backtest.impact import CpmmImpact, ImpactModel, LinearImpact, NoImpact, SqrtImpact
from backtest.metrics import Conservation, Metrics
from backtest.path import PricePath, synthetic_crash_path
from backtest.policies import (
    POLICIES,
    Batch,
    CircuitBreaker,
    Combined,
    DutchAuction,
    DynamicLTV,
    Instant,
    LiquidityBuffer,
    Policy,
    Staged,
    make_policy,
)

__all__ = [
    "BOOK_COLUMNS",
    "POLICIES",
    "AvoidedCascades",
    "BacktestError",
    "Batch",
    "Book",
    "BookValidationError",
    "CascadeDidNotSettleError",
    "CircuitBreaker",
    "Combined",
    "Conservation",
    "CpmmImpact",
    "DutchAuction",
    "DynamicLTV",
    "ImpactConfigError",
    "ImpactModel",
    "Instant",
    "LinearImpact",
    "LiquidityBuffer",
    "LognormalExcessHF",
    "Metrics",
    "NoImpact",
    "PathValidationError",
    "Policy",
    "PolicyConfigError",
    "PricePath",
    "Result",
    "ResultMismatchError",
    "SqrtImpact",
    "Staged",
    "UnknownPolicyError",
    "compare",
    "liquidation_price",
    "make_policy",
    "rescale_book",
    "simulate",
    "simulate_dense",
    "synthetic_book",
    "synthetic_crash_path",
]
