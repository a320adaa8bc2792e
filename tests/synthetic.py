"""Synthetic respondents for tests: the bundled model's tokenizer and chat template, with the
next-token reading replaced by a rule that decides from the prompt's text.

A respondent is a function ``pick(system, user) -> shown position (0-based)`` or ``None`` for a
reply that names no option. :func:`install` makes every :class:`culturetune.reading.survey.Survey`
answer with it: the chosen option's token gets ``mass`` of the next-token probability (the rest
is off the options) and is the greedy first token; where ``pick`` gives ``None`` the first token
is no option and the generated reply is ``silent_reply``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import torch

from culturetune.reading.survey import N_OPTIONS, Survey

Pick = Callable[[str | None, str], int | None]

#: The agreeing / the disagreeing pole of each VSM 2013 scale.
HIGH = ("of utmost importance", "always", "yes, always", "very good", "very proud",
        "strongly agree")
LOW = ("of very little or no importance", "never", "no, never", "very poor", "not proud at all",
       "strongly disagree")


def shown_labels(user: str) -> list[str]:
    """The option labels of a survey question, in the order shown."""
    return [m.group(1) for m in re.finditer(r"^\d\. (.*)$", user, flags=re.M)]


def by_position(position: int = 0) -> Pick:
    """Names the option shown at ``position``, whatever the question or the instruction."""
    return lambda system, user: position


def by_content(follows_instructions: bool = True) -> Pick:
    """Reads the options: asked for agreement it names the agreeing pole, asked for disagreement
    the other pole; otherwise (or when it ignores instructions) its own opinion, the option whose
    text comes first alphabetically, wherever it is shown."""

    def pick(system: str | None, user: str) -> int:
        labels = shown_labels(user)
        if follows_instructions and system:
            words = LOW if "disagreement" in system else HIGH
            for j, label in enumerate(labels):
                if label.lower() in words:
                    return j
        return labels.index(min(labels))

    return pick


def install(monkeypatch, pick: Pick, mass: float | Callable[[torch.Tensor | None], torch.Tensor]
            = 0.6, silent_reply: str = "I am not sure.") -> None:
    """Every Survey answers with ``pick``; ``mass`` is the probability on the chosen option (a
    function of the soft prompts ``[candidates, T, H]`` giving one mass per candidate, or a
    number)."""
    import culturetune.reading.survey as survey_module

    monkeypatch.setattr(survey_module, "PromptScorer", lambda *a, **k: None)

    def scores(survey: Survey, soft: torch.Tensor | None, flat: list[int]):
        cands = 1 if soft is None else soft.shape[0]
        per = len(survey.option_ids[0])
        m = (torch.full((cands,), float(mass)) if not callable(mass) else mass(soft))
        lp = torch.full((cands, survey.n_prompts, N_OPTIONS, per), -40.0)
        top = torch.zeros(cands, survey.n_prompts, dtype=torch.long)  # token 0: no option
        for k, user in enumerate(survey.users):
            j = pick(survey.system, user)
            if j is None:
                continue
            lp[:, k, j, 0] = torch.log(m)
            top[:, k] = survey.option_ids[j][0]
        return lp.view(cands, survey.n_prompts, -1), top

    def generate(survey: Survey, soft=None, max_new_tokens: int = 8, which=None) -> list[str]:
        rows = range(len(survey.users)) if which is None else which
        out = []
        for k in rows:
            j = pick(survey.system, survey.users[k])
            labels = shown_labels(survey.users[k])
            out.append(silent_reply if j is None else f"{j + 1}. {labels[j]}")
        return out

    monkeypatch.setattr(Survey, "_scores", scores)
    monkeypatch.setattr(Survey, "generate", generate)
