"""The reference study end to end: every (country × method × seed) cell, resumable, then a report.

Methods are the plain model, persona prompting (a system prompt naming the country) and soft
prompts tuned by each derivative-free optimizer on an objective: ``pso`` is PSO on the experiment's
option orders (order-balanced by default), ``pso-shown`` PSO on the items as printed, ``pso-cal``
on calibrated answers (grammar: ``<optimizer>[-<orders>][-cal]``). Every cell is read in the same
set of *views* (:mod:`culturetune.validity`): the official items in each option-order set and the
paraphrased items (written for culturetune, not the official instrument), so that every method is
judged on views it was not tuned on; plus CulturalBench accuracy on the country's questions with
order-debiased letters (Wilson interval, exact McNemar test against the plain model). Each
finished cell is its own JSON file, so an interrupted experiment resumes where it stopped::

    out/cells/<code>/<method>.json            plain, persona (deterministic: one cell each)
    out/cells/<code>/<method>-seed<k>.json    tuned methods
    out/runs/<code>/<method>-seed<k>/         tuning runs (checkpoints; resumed when interrupted)
    out/results.json  out/report.md  out/report.html  out/figures/*.png
"""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from culturetune import defaults
from culturetune.errors import CultureTuneError
from culturetune.files import read_json, read_text, write_json
from culturetune.inputs import check_experiment_limits, loads_json
from culturetune.targets import Target, lookup_country
from culturetune.validity import View, check_views
from culturetune.views import check_orders
from culturetune.vsm import DIMENSIONS, instrument_key, load_instrument, parse_constants

BASELINES: tuple[str, ...] = ("plain", "persona")
OPTIMIZERS: tuple[str, ...] = ("de", "cma", "pso", "random")
#: Option orders a tuned method may be suffixed with (``pso-cyclic``); without one it is tuned on
#: the experiment's ``orders``. A ``-cal`` suffix tunes on calibrated answers.
METHOD_ORDERS: tuple[str, ...] = ("shown", "reversed", "both", "cyclic")
#: The default grid: the plain model, persona prompting and every optimizer on the default
#: (order-balanced) objective; DE is the reference study's optimizer.
DEFAULT_METHODS: tuple[str, ...] = BASELINES + OPTIMIZERS
#: Examples of the method grammar (``<optimizer>[-<orders>][-cal]``) for help texts.
METHOD_EXAMPLES = "pso, de, pso-shown, pso-cyclic, pso-cal, de-both"
SPLITS: tuple[str, ...] = ("easy", "hard")
#: The reference study's four countries (arXiv 2503.16094).
DEFAULT_COUNTRIES: tuple[str, ...] = ("Saudi Arabia", "U.S.A.", "China", "India")
#: Evaluations per tuning run (README, "The experiment", for the time it takes).
DEFAULT_BUDGET = 640
#: ``quick()``: 4 countries × (plain, persona, pso, de) × 1 seed, 320 evaluations per run.
QUICK_BUDGET = 320
QUICK_METHODS: tuple[str, ...] = ("plain", "persona", "pso", "de")
PARAPHRASE_NOTE = (
    "paraphrased VSM 2013 items written for culturetune (same answer scales and formulas); "
    "not the official instrument"
)
#: Views every cell is read in, whatever its method was tuned on: the official items in each
#: order set, and the paraphrase (a held-out wording) order-balanced.
JUDGE_VIEWS: tuple[View, ...] = (
    View("vsm2013", "shown"), View("vsm2013", "reversed"), View("vsm2013", "both"),
    View("vsm2013", "cyclic"), View("paraphrase", "both"), View("paraphrase", "cyclic"),
)
#: The view the loss tables lead with: the official items, order-balanced (culturetune's default
#: reading).
HEADLINE = View("vsm2013", "both")
FORMAT = "culturetune-experiment/2"


@dataclass(frozen=True)
class MethodSpec:
    """A method of the grid: a baseline, or an optimizer with the objective it is tuned on."""

    name: str
    optimizer: str | None = None
    orders: str | None = None
    calibrate: bool = False

    @property
    def tuned(self) -> bool:
        return self.optimizer is not None

    @property
    def training_view(self) -> View | None:
        return View("vsm2013", self.orders, self.calibrate) if self.tuned else None


