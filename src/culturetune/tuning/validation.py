"""A tuned prompt scored on the views it was not tuned on (:func:`validate_prompt`): the other
wordings, each option order alone, what the model says, and the other answer formats where the
model answers by content in them."""

from __future__ import annotations

from typing import Any

import torch

from culturetune.core.errors import CultureTuneError
from culturetune.instrument.vsm import load_instrument
from culturetune.model.loading import LoadedModel
from culturetune.reading.administer import run_survey
from culturetune.reading.results import SurveyResult, uniform_loss
from culturetune.reading.survey import Survey, read_within
from culturetune.reading.validity import (
    BALANCED,
    Validity,
    View,
    ViewResult,
    assess,
    check_views,
)
from culturetune.tuning.config import TuneConfig
from culturetune.tuning.objective import Objective


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


__all__ = ["validate_prompt"]
