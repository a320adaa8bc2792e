"""Views of an instrument: option orders, mapping answers back to content order, calibration.

One administration of a multiple-choice instrument is a set of *views*: a wording × an option
order. A model that answers by position rather than content gives different answers when the
same options are listed in another order; reading the answers in every order of a balanced set
(each option shown in several positions), mapping each distribution back to option-content order
and averaging removes that position preference from the reading (Dominguez-Olmedo et al. 2023,
"Questioning the Survey Responses of Large Language Models"; Zheng et al. 2023, PriDe).

An order is a permutation ``order[j] = i``: the option at content index ``i`` (0-based, 0 = the
instrument's first option) is shown at position ``j`` and labelled ``j + 1`` (or letter ``j``).
Numpy, or torch tensors passed in (the formulas are written once: :mod:`culturetune.core.arrays`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from culturetune.core.arrays import as_float, constant, namespace
from culturetune.core.errors import CultureTuneError

#: Named order sets. ``shown``: as printed; ``reversed``: last option first; ``both``: the two;
#: ``cyclic``: every cyclic shift (each option once in each position); ``all``: every permutation.
ORDER_SETS: tuple[str, ...] = ("shown", "reversed", "both", "cyclic", "all")
#: What each set costs, in prompt sets per administration, for ``k`` options.
ORDER_NOTES = {
    "shown": "the options as printed (1 prompt set)",
    "reversed": "the options last to first (1 prompt set)",
    "both": "printed and reversed, averaged (2 prompt sets)",
    "cyclic": "every cyclic shift, averaged: each option once in each position (k prompt sets)",
    "all": "every permutation, averaged (k! prompt sets: 120 for 5 options, 24 for 4)",
}
#: Order sets too costly to evaluate for every candidate of a tuning run.
SURVEY_ONLY = ("all",)

Order = tuple[int, ...]


def check_orders(name: str, allowed: Sequence[str] = ORDER_SETS) -> str:
    """The order-set name, lower-cased, or an error naming the valid ones."""
    key = str(name).strip().lower()
    if key not in allowed:
        raise CultureTuneError(
            f"unknown option orders {name!r}; use one of {', '.join(allowed)}"
        )
    return key


def option_orders(name: str, k: int) -> list[Order]:
    """The permutations of a named order set for ``k`` options (``shown`` first where present)."""
    key = check_orders(name)
    ident = tuple(range(k))
    if key == "shown":
        return [ident]
    if key == "reversed":
        return [ident[::-1]]
    if key == "both":
        return [ident, ident[::-1]]
    if key == "cyclic":
        return [tuple((j + s) % k for j in range(k)) for s in range(k)]
    return list(itertools.permutations(range(k)))


def order_count(name: str, k: int) -> int:
    """How many prompt sets an order set costs for ``k`` options."""
    key = check_orders(name)
    return {"shown": 1, "reversed": 1, "both": 2, "cyclic": k}.get(key) or math.factorial(k)


def shown_options(options: Sequence[str], order: Order) -> list[str]:
    """The option texts in the order they are shown."""
    return [options[i] for i in order]


def to_content_order(probs: np.ndarray, orders: Sequence[Order]) -> np.ndarray:
    """Map ``[..., orders, items, k]`` shown-position probabilities to content order.

    Position ``j`` of order ``o`` holds option ``o[j]``, so ``content[..., o[j]] = shown[..., j]``.
    A numpy array or a torch tensor: the move is a product with each order's permutation matrix
    (exact: each value is multiplied by one and added to zeros), so that the tuning objective's
    gradient flows through this one definition.
    """
    if not hasattr(probs, "shape"):
        probs = np.asarray(probs)
    if probs.shape[-3] != len(orders):
        raise ValueError(f"expected {len(orders)} orders on axis -3, got shape "
                         f"{tuple(probs.shape)}")
    k = probs.shape[-1]
    perm = np.zeros((len(orders), k, k))
    for n, order in enumerate(orders):
        perm[n, np.arange(k), list(order)] = 1.0  # shown j -> content order[j]
    return probs @ constant(perm, probs)


def calibrate(probs: np.ndarray, content_free: np.ndarray) -> np.ndarray:
    """Contextual calibration (Zhao et al. 2021): divide by the content-free distribution.

    ``probs`` ``[..., k]`` is the model's distribution over shown positions for a real question;
    ``content_free`` ``[..., k]`` (broadcastable) is its distribution for the same format with
    the question replaced by content-free text, i.e. its answer-position prior. The result,
    ``probs / content_free`` renormalised, is what the question adds to that prior. A position
    with zero content-free probability keeps a tiny floor so that nothing divides by zero.
    """
    probs = as_float(probs)
    xp = namespace(probs)
    cf = xp.clip(as_float(content_free, probs), 1e-300, None)
    cf = cf / xp.sum(cf, axis=-1, keepdims=True)
    w = probs / cf
    return w / xp.sum(w, axis=-1, keepdims=True)


__all__ = [
    "ORDER_NOTES",
    "ORDER_SETS",
    "SURVEY_ONLY",
    "calibrate",
    "check_orders",
    "option_orders",
    "order_count",
    "shown_options",
    "to_content_order",
]
