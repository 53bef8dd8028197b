"""Which positions are liquidatable now: the fast sorted pool and the dense reference.

Both pools answer the same questions with identical results:

* ``top()`` — the highest liquidation price ``L`` among positions in the pool (``-inf`` if none).
* ``pop(thr, max_debt)`` — remove and return, in priority order, the positions with ``L > thr``
  (i.e. health < 1 at price ``thr``); with a finite ``max_debt``, only the shortest priority
  prefix whose cumulative current debt reaches ``max_debt``.
* ``pop_range(lo, hi)`` — remove and return those with ``lo < L <= hi``.
* ``push(idx)`` — (re)insert positions with their *current* ``L`` (after a partial liquidation).

Priority order is ``L`` descending, ties by canonical index. A position leaves the pool when it is
popped; policies push back what stays open. :class:`FastPool` keeps the book sorted once and walks
a head pointer (``np.searchsorted``), with small sorted side buffers for re-inserted positions,
so its cost is ``O(N log N)`` once plus the positions actually touched. :class:`DensePool`
recomputes ``L`` for every position at every call — the reference and the benchmark baseline.
"""

from __future__ import annotations

import math

import numpy as np

from backtest.book import liquidation_price
from backtest.ledger import Ledger

__all__ = ["DensePool", "FastPool"]

_EMPTY = np.empty(0, dtype=np.int64)


def _cut(cand: np.ndarray, debt: np.ndarray, max_debt: float) -> int:
    """Length of the shortest prefix of ``cand`` whose cumulative debt reaches ``max_debt``."""
    if math.isinf(max_debt):
        return int(cand.size)
    cum = np.cumsum(debt[cand])
    return min(int(np.searchsorted(cum, max_debt, side="left")) + 1, int(cand.size))


class DensePool:
    """Reference pool: recomputes every position's liquidation price at every call.

    Parameters
    ----------
    ledger : Ledger
        Current positions.
    """

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.in_pool = np.ones(ledger.n, dtype=bool)

    def _keys(self) -> np.ndarray:
        led = self.ledger
        return liquidation_price(led.c, led.d, led.lt)

    def top(self) -> float:
        """Highest ``L`` among positions in the pool."""
        keys = self._keys()
        live = keys[self.in_pool]
        return float(live.max()) if live.size else -math.inf

    def _ordered(self, mask: np.ndarray, keys: np.ndarray) -> np.ndarray:
        cand = np.flatnonzero(mask)
        return cand[np.argsort(-keys[cand], kind="stable")]

    def pop(self, thr: float, max_debt: float = math.inf) -> np.ndarray:
        """Remove and return positions with ``L > thr`` (see module docstring)."""
        if max_debt <= 0:
            return _EMPTY
        keys = self._keys()
        cand = self._ordered(self.in_pool & (keys > thr), keys)
        cand = cand[: _cut(cand, self.ledger.d, max_debt)]
        self.in_pool[cand] = False
        return cand

    def pop_range(self, lo: float, hi: float) -> np.ndarray:
        """Remove and return positions with ``lo < L <= hi``."""
        keys = self._keys()
        cand = self._ordered(self.in_pool & (keys > lo) & (keys <= hi), keys)
        self.in_pool[cand] = False
        return cand

    def push(self, idx: np.ndarray) -> None:
        """Put positions back into the pool."""
        self.in_pool[idx] = True


class _Source:
    """A run of pool entries sorted by (-L, index), with a head pointer."""

    __slots__ = ("neg", "pos", "ver", "head", "dirty", "n")

    def __init__(self, neg: np.ndarray, pos: np.ndarray, ver: np.ndarray | None) -> None:
        self.neg = neg  # -L, ascending
        self.pos = pos
        self.ver = ver  # entry versions (None: all 0)
        self.head = 0
        self.dirty = False  # entries at/after head may be invalid
        self.n = int(neg.size)


