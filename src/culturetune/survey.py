"""Administering the VSM 2013 to a model and reading its answers.

Each item becomes one chat turn listing the five options as numbers; the answer is read from the
next-token distribution restricted to the option tokens "1".."5" and renormalised (the mass the
model put on them before renormalising is kept and reported). All items, and all candidate soft
prompts of an optimizer step, go through :class:`~culturetune.engine.PromptScorer` in one batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from culturetune.engine import PromptScorer, Segments, generate, split_tokens
from culturetune.errors import CultureTuneError
from culturetune.models import LoadedModel
from culturetune.targets import Loss, Target, loss
from culturetune.vsm import DIMENSIONS, Instrument, Item, compute_indices, load_instrument

ANSWER_MODES = ("expected", "argmax", "generate")
PLACEMENTS = ("answer", "system", "prefix")
N_OPTIONS = 5
INSTRUCTION = "Answer with the number of one option only (1-5)."

#: Friendlier names for persona prompts than the table's own.
_PERSONA_NAMES = {
    "U.S.A.": "the United States",
    "Great Britain": "the United Kingdom",
    "Korea South": "South Korea",
    "Czech Rep": "the Czech Republic",
    "Dominican Rep": "the Dominican Republic",
    "Netherlands": "the Netherlands",
    "Philippines": "the Philippines",
}


def persona_prompt(country: str) -> str:
    """The system prompt of persona prompting: the model is asked to be a person from a country."""
    name = _PERSONA_NAMES.get(country, country)
    return f"You are a person from {name}. Answer as a typical person from {name} would."


def item_prompt(item: Item, reverse: bool = False) -> str:
    """The user message for one item; ``reverse`` lists the options from 5 to 1, renumbered."""
    labels = list(item.options)[::-1] if reverse else list(item.options)
    stem = re.sub(r"\s*\(please [^)]*\)\s*:?", "", item.stem or "").strip()
    lines = [stem, item.text] if stem else [item.text]
    lines.append("")
    lines += [f"{i}. {label}" for i, label in enumerate(labels, 1)]
    lines += ["", INSTRUCTION]
    return "\n".join(lines)


#: Surface forms of each option: the bare digit and, where it is one token, the digit after a
#: space (tokenizers that split ``" 1"`` would otherwise put their answer mass elsewhere).
OPTION_FORMS = tuple((str(k), f" {k}") for k in range(1, N_OPTIONS + 1))


def label_token_ids(
    tokenizer: Any, forms: Sequence[Sequence[str]], hint: str = ""
) -> list[list[int]]:
    """Token ids of each label's surface forms (e.g. ``"A"`` and ``" A"``).

    Variant j of the forms is used only where it is one token for every label (so that no label
    gains from having more forms); at least one variant must be, and all ids must be distinct.
    """
    encoded = [[tokenizer.encode(f, add_special_tokens=False) for f in label] for label in forms]
    usable = [j for j in range(len(forms[0])) if all(len(e[j]) == 1 for e in encoded)]
    if not usable:
        shown = "; ".join(
            f"{label[0]!r} -> {tokenizer.convert_ids_to_tokens(enc[0])}"
            for label, enc in zip(forms, encoded, strict=True) if len(enc[0]) != 1
        )
        raise CultureTuneError(
            f"this tokenizer does not encode the answer labels as single tokens: {shown}. "
            "culturetune reads answers from one next-token distribution" + (hint and f"; {hint}")
        )
    ids = [[enc[j][0] for j in usable] for enc in encoded]
    flat = [i for x in ids for i in x]
    if len(set(flat)) != len(flat):
        named = {f[0]: i for f, i in zip(forms, ids, strict=True)}
        raise CultureTuneError(
            f"answer labels {[f[0] for f in forms]} are not distinct tokens in this tokenizer "
            f"({named}); they must be distinct" + (hint and f"; {hint}")
        )
    return ids


def option_token_ids(tokenizer: Any) -> list[list[int]]:
    """Token ids of the five answer options (each with its surface forms)."""
    return label_token_ids(
        tokenizer, OPTION_FORMS, "use a model whose tokenizer has 1-5 as single tokens, "
        "or --answers generate")


def check_placement(placement: str) -> str:
    if placement not in PLACEMENTS:
        raise CultureTuneError(
            f"unknown placement {placement!r}; use one of {', '.join(PLACEMENTS)}"
        )
    return placement


def prompt_segments(
    lm: LoadedModel, users: list[str], system: str | None, placement: str
) -> Segments:
    """Token segments around the soft prompt's position for a list of user messages."""
    check_placement(placement)
    texts, splits = [], []
    for user in users:
        text, user_at = lm.render(user, system)
        texts.append(text)
        splits.append({"prefix": 0, "system": user_at, "answer": len(text)}[placement])
    return split_tokens(lm, texts, splits)


