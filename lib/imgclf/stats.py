"""Numbers over seeds, splits and folds: a summary (mean, sd, n, 95 % interval) and the paired
difference of two methods run on the same seeds or splits, with the verdict it allows.

A claim such as "the DBN is below the DNN" is printed only when the 95 % t-interval of the paired
differences excludes 0; otherwise the verdict is "tie" and the interval is shown::

    >>> d = paired([0.97, 0.96, 0.98], [0.95, 0.955, 0.97])
    >>> d.verdict()
    'tie'

Values stay numbers (:meth:`Summary.as_dict` for ``results.json``); text is made once, for
display, by :meth:`Summary.text` and :meth:`Paired.text`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as _st

CONFIDENCE = 0.95
DUST = 1e-7
"""A paired difference smaller than this is 0 (float32 carries about 7 digits)."""


@dataclass(frozen=True)
class Summary:
    """Mean, sample sd (ddof = 1), n and the 95 % t-interval of the mean (``lo``/``hi`` are NaN
    when n < 2: one run has no spread)."""

    mean: float
    sd: float
    n: int
    lo: float
    hi: float

    def as_dict(self) -> dict:
        return {"mean": self.mean, "sd": self.sd, "n": self.n, "ci95": [self.lo, self.hi]}

    def text(self, digits: int = 4) -> str:
        """``0.9680 ± 0.0026 (n=3)``; one run: ``0.9680 (n=1)``."""
        if self.n < 2:
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} ± {self.sd:.{digits}f} (n={self.n})"

    def __str__(self) -> str:  # how pandas shows and writes a Summary cell
        return self.text()

    def __format__(self, spec: str) -> str:
        return self.text(int(spec[1:-1]) if spec.startswith(".") and spec.endswith("f") else 4)


def summarize(values: Sequence[float]) -> Summary:
    """:class:`Summary` of ``values`` (NaNs are an error: a missing run must be said, not averaged)."""
    a = np.asarray(values, dtype=np.float64).ravel()
    if a.size == 0:
        raise ValueError("summarize() needs at least one value")
    if np.isnan(a).any():
        raise ValueError(f"summarize() got NaN among {a.tolist()}")
    n = int(a.size)
    mean = float(a.mean())
    if n < 2:
        return Summary(mean, float("nan"), n, float("nan"), float("nan"))
    sd = float(a.std(ddof=1))
    half = float(_st.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n)
    return Summary(mean, sd, n, mean - half, mean + half)


@dataclass(frozen=True)
class Paired:
    """The paired difference ``a - b`` over the same seeds or splits: its :class:`Summary`, and
    the verdict that summary allows."""

    a: str
    b: str
    diff: Summary

    def verdict(self, higher_is_better: bool = True) -> str:
        """``"beats"`` / ``"below"`` when the 95 % interval excludes 0, else ``"tie"`` (always
        ``"tie"`` for n < 2: a single number is not a difference)."""
        d = self.diff
        if d.n < 2 or not (d.lo > 0 or d.hi < 0):
            return "tie"
        better = d.lo > 0 if higher_is_better else d.hi < 0
        return "beats" if better else "below"

    def as_dict(self) -> dict:
        return {"a": self.a, "b": self.b, **{f"diff_{k}": v for k, v in self.diff.as_dict().items()},
                "verdict": self.verdict()}

    def text(self, digits: int = 4, higher_is_better: bool = True) -> str:
        """``DBN − DNN = −0.0033, 95 % CI [−0.0235, +0.0169] (n = 3): tie``."""
        d = self.diff
        ci = (f", 95 % CI [{d.lo:+.{digits}f}, {d.hi:+.{digits}f}]" if d.n >= 2 else "")
        return (f"{self.a} − {self.b} = {d.mean:+.{digits}f}{ci} (n = {d.n}): "
                f"{self.verdict(higher_is_better)}")


def paired(a: Sequence[float], b: Sequence[float], names: tuple[str, str] = ("a", "b")) -> Paired:
    """:class:`Paired` difference ``a[i] - b[i]``; ``a`` and ``b`` come from the same seeds or
    splits, in the same order."""
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"paired() needs runs on the same seeds or splits: {a.size} values against {b.size}")
    # metrics come as float32 (Keras) or float64 (scikit-learn): the same value read both ways differs by
    # ~1e-8, which is no difference (it would give a zero-width interval: "below" for a tie)
    d = a - b
    d[np.abs(d) < DUST] = 0.0
    return Paired(names[0], names[1], summarize(d))