def parse_method(name: str, orders: str = defaults.ORDERS, calibrate: bool = False) -> MethodSpec:
    """``plain``, ``persona`` or ``<optimizer>[-<orders>][-cal]`` (``pso``, ``pso-cyclic-cal``);
    an optimizer without orders is tuned on ``orders`` (and ``calibrate``) of the experiment."""
    key = str(name).strip().lower()
    if key in BASELINES:
        return MethodSpec(key)
    parts = key.split("-")
    opt, rest = parts[0], parts[1:]
    cal = calibrate
    if rest and rest[-1] == "cal":
        cal, rest = True, rest[:-1]
    if opt not in OPTIMIZERS or len(rest) > 1 or (rest and rest[0] not in METHOD_ORDERS):
        raise CultureTuneError(
            f"unknown method {name!r}; use plain, persona or <optimizer>[-<orders>][-cal] with "
            f"optimizer {'/'.join(OPTIMIZERS)} and orders {'/'.join(METHOD_ORDERS)} (e.g. "
            f"{METHOD_EXAMPLES})"
        )
    return MethodSpec(key, opt, rest[0] if rest else orders, cal)


Progress = Callable[[str], None]


# --------------------------------------------------------------------------- configuration


def _names(value: Any, what: str) -> list[str]:
    """A list of names from a list or a comma-separated string."""
    if isinstance(value, str):
        value = [v for v in (p.strip() for p in value.split(",")) if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise CultureTuneError(f"{what} must be a list of names (or one comma-separated string)")
    if not value:
        raise CultureTuneError(f"{what} must name at least one entry")
    return [v.strip() for v in value]


def _count(value: Any, what: str, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        extra = " (or null)" if allow_none else ""
        raise CultureTuneError(f"{what} must be a whole number of at least 1{extra}, got {value!r}")
    return value


@dataclass
class ExperimentConfig:
    """Settings of one experiment; ``from_file`` reads them from JSON (keys = field names)."""

    model: str | None = None
    countries: list[str] = field(default_factory=lambda: list(DEFAULT_COUNTRIES))
    methods: list[str] = field(default_factory=lambda: list(DEFAULT_METHODS))
    seeds: int = 3
    budget: int = DEFAULT_BUDGET
    population: int = 16
    tokens: int = 5
    placement: str = "answer"
    subspace: int | None = 64
    constants: Any = None
    bench_split: str | None = "easy"
    data: str | None = None
    bench_limit: int | None = None
    #: Option orders of tuned methods named without their own (``pso`` = ``pso-<orders>``).
    orders: str = defaults.ORDERS
    #: Tune methods named without ``-cal`` on calibrated answers too.
    calibrate: bool = False
    #: Option orders of CulturalBench letter scoring.
    bench_orders: str = defaults.BENCH_ORDERS
    #: More held-out wordings (instrument .json files) every cell is read in.
    validate_instruments: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for name in ("countries", "methods", "validate_instruments"):
            if isinstance(getattr(self, name), tuple):
                setattr(self, name, list(getattr(self, name)))

    @classmethod
    def quick(cls, **overrides: Any) -> ExperimentConfig:
        """The ``--quick`` preset: 1 seed, methods plain/persona/de/random, budget 320 (about
        4-6 minutes for the four default countries on a 2-core CPU)."""
        base: dict[str, Any] = dict(seeds=1, methods=list(QUICK_METHODS), budget=QUICK_BUDGET)
        base.update(overrides)
        return cls(**base).validate()

    def validate(self) -> ExperimentConfig:
        """Check every setting; raises :class:`CultureTuneError` saying what to change."""
        from culturetune.survey import check_placement

        self.countries = _names(self.countries, "countries")
        codes = [lookup_country(c).code for c in self.countries]
        dup = sorted({c for c in codes if codes.count(c) > 1})
        if dup:
            raise CultureTuneError(f"countries name the same country twice ({', '.join(dup)})")
        self.orders = check_orders(self.orders, METHOD_ORDERS)
        if not isinstance(self.calibrate, bool):
            raise CultureTuneError(f"calibrate must be true or false, got {self.calibrate!r}")
        self.bench_orders = check_orders(self.bench_orders)
        self.methods = [m.lower() for m in _names(self.methods, "methods")]
        specs = [parse_method(m, self.orders, self.calibrate) for m in self.methods]
        seen = [(s.optimizer, s.orders, s.calibrate) if s.tuned else s.name for s in specs]
        if len(set(seen)) != len(seen):
            raise CultureTuneError("methods name the same method twice (pso and pso-"
                                   f"{self.orders} are the same here)")
        if isinstance(self.validate_instruments, str):
            self.validate_instruments = [self.validate_instruments]
        if not isinstance(self.validate_instruments, list):
            raise CultureTuneError("validate_instruments must be a list of instrument files")
        self.validate_instruments = [instrument_key(p) for p in self.validate_instruments]
        for path in self.validate_instruments:
            load_instrument(path)
        for name in ("seeds", "budget", "population", "tokens"):
            setattr(self, name, _count(getattr(self, name), name))
        if self.subspace == "full":
            self.subspace = None
        self.subspace = _count(self.subspace, "subspace", allow_none=True)
        self.bench_limit = _count(self.bench_limit, "bench_limit", allow_none=True)
        check_placement(self.placement)
        parse_constants(self.constants)
        if self.bench_split is not None:
            self.bench_split = str(self.bench_split).lower()
            if self.bench_split not in SPLITS:
                raise CultureTuneError(
                    f"bench_split must be easy, hard or null (no CulturalBench), "
                    f"got {self.bench_split!r}"
                )
        if self.model is not None and not isinstance(self.model, str):
            raise CultureTuneError(f"model must be a name or path, got {self.model!r}")
        if self.data is not None:
            self.data = str(self.data)
        check_experiment_limits(self)
        return self

    @property
    def targets(self) -> list[Target]:
        return [lookup_country(c) for c in self.countries]

    @property
    def specs(self) -> list[MethodSpec]:
        return [parse_method(m, self.orders, self.calibrate) for m in self.methods]

    @property
    def tuned_methods(self) -> list[str]:
        return [s.name for s in self.specs if s.tuned]

    @property
    def views(self) -> list[View]:
        """Every view a cell is read in: the judge views, each tuned method's training view and
        its checks (:func:`culturetune.validity.check_views`), and the user's wordings."""
        out = list(JUDGE_VIEWS)
        out += [View(p, "both") for p in self.validate_instruments]
        for spec in self.specs:
            if spec.tuned:
                train = spec.training_view
                out += [train, *(v for _, v in check_views(train, self.validate_instruments))]
        return list(dict.fromkeys(out))

    def cells(self) -> list[tuple[Target, str, int | None]]:
        """Every (country, method, seed) cell in run order; deterministic methods have seed
        ``None``."""
        out: list[tuple[Target, str, int | None]] = []
        for target in self.targets:
            for method in self.methods:
                seeds: Sequence[int | None] = [None] if method in BASELINES else range(self.seeds)
                out += [(target, method, s) for s in seeds]
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "experiment config") -> ExperimentConfig:
        """Build and validate a config; unknown keys and bad values name ``source``."""
        if not isinstance(d, Mapping):
            raise CultureTuneError(
                f"{source}: expected a JSON object of settings, got {type(d).__name__}"
            )
        known = [f.name for f in fields(cls)]
        clean = {str(k).replace("-", "_"): v for k, v in d.items()}
        unknown = sorted(k for k in clean if k not in known)
        if unknown:
            raise CultureTuneError(
                f"{source}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(known)}"
            )
        try:
            return cls(**clean).validate()
        except CultureTuneError as exc:
            raise CultureTuneError(f"{source}: {exc}") from None

    @classmethod
    def from_file(cls, path: str | Path) -> ExperimentConfig:
        """Read a JSON config file (``--config FILE``)."""
        path = Path(path)
        text = read_text(path, "config file")
        data = loads_json(text, f"config file {path}")
        return cls.from_dict(data, f"config file {path}")


def quick(**overrides: Any) -> ExperimentConfig:
    """The ``--quick`` preset (see :meth:`ExperimentConfig.quick`)."""
    return ExperimentConfig.quick(**overrides)


# --------------------------------------------------------------------------- cells


def cell_name(method: str, seed: int | None) -> str:
    return method if seed is None else f"{method}-seed{seed}"


def cell_label(target: Target, method: str, seed: int | None) -> str:
    return f"{target.name} {method}" + ("" if seed is None else f" seed {seed}")


def cell_path(out: Path, target: Target, method: str, seed: int | None) -> Path:
    return out / "cells" / str(target.code) / f"{cell_name(method, seed)}.json"


def run_path(out: Path, target: Target, method: str, seed: int) -> Path:
    return out / "runs" / str(target.code) / cell_name(method, seed)


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
    }
    spec = parse_method(method, config.orders, config.calibrate)
    if spec.tuned:
        s.update(
            optimizer=spec.optimizer,
            orders=spec.orders,
            calibrate=spec.calibrate,
            budget=config.budget,
            population=config.population,
            tokens=config.tokens,
            placement=config.placement,
            subspace=config.subspace,
        )
    return s


