"""Administering an instrument to a model and scoring it once (:func:`run_survey`).

Each item becomes one chat turn listing the five options (:mod:`culturetune.reading.prompts`); a
:class:`~culturetune.reading.survey.Survey` reads every item in every option order of an order set
(:mod:`culturetune.instrument.orders`) in one batch; the answers are mapped back to option-content
order, optionally calibrated against content-free items, and averaged over the orders
(:mod:`culturetune.reading.answers`) before the item means are scored
(:mod:`culturetune.reading.results`). This module puts the steps together and names what callers
import from the reading package.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from culturetune.core import defaults
from culturetune.core.choices import ANSWER_MODES, MISSING_RULES, PLACEMENTS
from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import Target
from culturetune.instrument.vsm import DIMENSIONS
from culturetune.reading.answers import (
    NO_ANSWER,
    Readout,
    apply_missing,
    check_missing,
    item_means,
    or_no_answer,
    said_values,
)
from culturetune.reading.prompts import (
    CONTENT_FREE,
    N_OPTIONS,
    check_placement,
    item_prompt,
    label_token_ids,
    option_token_ids,
    persona_prompt,
    prompt_segments,
)
from culturetune.reading.results import (
    ItemResult,
    SurveyResult,
    indices_from_means,
    target_loss,
    uniform_indices,
    uniform_loss,
)
from culturetune.reading.survey import DEFAULT_ORDERS, Survey, read_many, read_within

Said = tuple[np.ndarray, dict[int, str]]


@dataclass
class _ItemMeans:
    """Each item's mean (``None``: no answer to average), its mean in each order alone, the share
    of orders it was answered in (``said``/``generate``) and the replies as text, ``[order][item]``
    (``said``: only where the first token named no option; ``generate``: every reply)."""

    means: list[float | None]
    order_means: list[list[float | None]]
    answered: list[float | None]
    texts: list[list[str | None]] | None = None
    notes: list[str] = field(default_factory=list)


def run_survey(
    survey: Survey,
    *,
    answers: str = "expected",
    soft: torch.Tensor | None = None,
    constants: Mapping[str, float],
    target: Target | None = None,
    loss_kind: str = "l1",
    prompt_name: str | None = None,
    missing: str = defaults.MISSING,
    reading: Readout | None = None,
    said: Said | None = None,
) -> SurveyResult:
    """Administer the instrument once (in every order of the survey) and score it.

    ``reading`` is the survey's :meth:`Survey.read` of ``soft`` when the caller already has it
    (several answer modes of one prompt then cost one forward pass); ``said``, likewise, its
    :meth:`Survey.said` (content indices ``[orders, items]`` and the generated replies)."""
    missing = _check_run(survey, answers, missing)
    reading = reading or survey.read(soft)
    if answers in ("generate", "said"):
        values, texts = _replies(survey, answers, soft, reading, said)
        got = _reply_means(survey, answers, values, texts)
    else:
        got = _probability_means(survey, answers, reading, missing)
    items = _item_results(survey, reading, got)
    indices = indices_from_means({i.var: i.mean for i in items}, constants, survey.instrument)
    result_loss = target_loss(indices, target, loss_kind) if target else None
    if target and result_loss is None:
        got.notes.append("loss not computed: an index it needs has an unparsable answer")
    return SurveyResult(
        model=survey.lm.name,
        instrument=survey.instrument.name,
        answers=answers,
        placement=survey.placement if soft is not None else None,
        system=survey.system,
        orders=survey.orders_name,
        order_list=[list(o) for o in survey.orders],
        calibrated=survey.calibrate,
        constants=dict(constants),
        items=items,
        indices=indices,
        target=target,
        loss=result_loss,
        uniform_loss=(uniform_loss(target, constants, loss_kind, survey.instrument)
                      if target else None),
        prompt=prompt_name,
        notes=got.notes,
        missing=missing if answers == "expected" else None,
        format=survey.format,
    )


def _check_run(survey: Survey, answers: str, missing: str) -> str:
    """The answer mode and missing rule checked against each other and the survey; the rule."""
    if answers not in ANSWER_MODES:
        raise CultureTuneError(
            f"unknown --answers {answers!r}; use one of {', '.join(ANSWER_MODES)}"
        )
    missing = check_missing(missing)
    if answers in ("generate", "said") and survey.calibrate:
        raise CultureTuneError("--calibrate reweights next-token probabilities; it does not "
                               f"apply to --answers {answers} (use expected or argmax)")
    return missing


def _replies(
    survey: Survey, answers: str, soft: torch.Tensor | None, reading: Readout, said: Said | None,
) -> tuple[np.ndarray, list[list[str | None]]]:
    """The option each reply names ``[orders, items]`` (content index or ``NO_ANSWER``) and the
    replies as text ``[order][item]``: generated for every prompt (``generate``), or the greedy
    first token with generated text where it names no option (``said``)."""
    n_items, n_orders = len(survey.vars), len(survey.orders)
    texts: list[list[str | None]]
    if answers == "generate":
        flat = survey.generate(soft)
        texts = [list(flat[o * n_items:(o + 1) * n_items]) for o in range(n_orders)]
        values = np.array([[or_no_answer(survey.parse(o * n_items + i, texts[o][i]))
                            for i in range(n_items)] for o in range(n_orders)])
    else:
        values, replies = said if said is not None else survey.said(reading, soft)
        texts = [[replies.get(o * n_items + i) for i in range(n_items)]
                 for o in range(n_orders)]
    return np.where(values < 0, NO_ANSWER, values), texts


def _reply_means(
    survey: Survey, answers: str, values: np.ndarray, texts: list[list[str | None]],
) -> _ItemMeans:
    """Item means from the options replies name: ``generate`` averages the answered orders;
    ``said`` reads a non-answer as the middle answer, never dropped. Each non-answer is noted."""
    n_items, n_orders = len(survey.vars), len(survey.orders)
    order_means = [[None if values[o, i] == NO_ANSWER else float(values[o, i] + 1)
                    for o in range(n_orders)] for i in range(n_items)]
    out = _ItemMeans([], order_means, [None] * n_items, texts)
    for i, var in enumerate(survey.vars):
        for o in range(n_orders):
            if values[o, i] == NO_ANSWER:
                where = "" if n_orders == 1 else f" (order {o + 1})"
                out.notes.append(f"{var}: unparsable answer {texts[o][i]!r}{where} (it names no "
                                 "option)")
        got = [v for v in order_means[i] if v is not None]
        out.answered[i] = len(got) / n_orders
        if answers == "said":
            out.means.append(float(said_values(values[:, i]).mean()))
        else:
            out.means.append(float(np.mean(got)) if got else None)
    if answers == "said" and any(a < 1 for a in out.answered):
        lost = int(round(sum((1 - a) * n_orders for a in out.answered)))
        out.notes.append(f"{lost} of {n_items * n_orders} replies name no option; each is read "
                         "as the middle answer (3)")
    return out


def _probability_means(
    survey: Survey, answers: str, reading: Readout, missing: str
) -> _ItemMeans:
    """Item means from the option probabilities (``expected``, under the missing rule, or
    ``argmax``) in each order, averaged over the orders."""
    n_items, n_orders = len(survey.vars), len(survey.orders)
    per = item_means(reading.by_order[0], answers)  # [orders, items]
    if answers == "expected":
        per = apply_missing(per, reading.mass[0], missing)
    return _ItemMeans(
        means=[float(x) for x in per.mean(0)],
        order_means=[[float(per[o, i]) for o in range(n_orders)] for i in range(n_items)],
        answered=[None] * n_items,
    )


def _item_results(survey: Survey, reading: Readout, got: _ItemMeans) -> list[ItemResult]:
    """One :class:`ItemResult` per item: its distribution and option mass averaged over the
    orders, beside its means and replies."""
    probs, mass = reading.by_order[0].mean(0), reading.mass[0].mean(0)
    texts = got.texts
    return [
        ItemResult(
            var=it.var,
            text=it.text,
            probs=[float(p) for p in probs[i]],
            mass=float(mass[i]),
            mean=got.means[i],
            generated=None if texts is None else texts[0][i],
            order_means=got.order_means[i],
            generated_by_order=None if texts is None else [t[i] for t in texts],
            answered=got.answered[i],
        )
        for i, it in enumerate(survey.instrument.items)
    ]


__all__ = [
    "ANSWER_MODES",
    "CONTENT_FREE",
    "DEFAULT_ORDERS",
    "DIMENSIONS",
    "MISSING_RULES",
    "NO_ANSWER",
    "N_OPTIONS",
    "PLACEMENTS",
    "ItemResult",
    "Readout",
    "Survey",
    "SurveyResult",
    "apply_missing",
    "check_missing",
    "check_placement",
    "item_means",
    "item_prompt",
    "label_token_ids",
    "option_token_ids",
    "persona_prompt",
    "prompt_segments",
    "read_many",
    "read_within",
    "run_survey",
    "said_values",
    "uniform_indices",
    "uniform_loss",
]
