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
from typing import Any

import numpy as np
import torch

from culturetune.core.arrays import namespace
from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import Target, loss_batch
from culturetune.instrument.vsm import compute_indices_batch
from culturetune.model.loading import LoadedModel
from culturetune.reading.administer import run_survey
from culturetune.reading.answers import Readout, said_values
from culturetune.reading.survey import Survey, joint_scorer, read_many
from culturetune.tuning.config import TuneConfig
from culturetune.tuning.softprompt import initial_prompt

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
        return self.indices_of(read_many(self.surveys, prompts), prompts)

    def indices_of(self, readouts: Sequence[Readout],
                   prompts: torch.Tensor | None = None) -> tuple[list[Any], Any]:
        """:meth:`read` from readings already taken (numpy arrays or float64 tensors; the said
        reading also asks ``prompts`` for replies that leave the options)."""
        indices, mass = [], []
        for s, r in zip(self.surveys, readouts, strict=True):
            means = (said_values(s.said_all(r, prompts)[0]) if self.reading == "said"
                     else r.order_means(self.missing))
            c, o, n = means.shape
            ix = compute_indices_batch(means.reshape(c * o, n), self.constants, s.instrument)
            indices.append(ix.reshape(c, o, -1))
            mass.append(namespace(r.mass).mean(r.mass, axis=(1, 2)))
        xp = namespace(*mass)
        return indices, xp.mean(xp.stack(mass), axis=0)

    def view_losses(self, indices: list[Any]) -> Any:
        """The loss of each training view alone ``[candidates, views]``."""
        per = namespace(*indices).concat(indices, axis=1)
        c, v, d = per.shape
        return loss_batch(per.reshape(c * v, d), self.target, self.kind).reshape(c, v)

    def aggregated(self, indices: list[Any], temperature: float = 0.0) -> Any:
        """The views' losses aggregated (``pooled``, ``mean`` or ``worst``), without the mass
        penalty. ``temperature`` > 0 replaces the worst view by a smooth maximum
        (``t log sum exp(loss / t)``, in index points): a surrogate whose gradient weighs the
        views by how close each is to the worst, used for gradient steps only."""
        xp = namespace(*indices)
        if self.aggregate == "pooled":
            pooled = xp.mean(xp.concat(indices, axis=1), axis=1)
            return loss_batch(pooled, self.target, self.kind)
        per = self.view_losses(indices)
        if self.aggregate == "mean":
            return xp.mean(per, axis=1)
        top = xp.max(per, axis=1)
        if temperature <= 0:
            return top
        spread = xp.exp((per - top[:, None]) / temperature)
        return top + temperature * xp.log(xp.sum(spread, axis=1))

    def losses(self, prompts: torch.Tensor | None) -> tuple[np.ndarray, np.ndarray]:
        """The aggregated loss without the mass penalty, and the option mass, per candidate."""
        indices, mass = self.read(prompts)
        return self.aggregated(indices), mass

    def indices(self, prompts: torch.Tensor | None) -> np.ndarray:
        """The indices of the answers averaged over every training view."""
        return np.concatenate(self.read(prompts)[0], 1).mean(1)

    def penalty(self, mass: Any) -> Any:
        """:data:`MASS_PENALTY` per share of the floor lost (numpy or torch alike)."""
        if self.floor is None or self.floor <= 0:
            return mass * 0.0
        return MASS_PENALTY * namespace(mass).clip(self.floor - mass, 0.0, None) / self.floor

    def __call__(self, prompts: torch.Tensor | None) -> np.ndarray:
        loss, mass = self.losses(prompts)
        return loss + self.penalty(mass)

    def value_and_grad(
        self, prompt: torch.Tensor, temperature: float = 0.0, chunk: int | None = None,
    ) -> tuple[float, torch.Tensor]:
        """This objective at one prompt ``[tokens, hidden]`` (exactly what :meth:`__call__`
        gives it) and its gradient with respect to the prompt, through the same formulas on
        float64 tensors: the options' log-probabilities, their share, the order mapping, the
        missing rule, the indices, the loss, the aggregation (``worst`` as a smooth maximum at
        ``temperature`` for the gradient alone, 0 = its exact subgradient) and the mass floor.
        ``chunk``: prompts per backward pass (:meth:`ReplyScorer.value_and_grad`)."""
        if self.reading == "said":
            raise CultureTuneError("the said reading has no gradient; use a derivative-free "
                                   "optimizer (--optimizer pso, de or cma)")
        scorer = joint_scorer(self.surveys)

        def loss_of(logp: torch.Tensor, said: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
            readouts, at = [], 0
            for s in self.surveys:
                readouts.append(s.reading_from(logp[:, at : at + s.n_prompts],
                                               said[:, at : at + s.n_prompts], tensors=True))
                at += s.n_prompts
            indices, mass = self.indices_of(readouts)
            penalty = self.penalty(mass)
            exact = self.aggregated(indices) + penalty
            smooth = (self.aggregated(indices, temperature) + penalty
                      if self.aggregate == "worst" and temperature > 0 else exact)
            return smooth[0], exact[0]

        value, grad, _, _ = scorer.value_and_grad(prompt[None], loss_of, chunk)
        return float(value), grad[0]

    def describe(self) -> str:
        """The objective in words, e.g. ``worst of vsm2013, paraphrase x both orders``."""
        names = ", ".join(s.instrument.name for s in self.surveys)
        reading = "" if self.reading == "expected" else ", said answers"
        floor = "" if self.min_mass is None else f", option mass >= {self.min_mass:g} x plain"
        fmt = "" if self.survey.format == "number" else f", {self.survey.format} format"
        return (f"{self.aggregate} of {names} x {self.survey.orders_name} orders{fmt}{reading}"
                f"{floor}")


def planted_target(lm: LoadedModel, config: TuneConfig) -> Target:
    """The model's own indices under ``config.target_system`` (a system prompt), or with
    ``config.target_lead``'s token embeddings in the soft prompt's place (a point of the search
    space), read on the run's instrument in its option orders and format (expected reading, the
    run's constants): a target that a known prompt reaches, so that tuning toward it without
    that prompt is a positive control."""
    if config.target_lead is not None:
        soft = initial_prompt(lm, config.tokens, "text", config.target_lead)
        survey = Survey(lm, config.instrument, placement=config.placement,
                        orders=config.orders, format=config.format)
        where = (f"the text {config.target_lead!r} as {config.tokens} tokens at the soft "
                 f"prompt's place ({config.placement})")
    else:
        soft, where = None, f"the system prompt {config.target_system!r}"
        survey = Survey(lm, config.instrument, system=config.target_system,
                        orders=config.orders, format=config.format)
    result = run_survey(survey, soft=soft, constants=config.constants, missing=config.missing)
    if any(v is None for v in result.indices.values()):
        raise CultureTuneError("the planted target's indices could not all be read")
    return Target(name="planted", code=None, scores=dict(result.indices),
                  source=f"the model's own indices under {where} ({config.instrument}, "
                  f"{config.orders} orders, {config.format} format)")


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
