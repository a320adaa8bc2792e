"""The reference study end to end: the grid of (country × method × seed) cells, resumable, then
the results file and the report.

Methods are the plain model, persona prompting (a system prompt naming the country) and soft
prompts tuned by each derivative-free optimizer on an objective: ``pso`` is PSO on the experiment's
option orders (order-balanced by default), ``pso-shown`` PSO on the items as printed, ``pso-cal``
on calibrated answers (grammar: ``<optimizer>[-<orders>][-cal]``, :mod:`culturetune.methods`).
Every cell is read in the same set of *views* (:mod:`culturetune.validity`): the official items in
each option-order set and the paraphrased items (written for culturetune, not the official
instrument), so that every method is judged on views it was not tuned on; plus CulturalBench
accuracy on the country's questions with order-debiased letters (Wilson interval, exact McNemar
test against the plain model).

This module holds the settings (:class:`ExperimentConfig`, its grid of cells) and
:func:`run_experiment`, which runs every cell through a :class:`culturetune.cells.CellRunner`
(what one cell measures) and writes what the report reads. Each finished cell is its own JSON
file, so an interrupted experiment resumes where it stopped::

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
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from culturetune import defaults
from culturetune.cells import CellRunner, CellSpec, Progress, cell_path
from culturetune.errors import CultureTuneError
from culturetune.files import WriteError, read_text, write_json
from culturetune.inputs import check_experiment_limits, loads_json
from culturetune.methods import (
    BASELINES,
    DEFAULT_METHODS,
    FORMAT,
    HEADLINE,
    JUDGE_VIEWS,
    METHOD_EXAMPLES,
    METHOD_ORDERS,
    OPTIMIZERS,
    MethodSpec,
    parse_method,
    view_key,
)
from culturetune.report import write_report
from culturetune.targets import Target, lookup_country
from culturetune.validity import View, check_views
from culturetune.views import check_orders
from culturetune.vsm import DIMENSIONS, instrument_key, load_instrument, parse_constants

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
        """The ``--quick`` preset: 1 seed, methods plain/persona/pso/de, budget 320 (about
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

    def cell_specs(self) -> list[CellSpec]:
        """The cells of :meth:`cells` as :class:`~culturetune.cells.CellSpec` (what a
        :class:`~culturetune.cells.CellRunner` measures)."""
        return [CellSpec.of(target, method, seed) for target, method, seed in self.cells()]

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


def _tuned_wordings() -> list[str]:
    """The wordings a tuned cell is tuned on: the official items and the default extra ones."""
    return list(dict.fromkeys(["vsm2013", *defaults.TRAIN_INSTRUMENTS]))


def _country_entry(target: Target, bench: Any) -> dict[str, Any]:
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
    executor: Any = None,
) -> dict[str, Any]:
    """Run every cell not already finished in ``out_dir``, then write ``results.json``,
    ``report.md``, ``report.html`` and figures there. Returns the results dict.

    ``executor`` runs the cells (:mod:`culturetune.executors`): by default one after another in
    this process on ``lm``; a :class:`~culturetune.executors.RayExecutor` runs them on Ray
    workers that load the model themselves (``lm`` may then be ``None``)."""
    from culturetune.executors import LocalExecutor

    config.validate()
    out = Path(out_dir)
    say = progress or (lambda message: None)
    began = time.perf_counter()
    if executor is None:
        if lm is None:
            raise CultureTuneError("run_experiment needs a loaded model or an executor")
        executor = LocalExecutor(lm)
    model_check = None
    if lm is not None:
        from culturetune.check import check_model

        model_check = check_model(lm, "vsm2013")
        say(f"model check: {model_check.summary()}")
        if model_check.warning():
            say(f"warning: {model_check.warning()}; the experiment still runs")
    try:
        grid = executor.run_grid(config, out, say)
        runner, records = grid.runner, grid.cells
        results = {
            "format": FORMAT,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": config.to_dict(),
            "model": grid.model,
            "machine": grid.machine,
            "versions": versions(),
            "model_check": None if model_check is None else model_check.to_dict(),
            "instruments": {"vsm2013": "VSM 2013 (official items)", "paraphrase": PARAPHRASE_NOTE,
                            "paraphrase2": PARAPHRASE_NOTE.replace("paraphrased",
                                                                   "paraphrased (again)"),
                            **{p: "user's instrument file" for p in config.validate_instruments}},
            "views": [{"key": view_key(v), "name": v.name, "instrument": v.instrument,
                       "orders": v.orders, "calibrate": v.calibrate, "reading": v.reading}
                      for v in runner.views],
            "headline": view_key(HEADLINE),
            "specs": {s.name: {"optimizer": s.optimizer, "orders": s.orders,
                               "calibrate": s.calibrate,
                               "training_view": s.training_view and view_key(s.training_view),
                               "wordings": _tuned_wordings() if s.tuned else []}
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
            "reused_cells": grid.reused,
            "seconds": round(time.perf_counter() - began, 3),
        }
        write_json(out / "results.json", results)
        say(f"writing the report in {out} ...")
        write_report(results, out)
    except WriteError as exc:
        raise exc.then(f"run the same experiment again (same output folder): the finished cells "
                       f"and tuning checkpoints in {out} are kept") from exc
    return results


#: Keys (at any depth of a results dict) that say when, where and how long, not what was
#: measured: two runs of one grid with the same settings agree on everything else.
UNTIMED = frozenset({"seconds", "created", "machine", "versions", "reused_cells",
                     # the model's check, made where the driver holds the model (not on Ray)
                     "model_check"})


def measured(results: Any) -> Any:
    """Everything a results dict computed, without its :data:`UNTIMED` keys (to compare runs)."""
    if isinstance(results, dict):
        return {k: measured(v) for k, v in results.items() if k not in UNTIMED}
    if isinstance(results, list):
        return [measured(v) for v in results]
    return results


#: Names importable from here; the method and view definitions live in culturetune.methods and
#: the cell measurement in culturetune.cells (both re-exported for callers of this module).
__all__ = [
    "BASELINES",
    "DEFAULT_BUDGET",
    "DEFAULT_COUNTRIES",
    "DEFAULT_METHODS",
    "FORMAT",
    "HEADLINE",
    "JUDGE_VIEWS",
    "METHOD_EXAMPLES",
    "METHOD_ORDERS",
    "OPTIMIZERS",
    "QUICK_BUDGET",
    "QUICK_METHODS",
    "UNTIMED",
    "CellRunner",
    "CellSpec",
    "ExperimentConfig",
    "MethodSpec",
    "parse_method",
    "view_key",
    "cell_path",
    "measured",
    "quick",
    "run_experiment",
]
