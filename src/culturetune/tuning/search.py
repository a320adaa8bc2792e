"""Learning a soft prompt with a derivative-free optimizer (nevergrad's ask/tell loop).

The search space is either the full ``[tokens, hidden]`` matrix or a random linear subspace
(Black-Box Tuning, Sun et al. 2022): ``prompt = initial + A @ z`` with ``A`` Gaussian, scaled so
that a standard-normal ``z`` moves each coordinate by about one embedding-table standard deviation.
Each optimizer step asks a whole population, scores it in one batch (every candidate × every item)
and tells the losses back. The run folder holds a checkpoint of every evaluated ``z`` and its loss
(safetensors); resuming replays the optimizer on them, without the model, and goes on from there,
so a resumed run ends where an uninterrupted one with the same seed would have.
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from culturetune.core import errors, inputs
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import WriteError, atomic_path, read_json, write_json, write_text
from culturetune.core.version import package_versions
from culturetune.instrument.targets import Target, loss_batch
from culturetune.instrument.vsm import (
    compute_indices_batch,
    load_instrument,
)
from culturetune.model.loading import LoadedModel
from culturetune.reading.batch import Survey, read_many, read_within
from culturetune.reading.results import SurveyResult, uniform_loss
from culturetune.reading.survey import run_survey
from culturetune.reading.validity import (
    BALANCED,
    Validity,
    View,
    ViewResult,
    assess,
    check_views,
)
from culturetune.tuning import limits, runfolder
from culturetune.tuning.config import RUN_FILE, TuneConfig
from culturetune.tuning.runfolder import CHECKPOINT, HISTORY
from culturetune.tuning.softprompt import SoftPrompt, initial_prompt, resolve_init

#: Index points added per unit of option mass lost below the ``min_mass`` floor (as a share of the
#: floor): far more than any loss difference, so that the floor acts as a constraint.
MASS_PENALTY = 100.0
#: Seconds between checkpoints while a run goes on (one is also written at its end).
CHECKPOINT_SECONDS = 10.0


class Interrupted(errors.Interrupted):
    """The run stopped early (Ctrl-C); its folder holds a checkpoint to resume from."""


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
    training *view*. ``aggregate`` (:data:`OBJECTIVES`) combines the views: ``pooled`` scores the
    answers averaged over them (in option-content order, so that position cannot win), ``mean``
    and ``worst`` score each view alone and take the mean or the largest loss. ``min_mass``
    (a share of the plain model's option mass) adds :data:`MASS_PENALTY` per share of the floor
    lost, so that pushing probability off the options cannot win either.
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
            means = r.said_means() if self.reading == "said" else r.order_means(self.missing)
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


@dataclass
class Progress:
    step: int
    evaluations: int
    budget: int
    best_loss: float
    mean_loss: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.evaluations / self.seconds if self.seconds > 0 else 0.0


@dataclass
class TuneResult:
    config: TuneConfig
    prompt: SoftPrompt
    baseline: SurveyResult
    final: SurveyResult
    history: list[dict[str, float]]
    evaluations: int
    seconds: float
    status: str
    folder: Path
    validity: Validity | None = None
    #: Does the model answer the instrument by content? (:mod:`culturetune.reading.check`)
    model_check: Any = None


class _Record:
    """Every evaluated vector and its loss, grouped by optimizer step."""

    def __init__(
        self, z: np.ndarray, loss: np.ndarray, steps: list[int], history: list[dict[str, float]]
    ) -> None:
        self.z, self.loss, self.steps, self.history = z, loss, steps, history

    @classmethod
    def empty(cls, dim: int) -> _Record:
        return cls(np.zeros((0, dim)), np.zeros(0), [], [])

    def add(self, z: np.ndarray, loss: np.ndarray, seconds: float) -> None:
        self.z = np.concatenate([self.z, z])
        self.loss = np.concatenate([self.loss, loss])
        self.steps.append(len(loss))
        self.history.append(
            {
                "evaluations": len(self.loss),
                "best_loss": float(self.loss.min()),
                "mean_loss": float(loss.mean()),
                "seconds": round(seconds, 3),
            }
        )

    def save(self, folder: Path) -> None:
        from safetensors.torch import save_file

        tensors = {
            "z": torch.from_numpy(self.z.copy()),
            "loss": torch.from_numpy(self.loss.copy()),
            "steps": torch.tensor(self.steps, dtype=torch.int64),
        }
        with atomic_path(folder / CHECKPOINT) as tmp:
            save_file(tensors, tmp)
        write_text(folder / HISTORY, history_csv(self.history))

    @classmethod
    def load(cls, folder: Path, dim: int) -> _Record:
        from safetensors.torch import load_file

        path = folder / CHECKPOINT
        if not path.exists():
            return cls.empty(dim)
        try:
            t = load_file(path)
            z, loss, steps = t["z"].numpy(), t["loss"].numpy(), t["steps"].tolist()
        except Exception as exc:  # noqa: BLE001 - any unreadable checkpoint gets the same advice
            raise CultureTuneError(f"{path} is corrupt ({exc}); delete it to start over") from exc
        if (z.shape[1:] != (dim,) or len(z) != len(loss) or sum(steps) != len(loss)
                or min(steps, default=1) < 1):
            raise CultureTuneError(f"{path} does not match this run's settings; start a new run")
        history = runfolder.checked_history(folder / HISTORY, loss, steps)
        return cls(z, loss, steps, history)


def history_csv(history: list[dict[str, float]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, ["evaluations", "best_loss", "mean_loss", "seconds"])
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def read_history(path: Path) -> list[dict[str, float]]:
    if not path.exists():
        return []
    with path.open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def tune(
    lm: LoadedModel,
    config: TuneConfig,
    folder: str | Path,
    *,
    resume: bool = False,
    time_limit: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
    evaluate: Evaluate | None = None,
    model_check: Any = None,
    check: bool = True,
) -> TuneResult:
    """Run (or resume) a tuning run into ``folder`` and save the best prompt there.

    ``model_check`` is the model's :class:`culturetune.reading.check.ModelCheck` on the run's
    instrument if the caller has it; otherwise it is measured (or read from its cache) before
    tuning starts, unless ``check`` is false. It is stored in ``culturetune.json``.

    ``evaluate`` scores each step's population in place of the local objective (e.g. split
    over Ray workers, :mod:`culturetune.experiment.executors`); the optimizer, checkpoints and the
    final reading stay here.

    The folder is held for the run (another process is refused; see ``runfolder``). A new run
    needs a new or empty folder. A resumed run keeps its saved settings; ``config`` must agree
    with them except for the budget, which may grow (extending the run) or shrink down to the
    evaluations already made. Every setting is checked before the folder is written.

    A file that cannot be written (a full disk) is a :class:`~culturetune.core.files.WriteError`
    that says how to go on: the checkpoint written last stays, ``run.json`` says the run stopped,
    and ``resume=True`` once there is space ends with the prompt of an uninterrupted run.
    """
    folder = Path(folder)
    with runfolder.claim(folder, "--resume" if resume else "--out"):
        fresh = not (folder / RUN_FILE).exists()
        try:
            return _tune(lm, config, folder, resume=resume, time_limit=time_limit,
                         on_progress=on_progress, evaluate=evaluate,
                         model_check=model_check, check=check)
        except WriteError as exc:
            if fresh:
                runfolder.forget_unstarted(folder)
            stopped = f"cannot write {exc.path}: {exc.cause}"
            raise exc.then(_how_to_go_on(folder, stopped)) from exc
        except BaseException:
            if fresh:  # a run that stopped before its first checkpoint leaves no folder behind
                runfolder.forget_unstarted(folder)
            raise


def _how_to_go_on(folder: Path, error: str) -> str:
    """What to run after a failed write; ``run.json`` of a resumable run is marked stopped
    (where it can still be written)."""
    if not (folder / CHECKPOINT).exists():
        if (folder / RUN_FILE).exists():
            return f"continue the run with `culturetune tune --resume {folder}`"
        return "run the same command again (nothing was saved)"
    try:
        saved = read_json(folder / RUN_FILE)
        write_json(folder / RUN_FILE, {"config": saved["config"], "status": "stopped",
                                       "evaluations": runfolder.recorded_evaluations(folder),
                                       "error": error})
    except (CultureTuneError, KeyError, TypeError):
        pass  # run.json as it was still resumes the run
    return (f"continue the run with `culturetune tune --resume {folder}` (its checkpoint is "
            "kept)")


def _tune(
    lm: LoadedModel,
    config: TuneConfig,
    folder: Path,
    *,
    resume: bool,
    time_limit: float | None,
    on_progress: Callable[[Progress], None] | None,
    evaluate: Evaluate | None = None,
    model_check: Any = None,
    check: bool = True,
) -> TuneResult:
    folder = Path(folder)
    config.validate()
    if time_limit is not None:
        inputs.check_time_limit(time_limit)
    if resume:
        runfolder.check_run(folder)
        config = runfolder.resumed(folder, config)
    else:
        runfolder.check_new_run(folder)
    config.model = config.model or lm.name
    if config.format == "auto":
        from culturetune.reading.check import choose_format

        choice = choose_format(lm, config.format, config.instrument)
        config.format, model_check = choice.format, model_check or choice.check
    if model_check is None and check:
        from culturetune.reading.check import check_model

        model_check = check_model(lm, config.instrument, format=config.format)
    if config.target_system is not None and not resume:
        config.target = planted_target(lm, config)
    config.init = resolve_init(config.init, config.placement, config.format)
    limits.check_tune(lm, config)
    initial_prompt(lm, config.tokens, config.init, config.init_text, config.seed)  # checks text
    folder.mkdir(parents=True, exist_ok=True)
    write_json(folder / RUN_FILE, {"config": config.to_dict(), "status": "running"})

    objective = make_objective(lm, config)
    survey = objective.survey
    score = evaluate or objective
    start = initial_prompt(lm, config.tokens, config.init, config.init_text, config.seed)
    space = SearchSpace(start, config.subspace, lm.embedding_stats[1], config.seed, config.scale)
    optimizer = make_optimizer(config, space.dim)
    record = _Record.load(folder, space.dim) if resume else _Record.empty(space.dim)
    _replay(optimizer, record)

    prior = record.history[-1]["seconds"] if record.history else 0.0
    began = time.perf_counter()
    status = "done"
    last_save = began
    try:
        while len(record.loss) < config.budget:
            n = min(config.population, config.budget - len(record.loss))
            cands = [optimizer.ask() for _ in range(n)]
            z = np.stack([c.value for c in cands])
            losses = np.asarray(score(space.prompts(z)), dtype=np.float64)
            if losses.shape != (n,):
                raise CultureTuneError(f"the scorer returned {losses.shape} losses for {n} "
                                       "candidates")
            for c, value in zip(cands, losses, strict=True):
                optimizer.tell(c, float(value))
            elapsed = prior + time.perf_counter() - began
            record.add(z, losses, elapsed)
            if time.perf_counter() - last_save >= CHECKPOINT_SECONDS:
                record.save(folder)
                last_save = time.perf_counter()
            if on_progress:
                h = record.history[-1]
                on_progress(
                    Progress(
                        len(record.steps),
                        len(record.loss),
                        config.budget,
                        h["best_loss"],
                        h["mean_loss"],
                        elapsed,
                    )
                )
            if time_limit is not None and time.perf_counter() - began >= time_limit:
                status = "time-limit" if len(record.loss) < config.budget else "done"
                break
    except KeyboardInterrupt:
        record.save(folder)
        write_json(
            folder / RUN_FILE,
            {"config": config.to_dict(), "status": "interrupted", "evaluations": len(record.loss)},
        )
        raise Interrupted(
            f"interrupted after {len(record.loss)} evaluations; the run is saved in {folder}: "
            f"continue it with `culturetune tune --resume {folder}`"
        ) from None
    except BaseException:
        record.save(folder)
        raise
    record.save(folder)
    return _finish(lm, config, folder, survey, objective, space, record, status, model_check)


def _replay(optimizer: Any, record: _Record) -> None:
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


def _finish(
    lm: LoadedModel,
    config: TuneConfig,
    folder: Path,
    survey: Survey,
    objective: Objective,
    space: SearchSpace,
    record: _Record,
    status: str,
    model_check: Any = None,
) -> TuneResult:
    if len(record.loss) == 0:
        raise CultureTuneError("no evaluation was made (time limit too short?)")
    best = int(np.argmin(record.loss))
    prompt_tensor = space.prompts(record.z[best])[0]
    kw = dict(constants=config.constants, target=config.target, loss_kind=config.loss,
              missing=config.missing)
    baseline = run_survey(survey, **kw)
    final = run_survey(survey, soft=prompt_tensor, prompt_name=folder.name, **kw)
    validity = validate_prompt(lm, config, prompt_tensor, (baseline, final), objective)
    seconds = record.history[-1]["seconds"]
    meta = {
        "config": config.to_dict(),
        "status": status,
        "evaluations": len(record.loss),
        "seconds": seconds,
        "best_search_loss": float(record.loss[best]),
        "baseline": {"indices": baseline.indices, "loss": baseline.loss.to_dict(),
                     "option_mass": baseline.option_mass},
        "final": {"indices": final.indices, "loss": final.loss.to_dict(),
                  "option_mass": final.option_mass},
        "uniform": {"loss": baseline.uniform_loss.to_dict()},
        "validity": validity.to_dict(),
        "model_check": None if model_check is None else model_check.to_dict(),
        "versions": package_versions("torch", "transformers", "nevergrad"),
        "device": lm.device,
        "dtype": lm.dtype,
    }
    prompt = SoftPrompt(prompt_tensor, config.placement, config.model, meta)
    prompt.save(folder, lm)
    write_json(
        folder / RUN_FILE,
        {"config": config.to_dict(), "status": status, "evaluations": len(record.loss)},
    )
    return TuneResult(
        config, prompt, baseline, final, record.history, len(record.loss), seconds, status, folder,
        validity, model_check,
    )


def validate_prompt(
    lm: LoadedModel,
    config: TuneConfig,
    soft: torch.Tensor,
    training: tuple[SurveyResult, SurveyResult] | None = None,
    objective: Objective | None = None,
) -> Validity:
    """Score a tuned prompt on the views it was not tuned on (:mod:`culturetune.reading.validity`):
    every bundled wording not tuned on and ``config.validate_instruments`` (order-balanced), the
    first training wording in the printed and reversed orders alone, and what the model says
    (``said``) in both orders and each alone; plain model, uniform answers and prompt on each.
    The training row is the objective's own loss (without the mass penalty), plain and tuned."""
    from culturetune.instrument.formats import FORMATS
    from culturetune.reading.check import cached_check, unread_formats

    surveys: dict[tuple[str, str, bool, str], tuple[Survey, dict[str, Any]]] = {}
    if objective is not None and len(objective.surveys) == len(config.wordings):
        for name, sv in zip(config.wordings, objective.surveys, strict=True):  # read already
            surveys[(name, config.orders, config.calibrate, config.format)] = (sv, {})

    def survey(view: View) -> Survey:
        key = (view.instrument, view.orders, view.calibrate, view.format)
        if key not in surveys:
            surveys[key] = (Survey(lm, view.instrument, system=config.system,
                                   placement=config.placement, orders=view.orders,
                                   calibrate=view.calibrate, format=view.format), {})
        return surveys[key][0]

    def base(view: View) -> tuple[Survey, dict[str, Any]]:
        """The survey whose reading serves ``view``: one order alone is a slice of both."""
        if view.orders in ("shown", "reversed"):
            survey(View(view.instrument, "both", view.calibrate, format=view.format))
            key = (view.instrument, "both", view.calibrate, view.format)
        else:
            key = (view.instrument, view.orders, view.calibrate, view.format)
        survey(view)
        return surveys[key]

    def scored(view: View) -> tuple[SurveyResult, SurveyResult]:
        sv = survey(view)
        full, reads = base(view)
        out = []
        for name, p in (("plain", None), ("tuned", soft)):
            reading, said = read_within(full, sv, p, reads.setdefault(name, {}),
                                        view.reading == "said")
            out.append(run_survey(sv, soft=p, answers=view.reading, reading=reading, said=said,
                                  constants=config.constants, target=config.target,
                                  loss_kind=config.loss, missing=config.missing))
        return out[0], out[1]

    def row(role: str, view: View, plain: SurveyResult, tuned: SurveyResult) -> ViewResult:
        return ViewResult(
            role=role, view=view.name, instrument=view.instrument, orders=view.orders,
            calibrated=view.calibrate,
            plain=None if plain.loss is None else plain.loss.value,
            uniform=uniform_loss(config.target, config.constants, config.loss,
                                 load_instrument(view.instrument)).value,
            tuned=None if tuned.loss is None else tuned.loss.value,
            reading=view.reading, plain_answered=plain.answered, tuned_answered=tuned.answered,
            format=view.format, counted=counts(view),
        )

    def counts(view: View) -> bool:
        """Another format counts toward the verdict where the model answers by content in it."""
        if view.format == config.format:
            return True
        check = cached_check(lm, config.instrument, view.format)
        return bool(check and check.answers_by_content)

    def available(fmt: str) -> bool:
        """Whether the model and the instrument can be asked in this format at all."""
        try:
            survey(View(config.instrument, train_view.orders if train_view.orders in BALANCED
                        else "both", False, format=fmt))
        except CultureTuneError:
            return False
        return True

    train_view = View(config.instrument, config.orders, config.calibrate, format=config.format)
    plain_r, tuned_r = training or scored(train_view)
    train = row("training", train_view, plain_r, tuned_r)
    if objective is not None and (objective.aggregate != "pooled" or len(objective.surveys) > 1
                                  or objective.reading != "expected"):
        plain_l, tuned_l = (float(objective.losses(p)[0][0]) for p in (None, soft))
        train.view, train.plain, train.tuned = objective.describe(), plain_l, tuned_l
    others = [f for f in FORMATS if f != config.format and available(f)]
    unread = unread_formats(lm, config.instrument, others)
    checks = [row(role, view, *scored(view))
              for role, view in check_views(train_view, config.validate_instruments,
                                            config.wordings, [f for f in others
                                                              if f not in unread])]
    validity = assess(train, checks, plain_r.option_mass, tuned_r.option_mass)
    validity.unread = unread
    return validity
