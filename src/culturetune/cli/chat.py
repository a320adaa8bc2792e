"""``culturetune chat``: talk to the model with a tuned prompt and/or a system prompt applied."""

from __future__ import annotations

from typing import Annotated

import typer

from culturetune.cli import common
from culturetune.cli.app import command
from culturetune.cli.common import checked, fits, print_json, read_prompt, status, system_prompt
from culturetune.cli.options import (
    AdapterOpt,
    JsonOpt,
    ModelOpt,
    PersonaOpt,
    PromptOpt,
    SystemOpt,
)
from culturetune.core import inputs
from culturetune.core.errors import CultureTuneError
from culturetune.report.console import say, stdout


@command()
@common.with_load_options
def chat(
    message: Annotated[str, typer.Argument(help="What to say to the model.")],
    prompt: PromptOpt = None,
    persona: PersonaOpt = None,
    system: SystemOpt = None,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest reply, in tokens.")] = 128,
    load: common.LoadOptions = common.DEFAULT_LOAD,
    as_json: JsonOpt = False,
) -> None:
    """Talk to the model with a tuned prompt (and/or a system prompt) applied."""
    from culturetune.model.generate import generate
    from culturetune.reading.administer import prompt_segments
    from culturetune.tuning import limits

    load_model = common.model_loader(model, adapter, load)
    inputs.check_text(message, "the message")
    inputs.check_count(max_new_tokens, "--max-new-tokens", 1, inputs.MAX_NEW_TOKENS)
    sys_prompt = system_prompt(persona, system)
    soft = read_prompt(prompt)
    lm = load_model()
    soft = checked(soft, lm)
    placement = soft.placement if soft is not None else "answer"
    segments = prompt_segments(lm, [message], sys_prompt, placement)
    length = len(segments.pre[0]) + len(segments.post[0]) + max_new_tokens
    context = limits.context_length(lm)
    if context is not None and length > context:
        raise CultureTuneError(
            f"the message and --max-new-tokens {max_new_tokens} need {length} tokens, but model "
            f"{lm.name} reads at most {context}; shorten the message or lower --max-new-tokens")
    if soft is not None:
        fits(lm, soft, prompt, segments, max_new_tokens)
    note = None
    if soft is not None and soft.placement == "answer":
        note = (f"{prompt} is an answer-placed prompt: it sits at the start of the model's reply "
                "and was tuned to move survey answers (one digit), not to make a persona for "
                "free text; expect it to distort replies. Prompts meant for chat are tuned with "
                "--placement system or --placement prefix.")
        status(f"note: {note}")
    reply = generate(lm, segments, None if soft is None else soft.embeddings,
                     max_new_tokens=max_new_tokens)[0].strip()
    if as_json:
        print_json({"message": message, "reply": reply, "prompt": prompt, "system": sys_prompt,
                    "note": note})
    else:
        say(stdout(), reply)
