"""One cell of an experiment: what a (country, method, seed) cell measures, on one loaded model.

A :class:`CellSpec` names a cell; a :class:`CellRunner` measures cells of one experiment
(:class:`~culturetune.experiment.config.ExperimentConfig`) on one model and writes each finished
cell to its own JSON file under the output folder::

    out/cells/<code>/<method>.json            plain, persona (deterministic: one cell each)
    out/cells/<code>/<method>-seed<k>.json    tuned methods
    out/runs/<code>/<method>-seed<k>/         tuning runs (checkpoints; resumed when interrupted)

A cell tunes a prompt where its method is an optimizer, reads the model (plain, persona or with
the prompt) in every view of the experiment (:attr:`ExperimentConfig.views`) and scores it on the
country's CulturalBench questions, against the plain model of the same country. A runner keeps
what cells share (surveys with their prefix caches, the questions, the plain model's reference
per country), so it is built once per process: in another process, build a runner from the same
config and output folder and call :meth:`CellRunner.run` with the cell's spec. The plain
reference is deterministic, so each process computing its own gives the same numbers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from culturetune.core.choices import GRADIENT_OPTIMIZERS
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import read_json, write_json
from culturetune.core.progress import Heartbeat
from culturetune.experiment.methods import (
    FORMAT,
    MethodSpec,
    headline_view,
    parse_method,
    view_key,
)
from culturetune.experiment.shared import Bench, Surveys
from culturetune.instrument.targets import Target, lookup_country
from culturetune.instrument.vsm import parse_constants
from culturetune.reading.validity import View

if TYPE_CHECKING:
    from culturetune.experiment.config import ExperimentConfig

#: Seconds between a tuning cell's progress lines (so at most this long without one).
TICK_SECONDS = 15.0

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- cells


def cell_name(method: str, seed: int | None) -> str:
    return method if seed is None else f"{method}-seed{seed}"


def cell_label(target: Target, method: str, seed: int | None) -> str:
    return f"{target.name} {method}" + ("" if seed is None else f" seed {seed}")


def cell_path(out: Path, target: Target, method: str, seed: int | None) -> Path:
    return out / "cells" / str(target.code) / f"{cell_name(method, seed)}.json"


def run_path(out: Path, target: Target, method: str, seed: int) -> Path:
    return out / "runs" / str(target.code) / cell_name(method, seed)


@dataclass(frozen=True)
class CellSpec:
    """One cell of the grid: a country (any name the country table knows), a method and a seed
    (``None`` for the deterministic methods, plain and persona). Plain data, so that it can be
    sent to another process."""

    country: str
    method: str
    seed: int | None = None

    @classmethod
    def of(cls, target: Target, method: str, seed: int | None) -> CellSpec:
        return cls(target.name, method, seed)

    @property
    def target(self) -> Target:
        return lookup_country(self.country)

    @property
    def label(self) -> str:
        return cell_label(self.target, self.method, self.seed)

    def path(self, out: Path) -> Path:
        """Where the finished cell is saved."""
        return cell_path(out, self.target, self.method, self.seed)

    def to_dict(self) -> dict[str, Any]:
        return {"country": self.country, "method": self.method, "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CellSpec:
        return cls(d["country"], d["method"], d.get("seed"))


def cell_specs(config: ExperimentConfig) -> list[CellSpec]:
    """The cells of ``config.cells()`` as :class:`CellSpec` (what a :class:`CellRunner`
    measures)."""
    return [CellSpec.of(target, method, seed) for target, method, seed in config.cells()]


def cell_settings(
    config: ExperimentConfig, lm: Any, method: str, seed: int | None, bench_source: str | None
) -> dict[str, Any]:
    """What a cell's numbers depend on; a saved cell is reused only when these match. (The
    views a cell is read in are not among them: missing views are added to a saved cell.)"""
    s: dict[str, Any] = {
        "format": FORMAT,
        "model": lm.name,
        "dtype": lm.dtype,
        "constants": parse_constants(config.constants),
        "bench_split": config.bench_split,
        "bench_limit": config.bench_limit,
        "bench_source": bench_source,
        "bench_orders": config.bench_orders,
        "method": method,
        "seed": seed,
        "answer_format": config.read_format,
    }
    spec = parse_method(method, config.orders, config.calibrate, config.read_format)
    if spec.tuned:
        s.update(
            optimizer=spec.optimizer,
            orders=spec.orders,
            calibrate=spec.calibrate,
            budget=config.budget,
            population=config.population,
            tokens=config.tokens,
            placement=config.placement,
            subspace=None if spec.optimizer in GRADIENT_OPTIMIZERS else config.subspace,
        )
    return s


def saved_cell(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The finished cell at ``path`` (``None`` if there is none); other settings are an error."""
    if not path.exists():
        return None
    try:
        cell = read_json(path)
    except CultureTuneError:
        return None  # written atomically, so this is not a finished cell: redo it
    saved = cell.get("settings", {}) if isinstance(cell, dict) else {}
    diff = [k for k in settings if saved.get(k) != settings[k]]
    if diff:
        shown = "; ".join(f"{k}: saved {saved.get(k)!r}, now {settings[k]!r}" for k in diff)
        raise CultureTuneError(
            f"{path} was made with other settings ({shown}); use another output folder, or "
            "delete it (and its tuning run) to redo it"
        )
    return cell


