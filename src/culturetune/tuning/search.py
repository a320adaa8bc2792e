"""Learning a soft prompt: the optimizer's loop over a run folder.

A derivative-free optimizer's step asks a whole population, scores it in one batch (every
candidate x every item: :mod:`culturetune.tuning.objective`) and tells the losses back; Adam's
step evaluates its prompt and moves it along the objective's gradient
(:mod:`culturetune.tuning.gradient`). Both spend the budget in forward-equivalents. The run
folder holds a checkpoint of every evaluated ``z`` and its loss
(:mod:`culturetune.tuning.checkpoint`, with Adam's state); resuming replays a derivative-free
optimizer on them, without the model (:mod:`culturetune.tuning.optimizer`), or restores Adam,
and goes on from there, so a resumed run ends where an uninterrupted one with the same seed would
have. The best prompt (the lowest training objective) is saved with what made it (settings,
losses, validity, versions).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from culturetune.core import errors, inputs
from culturetune.core.choices import GRADIENT_OPTIMIZERS
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import WriteError, read_json, write_json
from culturetune.core.version import package_versions
from culturetune.model.loading import LoadedModel
from culturetune.reading.administer import run_survey
from culturetune.reading.results import SurveyResult
from culturetune.reading.survey import Survey
from culturetune.reading.validity import Validity
from culturetune.tuning import limits, runfolder
from culturetune.tuning.checkpoint import Record
from culturetune.tuning.config import RUN_FILE, TuneConfig, load_run_config
from culturetune.tuning.gradient import Descent
from culturetune.tuning.objective import (
    Evaluate,
    Objective,
    SearchSpace,
    make_objective,
    planted_target,
)
from culturetune.tuning.optimizer import make_optimizer, replay
from culturetune.tuning.runfolder import CHECKPOINT, HISTORY
from culturetune.tuning.softprompt import SoftPrompt, initial_prompt, resolve_init
from culturetune.tuning.validation import validate_prompt

#: Seconds between checkpoints while a run goes on (one is also written at its end).
CHECKPOINT_SECONDS = 10.0


class Interrupted(errors.Interrupted):
    """The run stopped early (Ctrl-C); its folder holds a checkpoint to resume from."""


@dataclass
class Progress:
    step: int
    evaluations: float
    budget: int
    best_loss: float
    mean_loss: float
    seconds: float
    #: No step is left: the budget buys no further step (an Adam step may leave a remainder
    #: smaller than its cost unspent).
    last: bool = False

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
    if (config.target_system is not None or config.target_lead is not None) and not resume:
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
    record = Record.load(folder, space.dim) if resume else Record.empty(space.dim)
    if config.optimizer in GRADIENT_OPTIMIZERS:
        if evaluate is not None:
            raise CultureTuneError(f"--optimizer {config.optimizer} takes its steps here, by the "
                                   "gradient; a population scorer (--workers) is for "
                                   "derivative-free search")
        stepper: _Steps = Descent(objective, space, config, record)
    else:
        stepper = _Search(make_optimizer(config, space.dim), record, config, space, score)

    prior = record.history[-1]["seconds"] if record.history else 0.0
    began = time.perf_counter()
    status = "done"
    last_save = began
    try:
        while stepper.remaining() > 0:
            z, losses = stepper.step()
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
                        record.spent,
                        config.budget,
                        h["best_loss"],
                        h["mean_loss"],
                        elapsed,
                        stepper.remaining() <= 0,
                    )
                )
            if time_limit is not None and time.perf_counter() - began >= time_limit:
                status = "time-limit" if stepper.remaining() > 0 else "done"
                break
    except KeyboardInterrupt:
        record.save(folder)
        write_json(
            folder / RUN_FILE,
            {"config": config.to_dict(), "status": "interrupted", "evaluations": record.spent},
        )
        raise Interrupted(
            f"interrupted after {record.spent:g} evaluations; the run is saved in {folder}: "
            f"continue it with `culturetune tune --resume {folder}`"
        ) from None
    except BaseException:
        record.save(folder)
        raise
    record.save(folder)
    return _finish(lm, config, folder, survey, objective, space, record, status, model_check)


class _Steps(Protocol):
    """An optimizer's steps: :class:`_Search` or :class:`culturetune.tuning.gradient.Descent`."""

    def remaining(self) -> int: ...

    def step(self) -> tuple[np.ndarray, np.ndarray]: ...


class _Search:
    """A derivative-free optimizer's steps: ask a population, score it in one batch, tell."""

    def __init__(self, optimizer: Any, record: Record, config: TuneConfig, space: SearchSpace,
                 score: Evaluate) -> None:
        self.optimizer, self.record, self.config = optimizer, record, config
        self.space, self.score = space, score
        replay(optimizer, record)

    def remaining(self) -> int:
        return self.config.budget - len(self.record.loss)

    def step(self) -> tuple[np.ndarray, np.ndarray]:
        n = min(self.config.population, self.remaining())
        cands = [self.optimizer.ask() for _ in range(n)]
        z = np.stack([c.value for c in cands])
        losses = np.asarray(self.score(self.space.prompts(z)), dtype=np.float64)
        if losses.shape != (n,):
            raise CultureTuneError(f"the scorer returned {losses.shape} losses for {n} "
                                   "candidates")
        for c, value in zip(cands, losses, strict=True):
            self.optimizer.tell(c, float(value))
        return z, losses


def _finish(
    lm: LoadedModel,
    config: TuneConfig,
    folder: Path,
    survey: Survey,
    objective: Objective,
    space: SearchSpace,
    record: Record,
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
        "evaluations": record.spent,
        "steps": len(record.steps),
        "forward_equivalents_per_evaluation": record.cost,
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
        {"config": config.to_dict(), "status": status, "evaluations": record.spent},
    )
    return TuneResult(
        config, prompt, baseline, final, record.history, record.spent, seconds, status, folder,
        validity, model_check,
    )


__all__ = ["CHECKPOINT", "CHECKPOINT_SECONDS", "HISTORY", "RUN_FILE", "Interrupted", "Objective",
           "Progress", "TuneConfig", "TuneResult", "load_run_config", "make_objective", "runfolder",
           "tune"]
