"""The reference study end to end: every (country × method × seed) cell, resumable, then a report.

Methods are the plain model, persona prompting (a system prompt naming the country) and soft
prompts tuned by each derivative-free optimizer (``de``, ``cma``, ``pso``, ``random``). Every cell
records the six VSM 2013 indices and their loss against the country's scores, CulturalBench
accuracy on the country's questions (Wilson interval, exact McNemar test against the plain model),
and two validity checks: the survey with its options listed in reverse order, and a paraphrased
version of the items (written for culturetune, not the official instrument). Each finished cell is
its own JSON file, so an interrupted experiment resumes where it stopped::

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

from culturetune.errors import CultureTuneError
from culturetune.files import read_json, read_text, write_json
from culturetune.inputs import check_experiment_limits, loads_json
from culturetune.targets import Target, lookup_country
from culturetune.vsm import DIMENSIONS, parse_constants

BASELINES: tuple[str, ...] = ("plain", "persona")
#: Tuned methods: (optimizer, option orders tuned on). ``de-both`` is DE on the answers averaged
#: over printed and reversed option order (culturetune's guard against answer-position shortcuts).
TUNED_SPECS: dict[str, tuple[str, str]] = {
    "de": ("de", "shown"), "cma": ("cma", "shown"), "pso": ("pso", "shown"),
    "random": ("random", "shown"), "de-both": ("de", "both"),
}
TUNED: tuple[str, ...] = tuple(TUNED_SPECS)
#: Every method; the default runs all but ``de-both`` (the reference study's design).
METHODS: tuple[str, ...] = BASELINES + TUNED
DEFAULT_METHODS: tuple[str, ...] = BASELINES + ("de", "cma", "pso", "random")
SPLITS: tuple[str, ...] = ("easy", "hard")
#: The reference study's four countries (arXiv 2503.16094).
DEFAULT_COUNTRIES: tuple[str, ...] = ("Saudi Arabia", "U.S.A.", "China", "India")
#: Evaluations per tuning run. On the project's 2-core CPU one step (16 candidates × 24 items) of
#: the default model takes about 1.0 s; the full default (4 countries × 6 methods, 3 seeds for the
#: 4 optimizers = 48 tuning runs of 40 steps, plus surveys, checks and CulturalBench per cell)
#: took 42.6 minutes there (docs/results/default).
DEFAULT_BUDGET = 640
#: ``quick()``: 4 countries × (plain, persona, de, random) × 1 seed = 8 tuning runs of 20 steps;
#: 4.3 minutes measured on the same CPU.
QUICK_BUDGET = 320
QUICK_METHODS: tuple[str, ...] = ("plain", "persona", "de", "random")
PARAPHRASE_NOTE = (
    "paraphrased VSM 2013 items written for culturetune (same answer scales and formulas); "
    "not the official instrument"
)
FORMAT = "culturetune-experiment/1"

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

    def __post_init__(self) -> None:
        if isinstance(self.countries, tuple):
            self.countries = list(self.countries)
        if isinstance(self.methods, tuple):
            self.methods = list(self.methods)

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
        self.methods = [m.lower() for m in _names(self.methods, "methods")]
        bad = [m for m in self.methods if m not in METHODS]
        if bad:
            raise CultureTuneError(
                f"unknown method(s) {', '.join(map(repr, bad))}; use any of {', '.join(METHODS)}"
            )
        if len(set(self.methods)) != len(self.methods):
            raise CultureTuneError("methods name the same method twice")
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
    def tuned_methods(self) -> list[str]:
        return [m for m in self.methods if m in TUNED]

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
    """What a cell's numbers depend on; a saved cell is reused only when these match."""
    s: dict[str, Any] = {
        "model": lm.name,
        "dtype": lm.dtype,
        "constants": parse_constants(config.constants),
        "bench_split": config.bench_split,
        "bench_limit": config.bench_limit,
        "bench_source": bench_source,
        "method": method,
        "seed": seed,
    }
    if method in TUNED:
        optimizer, orders = TUNED_SPECS[method]
        if orders != "shown":
            s["orders"] = orders
        s.update(
            optimizer=optimizer,
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


class _Surveys:
    """Surveys built once per (instrument, reversed options, system prompt) and reused."""

    def __init__(self, lm: Any, placement: str, constants: dict[str, float]) -> None:
        self.lm, self.placement, self.constants = lm, placement, constants
        self.cache: dict[tuple[str, bool, str | None], Any] = {}

    def get(self, instrument: str, reverse: bool, system: str | None) -> Any:
        from culturetune.survey import Survey

        key = (instrument, reverse, system)
        if key not in self.cache:
            self.cache[key] = Survey(
                self.lm, instrument, system=system, placement=self.placement, reverse=reverse
            )
        return self.cache[key]

    def measure(self, target: Target, soft: Any, system: str | None) -> dict[str, Any]:
        """Indices and loss on the official instrument, plus both validity checks."""
        official = self._one("vsm2013", False, target, soft, system)
        return {
            **official,
            "checks": {
                "reversed": self._one("vsm2013", True, target, soft, system),
                "paraphrase": {
                    **self._one("paraphrase", False, target, soft, system),
                    "official": False,
                    "note": PARAPHRASE_NOTE,
                },
            },
        }

    def _one(
        self, instrument: str, reverse: bool, target: Target, soft: Any, system: str | None
    ) -> dict[str, Any]:
        from culturetune.survey import run_survey

        survey = self.get(instrument, reverse, system)
        r = run_survey(survey, soft=soft, constants=self.constants, target=target)
        return {
            "indices": r.indices,
            "loss": None if r.loss is None else r.loss.value,
            "gaps": None if r.loss is None else r.loss.gaps,
            "option_mass": sum(i.mass for i in r.items) / len(r.items),
        }


class _LetterScorer:
    """CulturalBench-Easy letter scoring with the prompts encoded once (KV cache), so that each
    soft prompt placed before the answer costs only its virtual tokens. Same prompts, batches and
    label tokens as :func:`culturetune.culturalbench.evaluate_easy`."""

    BATCH = 32

    def __init__(self, lm: Any, questions: Sequence[Any], system: str | None) -> None:
        from culturetune.culturalbench import (
            LETTER_FORMS,
            LETTER_HINT,
            easy_prompt,
            label_groups,
            length_batches,
        )
        from culturetune.engine import PromptScorer, split_tokens
        from culturetune.survey import label_token_ids

        self.questions = list(questions)
        ids = label_token_ids(lm.tokenizer, LETTER_FORMS, LETTER_HINT)
        self.flat, self.groups = label_groups(ids)
        texts = [lm.render(easy_prompt(q), system)[0] for q in self.questions]
        self.parts = [
            (idx, PromptScorer(lm, split_tokens(lm, [texts[j] for j in idx],
                                                [len(texts[j]) for j in idx])))
            for idx in length_batches(texts, self.BATCH)
        ]

    def correct(self, soft: Any) -> list[bool]:
        import torch

        from culturetune.culturalbench import LETTERS, label_logprobs

        per_label = torch.empty(len(self.questions), len(self.groups))
        batch = None if soft is None else soft[None]
        for idx, scorer in self.parts:
            per_label[idx] = label_logprobs(scorer, batch, self.flat, self.groups)
        pred = per_label.argmax(-1).tolist()
        return [LETTERS[p] == q.answer for p, q in zip(pred, self.questions, strict=True)]


class _Bench:
    """CulturalBench questions of the experiment's countries and per-condition correctness."""

    def __init__(self, lm: Any, config: ExperimentConfig) -> None:
        self.lm, self.split, self.placement = lm, config.bench_split, config.placement
        self.limit = config.bench_limit
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
                self.scorers[system] = _LetterScorer(self.lm, qs, system)
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
            return [o.correct for o in evaluate_easy(self.lm, qs, cond)]
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
        self.plain: dict[str, dict[str, Any]] = {}

    def settings(self, method: str, seed: int | None) -> dict[str, Any]:
        return cell_settings(self.config, self.lm, method, seed, self.bench.source)

    def reference(self, target: Target) -> dict[str, Any]:
        """The plain model's losses and bench outcomes for a country (computed once)."""
        key = str(target.code)
        if key not in self.plain:
            m = self.surveys.measure(target, None, None)
            correct = self.bench.correct(target, None, None)
            self.plain[key] = {
                "loss": m["loss"],
                "reversed_loss": m["checks"]["reversed"]["loss"],
                "paraphrase_loss": m["checks"]["paraphrase"]["loss"],
                "accuracy": (sum(correct) / len(correct)) if correct else None,
                "correct": correct,
            }
        return self.plain[key]

    def cell(self, target: Target, method: str, seed: int | None, label: str) -> dict[str, Any]:
        from culturetune.survey import persona_prompt

        began = time.perf_counter()
        ref = self.reference(target)
        system = persona_prompt(target.name) if method == "persona" else None
        soft, tuning = None, None
        if method in TUNED:
            assert seed is not None
            soft, tuning = self.tune(target, method, seed, label)
        measured = self.surveys.measure(target, soft, system)
        correct = ref["correct"] if method == "plain" else self.bench.correct(target, system, soft)
        plain_correct = None if method == "plain" else ref["correct"]
        cell: dict[str, Any] = {
            "country": target.name,
            "code": target.code,
            "method": method,
            "seed": seed,
            **measured,
            "bench": self.bench.block(target, correct, plain_correct),
            "plain_reference": {k: v for k, v in ref.items() if k != "correct"},
            "tuning": tuning,
            "system": system,
            "settings": self.settings(method, seed),
        }
        cell["seconds"] = round(time.perf_counter() - began, 3)
        return cell

    def tune(
        self, target: Target, method: str, seed: int, label: str
    ) -> tuple[Any, dict[str, Any]]:
        from culturetune.tuning import RUN_FILE, Interrupted, TuneConfig, tune

        cfg = TuneConfig(
            target=target,
            model=self.lm.name,
            tokens=self.config.tokens,
            placement=self.config.placement,
            subspace=self.config.subspace,
            optimizer=TUNED_SPECS[method][0],
            orders=TUNED_SPECS[method][1],
            budget=self.config.budget,
            population=self.config.population,
            seed=seed,
            constants=self.constants,
        )
        folder = run_path(self.out, target, method, seed)
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
            "optimizer": method,
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
    saved = saved if isinstance(saved, dict) else {}
    keys = ("optimizer", "budget", "population", "tokens", "placement", "subspace", "seed")
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
            records.append(saved)
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
        "instruments": {"vsm2013": "VSM 2013 (official items)", "paraphrase": PARAPHRASE_NOTE},
        "bench": {
            "split": config.bench_split,
            "source": runner.bench.source,
            "limit": config.bench_limit,
            "scoring": "letter" if config.bench_split == "easy" else "true/false",
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
    "METHODS",
    "QUICK_BUDGET",
    "QUICK_METHODS",
    "TUNED",
    "ExperimentConfig",
    "cell_path",
    "quick",
    "run_experiment",
]
