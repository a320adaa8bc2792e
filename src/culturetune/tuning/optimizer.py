"""The derivative-free optimizer (nevergrad's ask/tell): made from a run's settings, and brought
back to a recorded run's state by replaying it, without the model."""

from __future__ import annotations

from typing import Any

import numpy as np

from culturetune.core.errors import CultureTuneError
from culturetune.tuning.checkpoint import Record
from culturetune.tuning.config import TuneConfig


def make_optimizer(config: TuneConfig, dim: int) -> Any:
    """A nevergrad optimizer over ``R^dim`` seeded from the config."""
    import nevergrad as ng

    param = ng.p.Array(shape=(dim,))
    param.random_state = np.random.RandomState(config.seed)
    pop = config.population
    factory = {
        "de": lambda: ng.families.DifferentialEvolution(popsize=pop),
        "cma": lambda: ng.families.ParametrizedCMA(popsize=pop),
        "pso": lambda: ng.families.ConfPSO(popsize=pop),
        "random": lambda: ng.optimizers.RandomSearch,
    }[config.optimizer]()
    return factory(parametrization=param, budget=config.budget, num_workers=pop)


def replay(optimizer: Any, record: Record) -> None:
    """Bring a fresh optimizer to the state it had after the recorded steps."""
    at = 0
    for n in record.steps:
        cands = [optimizer.ask() for _ in range(n)]
        z = np.stack([c.value for c in cands])
        if not np.allclose(z, record.z[at : at + n], rtol=0, atol=1e-9):
            raise CultureTuneError(
                "cannot resume: the optimizer does not replay the recorded run (was it made with "
                "other settings or another nevergrad version?); start a new run"
            )
        for c, value in zip(cands, record.loss[at : at + n], strict=True):
            optimizer.tell(c, float(value))
        at += n


__all__ = ["make_optimizer", "replay"]