class Survey:
    """The instrument set up on one model: prompts encoded once, answers for many soft prompts."""

    def __init__(
        self,
        lm: LoadedModel,
        instrument: Instrument | str = "vsm2013",
        *,
        system: str | None = None,
        placement: str = "answer",
        reverse: bool = False,
        max_rows: int = 512,
    ) -> None:
        self.lm = lm
        self.instrument = load_instrument(instrument) if isinstance(instrument, str) else instrument
        self.system = system
        self.placement = check_placement(placement)
        self.reverse = reverse
        self.option_ids = option_token_ids(lm.tokenizer)
        users = [item_prompt(it, reverse) for it in self.instrument.items]
        self.segments = prompt_segments(lm, users, system, placement)
        self.scorer = PromptScorer(lm, self.segments, max_rows=max_rows)

    @property
    def vars(self) -> tuple[str, ...]:
        return tuple(it.var for it in self.instrument.items)

    def option_probs(self, soft: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Renormalised option probabilities ``[candidates, items, 5]`` (option 1 first, whatever
        order they were shown in) and the raw mass on the five tokens ``[candidates, items]``.
        """
        if soft is not None and soft.dim() == 2:
            soft = soft[None]
        flat = [i for ids in self.option_ids for i in ids]
        p = self.scorer.next_token_logprobs(soft, flat).exp()
        per = len(self.option_ids[0])
        p = p.view(*p.shape[:-1], N_OPTIONS, per).sum(-1)
        mass = p.sum(-1)
        probs = p / mass[..., None]
        if self.reverse:  # shown number j means option 6 - j
            probs = probs.flip(-1)
        return probs.double().cpu().numpy(), mass.double().cpu().numpy()

    def generate(self, soft: torch.Tensor | None = None, max_new_tokens: int = 8) -> list[str]:
        """Greedy answers as text, one per item."""
        return generate(self.lm, self.segments, soft, max_new_tokens)


def item_means(probs: np.ndarray, mode: str = "expected") -> np.ndarray:
    """Item scores from option probabilities: probability-weighted mean or most likely option."""
    values = np.arange(1, N_OPTIONS + 1, dtype=float)
    if mode == "expected":
        return probs @ values
    if mode == "argmax":
        return probs.argmax(-1) + 1.0
    raise CultureTuneError(f"unknown answer mode {mode!r} here; use expected or argmax")


def parse_answer(text: str, reverse: bool = False) -> int | None:
    """The first number in a generated answer, if it is an option (mapped back when reversed)."""
    m = re.search(r"\d+", text)
    if not m or not 1 <= int(m.group()) <= N_OPTIONS:
        return None
    value = int(m.group())
    return N_OPTIONS + 1 - value if reverse else value


@dataclass
class ItemResult:
    var: str
    text: str
    probs: list[float]
    mass: float
    mean: float | None
    generated: str | None = None


@dataclass
class SurveyResult:
    """One administration of the instrument: per-item answers, indices and, if targeted, loss."""

    model: str
    instrument: str
    answers: str
    placement: str | None
    system: str | None
    reverse: bool
    constants: dict[str, float]
    items: list[ItemResult]
    indices: dict[str, float | None]
    target: Target | None = None
    loss: Loss | None = None
    prompt: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def means(self) -> dict[str, float | None]:
        return {it.var: it.mean for it in self.items}

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = self.target.to_dict() if self.target else None
        d["loss"] = self.loss.to_dict() if self.loss else None
        d["means"] = self.means
        return d


def indices_from_means(
    means: Mapping[str, float | None], constants: Mapping[str, float], instrument: Instrument
) -> dict[str, float | None]:
    """The six indices; an index whose items lack an answer is ``None``."""
    filled = {k: (3.0 if v is None else v) for k, v in means.items()}
    out: dict[str, float | None] = dict(compute_indices(filled, constants, instrument))
    for f in instrument.formulas:
        if any(means.get(v) is None for v in f.vars()):
            out[f.index] = None
    return out


def target_loss(
    indices: Mapping[str, float | None], target: Target, kind: str = "l1"
) -> Loss | None:
    """Loss against the target, or ``None`` where a needed index is missing."""
    if any(indices.get(d) is None for d in target.dimensions):
        return None
    return loss({d: v for d, v in indices.items() if v is not None}, target, kind)


def run_survey(
    survey: Survey,
    *,
    answers: str = "expected",
    soft: torch.Tensor | None = None,
    constants: Mapping[str, float],
    target: Target | None = None,
    loss_kind: str = "l1",
    prompt_name: str | None = None,
) -> SurveyResult:
    """Administer the instrument once and score it."""
    if answers not in ANSWER_MODES:
        raise CultureTuneError(
            f"unknown --answers {answers!r}; use one of {', '.join(ANSWER_MODES)}"
        )
    probs, mass = survey.option_probs(soft)
    probs, mass = probs[0], mass[0]
    notes: list[str] = []
    texts: list[str | None] = [None] * len(survey.vars)
    if answers == "generate":
        texts = survey.generate(soft)
        means: list[float | None] = []
        for var, t in zip(survey.vars, texts, strict=True):
            value = parse_answer(t, survey.reverse)
            if value is None:
                notes.append(f"{var}: unparsable answer {t!r}")
            means.append(None if value is None else float(value))
    else:
        means = [float(x) for x in item_means(probs, answers)]
    items = [
        ItemResult(
            var=it.var,
            text=it.text,
            probs=[float(p) for p in pr],
            mass=float(ms),
            mean=mn,
            generated=tx,
        )
        for it, pr, ms, mn, tx in zip(
            survey.instrument.items, probs, mass, means, texts, strict=True
        )
    ]
    indices = indices_from_means({i.var: i.mean for i in items}, constants, survey.instrument)
    result_loss = target_loss(indices, target, loss_kind) if target else None
    if target and result_loss is None:
        notes.append("loss not computed: an index it needs has an unparsable answer")
    return SurveyResult(
        model=survey.lm.name,
        instrument=survey.instrument.name,
        answers=answers,
        placement=survey.placement if soft is not None else None,
        system=survey.system,
        reverse=survey.reverse,
        constants=dict(constants),
        items=items,
        indices=indices,
        target=target,
        loss=result_loss,
        prompt=prompt_name,
        notes=notes,
    )


__all__ = [
    "ANSWER_MODES",
    "DIMENSIONS",
    "PLACEMENTS",
    "Survey",
    "SurveyResult",
    "item_means",
    "item_prompt",
    "option_token_ids",
    "parse_answer",
    "persona_prompt",
    "prompt_segments",
    "run_survey",
]
