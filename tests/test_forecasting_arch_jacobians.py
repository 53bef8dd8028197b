"""The arch fits with exact constraint Jacobians: same constraints, same optimum, nothing leaks."""

from __future__ import annotations

import threading

import arch.univariate.base as arch_base
import numpy as np
import pytest
from arch import arch_model

from forecasting.models import GARCH, GJRGARCH
from forecasting.models._arch import _constraints_with_jacobians, exact_constraint_jacobians

ORIGINAL = arch_base.constraint


def _garch_returns(n: int, seed: int) -> np.ndarray:
    """GARCH(1,1) with Student-t(5) shocks: omega 1e-6, alpha 0.08, beta 0.9."""
    rng = np.random.default_rng(seed)
    z = rng.standard_t(5, size=n) / np.sqrt(5 / 3)
    r = np.empty(n)
    s2 = 1e-6 / (1 - 0.98)
    for t in range(n):
        r[t] = np.sqrt(s2) * z[t]
        s2 = 1e-6 + 0.08 * r[t] ** 2 + 0.9 * s2
    return r


def test_constraints_and_jacobians_match_arch() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 5))
    b = rng.normal(size=6)
    ours, theirs = _constraints_with_jacobians(a, b), ORIGINAL(a, b)
    assert len(ours) == len(theirs) == 6
    for i, (mine, ref) in enumerate(zip(ours, theirs, strict=True)):
        assert mine["type"] == ref["type"] == "ineq"
        for _ in range(5):
            p = rng.normal(size=5)
            assert mine["fun"](p) == pytest.approx(ref["fun"](p), rel=1e-15, abs=1e-15)
            assert np.array_equal(mine["jac"](p), a[i])


def test_arch_function_restored_after_fits_and_errors() -> None:
    r = _garch_returns(1500, 1)
    GARCH().fit(r)
    assert arch_base.constraint is ORIGINAL
    with pytest.raises(RuntimeError), exact_constraint_jacobians():
        assert arch_base.constraint is _constraints_with_jacobians
        raise RuntimeError("boom")
    assert arch_base.constraint is ORIGINAL


@pytest.mark.parametrize(("cls", "o"), [(GARCH, 0), (GJRGARCH, 1)])
def test_fit_reaches_the_plain_arch_optimum(cls: type[GARCH], o: int) -> None:
    r = _garch_returns(2000, 2)
    model = cls(warm_start=False).fit(r)
    y = r * model.scale_
    plain = arch_model(y, mean="Constant", vol="GARCH", p=1, o=o, q=1, dist="t")
    ref = plain.fit(disp="off", show_warning=False)
    assert model.converged_
    # same likelihood optimum (the parameters agree to the optimizer's tolerance)
    assert model.loglikelihood_ == pytest.approx(ref.loglikelihood, rel=1e-7)
    np.testing.assert_allclose(model.params_, np.asarray(ref.params), rtol=2e-3, atol=2e-4)


def test_fits_are_deterministic_across_threads() -> None:
    r = _garch_returns(1500, 3)
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(GJRGARCH(warm_start=False).fit(r).params_)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    solo = GJRGARCH(warm_start=False).fit(r).params_
    assert all(np.array_equal(p, solo) for p in results)
    assert arch_base.constraint is ORIGINAL