class FastPool:
    """Sorted pool: one sort of the book, then pointer walks and small re-insert buffers.

    Parameters
    ----------
    ledger : Ledger
        Current positions (canonical order).
    neg_keys : numpy.ndarray
        Minus the liquidation prices of the canonical book (sorted ascending).
    """

    _CHUNK = 1024

    def __init__(self, ledger: Ledger, neg_keys: np.ndarray) -> None:
        self.ledger = ledger
        n = ledger.n
        self.in_pool = np.ones(n, dtype=bool)
        self.version = np.zeros(n, dtype=np.int32)
        self.sources: list[_Source] = [_Source(neg_keys, ledger.arange, None)]
        self._top: float | None = None

    # ------------------------------------------------------------------ validity helpers
    def _valid(self, src: _Source, a: int, b: int) -> np.ndarray:
        pos = src.pos[a:b]
        ok = self.in_pool[pos]
        if src.ver is None:
            ok &= self.version[pos] == 0
        else:
            ok &= self.version[pos] == src.ver[a:b]
        return ok

    def _advance(self, src: _Source) -> None:
        if not src.dirty:
            return
        step = 64
        while src.head < src.n:
            b = min(src.n, src.head + step)
            ok = self._valid(src, src.head, b)
            if ok.any():
                src.head += int(np.argmax(ok))
                return
            src.head = b
            step *= 2
        src.dirty = False

    def _gather(self, src: _Source, a: int, b: int) -> tuple[np.ndarray, np.ndarray]:
        """Valid entries in ``[a, b)``: (positions, -L)."""
        if not src.dirty:
            return src.pos[a:b], src.neg[a:b]
        ok = self._valid(src, a, b)
        return src.pos[a:b][ok], src.neg[a:b][ok]

    # ------------------------------------------------------------------ queries
    def top(self) -> float:
        """Highest ``L`` among positions in the pool (cached between pops/pushes)."""
        if self._top is None:
            best = -math.inf
            for src in self.sources:
                self._advance(src)
                if src.head < src.n:
                    best = max(best, -float(src.neg[src.head]))
            self._top = best
        return self._top

    def _remove_prefix(self, src: _Source, count: int, end: int) -> None:
        """Entries popped from ``src`` are the first ``count`` valid ones in ``[head, end)``."""
        if count == 0:
            return
        if not src.dirty:
            src.head += count
        # dirty sources advance lazily (popped entries are now invalid)

    def pop(self, thr: float, max_debt: float = math.inf) -> np.ndarray:
        """Remove and return positions with ``L > thr`` in priority order (see module doc)."""
        if max_debt <= 0:
            return _EMPTY
        parts: list[tuple[_Source, int]] = []
        for src in self.sources:
            self._advance(src)
            hi = int(np.searchsorted(src.neg, -thr, side="left"))
            if hi > src.head:
                parts.append((src, hi))
        if not parts:
            return _EMPTY
        debt = self.ledger.d
        if len(parts) == 1:
            src, hi = parts[0]
            if math.isinf(max_debt):
                pos, _ = self._gather(src, src.head, hi)
                take = int(pos.size)
            else:
                pos, take = self._limited_single(src, hi, max_debt)
            out = pos[:take]
            if src.dirty or src.ver is not None:
                self.in_pool[out] = False
            else:  # a contiguous run of the main source
                self.in_pool[src.head : src.head + take] = False
            self._remove_prefix(src, take, hi)
            self._top = None
            return out
        # several sources: merge by (-L, index)
        main_src, main_hi = parts[0]
        others = parts[1:] if main_src is self.sources[0] else parts
        if main_src is not self.sources[0]:
            main_src = None
        o_pos, o_neg, o_tag = [], [], []
        for k, (src, hi) in enumerate(others):
            pp, nn = self._gather(src, src.head, hi)
            o_pos.append(pp)
            o_neg.append(nn)
            o_tag.append(np.full(pp.size, k + 1, dtype=np.int64))
        chunk = self._CHUNK
        while True:
            if main_src is not None:
                end = main_hi if math.isinf(max_debt) else min(main_hi, main_src.head + chunk)
                m_pos, m_neg = self._gather(main_src, main_src.head, end)
                truncated = end < main_hi
            else:
                m_pos, m_neg = _EMPTY, np.empty(0)
                truncated = False
            pos = np.concatenate([m_pos, *o_pos])
            neg = np.concatenate([m_neg, *o_neg])
            tag = np.concatenate([np.zeros(m_pos.size, dtype=np.int64), *o_tag])
            order = np.lexsort((pos, neg))
            pos, neg, tag = pos[order], neg[order], tag[order]
            if truncated:
                # only the prefix up to the last main entry gathered is certainly complete
                mains = np.flatnonzero(tag == 0)
                last = int(mains[-1]) + 1 if mains.size else 0
                pos, neg, tag = pos[:last], neg[:last], tag[:last]
            take = _cut(pos, debt, max_debt)
            if not truncated or take < pos.size:
                break
            chunk *= 4
        out = pos[:take]
        self.in_pool[out] = False
        taken_tags = np.bincount(tag[:take], minlength=len(others) + 1)
        if main_src is not None:
            self._remove_prefix(main_src, int(taken_tags[0]), main_hi)
        for k, (src, hi) in enumerate(others):
            self._remove_prefix(src, int(taken_tags[k + 1]), hi)
        self._top = None
        return out

    def _limited_single(self, src: _Source, hi: int, max_debt: float) -> tuple[np.ndarray, int]:
        chunk = self._CHUNK
        debt = self.ledger.d
        while True:
            end = min(hi, src.head + chunk)
            pos, _ = self._gather(src, src.head, end)
            take = _cut(pos, debt, max_debt)
            if end == hi or take < pos.size:
                return pos, take
            chunk *= 4

    def pop_range(self, lo: float, hi: float) -> np.ndarray:
        """Remove and return positions with ``lo < L <= hi`` in priority order."""
        pos_l, neg_l = [], []
        for src in self.sources:
            self._advance(src)
            a = max(src.head, int(np.searchsorted(src.neg, -hi, side="left")))
            b = int(np.searchsorted(src.neg, -lo, side="left"))
            if b <= a:
                continue
            pp, nn = self._gather(src, a, b)
            if pp.size == 0:
                continue
            pos_l.append(pp)
            neg_l.append(nn)
            if a == src.head and not src.dirty:
                src.head = b
            else:
                src.dirty = True
        if not pos_l:
            return _EMPTY
        if len(pos_l) == 1:
            out = pos_l[0]
        else:
            pos = np.concatenate(pos_l)
            neg = np.concatenate(neg_l)
            out = pos[np.lexsort((pos, neg))]
        self.in_pool[out] = False
        self._top = None
        return out

    # ------------------------------------------------------------------ insertion
    def push(self, idx: np.ndarray) -> None:
        """(Re)insert positions with their current liquidation price."""
        if idx.size == 0:
            return
        led = self.ledger
        keys = liquidation_price(led.c[idx], led.d[idx], led.lt[idx])
        keep = keys > 0
        idx, keys = idx[keep], keys[keep]
        if idx.size == 0:
            return
        self.version[idx] += 1
        self.in_pool[idx] = True
        neg = -keys
        order = np.lexsort((idx, neg))
        self.sources.append(_Source(neg[order], idx[order], self.version[idx][order]))
        self._merge()
        self._top = None

    def _live(self, src: _Source) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ok = self._valid(src, src.head, src.n)
        sl = slice(src.head, src.n)
        assert src.ver is not None
        return src.neg[sl][ok], src.pos[sl][ok], src.ver[sl][ok]

    def _merge(self) -> None:
        srcs = self.sources
        while len(srcs) > 2 and 2 * (srcs[-1].n - srcs[-1].head) >= srcs[-2].n - srcs[-2].head:
            b = srcs.pop()
            a = srcs.pop()
            na, pa, va = self._live(a)
            nb, pb, vb = self._live(b)
            neg = np.concatenate([na, nb])
            pos = np.concatenate([pa, pb])
            ver = np.concatenate([va, vb])
            order = np.lexsort((pos, neg))
            srcs.append(_Source(neg[order], pos[order], ver[order]))
        # drop exhausted buffers (never the main source)
        self.sources = [srcs[0]] + [s for s in srcs[1:] if s.head < s.n]
