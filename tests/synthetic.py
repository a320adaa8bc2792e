"""Synthetic respondents for tests: the bundled model's tokenizer and chat template, with the
next-token reading replaced by a rule that decides from the prompt's text.

A respondent is a function ``pick(system, user) -> shown position (0-based)`` or ``None`` for a
reply that names no option. :func:`install` makes every :class:`culturetune.reading.survey.Survey`
answer with it, in every answer format: the chosen option gets ``mass`` of the probability (the
rest is off the options) and is what the greedy reply spells; where ``pick`` gives ``None`` the
reply spells no option and the generated reply is ``silent_reply``. A calibrated survey's
content-free prompts (the question replaced by "N/A", "" or "[MASK]") are answered by the same
rule.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable

import numpy as np
import torch

from culturetune.reading.answers import NO_ANSWER
from culturetune.reading.prompts import N_OPTIONS
from culturetune.reading.survey import Survey

Pick = Callable[[str | None, str], int | None]

#: The agreeing / the disagreeing pole of each VSM 2013 scale.
HIGH = ("of utmost importance", "always", "yes, always", "very good", "very proud",
        "strongly agree")
LOW = ("of very little or no importance", "never", "no, never", "very poor", "not proud at all",
       "strongly disagree")


def shown_labels(user: str) -> list[str]:
    """The option labels of a survey question, in the order shown, in any answer format: the
    lines of the block between the question and the instruction, without "1. " or "A. "."""
    blocks = user.split("\n\n")
    lines = blocks[-2].splitlines() if len(blocks) >= 3 else []
    return [re.sub(r"^(?:\d|[A-E])\. ", "", line) for line in lines if line]


def question(user: str) -> str:
    """The lead-in and question of a survey question (everything before the options)."""
    return user.split("\n\n")[0]


def answer_format(user: str) -> str:
    """The format a survey question is asked in: number, letter or words."""
    lines = user.split("\n\n")[-2].splitlines() if user.count("\n\n") >= 2 else []
    first = next((line for line in lines if line), "")
    return "number" if re.match(r"^\d\. ", first) else "letter" if re.match(
        r"^[A-E]\. ", first) else "words"


def by_position(position: int = 0) -> Pick:
    """Names the option shown at ``position``, whatever the question or the instruction."""
    return lambda system, user: position


def by_content(follows_instructions: bool = True) -> Pick:
    """Reads the options and the question: asked for agreement it names the agreeing pole, asked
    for disagreement the other pole; otherwise (or when it ignores instructions) its own opinion
    of the question, an option chosen by the question's text (a checksum of it) among the
    options sorted alphabetically, wherever it is shown."""

    def pick(system: str | None, user: str) -> int:
        labels = shown_labels(user)
        if follows_instructions and system:
            words = LOW if "disagreement" in system else HIGH
            for j, label in enumerate(labels):
                if label.lower() in words:
                    return j
        opinion = sorted(labels)[zlib.crc32(question(user).encode()) % len(labels)]
        return labels.index(opinion)

    return pick


def by_middle(follows_instructions: bool = True) -> Pick:
    """Names the middle option whatever the question (by its content: the middle option is
    shown in the middle in both orders); asked for agreement or disagreement, with
    ``follows_instructions``, it names the asked pole as :func:`by_content` does."""
    poles = by_content(follows_instructions)

    def pick(system: str | None, user: str) -> int:
        return poles(system, user) if follows_instructions and system else len(
            shown_labels(user)) // 2

    return pick


def by_format(pick: Pick, formats: tuple[str, ...] = ("words",), otherwise: int = 0) -> Pick:
    """Answers with ``pick`` in the given formats and names the option shown at ``otherwise``
    in the others (a model that answers by content only when asked for the option's words)."""
    return lambda system, user: (pick(system, user) if answer_format(user) in formats
                                 else otherwise)


def install(monkeypatch, pick: Pick, mass: float | Callable[[torch.Tensor | None], torch.Tensor]
            = 0.6, silent_reply: str = "I am not sure.") -> None:
    """Every Survey answers with ``pick``; ``mass`` is the probability on the chosen option (a
    function of the soft prompts ``[candidates, T, H]`` giving one mass per candidate, or a
    number); its greedy reply spells the chosen option (in any answer format)."""

    def scores(survey: Survey, soft: torch.Tensor | None):
        cands = 1 if soft is None else soft.shape[0]
        m = (torch.full((cands,), float(mass)) if not callable(mass) else mass(soft))
        lp = torch.full((cands, survey.n_prompts, N_OPTIONS), -40.0)
        said = np.full((cands, survey.n_prompts), NO_ANSWER, dtype=np.int64)
        for k, user in enumerate(survey.users + survey.content_free_users):
            j = pick(survey.system, user)
            if j is None:
                continue
            lp[:, k, j] = torch.log(m)
            said[:, k] = j
        return lp, said

    def generate(survey: Survey, soft=None, max_new_tokens: int | None = None,
                 which=None) -> list[str]:
        users = survey.users + survey.content_free_users
        rows = range(len(survey.users)) if which is None else which
        out = []
        for k in rows:
            j = pick(survey.system, users[k])
            labels = shown_labels(users[k])
            fmt = answer_format(users[k])
            mark = {"number": f"{(j or 0) + 1}. ", "letter": f"{'ABCDE'[j or 0]}. "}.get(fmt, "")
            out.append(silent_reply if j is None else f"{mark}{labels[j]}")
        return out

    monkeypatch.setattr(Survey, "_scores", scores)
    monkeypatch.setattr(Survey, "generate", generate)


def tokenizer_only():
    """The bundled default model's tokenizer and chat template without its weights (a
    :class:`~culturetune.model.loading.LoadedModel` whose ``model`` is ``None``): enough for a
    synthetic respondent, which never runs the model. Read from the model's cache folder where
    it was made before, else loaded once to make it."""
    from transformers import AutoTokenizer

    from culturetune.core import registry
    from culturetune.model.dequantize import ready
    from culturetune.model.loading import LoadedModel, known_cache_folder, load_model

    folder = known_cache_folder(registry.lookup(registry.DEFAULT))
    if ready(folder):
        tok = AutoTokenizer.from_pretrained(folder)
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
    else:
        tok = load_model(dtype="float32").tokenizer
    return LoadedModel(model=None, tokenizer=tok, name=registry.DEFAULT, device="cpu",
                       dtype="float32")