class CellRunner:
    """Measures the cells of one experiment on one loaded model, sharing surveys (with their
    prefix caches), the CulturalBench questions and the plain model's reference per country.

    :meth:`run` is the unit of work: a cell's record (the dict saved as
    ``cells/<code>/<name>.json``), taken from the output folder when it is finished there (with
    the views it lacks added) or else measured and saved. A saved cell made with other settings
    is an error.
    """

    def __init__(
        self, lm: Any, config: ExperimentConfig, out: str | Path, progress: Progress | None = None,
        bench_source: str | None = None,
    ) -> None:
        """``bench_source`` names the CulturalBench data as another process names it, where
        ``config.data`` is a copy of that process's file (a Ray worker on another machine)."""
        self.lm, self.config, self.out = lm, config, Path(out)
        self.say = progress or (lambda message: None)
        self.constants = parse_constants(config.constants)
        self.surveys = Surveys(lm, config.placement, self.constants)
        self.bench = Bench(lm, config, bench_source)
        self.views = config.views
        self.plain: dict[str, dict[str, Any]] = {}

    def settings(self, spec: CellSpec) -> dict[str, Any]:
        return cell_settings(self.config, self.lm, spec.method, spec.seed, self.bench.source)

    def run(
        self, spec: CellSpec, on_start: Callable[[CellSpec, bool], None] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """The cell's record and whether it was reused from the output folder. ``on_start`` is
        told which of the two it is before the work starts."""
        saved = self.saved(spec)
        if on_start is not None:
            on_start(spec, saved is not None)
        if saved is not None:
            return self.complete(spec, saved), True
        cell = self.measure(spec)
        write_json(spec.path(self.out), cell)
        return cell, False

    def saved(self, spec: CellSpec) -> dict[str, Any] | None:
        """The finished cell saved in the output folder, as saved (``None`` if there is none)."""
        return saved_cell(spec.path(self.out), self.settings(spec))

    def reference(self, target: Target) -> dict[str, Any]:
        """The plain model's losses in every view and its bench outcomes (computed once)."""
        key = str(target.code)
        if key not in self.plain:
            from culturetune.reading.administer import uniform_loss

            views = self.surveys.measure(target, None, None, self.views)
            correct = self.bench.correct(target, None, None)
            self.plain[key] = {
                "views": {k: v["loss"] for k, v in views.items()},
                "mass": {k: v["option_mass"] for k, v in views.items()},
                "uniform": uniform_loss(target, self.constants).value,
                "accuracy": (sum(correct) / len(correct)) if correct else None,
                "correct": correct,
                "measured": views,
            }
        return self.plain[key]

    def measure(self, spec: CellSpec) -> dict[str, Any]:
        """Measure one cell (tuning its prompt first where the method is an optimizer); nothing
        is written but the tuning run's folder."""
        from culturetune.reading.administer import persona_prompt

        target, method, seed = spec.target, spec.method, spec.seed
        began = time.perf_counter()
        mspec = parse_method(method, self.config.orders, self.config.calibrate,
                             self.config.read_format)
        ref = self.reference(target)
        system = persona_prompt(target.name) if method == "persona" else None
        soft, tuning = None, None
        if mspec.tuned:
            assert seed is not None
            soft, tuning = self._tune(target, mspec, seed, spec.label)
        if method == "plain":
            views = ref["measured"]
        else:
            views = self.surveys.measure(target, soft, system, self.views)
            if system is not None:
                self.surveys.forget(system)
        correct = ref["correct"] if method == "plain" else self.bench.correct(target, system, soft)
        plain_correct = None if method == "plain" else ref["correct"]
        headline = views[view_key(headline_view(self.config.read_format))]
        cell: dict[str, Any] = {
            "country": target.name,
            "code": target.code,
            "method": method,
            "seed": seed,
            "optimizer": mspec.optimizer,
            "orders": mspec.orders,
            "calibrate": mspec.calibrate if mspec.tuned else None,
            "training_view": None if not mspec.tuned else view_key(mspec.training_view),
            "indices": headline["indices"],
            "loss": headline["loss"],
            "views": views,
            "uniform_loss": ref["uniform"],
            "bench": self.bench.block(target, correct, plain_correct),
            "plain_reference": {k: v for k, v in ref.items()
                                if k not in ("correct", "measured")},
            "tuning": tuning,
            "system": system,
            "settings": self.settings(spec),
        }
        cell["seconds"] = round(time.perf_counter() - began, 3)
        return cell

    def missing_views(self, cell: dict[str, Any]) -> list[View]:
        """The experiment's views a saved cell was not read in."""
        return [v for v in self.views if view_key(v) not in cell.get("views", {})]

    def complete(self, spec: CellSpec, cell: dict[str, Any]) -> dict[str, Any]:
        """Add the views a saved cell lacks (the grid gained a method that needs more) and save
        it again."""
        missing = self.missing_views(cell)
        if not missing:
            return cell
        from culturetune.reading.administer import persona_prompt

        target = spec.target
        soft = None
        if cell.get("tuning"):
            from culturetune.tuning.softprompt import SoftPrompt

            soft = SoftPrompt.load(self.out / cell["tuning"]["folder"]).embeddings
        system = persona_prompt(target.name) if cell["method"] == "persona" else None
        cell["views"].update(self.surveys.measure(target, soft, system, missing))
        if system is not None:
            self.surveys.forget(system)
        ref = self.reference(target)
        cell["plain_reference"]["views"] = dict(ref["views"])
        cell["plain_reference"]["mass"] = dict(ref["mass"])
        write_json(spec.path(self.out), cell)
        return cell

    def _tune(
        self, target: Target, spec: MethodSpec, seed: int, label: str
    ) -> tuple[Any, dict[str, Any]]:
        from culturetune.tuning.config import TuneConfig
        from culturetune.tuning.search import RUN_FILE, Interrupted, tune

        cfg = TuneConfig(
            target=target,
            model=self.lm.name,
            tokens=self.config.tokens,
            placement=self.config.placement,
            subspace=None if spec.optimizer in GRADIENT_OPTIMIZERS else self.config.subspace,
            optimizer=spec.optimizer,
            orders=spec.orders,
            calibrate=spec.calibrate,
            budget=self.config.budget,
            population=self.config.population,
            seed=seed,
            constants=self.constants,
            format=self.config.read_format,
        )
        folder = run_path(self.out, target, spec.name, seed)
        resume = (folder / RUN_FILE).exists()
        if resume:
            _check_run(folder / RUN_FILE, cfg)
        try:
            with Heartbeat(self.say, TICK_SECONDS) as beat:
                beat.update(f"  {label}: 0/{cfg.budget} evaluations (the first step is running)")
                result = tune(self.lm, cfg, folder, resume=resume,
                              on_progress=self._ticker(label, cfg.budget, beat))
        except Interrupted:
            raise Interrupted(
                f"interrupted in cell {label}; finished cells and the tuning checkpoint are kept "
                f"in {self.out}: run the same experiment again (same output folder) to resume"
            ) from None
        tuning = {
            "optimizer": spec.optimizer,
            "orders": spec.orders,
            "calibrate": spec.calibrate,
            "seed": seed,
            "budget": cfg.budget,
            "population": cfg.population,
            "evaluations": result.evaluations,
            "seconds": result.seconds,
            "status": result.status,
            "best_search_loss": min(h["best_loss"] for h in result.history),
            "history": result.history,
            "folder": str(folder.relative_to(self.out)),
        }
        return result.prompt.embeddings, tuning

    def _ticker(self, label: str, budget: int, beat: Heartbeat) -> Callable[[Any], None]:
        """A tuning run's progress as whole lines: at most one every :data:`TICK_SECONDS`, the
        last one always, and the heartbeat's repeat while one step takes longer."""

        def tick(p: Any) -> None:
            beat.update(f"  {label}: {p.evaluations:g}/{budget} forward-equivalents, best loss "
                        f"{p.best_loss:.2f} ({p.seconds:.0f} s)", force=p.evaluations >= budget)

        return tick


def _check_run(run_file: Path, wanted: Any) -> None:
    """Refuse to resume a tuning run that was started with other settings."""
    saved = read_json(run_file)
    saved = saved.get("config", {}) if isinstance(saved, dict) else {}
    saved = dict(saved) if isinstance(saved, dict) else {}
    saved.setdefault("orders", "shown")
    saved.setdefault("calibrate", False)
    keys = ("optimizer", "orders", "calibrate", "budget", "population", "tokens", "placement",
            "subspace", "seed")
    diff = [k for k in keys if saved.get(k) != getattr(wanted, k)]
    if diff:
        raise CultureTuneError(
            f"{run_file.parent} holds a tuning run with other settings "
            f"({', '.join(f'{k} {saved.get(k)!r}' for k in diff)}); use another output folder"
        )


def resolve_formats(lm: Any, config: ExperimentConfig, say: Callable[[str], None]) -> Any:
    """Settle ``config``'s answer format on a loaded model (``auto``: the format in which the
    model check says the model answers by content, else the one in which it comes closest) and
    the other formats it can be asked in; say what was chosen and why. Returns the model check
    in the chosen format. Runs where the model is: in this process, or on a Ray worker for a
    grid on Ray."""
    from culturetune.instrument.formats import FORMATS
    from culturetune.instrument.vsm import load_instrument
    from culturetune.reading.check import check_model, choose_format, unread_formats
    from culturetune.reading.prompts import format_problem

    if config.format == "auto":
        choice = choose_format(lm, "auto", "vsm2013",
                               progress=lambda what: say(f"model check: {what} ..."))
        config.format = choice.format
        say(f"format: {choice.format} ({choice.reason})")
    if config.other_formats is None:  # the formats this model can be asked in and that the
        inst = load_instrument("vsm2013")  # model check does not rule out
        asked = [f for f in FORMATS if f != config.format and format_problem(lm, inst, f) is None]
        unread = unread_formats(lm, "vsm2013", asked)
        config.other_formats = [f for f in asked if f not in unread]
        if unread:
            say("not read in " + "; ".join(f"{f} ({v})" for f, v in unread.items())
                + ": the model check says a reading in these formats carries none of its answers")
    model_check = check_model(lm, "vsm2013", format=config.format)
    say(f"model check: {model_check.summary()}")
    if model_check.warning():
        say(f"warning: {model_check.warning()}; the experiment still runs")
    return model_check