def _saved_cell(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
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


# --------------------------------------------------------------------------- measurements


def view_key(view: View) -> str:
    """How a view is named in results: ``vsm2013:both``, ``paraphrase:cyclic:cal``, a file's
    path with its orders."""
    return f"{view.instrument}:{view.orders}" + (":cal" if view.calibrate else "")


class _Surveys:
    """Surveys per (view, system prompt), built once (their prefix caches are reused by every
    cell); those of a persona system prompt are dropped after its cell."""

    def __init__(self, lm: Any, placement: str, constants: dict[str, float]) -> None:
        self.lm, self.placement, self.constants = lm, placement, constants
        self.cache: dict[tuple[View, str | None], Any] = {}

    def get(self, view: View, system: str | None) -> Any:
        from culturetune.survey import Survey

        key = (view, system)
        if key not in self.cache:
            self.cache[key] = Survey(
                self.lm, view.instrument, system=system, placement=self.placement,
                orders=view.orders, calibrate=view.calibrate,
            )
        return self.cache[key]

    def forget(self, system: str | None) -> None:
        for key in [k for k in self.cache if k[1] == system]:
            del self.cache[key]

    def measure(
        self, target: Target, soft: Any, system: str | None, views: Sequence[View]
    ) -> dict[str, dict[str, Any]]:
        """Indices, loss and option mass in each view."""
        from culturetune.survey import run_survey

        out = {}
        for view in views:
            r = run_survey(self.get(view, system), soft=soft, constants=self.constants,
                           target=target)
            out[view_key(view)] = {
                "indices": r.indices,
                "loss": None if r.loss is None else r.loss.value,
                "option_mass": sum(i.mass for i in r.items) / len(r.items),
            }
        return out


class _LetterScorer:
    """CulturalBench-Easy letter scoring with the prompts encoded once (KV cache), so that each
    soft prompt placed before the answer costs only its virtual tokens. Same prompts, orders,
    batches and label tokens as :func:`culturetune.culturalbench.evaluate_easy`."""

    BATCH = 32

    def __init__(self, lm: Any, questions: Sequence[Any], system: str | None,
                 orders: str = "shown") -> None:
        from culturetune.culturalbench import (
            LETTER_FORMS,
            LETTER_HINT,
            LETTERS,
            easy_prompt,
            label_groups,
            length_batches,
        )
        from culturetune.engine import PromptScorer, split_tokens
        from culturetune.survey import label_token_ids
        from culturetune.views import option_orders

        self.questions = list(questions)
        self.orders = option_orders(orders, len(LETTERS))
        ids = label_token_ids(lm.tokenizer, LETTER_FORMS, LETTER_HINT)
        self.flat, self.groups = label_groups(ids)
        texts = [lm.render(easy_prompt(q, o), system)[0] for o in self.orders
                 for q in self.questions]
        self.n_texts = len(texts)
        self.parts = [
            (idx, PromptScorer(lm, split_tokens(lm, [texts[j] for j in idx],
                                                [len(texts[j]) for j in idx])))
            for idx in length_batches(texts, self.BATCH)
        ]

    def correct(self, soft: Any) -> list[bool]:
        import torch

        from culturetune.culturalbench import LETTERS, label_logprobs
        from culturetune.views import to_content_order

        per_label = torch.empty(self.n_texts, len(self.groups))
        batch = None if soft is None else soft[None]
        for idx, scorer in self.parts:
            per_label[idx] = label_logprobs(scorer, batch, self.flat, self.groups)
        probs = torch.softmax(per_label, -1).double().numpy()
        probs = probs.reshape(len(self.orders), len(self.questions), len(LETTERS))
        pred = to_content_order(probs, self.orders).mean(0).argmax(-1).tolist()
        return [LETTERS[p] == q.answer for p, q in zip(pred, self.questions, strict=True)]


class _Bench:
    """CulturalBench questions of the experiment's countries and per-condition correctness."""

    def __init__(self, lm: Any, config: ExperimentConfig) -> None:
        self.lm, self.split, self.placement = lm, config.bench_split, config.placement
        self.limit, self.orders = config.bench_limit, config.bench_orders
        self.questions: list[Any] = []
        self.source: str | None = None
        if self.split is not None:
            from culturetune.culturalbench import load_dataset_table, questions_from_dataset

            ds, source = load_dataset_table(self.split, config.data)
            self.questions = questions_from_dataset(ds, self.split, source)
            # A local file is named by its absolute path, so that a rerun from another folder
            # still recognises its finished cells.
            self.source = source if config.data is None else str(Path(source).resolve())
        self.country: str | None = None
        self.scorers: dict[str | None, _LetterScorer] = {}

    def questions_for(self, target: Target) -> tuple[list[Any], str | None]:
        """The country's questions and, when there are none, a note saying why."""
        from culturetune.culturalbench import select_questions

        if self.split is None:
            return [], "CulturalBench not run (bench_split is null)"
        try:
            return select_questions(self.questions, [target.name], self.limit), None
        except CultureTuneError:
            bench = f"CulturalBench-{self.split.capitalize()}"
            return [], f"no {bench} questions for {target.name} in {self.source}"

    def correct(self, target: Target, system: str | None, soft: Any) -> list[bool]:
        """Per-question correctness under a system prompt and/or a soft prompt."""
        qs, _ = self.questions_for(target)
        if not qs:
            return []
        if self.split == "easy" and (soft is None or self.placement == "answer"):
            if self.country != target.code:  # keep only the current country's encodings
                self.scorers, self.country = {}, target.code
            if system not in self.scorers:
                self.scorers[system] = _LetterScorer(self.lm, qs, system, self.orders)
            scorer = self.scorers[system]
            if system is not None:
                del self.scorers[system]  # persona prompts are scored once
            return scorer.correct(soft)
        return self._evaluate(qs, system, soft)

    def _evaluate(self, qs: list[Any], system: str | None, soft: Any) -> list[bool]:
        from culturetune.culturalbench import Condition, evaluate_easy, evaluate_hard
        from culturetune.softprompt import SoftPrompt

        prompt = None if soft is None else SoftPrompt(soft, self.placement)
        cond = Condition("condition", system=system, soft=prompt)
        if self.split == "easy":
            return [o.correct for o in evaluate_easy(self.lm, qs, cond, orders=self.orders)]
        return [o.correct for o in evaluate_hard(self.lm, qs, cond)]

    def block(
        self, target: Target, correct: list[bool], plain: list[bool] | None
    ) -> dict[str, Any]:
        """Accuracy with its Wilson interval, per-question outcomes and McNemar vs plain."""
        from culturetune.stats import accuracy, compare

        qs, note = self.questions_for(target)
        acc = accuracy(correct)
        return {
            "split": self.split,
            "orders": self.orders if self.split == "easy" else None,
            "n": acc.n,
            "k": acc.k,
            "accuracy": acc.value,
            "low": acc.low if acc.n else None,
            "high": acc.high if acc.n else None,
            "note": note,
            "correct": {str(q.question_idx): c for q, c in zip(qs, correct, strict=True)},
            "vs_plain": compare(plain, correct).to_dict() if plain and acc.n else None,
        }


class _Runner:
    """Runs cells of one experiment, sharing surveys, questions and plain-model references."""

    def __init__(self, lm: Any, config: ExperimentConfig, out: Path, say: Progress) -> None:
        self.lm, self.config, self.out, self.say = lm, config, out, say
        self.constants = parse_constants(config.constants)
        self.surveys = _Surveys(lm, config.placement, self.constants)
        self.bench = _Bench(lm, config)
        self.views = config.views
        self.plain: dict[str, dict[str, Any]] = {}

    def settings(self, method: str, seed: int | None) -> dict[str, Any]:
        return cell_settings(self.config, self.lm, method, seed, self.bench.source)

    def reference(self, target: Target) -> dict[str, Any]:
        """The plain model's losses in every view and its bench outcomes (computed once)."""
        key = str(target.code)
        if key not in self.plain:
            from culturetune.survey import uniform_loss

            views = self.surveys.measure(target, None, None, self.views)
            correct = self.bench.correct(target, None, None)
            self.plain[key] = {
                "views": {k: v["loss"] for k, v in views.items()},
                "uniform": uniform_loss(target, self.constants).value,
                "accuracy": (sum(correct) / len(correct)) if correct else None,
                "correct": correct,
                "measured": views,
            }
        return self.plain[key]

    def cell(self, target: Target, method: str, seed: int | None, label: str) -> dict[str, Any]:
        from culturetune.survey import persona_prompt

        began = time.perf_counter()
        spec = parse_method(method, self.config.orders, self.config.calibrate)
        ref = self.reference(target)
        system = persona_prompt(target.name) if method == "persona" else None
        soft, tuning = None, None
        if spec.tuned:
            assert seed is not None
            soft, tuning = self.tune(target, spec, seed, label)
        if method == "plain":
            views = ref["measured"]
        else:
            views = self.surveys.measure(target, soft, system, self.views)
            if system is not None:
                self.surveys.forget(system)
        correct = ref["correct"] if method == "plain" else self.bench.correct(target, system, soft)
        plain_correct = None if method == "plain" else ref["correct"]
        headline = views[view_key(HEADLINE)]
        cell: dict[str, Any] = {
            "country": target.name,
            "code": target.code,
            "method": method,
            "seed": seed,
            "optimizer": spec.optimizer,
            "orders": spec.orders,
            "calibrate": spec.calibrate if spec.tuned else None,
            "training_view": None if not spec.tuned else view_key(spec.training_view),
            "indices": headline["indices"],
            "loss": headline["loss"],
            "views": views,
            "uniform_loss": ref["uniform"],
            "bench": self.bench.block(target, correct, plain_correct),
            "plain_reference": {k: v for k, v in ref.items()
                                if k not in ("correct", "measured")},
            "tuning": tuning,
            "system": system,
            "settings": self.settings(method, seed),
        }
        cell["seconds"] = round(time.perf_counter() - began, 3)
        return cell

    def complete(self, cell: dict[str, Any], target: Target, path: Path) -> dict[str, Any]:
        """Add the views a saved cell lacks (the grid gained a method that needs more)."""
        missing = [v for v in self.views if view_key(v) not in cell.get("views", {})]
        if not missing:
            return cell
        from culturetune.survey import persona_prompt

        soft = None
        if cell.get("tuning"):
            from culturetune.softprompt import SoftPrompt

            soft = SoftPrompt.load(self.out / cell["tuning"]["folder"]).embeddings
        system = persona_prompt(target.name) if cell["method"] == "persona" else None
        cell["views"].update(self.surveys.measure(target, soft, system, missing))
        if system is not None:
            self.surveys.forget(system)
        ref = self.reference(target)
        cell["plain_reference"]["views"] = dict(ref["views"])
        write_json(path, cell)
        return cell

    def tune(
        self, target: Target, spec: MethodSpec, seed: int, label: str
    ) -> tuple[Any, dict[str, Any]]:
        from culturetune.tuning import RUN_FILE, Interrupted, TuneConfig, tune

        cfg = TuneConfig(
            target=target,
            model=self.lm.name,
            tokens=self.config.tokens,
            placement=self.config.placement,
            subspace=self.config.subspace,
            optimizer=spec.optimizer,
            orders=spec.orders,
            calibrate=spec.calibrate,
            budget=self.config.budget,
            population=self.config.population,
            seed=seed,
            constants=self.constants,
        )
        folder = run_path(self.out, target, spec.name, seed)
        resume = (folder / RUN_FILE).exists()
        if resume:
            _check_run(folder / RUN_FILE, cfg)
        try:
            result = tune(
                self.lm, cfg, folder, resume=resume, on_progress=self._ticker(label, cfg.budget)
            )
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

    def _ticker(self, label: str, budget: int) -> Callable[[Any], None]:
        last = [time.perf_counter()]

        def tick(p: Any) -> None:
            if time.perf_counter() - last[0] >= 15 or p.evaluations >= budget:
                last[0] = time.perf_counter()
                self.say(
                    f"  {label}: {p.evaluations}/{budget} evaluations, best loss "
                    f"{p.best_loss:.2f} ({p.seconds:.0f} s)"
                )

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


# --------------------------------------------------------------------------- experiment


def machine_info(lm: Any) -> dict[str, Any]:
    """Where the experiment ran: CPU, cores, torch threads, device and dtype."""
    import torch

    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if lm.device.startswith("cuda") else None
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": lm.device,
        "gpu": gpu,
        "dtype": lm.dtype,
    }


