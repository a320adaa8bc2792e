"""Reading an item's answer from a survey's scores, model-free: the result of one read
(:class:`Readout`, every candidate in every order), the rules for the probability off the
options, and the values of what a model said."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from culturetune.core.arrays import constant, namespace
from culturetune.core.choices import MISSING_RULES
from culturetune.core.errors import CultureTuneError
from culturetune.instrument.orders import Order
from culturetune.model.replies import OFF
from culturetune.reading.prompts import N_OPTIONS

#: A ``said`` answer that is not an option: the greedy reply named no option (counted, and read
#: as the middle answer in losses, never dropped).
NO_ANSWER = OFF


@dataclass
class Readout:
    """A survey's answers: ``by_order`` ``[candidates, orders, items, 5]`` in option-content
    order (calibrated if asked), ``mass`` ``[candidates, orders, items]`` raw option mass,
    ``said`` ``[candidates, orders, items]`` the option (content index) whose reply form the
    greedy path through the options' tokens spells, ``NO_ANSWER`` where the path leaves every
    option (what the model says is this path with a generated fallback there:
    :meth:`culturetune.reading.survey.Survey.said_all`)."""

    orders: list[Order]
    by_order: np.ndarray
    mass: np.ndarray
    said: np.ndarray

    def subset(self, at: Sequence[int]) -> Readout:
        """The reading of the orders at positions ``at`` alone."""
        at = list(at)
        return Readout([self.orders[i] for i in at], self.by_order[:, at], self.mass[:, at],
                       self.said[:, at])

    @property
    def probs(self) -> np.ndarray:
        """``[candidates, items, 5]``: the distributions averaged over the orders."""
        return self.by_order.mean(1)

    def order_means(self, missing: str = "renormalise") -> np.ndarray:
        """Expected item means ``[candidates, orders, items]`` in each order alone, under the
        rule for the probability off the options (:data:`MISSING_RULES`)."""
        values = constant(np.arange(1, N_OPTIONS + 1, dtype=float), self.by_order)
        return apply_missing(self.by_order @ values, self.mass, missing)


def check_missing(rule: str) -> str:
    """The rule ``rule`` names (``renormalize`` spelled either way), or an error naming them."""
    key = str(rule).strip().lower()
    if key == "renormalize":
        key = "renormalise"
    if key not in MISSING_RULES:
        raise CultureTuneError(f"unknown --missing {rule!r}; use one of {', '.join(MISSING_RULES)}")
    return key


def apply_missing(means: np.ndarray, mass: np.ndarray, missing: str) -> np.ndarray:
    """Item means read from the options' share (``renormalise``), or with the probability off
    the options counted as the middle answer (``neutral``). Numpy or torch alike."""
    if check_missing(missing) == "renormalise":
        return means
    middle = (N_OPTIONS + 1) / 2
    m = namespace(mass).clip(mass, 0.0, 1.0)
    return m * means + (1.0 - m) * middle


def said_values(said: np.ndarray) -> np.ndarray:
    """Content indices (or ``NO_ANSWER``) as answers 1-5; a non-answer reads as the middle."""
    said = np.asarray(said)
    return np.where(said == NO_ANSWER, (N_OPTIONS + 1) / 2, said + 1.0)


def item_means(probs: np.ndarray, mode: str = "expected") -> np.ndarray:
    """Item scores from option probabilities: probability-weighted mean or most likely option."""
    values = np.arange(1, N_OPTIONS + 1, dtype=float)
    if mode == "expected":
        return probs @ values
    if mode == "argmax":
        return probs.argmax(-1) + 1.0
    raise CultureTuneError(f"unknown answer mode {mode!r} here; use expected or argmax")


def or_no_answer(value: int | None) -> int:
    """``NO_ANSWER`` for a reply that names no option (``None``), else the option."""
    return NO_ANSWER if value is None else value


__all__ = ["MISSING_RULES", "NO_ANSWER", "Readout", "apply_missing", "check_missing", "item_means",
           "or_no_answer", "said_values"]
