"""A tuning run's settings (:class:`TuneConfig`), checked before anything loads, and how a run
folder's ``run.json`` gives them back for ``--resume``."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from culturetune.core import defaults, inputs
from culturetune.core.choices import (
    GRADIENT_OPTIMIZERS,
    INITS,
    OBJECTIVES,
    OPTIMIZERS,
    READINGS,
)
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import read_json
from culturetune.instrument.formats import check_format
from culturetune.instrument.orders import ORDER_SETS, SURVEY_ONLY
from culturetune.instrument.targets import Target
from culturetune.instrument.vsm import instrument_key, load_instrument, parse_constants
from culturetune.reading.answers import check_missing
from culturetune.reading.prompts import check_instrument_format, check_placement
from culturetune.reading.survey import DEFAULT_ORDERS

RUN_FILE = "run.json"
#: The optimizer ``tune`` uses unless told otherwise: ``auto`` is Adam, or the derivative-free
#: default where Adam cannot run (:func:`resolve_optimizer`; culturetune.core.defaults).
DEFAULT_OPTIMIZER = "auto"


def resolve_optimizer(optimizer: str, reading: str = "expected", spread: bool = False) -> str:
    """``auto`` as the optimizer it stands for: Adam (``defaults.OPTIMIZER``), or the
    derivative-free default where Adam cannot run: the ``said`` reading (no gradient) or a
    population ``spread`` over Ray workers. Any other name is returned as it is."""
    if optimizer != "auto":
        return optimizer
    if reading == "said" or spread:
        return defaults.DERIVATIVE_FREE_OPTIMIZER
    return defaults.OPTIMIZER


def default_budget(optimizer: str) -> int:
    """The forward-equivalents a run gets when ``--budget`` is not given: 60 for a gradient
    optimizer, 640 for a derivative-free one (culturetune.core.defaults)."""
    return defaults.GRADIENT_BUDGET if optimizer in GRADIENT_OPTIMIZERS else defaults.BUDGET
#: Option orders the objective reads answers in (:mod:`culturetune.instrument.orders`): ``shown``
#: is the items as printed; ``both`` averages each item's answer over the printed and the reversed
#: order, so that a prompt cannot win by favouring a position; ``cyclic`` over all five shifts.
ORDERS = tuple(o for o in ORDER_SETS if o not in SURVEY_ONLY)


@dataclass
class TuneConfig:
    """Everything that determines a tuning run (with the model, the seed makes it reproducible)."""

    target: Target
    model: str = ""
    tokens: int = 5
    placement: str = "answer"
    #: ``auto``: ``lead`` for answer-placed prompts in the words format, else ``vocab``
    #: (culturetune.tuning.softprompt.resolve_init); the run folder keeps what it resolved to.
    init: str = "auto"
    init_text: str | None = None
    #: Dimension of the random subspace a derivative-free search explores (``None``: the whole
    #: prompt); ``auto``: 64 for a derivative-free optimizer, the whole prompt for Adam.
    subspace: int | str | None = "auto"
    #: An optimizer of :data:`OPTIMIZERS`, or ``auto`` (resolved by :meth:`validate`).
    optimizer: str = DEFAULT_OPTIMIZER
    #: Forward-equivalents in all; ``None``: :func:`default_budget` of the optimizer.
    budget: int | None = None
    population: int = 16
    seed: int = 0
    constants: dict[str, float] = field(default_factory=lambda: parse_constants(None))
    loss: str = "l1"
    instrument: str = "vsm2013"
    system: str | None = None
    scale: float = 1.0
    orders: str = DEFAULT_ORDERS
    calibrate: bool = False
    #: Wordings (bundled names or instrument files) to check the prompt on; never tuned on.
    validate_instruments: list[str] = field(default_factory=list)
    #: More wordings tuned on, beside ``instrument`` (each read in every order of ``orders``).
    train_instruments: list[str] = field(
        default_factory=lambda: list(defaults.TRAIN_INSTRUMENTS))
    objective: str = defaults.OBJECTIVE
    reading: str = "expected"
    missing: str = defaults.MISSING
    #: Option-mass floor, as a share of the plain model's mass on the training views.
    min_mass: float | None = defaults.MIN_MASS
    #: The answer format (culturetune.instrument.formats); ``auto`` is resolved from the model
    #: check when the run starts, and the run folder keeps the format it resolved to.
    format: str = defaults.FORMAT
    #: A planted target: the target is the model's own indices under this system prompt (read
    #: on ``instrument`` in ``orders`` and ``format``, expected reading), measured when the run
    #: starts; the run then tunes without it. A target known to be reachable by a prompt.
    target_system: str | None = None
    #: A planted target inside the search space: the model's own indices with this text's token
    #: embeddings (cut or repeated to ``tokens``) in the soft prompt's own place, so that one
    #: point of the space reaches it exactly.
    target_lead: str | None = None
    #: Adam's learning rate, in the search space's units: a share of the embedding table's
    #: standard deviation (times ``scale``) per step.
    lr: float = defaults.LEARNING_RATE
    #: For Adam on the ``worst`` objective: the temperature (index points) of the smooth maximum
    #: whose gradient stands in for the worst view's (0: the exact subgradient, the worst view
    #: alone). The loss recorded and compared is always the exact worst view.
    temperature: float = defaults.TEMPERATURE
    #: For Adam: prompts per backward pass (``None``: one graph over every training prompt).
    #: Fewer bound the memory of a step; the loss is the same, the forward pass is run twice.
    grad_chunk: int | None = None

    @property
    def wordings(self) -> list[str]:
        """Every wording tuned on, ``instrument`` first."""
        return list(dict.fromkeys([self.instrument, *self.train_instruments]))

    def validate(self) -> TuneConfig:
        """Check every setting, raising :class:`CultureTuneError` saying what to change, and put
        each in its canonical form in place (instrument keys, ``--train-instrument none`` as no
        extra wording, ``--min-mass 0`` as no floor, the format's name). Returns this same config,
        so that ``TuneConfig(...).validate()`` builds and checks in one expression; a second call
        changes nothing (``ExperimentConfig.validate`` keeps the same contract)."""
        if isinstance(self.subspace, str):
            self.subspace = inputs.parse_subspace(self.subspace)
        if isinstance(self.optimizer, str):
            self.optimizer = resolve_optimizer(self.optimizer, self.reading)
        if self.budget is None and self.optimizer in OPTIMIZERS:
            self.budget = default_budget(self.optimizer)
        if self.subspace == "auto":
            self.subspace = None if self.optimizer in GRADIENT_OPTIMIZERS else 64
        inputs.check_tune_settings(self)
        parse_constants(self.constants)
        check_placement(self.placement)
        if self.optimizer not in OPTIMIZERS:
            raise CultureTuneError(
                f"unknown optimizer {self.optimizer!r}; use one of {', '.join(OPTIMIZERS)}"
            )
        self._check_gradient()
        if self.init not in INITS:
            raise CultureTuneError(f"unknown --init {self.init!r}; use one of {', '.join(INITS)}")
        for name in ("tokens", "budget", "population"):
            if getattr(self, name) < 1:
                raise CultureTuneError(f"--{name} must be at least 1")
        if self.subspace is not None and self.subspace < 1:
            raise CultureTuneError("--subspace must be a positive dimension or 'full'")
        if self.orders not in ORDERS:
            extra = (" (every permutation is for survey and bench only: 120 prompt sets per "
                     "candidate)" if self.orders in SURVEY_ONLY else "")
            raise CultureTuneError(f"unknown --orders {self.orders!r} for tuning; use one of "
                                   f"{', '.join(ORDERS)}{extra}")
        self.instrument = instrument_key(self.instrument)
        load_instrument(self.instrument)  # a bad file is reported before anything runs
        self.validate_instruments = [instrument_key(p) for p in self.validate_instruments]
        if [str(p).strip().lower() for p in self.train_instruments] == ["none"]:
            self.train_instruments = []  # --train-instrument none: the official wording alone
        self.train_instruments = [instrument_key(p) for p in self.train_instruments]
        for path in [*self.validate_instruments, *self.train_instruments]:
            load_instrument(path)
        both = set(self.wordings) & set(self.validate_instruments)
        if both:
            raise CultureTuneError(
                f"{', '.join(sorted(both))} is tuned on and cannot also be a held-out check; "
                "leave it out of --validate-instrument")
        if self.objective not in OBJECTIVES:
            raise CultureTuneError(f"unknown --objective {self.objective!r}; use one of "
                                   f"{', '.join(OBJECTIVES)}")
        if self.reading not in READINGS:
            raise CultureTuneError(f"unknown --reading {self.reading!r}; use one of "
                                   f"{', '.join(READINGS)}")
        if self.reading == "said" and self.calibrate:
            raise CultureTuneError("--calibrate reweights probabilities; it does not apply to "
                                   "--reading said")
        self.missing = check_missing(self.missing)
        if self.min_mass == 0:
            self.min_mass = None  # --min-mass 0: no floor
        if self.min_mass is not None and not 0 < self.min_mass <= 1:
            raise CultureTuneError(f"--min-mass is a share of the plain model's option mass, "
                                   f"from 0 (no floor) to 1 (e.g. 0.5), not {self.min_mass}")
        self.target_lead = inputs.check_text(self.target_lead, "--target-from-lead")
        if self.target_system is not None and self.target_lead is not None:
            raise CultureTuneError("--target-from-system and --target-from-lead each plant a "
                                   "target; give one of them")
        if (not self.target.dimensions and self.target_system is None
                and self.target_lead is None):
            raise CultureTuneError("the target has no scores to tune towards")
        self.format = check_format(self.format)
        self.target_system = inputs.check_text(self.target_system, "--target-from-system")
        if self.target_system is not None and self.system is not None:
            raise CultureTuneError("a planted target is tuned toward without a system prompt; "
                                   "leave --system out")
        if self.format != "auto":
            for path in [*self.wordings, *self.validate_instruments]:
                check_instrument_format(load_instrument(path), self.format)
        return self

    def _check_gradient(self) -> None:
        """Resolve ``subspace="auto"`` and refuse what a gradient optimizer cannot take."""
        gradient = self.optimizer in GRADIENT_OPTIMIZERS
        if not (isinstance(self.lr, int | float) and math.isfinite(self.lr) and self.lr > 0):
            raise CultureTuneError(f"--lr must be a positive number, not {self.lr!r}")
        if not (isinstance(self.temperature, int | float) and math.isfinite(self.temperature)
                and self.temperature >= 0):
            raise CultureTuneError("--temperature must be 0 (the exact worst view) or a positive "
                                   f"number of index points, not {self.temperature!r}")
        if self.grad_chunk is not None and (not isinstance(self.grad_chunk, int)
                                            or self.grad_chunk < 1):
            raise CultureTuneError(f"--grad-chunk must be a positive number of prompts, not "
                                   f"{self.grad_chunk!r}")
        if not gradient:
            return
        if self.reading == "said":
            raise CultureTuneError(f"--optimizer {self.optimizer} follows the gradient of the "
                                   "expected reading; the said reading has none: use a "
                                   "derivative-free optimizer (--optimizer pso, de or cma)")
        if self.subspace is not None:
            raise CultureTuneError(f"--optimizer {self.optimizer} moves the whole prompt along "
                                   "its gradient; a random subspace is for derivative-free "
                                   "search: leave --subspace out (or use --subspace full)")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = self.target.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "tuning settings") -> TuneConfig:
        """The settings :meth:`to_dict` wrote (call :meth:`validate` next); settings that a run
        made by an older version left out get that version's values, and a key that is not a
        setting is refused, naming ``source``, as :meth:`ExperimentConfig.from_dict` does."""
        if not isinstance(d, Mapping):
            raise CultureTuneError(
                f"{source}: expected a JSON object of settings, got {type(d).__name__}")
        d = dict(d)
        inputs.check_known_settings(d, [f.name for f in fields(cls)], source)
        d["target"] = Target.from_dict(d["target"])
        d.setdefault("orders", "shown")  # runs made before option orders were a setting
        d.setdefault("optimizer", "de")  # the default of those runs
        # runs made before the objective's views, reading and mass floor were settings
        d.setdefault("objective", "pooled")
        d.setdefault("missing", "renormalise")
        d.setdefault("min_mass", None)
        d.setdefault("train_instruments", [])
        d.setdefault("reading", "expected")
        d.setdefault("format", "number")  # runs made before answer formats
        return cls(**d)



def load_run_config(folder: str | Path) -> TuneConfig:
    """The settings of the run in ``folder`` (for ``--resume``), with clear errors."""
    folder = Path(folder)
    if not (folder / RUN_FILE).exists():
        raise CultureTuneError(f"nothing to resume in {folder}: {RUN_FILE} is missing")
    saved = read_json(folder / RUN_FILE)
    try:
        config = TuneConfig.from_dict(saved["config"], f"{folder / RUN_FILE}").validate()
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CultureTuneError(f"{folder / RUN_FILE} is malformed ({exc})") from exc
    return config


