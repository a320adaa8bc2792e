"""Small-sample statistics for benchmark accuracies: Wilson intervals and exact McNemar tests.

Both come from ``scipy.stats.binomtest``:

* the Wilson score interval (Wilson 1927), its ``proportion_ci(method="wilson")``, which behaves
  at k = 0, k = n and small n, where the normal "k/n ± z·se" interval does not;
* the exact McNemar test: a two-sided binomial test of the discordant pairs against p = 1/2
  (the same value as statsmodels' ``mcnemar(..., exact=True)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from scipy.stats import binomtest


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion of ``k`` successes in ``n`` trials.

    ``n = 0`` gives the uninformative interval ``(0.0, 1.0)``.
    """
    if n < 0 or not 0 <= k <= max(n, 0):
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    # Exact endpoints at the boundaries (avoids 1e-17 rounding noise).
    low = 0.0 if k == 0 else max(0.0, float(ci.low))
    high = 1.0 if k == n else min(1.0, float(ci.high))
    return low, high


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    Under the null hypothesis each discordant pair is equally likely to go either way, so
    ``min(b, c) ~ Binomial(b + c, 1/2)``; the p-value is that binomial test's (two-sided, at
    most 1). Taking the smaller count makes it exactly symmetric in ``b`` and ``c``. No
    discordant pairs gives 1.0.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    return float(binomtest(min(b, c), b + c, 0.5).pvalue)


@dataclass(frozen=True)
class Accuracy:
    """``k`` correct out of ``n`` with a Wilson interval; ``value`` is ``None`` when ``n = 0``."""

    k: int
    n: int
    value: float | None
    low: float
    high: float
    confidence: float = 0.95

    @property
    def half_width(self) -> float:
        """Half the interval's width: the "±" to keep in mind when reading ``value``."""
        return (self.high - self.low) / 2.0

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "n": self.n, "value": self.value, "low": self.low,
                "high": self.high, "confidence": self.confidence}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Accuracy:
        return cls(k=int(d["k"]), n=int(d["n"]),
                   value=None if d["value"] is None else float(d["value"]),
                   low=float(d["low"]), high=float(d["high"]),
                   confidence=float(d.get("confidence", 0.95)))


def accuracy(correct: Sequence[bool], confidence: float = 0.95) -> Accuracy:
    """Accuracy of a sequence of right/wrong outcomes, with its Wilson interval."""
    n = len(correct)
    k = sum(1 for x in correct if x)
    low, high = wilson_interval(k, n, confidence)
    return Accuracy(k=k, n=n, value=k / n if n else None, low=low, high=high,
                    confidence=confidence)


@dataclass(frozen=True)
class Comparison:
    """Paired comparison of two conditions on the same items.

    ``b``: items A got right and B wrong; ``c``: items A got wrong and B right;
    ``p_value``: exact McNemar test of b against c.
    """

    n: int
    b: int
    c: int
    p_value: float

    @property
    def difference(self) -> float | None:
        """Accuracy of B minus accuracy of A (``(c - b) / n``)."""
        return (self.c - self.b) / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "b": self.b, "c": self.c, "difference": self.difference,
                "p_value": self.p_value, "test": "exact McNemar (two-sided)"}


def compare(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> Comparison:
    """Exact McNemar comparison of condition B against condition A on the same items."""
    if len(a_correct) != len(b_correct):
        raise ValueError(f"paired outcomes must have the same length, got {len(a_correct)} "
                         f"and {len(b_correct)}")
    b = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if x and not y)
    c = sum(1 for x, y in zip(a_correct, b_correct, strict=True) if y and not x)
    return Comparison(n=len(a_correct), b=b, c=c, p_value=mcnemar_exact(b, c))
