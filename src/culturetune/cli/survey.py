"""``culturetune survey``, ``score`` and ``countries``: a model's answers and indices, human
answers scored as the manual does, and the country table they are compared with.
"""

from __future__ import annotations

from typing import Annotated

import typer

from culturetune.cli import common
from culturetune.cli.app import command
from culturetune.cli.common import (
    checked,
    fits,
    print_json,
    read_prompt,
    resolve_orders,
    resolve_target,
    status,
    system_prompt,
)
from culturetune.cli.options import (
    DEFAULT_FORMAT,
    DEFAULT_MISSING,
    AdapterOpt,
    Answers,
    CalibrateOpt,
    ConstantOpt,
    FormatOpt,
    InstrumentOpt,
    JsonOpt,
    LossKind,
    LossOpt,
    MissingOpt,
    ModelOpt,
    OrdersOpt,
    PersonaOpt,
    PromptOpt,
    SystemOpt,
    TargetOpt,
)
from culturetune.core import inputs
from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import country_table, lookup_country
from culturetune.instrument.vsm import parse_constants
from culturetune.report.console import print_countries, print_score, print_survey


@command()
@common.with_load_options
def survey(
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    persona: PersonaOpt = None,
    system: SystemOpt = None,
    country: TargetOpt = None,
    answers: Annotated[
        Answers,
        typer.Option(
            help="expected: probability-weighted mean over options 1-5; argmax: the most "
            "likely option; said: what the model says (the greedy first token over the whole "
            "vocabulary, or the greedy reply parsed where that is no option; a reply naming no "
            "option reads as 3 and is counted); generate: greedy decoding, first option number "
            "parsed.",
            case_sensitive=False,
            rich_help_panel="Reading answers",
        ),
    ] = Answers.expected,
    orders: OrdersOpt = None,
    reverse_options: Annotated[
        bool,
        typer.Option(
            "--reverse-options",
            help="Alias of --orders reversed: the options from 5 to 1 (renumbered), answers "
            "mapped back.",
            rich_help_panel="Reading answers",
        ),
    ] = False,
    calibrate: CalibrateOpt = False,
    missing: MissingOpt = DEFAULT_MISSING,
    format: FormatOpt = DEFAULT_FORMAT,
    instrument: InstrumentOpt = "vsm2013",
    prompt: PromptOpt = None,
    constant: ConstantOpt = None,
    loss: LossOpt = LossKind.l1,
    load: common.LoadOptions = common.DEFAULT_LOAD,
    as_json: JsonOpt = False,
) -> None:
    """Survey a model with the 24 VSM 2013 items: answers, indices, gap and loss vs a target."""
    from culturetune.instrument.vsm import instrument_key, load_instrument

    load_model = common.model_loader(model, adapter, load)
    constants = parse_constants(constant)
    target = resolve_target(country)
    sys_prompt = system_prompt(persona, system)
    order_set = resolve_orders(orders, reverse_options)
    if calibrate and str(answers) in ("generate", "said"):
        raise CultureTuneError("--calibrate reweights next-token probabilities; it does not "
                               f"apply to --answers {answers} (use expected or argmax)")
    inst = load_instrument(instrument)
    fmt = common.check_format(format, [instrument])
    soft = read_prompt(prompt)
    if order_set == "all":
        status("--orders all asks every item in all 120 option orders (about 120x the time "
               "of one order)")
    lm = load_model()

    from culturetune.reading.administer import Survey, run_survey

    soft = checked(soft, lm)
    choice = common.answer_format(lm, fmt, instrument_key(instrument), quiet=as_json)
    placement = soft.placement if soft is not None else "answer"
    sv = Survey(lm, inst, system=sys_prompt, orders=order_set, calibrate=calibrate,
                placement=placement, format=choice.format)
    if soft is not None:
        extra = (0 if str(answers) not in ("generate", "said")
                 else 24 if choice.format == "words" else 8)
        fits(lm, soft, prompt, sv.segments, extra)
    result = run_survey(
        sv, answers=str(answers), soft=None if soft is None else soft.embeddings,
        constants=constants, target=target, loss_kind=str(loss), prompt_name=prompt,
        missing=str(missing),
    )
    if as_json:
        data = result.to_dict()
        data.update(persona=persona, device=lm.device, dtype=lm.dtype,
                    format_choice=choice.to_dict())
        print_json(data)
    else:
        print_survey(result, persona=persona)


@command()
def score(
    responses: Annotated[
        str,
        typer.Argument(
            metavar="RESPONSES.csv",
            help="One row per respondent, columns m01..m24 with answers 1-5 (blank = skipped).",
        ),
    ],
    constant: ConstantOpt = None,
    country: TargetOpt = None,
    loss: LossOpt = LossKind.l1,
    as_json: JsonOpt = False,
) -> None:
    """Score human VSM 2013 answers as the manual does: item means, then the formulas."""
    from culturetune.instrument.targets import loss as compute_loss
    from culturetune.instrument.vsm import read_responses, score_responses

    constants = parse_constants(constant)
    target = resolve_target(country)
    path = inputs.check_input_file(responses, "responses file", "RESPONSES.csv")
    with inputs.reading_file(f"responses file {path}"):
        rows = read_responses(path)
    result = score_responses(rows, constants)
    result_loss = compute_loss(result.indices, target, str(loss)) if target else None
    if as_json:
        data = result.to_dict()
        data["target"] = target.to_dict() if target else None
        data["loss"] = result_loss.to_dict() if result_loss else None
        print_json(data)
        return
    print_score(responses, result, target, result_loss)


@command()
def countries(
    name: Annotated[
        str | None,
        typer.Argument(help="One country or region (name, code or alias); all when left out."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Hofstede's 2015 country scores (111 rows; Saudi Arabia's estimates marked *)."""
    rows = country_table() if name is None else [lookup_country(name)]
    if as_json:
        print_json(rows[0].to_dict() if name is not None else [t.to_dict() for t in rows])
        return
    print_countries(rows, one=name is not None)
