"""Tuning by the gradient: Adam on the soft prompt, through the objective's torch form.

The objective is differentiable in the soft prompt where it reads the options' probabilities
(:meth:`culturetune.tuning.objective.Objective.value_and_grad`), so where the model's weights
are local one backward pass gives the direction that a population search must find by trial.
Adam (``torch.optim.Adam``, as PEFT's prompt tuning uses; Lester et al. 2021) moves the prompt
in the coordinates of the search space (``prompt = start + z x embedding std x scale``), so its
learning rate is a share of the embedding table's standard deviation.

Every step evaluates the current prompt (its exact training objective, mass floor included,
recorded like a derivative-free candidate) and then moves it. The budget is counted in
forward-equivalents: a step costs its floating-point operations over those of one candidate's
forward pass on the training prompts, counted once at the start of a run with
``torch.utils.flop_counter`` (a count, not a timing, so that the steps a budget buys do not move
with the machine's load) and kept in the checkpoint. Adam's position and moments are kept there
too, so that a resumed run ends where an uninterrupted one would have.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from culturetune.core.errors import CultureTuneError
from culturetune.tuning.checkpoint import Record
from culturetune.tuning.config import TuneConfig
from culturetune.tuning.objective import Objective, SearchSpace


class Descent:
    """Adam's steps on one prompt: :meth:`step` evaluates the current prompt and moves it."""

    def __init__(self, objective: Objective, space: SearchSpace, config: TuneConfig,
                 record: Record) -> None:
        self.objective, self.space, self.config, self.record = objective, space, config, record
        self.z = torch.zeros(space.dim, dtype=torch.float32, requires_grad=True)
        self.adam = torch.optim.Adam([self.z], lr=config.lr)
        if record.state:
            self._restore(record.state)
        elif len(record.loss):
            raise CultureTuneError("this run's checkpoint lacks Adam's state (was it made by "
                                   "another optimizer?); start a new run")

    def steps_for(self, budget: float) -> int:
        """Steps a budget of forward-equivalents buys (at least one)."""
        return max(1, math.floor(budget / self.record.cost + 1e-9))

    def remaining(self) -> int:
        return self.steps_for(self.config.budget) - len(self.record.steps)

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate the current prompt and take one Adam step; returns the evaluated vector
        ``[1, dim]`` and its training objective ``[1]``. The first step of a run also counts
        the step's cost in forward-equivalents (``record.cost``)."""
        z = self.z.detach().numpy().copy()
        prompt = self.space.prompts(z)[0]
        if not len(self.record.loss):
            value, grad = self._counted(prompt)
        else:
            value, grad = self._value_and_grad(prompt)
        self.adam.zero_grad(set_to_none=True)
        self.z.grad = grad.reshape(-1).float() * float(self.space.step)
        self.adam.step()
        self.record.state = self.state()
        return z[None], np.array([value])

    def _value_and_grad(self, prompt: torch.Tensor) -> tuple[float, torch.Tensor]:
        return self.objective.value_and_grad(prompt, self.config.temperature,
                                             self.config.grad_chunk)

    def _counted(self, prompt: torch.Tensor) -> tuple[float, torch.Tensor]:
        """The first step, with its cost counted against one candidate's forward pass."""
        from torch.utils.flop_counter import FlopCounterMode

        with FlopCounterMode(display=False) as forward:
            self.objective(prompt[None])
        with FlopCounterMode(display=False) as both:
            out = self._value_and_grad(prompt)
        self.record.cost = round(both.get_total_flops() / max(forward.get_total_flops(), 1), 6)
        return out

    def state(self) -> dict[str, torch.Tensor]:
        """Adam's position, moments and step count (saved in the checkpoint)."""
        s = self.adam.state.get(self.z, {})
        out = {"z": self.z.detach().clone()}
        for key in ("exp_avg", "exp_avg_sq"):
            if key in s:
                out[key] = s[key].detach().clone()
        if "step" in s:
            out["step"] = torch.as_tensor(s["step"], dtype=torch.float32).reshape(1).clone()
        return out

    def _restore(self, state: dict[str, torch.Tensor]) -> None:
        with torch.no_grad():
            self.z.copy_(state["z"])
        if "step" in state:
            self.adam.state[self.z] = {
                "step": state["step"].reshape(()).clone(),
                "exp_avg": state["exp_avg"].clone(),
                "exp_avg_sq": state["exp_avg_sq"].clone(),
            }


__all__ = ["Descent"]
