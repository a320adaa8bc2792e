"""What a tuning run minimises: the search space that maps optimizer vectors to soft prompts
(the full matrix or a random linear subspace), and the objective that scores a population of
prompts in one batched survey per wording (:class:`Objective`, :func:`make_objective`).

The subspace follows Black-Box Tuning (Sun et al. 2022): ``prompt = initial + A @ z`` with ``A``
Gaussian, scaled so that a standard-normal ``z`` moves each coordinate by about one
embedding-table standard deviation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch

from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import Target, loss_batch
from culturetune.instrument.vsm import compute_indices_batch
from culturetune.model.loading import LoadedModel
from culturetune.reading.answers import said_values
from culturetune.reading.batch import Survey, read_many
from culturetune.reading.survey import run_survey
from culturetune.tuning.config import TuneConfig

#: Index points added per unit of option mass lost below the ``min_mass`` floor (as a share of the
#: floor): far more than any loss difference, so that the floor acts as a constraint.
MASS_PENALTY = 100.0


class SearchSpace:
    """Maps optimizer vectors ``z`` (``[candidates, dim]``) to prompts ``[candidates, T, H]``."""

    def __init__(
        self, start: torch.Tensor, dim: int | None, std: float, seed: int, scale: float = 1.0
    ) -> None:
        self.start = start.float()
        size = start.numel()
        self.dim = size if dim is None else dim
        step = std * scale
        if dim is None:
            self.matrix = None
            self.step = step
        else:
            gen = torch.Generator().manual_seed(seed + 7919)
            self.matrix = torch.randn(size, dim, generator=gen) * (step / math.sqrt(dim))

    def prompts(self, z: np.ndarray) -> torch.Tensor:
        zt = torch.as_tensor(np.atleast_2d(z), dtype=torch.float32)
        delta = zt * self.step if self.matrix is None else zt @ self.matrix.T
        return self.start[None] + delta.view(zt.shape[0], *self.start.shape)


class Objective:
    """Loss of each candidate prompt against the target, one batched survey per wording.

    Each survey reads every item in each of its option orders; every (wording, order) is a
    training *view*. ``aggregate`` (:data:`culturetune.core.choices.OBJECTIVES`) combines the
    views: ``pooled`` scores the answers averaged over them (in option-content order, so that
    position cannot win), ``mean`` and ``worst`` score each view alone and take the mean or the
    largest loss. ``min_mass`` (a share of the plain model's option mass) adds
    :data:`MASS_PENALTY` per share of the floor lost, so that pushing probability off the options
    cannot win either.
    """

    def __init__(
        self, surveys: Survey | Sequence[Survey], target: Target, constants: dict[str, float],
        kind: str = "l1", *, aggregate: str = "pooled", reading: str = "expected",
        missing: str = "renormalise", min_mass: float | None = None,
    ) -> None:
        self.surveys = [surveys] if isinstance(surveys, Survey) else list(surveys)
        self.survey = self.surveys[0]
        self.target, self.constants, self.kind = target, constants, kind
        self.aggregate, self.reading, self.missing = aggregate, reading, missing
        self.min_mass = min_mass
        self.floor: float | None = None
        if min_mass is not None:
            self.floor = min_mass * float(self.read(None)[1][0])

    def read(self, prompts: torch.Tensor | None) -> tuple[list[np.ndarray], np.ndarray]:
        """Indices ``[candidates, orders, 6]`` of each wording's views, and each candidate's
        option mass (mean over all training prompts)."""
        indices, mass = [], []
        for s, r in zip(self.surveys, read_many(self.surveys, prompts), strict=True):
            means = (said_values(s.said_all(r, prompts)[0]) if self.reading == "said"
                     else r.order_means(self.missing))
            c, o, n = means.shape
            ix = compute_indices_batch(means.reshape(c * o, n), self.constants, s.instrument)
            indices.append(ix.reshape(c, o, -1))
            mass.append(r.mass.mean((1, 2)))
        return indices, np.mean(mass, 0)

    def view_losses(self, indices: list[np.ndarray]) -> np.ndarray:
        """The loss of each training view alone ``[candidates, views]``."""
        per = np.concatenate(indices, 1)
        c, v, d = per.shape
        return loss_batch(per.reshape(c * v, d), self.target, self.kind).reshape(c, v)

    def losses(self, prompts: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        """The aggregated loss without the mass penalty, and the option mass, per candidate."""
        indices, mass = self.read(prompts)
        if self.aggregate == "pooled":
            pooled = np.concatenate(indices, 1).mean(1)
            return loss_batch(pooled, self.target, self.kind), mass
        per = self.view_losses(indices)
        return (per.max(1) if self.aggregate == "worst" else per.mean(1)), mass

    def indices(self, prompts: torch.Tensor | None) -> np.ndarray:
        """The indices of the answers averaged over every training view."""
        return np.concatenate(self.read(prompts)[0], 1).mean(1)

    def penalty(self, mass: np.ndarray) -> np.ndarray:
        if self.floor is None or self.floor <= 0:
            return np.zeros_like(mass)
        return MASS_PENALTY * np.maximum(0.0, self.floor - mass) / self.floor

    def __call__(self, prompts: torch.Tensor | None) -> np.ndarray:
        loss, mass = self.losses(prompts)
        return loss + self.penalty(mass)

    def describe(self) -> str:
        """The objective in words, e.g. ``worst of vsm2013, paraphrase x both orders``."""
        names = ", ".join(s.instrument.name for s in self.surveys)
        reading = "" if self.reading == "expected" else ", said answers"
        floor = "" if self.min_mass is None else f", option mass >= {self.min_mass:g} x plain"
        fmt = "" if self.survey.format == "number" else f", {self.survey.format} format"
        return (f"{self.aggregate} of {names} x {self.survey.orders_name} orders{fmt}{reading}"
                f"{floor}")


def planted_target(lm: LoadedModel, config: TuneConfig) -> Target:
    """The model's own indices under ``config.target_system``, read on the run's instrument in
    its option orders and format (expected reading, the run's constants): a target that a known
    prompt reaches, so that tuning toward it without that prompt is a positive control."""
    survey = Survey(lm, config.instrument, system=config.target_system, orders=config.orders,
                    format=config.format)
    result = run_survey(survey, constants=config.constants, missing=config.missing)
    if any(v is None for v in result.indices.values()):
        raise CultureTuneError("the planted target's indices could not all be read")
    text = config.target_system
    return Target(name="planted", code=None, scores=dict(result.indices),
                  source=f"the model's own indices under the system prompt {text!r} "
                  f"({config.instrument}, {config.orders} orders, {config.format} format)")


def make_objective(lm: LoadedModel, config: TuneConfig) -> Objective:
    """The run's objective on a loaded model (its first survey at ``objective.survey``): what
    the local loop calls on each population, and what each Ray worker calls on its share."""
    surveys = [Survey(lm, w, system=config.system, placement=config.placement,
                      orders=config.orders, calibrate=config.calibrate, format=config.format)
               for w in config.wordings]
    return Objective(surveys, config.target, config.constants, config.loss,
                     aggregate=config.objective, reading=config.reading,
                     missing=config.missing, min_mass=config.min_mass)


#: Scores a population of prompts ``[candidates, tokens, hidden]``: its losses in candidate
#: order (``tune(evaluate=...)``; the executors' Ray population scorer is one).
Evaluate = Callable[[torch.Tensor], np.ndarray]


__all__ = ["MASS_PENALTY", "Evaluate", "Objective", "SearchSpace", "make_objective",
           "planted_target"]
