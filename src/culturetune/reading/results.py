"""What one administration of the instrument gives: per-item results, the indices and the loss
against a target (beside the loss of answering every item uniformly)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from culturetune.instrument import formats
from culturetune.instrument.items import Instrument
from culturetune.instrument.targets import Loss, Target, loss
from culturetune.instrument.vsm import compute_indices, load_instrument


@dataclass
class ItemResult:
    var: str
    text: str
    probs: list[float]
    mass: float
    mean: float | None
    generated: str | None = None
    #: The item mean read in each order alone (option-content scale), orders as listed.
    order_means: list[float | None] = field(default_factory=list)
    #: Generated text in every order (``generate`` mode; ``said``: only where the first token
    #: was no option), orders as listed.
    generated_by_order: list[str | None] | None = None
    #: ``said``/``generate``: the share of orders in which the reply named an option.
    answered: float | None = None


@dataclass
class SurveyResult:
    """One administration of the instrument: per-item answers, indices and, if targeted, loss
    (with the loss of answering every item uniformly beside it)."""

    model: str
    instrument: str
    answers: str
    placement: str | None
    system: str | None
    orders: str
    order_list: list[list[int]]
    calibrated: bool
    constants: dict[str, float]
    items: list[ItemResult]
    indices: dict[str, float | None]
    target: Target | None = None
    loss: Loss | None = None
    uniform_loss: Loss | None = None
    prompt: str | None = None
    notes: list[str] = field(default_factory=list)
    #: The ``expected`` reading's rule for the probability off the options (MISSING_RULES).
    missing: str | None = None
    #: The answer format the items were asked in (culturetune.instrument.formats).
    format: str = formats.READ_FORMAT

    @property
    def answered(self) -> float | None:
        """``said``/``generate``: the share of replies (items x orders) that name an option."""
        shares = [it.answered for it in self.items if it.answered is not None]
        return float(np.mean(shares)) if shares else None

    @property
    def means(self) -> dict[str, float | None]:
        return {it.var: it.mean for it in self.items}

    @property
    def option_mass(self) -> float:
        """Mean over items of the raw probability the model put on the option tokens."""
        return float(sum(it.mass for it in self.items) / max(len(self.items), 1))

    @property
    def reverse(self) -> bool:
        return self.orders == "reversed"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = self.target.to_dict() if self.target else None
        d["loss"] = self.loss.to_dict() if self.loss else None
        d["uniform_loss"] = self.uniform_loss.to_dict() if self.uniform_loss else None
        d["means"] = self.means
        d["option_mass"] = self.option_mass
        d["answered"] = self.answered
        return d


def indices_from_means(
    means: Mapping[str, float | None], constants: Mapping[str, float], instrument: Instrument
) -> dict[str, float | None]:
    """The six indices; an index whose items lack an answer is ``None``."""
    filled = {k: (3.0 if v is None else v) for k, v in means.items()}
    out: dict[str, float | None] = dict(compute_indices(filled, constants, instrument))
    for f in instrument.formulas:
        if any(means.get(v) is None for v in f.vars()):
            out[f.index] = None
    return out


def target_loss(
    indices: Mapping[str, float | None], target: Target, kind: str = "l1"
) -> Loss | None:
    """Loss against the target, or ``None`` where a needed index is missing."""
    if any(indices.get(d) is None for d in target.dimensions):
        return None
    return loss({d: v for d, v in indices.items() if v is not None}, target, kind)


def uniform_indices(
    constants: Mapping[str, float], instrument: Instrument | str = "vsm2013"
) -> dict[str, float]:
    """The indices of answering every item uniformly (every item mean 3): each index is its C."""
    inst = load_instrument(instrument) if isinstance(instrument, str) else instrument
    return compute_indices(dict.fromkeys(inst.vars, 3.0), constants, inst)


def uniform_loss(
    target: Target, constants: Mapping[str, float], kind: str = "l1",
    instrument: Instrument | str = "vsm2013",
) -> Loss:
    """The loss of uniform answers: the baseline a reading has to beat to say anything."""
    return loss(uniform_indices(constants, instrument), target, kind)


__all__ = ["ItemResult", "SurveyResult", "indices_from_means", "target_loss", "uniform_indices",
           "uniform_loss"]
