"""``culturetune bench``: CulturalBench accuracy of the plain model, persona prompting and tuned
prompts on the same questions (:mod:`culturetune.culturalbench`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from culturetune.cli import common
from culturetune.cli.app import command
from culturetune.cli.common import checked, print_json, read_prompt, status
from culturetune.cli.options import (
    AdapterOpt,
    DataOpt,
    JsonOpt,
    ModelOpt,
    OrderSet,
    Scoring,
    Split,
)
from culturetune.core import defaults, inputs
from culturetune.core.errors import CultureTuneError
from culturetune.report.console import bench_progress, print_bench

if TYPE_CHECKING:
    from culturetune.model.loading import LoadedModel


@command()
@common.with_load_options
def bench(
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    country: Annotated[
        list[str] | None,
        typer.Option("--country", "-c", help="A country (repeat for several).",
                     show_default=False),
    ] = None,
    all_countries: Annotated[
        bool, typer.Option("--all-countries", help="Every country in the data.")
    ] = False,
    split: Annotated[Split, typer.Option(case_sensitive=False)] = Split.easy,
    scoring: Annotated[
        Scoring,
        typer.Option(help="letter: next-token probability of A-D after an instruction; mc: "
                     "lm-eval's multiple choice (options shown, letters after 'Answer:' scored "
                     "as continuations); cloze (alias loglik): log-likelihood of each option's "
                     "text after the question alone (and its length-normalised variant).",
                     case_sensitive=False),
    ] = Scoring.letter,
    no_chat_template: Annotated[
        bool, typer.Option("--no-chat-template", help="mc, cloze: score the plain text "
                           "without the model's chat template (lm-eval's default).")
    ] = False,
    data: DataOpt = None,
    limit: Annotated[int | None, typer.Option(help="At most N questions per country.")] = None,
    persona: Annotated[
        bool, typer.Option("--persona", help="Also evaluate persona prompting.")
    ] = False,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="A tuned prompt folder (repeat for several).",
                     show_default=False),
    ] = None,
    orders: Annotated[
        OrderSet | None,
        typer.Option("--orders", help="Letter scoring: option orders to ask each question in, "
                     "answers mapped back and averaged: shown, reversed, both, cyclic (default: "
                     "each option once under each letter, 4x the cost), all (24 orders).",
                     case_sensitive=False, show_default=False),
    ] = None,
    per_question: Annotated[
        bool, typer.Option("--per-question", help="With --json: every question's answers.")
    ] = False,
    load: common.LoadOptions = common.DEFAULT_LOAD,
    as_json: JsonOpt = False,
) -> None:
    """CulturalBench accuracy of the plain model, persona prompting and tuned prompts."""
    from culturetune.culturalbench import check_scoring, conditions, load_culturalbench, run_bench
    from culturetune.tuning import limits

    load_model = common.model_loader(model, adapter, load)
    if not country and not all_countries:
        raise CultureTuneError("say which questions to use: --country NAME (repeatable) or "
                               "--all-countries")
    if country and all_countries:
        raise CultureTuneError("give --country or --all-countries, not both")
    if per_question and not as_json:
        raise CultureTuneError("--per-question adds every question's answers to the JSON "
                               "output; add --json")
    if limit is not None:
        inputs.check_count(limit, "--limit")
    if data is not None:
        inputs.check_path(data, "--data")
    scoring_name = check_scoring(str(scoring), str(split), not no_chat_template)
    if orders is not None and (str(split), scoring_name) != ("easy", "letter"):
        raise CultureTuneError("--orders applies to Easy letter scoring (mc and cloze follow "
                               "lm-evaluation-harness, which shows the options as printed); "
                               "leave it out here")
    order_set = str(orders or defaults.BENCH_ORDERS)
    prompts = [(folder, read_prompt(folder)) for folder in prompt or []]
    status("loading CulturalBench ...")
    questions = load_culturalbench(str(split), data, None if all_countries else country, limit)
    lm = load_model()
    conds = conditions(persona, prompts)
    longest = _longest_question(lm, questions, str(split)) if prompts else 0
    for folder, soft in prompts:
        limits.check_prompt(lm, checked(soft, lm).tokens, longest, 32,
                            f"prompt {folder} ({soft.tokens} virtual tokens)")
    result = run_bench(lm, questions, conds, str(split), str(scoring),
                       progress=bench_progress(quiet=as_json), orders=order_set,
                       chat_template=not no_chat_template)
    if as_json:
        print_json(result.to_dict(per_question=per_question))
    else:
        print_bench(result)


def _longest_question(lm: LoadedModel, questions: Sequence[Any], split: str) -> int:
    """Tokens of the longest CulturalBench prompt, persona system prompt included."""
    from culturetune.culturalbench import easy_prompt, hard_prompt
    from culturetune.reading.administer import persona_prompt
    from culturetune.tuning import limits

    if split == "easy":
        users = [easy_prompt(q) for q in questions]
    else:
        users = [hard_prompt(q.question, o) for q in questions for o in q.options]
    return limits.prompt_tokens(lm, users, persona_prompt("the United States of America")) + 16