def versions() -> dict[str, str]:
    import nevergrad
    import numpy
    import torch
    import transformers

    from culturetune import __version__

    return {
        "culturetune": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "nevergrad": nevergrad.__version__,
        "numpy": numpy.__version__,
    }


def _country_entry(target: Target, bench: _Bench) -> dict[str, Any]:
    qs, note = bench.questions_for(target)
    return {
        "name": target.name,
        "code": target.code,
        "target": dict(target.scores),
        "estimated": list(target.estimated),
        "source": target.source,
        "n_questions": len(qs),
        "bench_note": note,
    }


def run_experiment(
    lm: Any,
    config: ExperimentConfig,
    out_dir: str | Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every cell not already finished in ``out_dir``, then write ``results.json``,
    ``report.md``, ``report.html`` and figures there. Returns the results dict."""
    from culturetune.report import write_report

    config.validate()
    out = Path(out_dir)
    say = progress or (lambda message: None)
    began = time.perf_counter()
    runner = _Runner(lm, config, out, say)
    cells = config.cells()
    records, done = [], 0
    for i, (target, method, seed) in enumerate(cells, 1):
        label = cell_label(target, method, seed)
        path = cell_path(out, target, method, seed)
        saved = _saved_cell(path, runner.settings(method, seed))
        if saved is not None:
            say(f"cell {i}/{len(cells)}: {label} (already done)")
            records.append(runner.complete(saved, target, path))
            done += 1
            continue
        say(f"cell {i}/{len(cells)}: {label} ...")
        cell = runner.cell(target, method, seed, label)
        write_json(path, cell)
        records.append(cell)
    results = {
        "format": FORMAT,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.to_dict(),
        "model": lm.name,
        "machine": machine_info(lm),
        "versions": versions(),
        "instruments": {"vsm2013": "VSM 2013 (official items)", "paraphrase": PARAPHRASE_NOTE,
                        **{p: "user's instrument file" for p in config.validate_instruments}},
        "views": [{"key": view_key(v), "name": v.name, "instrument": v.instrument,
                   "orders": v.orders, "calibrate": v.calibrate} for v in runner.views],
        "headline": view_key(HEADLINE),
        "specs": {s.name: {"optimizer": s.optimizer, "orders": s.orders,
                           "calibrate": s.calibrate,
                           "training_view": s.training_view and view_key(s.training_view)}
                  for s in config.specs},
        "bench": {
            "split": config.bench_split,
            "source": runner.bench.source,
            "limit": config.bench_limit,
            "scoring": "letter" if config.bench_split == "easy" else "true/false",
            "orders": config.bench_orders if config.bench_split == "easy" else None,
        },
        "countries": [_country_entry(t, runner.bench) for t in config.targets],
        "methods": list(config.methods),
        "dimensions": list(DIMENSIONS),
        "cells": records,
        "reused_cells": done,
        "seconds": round(time.perf_counter() - began, 3),
    }
    write_json(out / "results.json", results)
    say(f"writing the report in {out} ...")
    write_report(results, out)
    return results


__all__ = [
    "BASELINES",
    "DEFAULT_BUDGET",
    "DEFAULT_COUNTRIES",
    "DEFAULT_METHODS",
    "HEADLINE",
    "JUDGE_VIEWS",
    "QUICK_BUDGET",
    "QUICK_METHODS",
    "ExperimentConfig",
    "MethodSpec",
    "parse_method",
    "view_key",
    "cell_path",
    "quick",
    "run_experiment",
]
