"""The reference study end to end: the grid of (country × method × seed) cells, resumable, then
the results file (the report is written by the caller's ``report``: the report layer sits above
this one).

Methods are the plain model, persona prompting (a system prompt naming the country) and soft
prompts tuned by each derivative-free optimizer on an objective: ``pso`` is PSO on the experiment's
option orders (order-balanced by default), ``pso-shown`` PSO on the items as printed, ``pso-cal``
on calibrated answers (grammar: ``<optimizer>[-<orders>][-cal]``,
:mod:`culturetune.experiment.methods`). Every cell is read in the same set of *views*
(:mod:`culturetune.reading.validity`): the official items in each option-order set and the
paraphrased items (written for culturetune, not the official instrument), so that every method is
judged on views it was not tuned on; plus CulturalBench accuracy on the country's questions with
order-debiased letters (Wilson interval, exact McNemar test against the plain model).

The settings (``ExperimentConfig``, its grid of cells) are in
:mod:`culturetune.experiment.config`; this module holds :func:`run_experiment`, which runs every
cell through a :class:`culturetune.experiment.cells.CellRunner` (what one cell measures) and writes
what the report reads. Each finished cell is its own JSON file, so an interrupted experiment
resumes where it stopped::

    out/cells/<code>/<method>.json            plain, persona (deterministic: one cell each)
    out/cells/<code>/<method>-seed<k>.json    tuned methods
    out/runs/<code>/<method>-seed<k>/         tuning runs (checkpoints; resumed when interrupted)
    out/results.json  out/report.md  out/report.html  out/figures/*.png
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from culturetune.core import defaults
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import WriteError, write_json
from culturetune.experiment.cells import Progress, resolve_formats
from culturetune.experiment.config import PARAPHRASE_NOTE, ExperimentConfig, versions
from culturetune.experiment.methods import (
    FORMAT,
    headline_view,
    view_key,
)
from culturetune.instrument.targets import Target
from culturetune.instrument.vsm import DIMENSIONS


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
    report: Callable[[dict[str, Any], Path], Any] | None = None,
) -> dict[str, Any]:
    """Run every cell not already finished in ``out_dir``, then write ``results.json`` there and
    hand the results to ``report`` (the report layer's ``write_report``, which writes
    ``report.md``, ``report.html`` and figures: it sits above this module, so the caller passes
    it). Returns the results dict.

    ``executor`` runs the cells (:mod:`culturetune.experiment.executors`): by default one after
    another in this process on ``lm``; a :class:`~culturetune.experiment.executors.RayExecutor`
    runs them on Ray workers that load the model themselves (``lm`` may then be ``None``)."""
    from culturetune.experiment.executors import LocalExecutor

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
        model_check = resolve_formats(lm, config, say)
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
                       "orders": v.orders, "calibrate": v.calibrate, "reading": v.reading,
                       "format": v.format}
                      for v in runner.views],
            "headline": view_key(headline_view(config.read_format)),
            "answer_format": config.read_format,
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
        if report is not None:
            say(f"writing the report in {out} ...")
            report(results, out)
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


__all__ = ["UNTIMED", "measured", "run_experiment"]
