"""Wilson intervals, exact McNemar tests, accuracies and paired comparisons."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from culturetune.core.stats import (
    Accuracy,
    Comparison,
    accuracy,
    compare,
    mcnemar_exact,
    wilson_interval,
)


@pytest.mark.parametrize(
    ("k", "n", "low", "high"),
    [
        (8, 10, 0.4902, 0.9433),  # textbook example (e.g. Newcombe 1998, Agresti & Coull)
        (0, 10, 0.0, 0.2775),
        (10, 10, 0.7225, 1.0),
        (5, 10, 0.2366, 0.7634),
        (1, 20, 0.0089, 0.2361),
        (30, 59, 0.3844, 0.6316),
    ],
)
def test_wilson_known_values(k: int, n: int, low: float, high: float) -> None:
    lo, hi = wilson_interval(k, n)
    assert lo == pytest.approx(low, abs=5e-5)
    assert hi == pytest.approx(high, abs=5e-5)


def test_wilson_confidence_level_widens_interval() -> None:
    lo95, hi95 = wilson_interval(8, 10)
    lo99, hi99 = wilson_interval(8, 10, confidence=0.99)
    assert lo99 < lo95 and hi99 > hi95
    assert wilson_interval(8, 10, confidence=0.99) == pytest.approx((0.4008, 0.9599), abs=5e-5)


def test_wilson_empty_and_bad_input() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    for k, n in [(-1, 5), (6, 5), (1, -1)]:
        with pytest.raises(ValueError):
            wilson_interval(k, n)
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence=1.0)


@given(st.integers(0, 400).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_wilson_contains_estimate(kn: tuple[int, int]) -> None:
    k, n = kn
    lo, hi = wilson_interval(k, n)
    assert 0.0 <= lo <= hi <= 1.0
    if n:
        assert lo <= k / n <= hi
        # symmetric under swapping successes and failures
        lo2, hi2 = wilson_interval(n - k, n)
        assert lo2 == pytest.approx(1 - hi, abs=1e-12) and hi2 == pytest.approx(1 - lo, abs=1e-12)


def test_wilson_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 17), (3, 17), (17, 17), (23, 41), (40, 59)]:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson_interval(k, n) == pytest.approx((ci.low, ci.high), abs=1e-9)


@pytest.mark.parametrize(
    ("b", "c", "p"),
    [
        (1, 6, 0.125),  # 2 * (1 + 7) / 2**7
        (0, 0, 1.0),
        (0, 5, 0.0625),  # 2 / 2**5
        (3, 3, 1.0),
        (2, 10, 0.0385742),  # 2 * (1 + 12 + 66) / 2**12
        (0, 1, 1.0),
    ],
)
def test_mcnemar_known_values(b: int, c: int, p: float) -> None:
    assert mcnemar_exact(b, c) == pytest.approx(p, rel=1e-5)
    assert mcnemar_exact(c, b) == mcnemar_exact(b, c)


@given(st.integers(0, 300), st.integers(0, 300))
def test_mcnemar_is_a_symmetric_probability(b: int, c: int) -> None:
    p = mcnemar_exact(b, c)
    assert 0.0 < p <= 1.0
    assert p == mcnemar_exact(c, b)


def test_mcnemar_matches_scipy() -> None:
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(1, 6), (4, 9), (12, 3), (20, 21), (0, 7)]:
        assert mcnemar_exact(b, c) == pytest.approx(stats.binomtest(b, b + c).pvalue, rel=1e-9)


def test_mcnemar_rejects_negative_counts() -> None:
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_accuracy() -> None:
    a = accuracy([True] * 8 + [False] * 2)
    assert (a.k, a.n, a.value) == (8, 10, 0.8)
    assert (a.low, a.high) == pytest.approx((0.4902, 0.9433), abs=5e-5)
    assert a.half_width == pytest.approx((a.high - a.low) / 2)
    assert Accuracy.from_dict(a.to_dict()) == a


def test_accuracy_of_nothing() -> None:
    a = accuracy([])
    assert (a.k, a.n, a.value, a.low, a.high) == (0, 0, None, 0.0, 1.0)
    assert a.to_dict()["value"] is None


def test_compare_counts_discordant_pairs() -> None:
    plain = [True, True, False, False, True, False, False, False]
    tuned = [True, False, True, True, True, True, True, True]
    cmp = compare(plain, tuned)
    assert (cmp.n, cmp.b, cmp.c) == (8, 1, 5)
    assert cmp.p_value == pytest.approx(mcnemar_exact(1, 5))
    assert cmp.difference == pytest.approx((5 - 1) / 8)
    d = cmp.to_dict()
    assert d["b"] == 1 and d["c"] == 5 and "McNemar" in d["test"]
    assert compare(tuned, plain).b == 5


def test_compare_edge_cases() -> None:
    assert compare([], []) == Comparison(n=0, b=0, c=0, p_value=1.0)
    assert compare([], []).difference is None
    with pytest.raises(ValueError):
        compare([True], [True, False])
    same = compare([True, False], [True, False])
    assert same.p_value == 1.0 and not math.isnan(same.p_value)
