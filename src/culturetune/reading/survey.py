"""Administering the VSM 2013 to a model and reading its answers.

Each item becomes one chat turn listing the five options as numbers; the answer is read from the
next-token distribution restricted to the option tokens "1".."5" and renormalised (the mass the
model put on them before renormalising is kept and reported). The items are asked in every option
order of an order set (:mod:`culturetune.instrument.orders`); each order's distribution is mapped
back to option-content order, optionally calibrated against content-free items, and averaged over
the orders before the item mean is taken. All items of all orders, and all candidate soft prompts of
an optimizer step, go through :class:`~culturetune.model.engine.PromptScorer` in one batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from culturetune.core import defaults
from culturetune.core.errors import CultureTuneError
from culturetune.instrument.items import Instrument, Item
from culturetune.instrument.orders import (
    Order,
    check_orders,
    option_orders,
    shown_options,
    to_content_order,
)
from culturetune.instrument.orders import (
    calibrate as calibrate_probs,
)
from culturetune.instrument.targets import Loss, Target, loss
from culturetune.instrument.vsm import DIMENSIONS, compute_indices, load_instrument
from culturetune.model.engine import PromptScorer, Segments, generate, split_tokens
from culturetune.model.loading import LoadedModel

ANSWER_MODES = ("expected", "argmax", "said", "generate")
#: What the ``expected`` reading does with the probability that is not on the answer options:
#: ``renormalise`` reads the options' share alone; ``neutral`` counts the rest as the middle
#: answer, so that a prompt that silences the options moves the answers toward uniform, not
#: toward whatever remainder is left.
MISSING_RULES = ("renormalise", "neutral")
#: A ``said`` answer that is not an option: the greedy reply named no option (counted, and read
#: as the middle answer in losses, never dropped).
NO_ANSWER = -1
PLACEMENTS = ("answer", "system", "prefix")
N_OPTIONS = 5
INSTRUCTION = "Answer with the number of one option only (1-5)."
#: Option orders a survey reads answers in unless told otherwise (see culturetune.core.defaults).
DEFAULT_ORDERS = defaults.ORDERS

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


#: Question texts with no content, for contextual calibration (Zhao et al. 2021).
CONTENT_FREE = ("N/A", "", "[MASK]")
_CIRCLE = re.compile(r"\s*\(please [^)]*\)\s*:?")


def item_prompt(
    item: Item, order: Order | None = None, instruction: str | None = None,
    text: str | None = None,
) -> str:
    """The user message for one item, its options listed in ``order`` (shown position j holds
    option ``order[j]``, numbered j + 1). The lead-in's "(please circle ...)" phrase, meant for
    paper, is left out. ``text`` replaces the question (content-free prompts)."""
    labels = list(item.options) if order is None else shown_options(item.options, order)
    stem = _CIRCLE.sub("", item.stem or "").strip()
    question = item.text if text is None else text
    lines = [stem, question] if stem else [question]
    lines.append("")
    lines += [f"{i}. {label}" for i, label in enumerate(labels, 1)]
    lines += ["", instruction or INSTRUCTION]
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


#: Prompts encoded at once; a survey with more (``--orders all``) is scored in chunks whose
#: prefix caches are built for each call and dropped, so that memory stays bounded.
MAX_CACHED_PROMPTS = 600


class Survey:
    """The instrument set up on one model: prompts encoded once, answers for many soft prompts.

    Every item is asked in every order of ``orders`` (a name from
    :data:`culturetune.instrument.orders.ORDER_SETS`); with ``calibrate`` each order's distribution
    is also divided by the one the model gives content-free items of the same format (see
    :func:`culturetune.instrument.orders.calibrate`). Answers come back in option-content order.
    """

    def __init__(
        self,
        lm: LoadedModel,
        instrument: Instrument | str = "vsm2013",
        *,
        system: str | None = None,
        placement: str = "answer",
        orders: str = DEFAULT_ORDERS,
        calibrate: bool = False,
        max_rows: int = 512,
    ) -> None:
        self.lm = lm
        self.instrument = load_instrument(instrument) if isinstance(instrument, str) else instrument
        self.system = system
        self.placement = check_placement(placement)
        self.orders_name = check_orders(orders)
        self.orders = option_orders(self.orders_name, N_OPTIONS)
        self.calibrate = bool(calibrate)
        self.max_rows = max_rows
        self.option_ids = option_token_ids(lm.tokenizer)
        inst = self.instrument
        users = [item_prompt(it, o, inst.instruction) for o in self.orders for it in inst.items]
        self.users = list(users)  # the questions of every (order, item), orders outermost
        # Content-free prompts: one per (lead-in, option scale) format and content-free text.
        keys: list[tuple[str, tuple[str, ...]]] = []
        self.formats: list[Item] = []
        self.format_of: list[int] = []
        for it in inst.items:
            if (it.stem, it.options) not in keys:
                keys.append((it.stem, it.options))
                self.formats.append(it)
            self.format_of.append(keys.index((it.stem, it.options)))
        self.content_free = tuple(inst.content_free or CONTENT_FREE)
        if self.calibrate:
            users += [item_prompt(f, o, inst.instruction, text=t)
                      for o in self.orders for f in self.formats for t in self.content_free]
        self.n_prompts = len(users)
        self.segments = prompt_segments(lm, users, system, placement)
        self._chunks = [
            (i, min(i + MAX_CACHED_PROMPTS, len(users)))
            for i in range(0, len(users), MAX_CACHED_PROMPTS)
        ]
        self.scorer = (PromptScorer(lm, self.segments, max_rows=max_rows)
                       if len(self._chunks) == 1 else None)

    @property
    def vars(self) -> tuple[str, ...]:
        return tuple(it.var for it in self.instrument.items)

    @property
    def reverse(self) -> bool:
        """True when the options are shown last to first only."""
        return self.orders_name == "reversed"

    def _scores(
        self, soft: torch.Tensor | None, flat: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities of the ``flat`` option tokens ``[candidates, prompts, len(flat)]``
        and the most likely token over the whole vocabulary ``[candidates, prompts]``."""
        if self.scorer is not None:
            return self.scorer.next_token_scores(soft, flat)
        parts = []
        for a, b in self._chunks:  # built per call and dropped: bounded memory
            segs = Segments(self.segments.pre[a:b], self.segments.post[a:b])
            parts.append(PromptScorer(self.lm, segs, max_rows=self.max_rows)
                         .next_token_scores(soft, flat))
        return torch.cat([x[0] for x in parts], 1), torch.cat([x[1] for x in parts], 1)

    def read(self, soft: torch.Tensor | None = None) -> Reading:
        """Answers of each candidate in each order, mapped to option-content order."""
        if soft is not None and soft.dim() == 2:
            soft = soft[None]
        flat = [i for ids in self.option_ids for i in ids]
        logp, top = self._scores(soft, flat)
        p = logp.exp()
        per = len(self.option_ids[0])
        p = p.view(*p.shape[:-1], N_OPTIONS, per).sum(-1)
        mass = p.sum(-1)
        probs = (p / mass[..., None]).double().cpu().numpy()
        mass = mass.double().cpu().numpy()
        n_o, n_i = len(self.orders), len(self.instrument.items)
        shown = probs[:, : n_o * n_i].reshape(-1, n_o, n_i, N_OPTIONS)
        if self.calibrate:
            n_f, n_t = len(self.formats), len(self.content_free)
            cf = probs[:, n_o * n_i:].reshape(-1, n_o, n_f, n_t, N_OPTIONS).mean(3)
            shown = calibrate_probs(shown, cf[:, :, self.format_of])
        return Reading(
            orders=self.orders,
            by_order=to_content_order(shown, self.orders),
            mass=mass[:, : n_o * n_i].reshape(-1, n_o, n_i),
            said=self._said(top.cpu().numpy()[:, : n_o * n_i].reshape(-1, n_o, n_i)),
        )

    def _said(self, top: np.ndarray) -> np.ndarray:
        """The option (content index 0-4) each greedy first token names, or ``NO_ANSWER``."""
        shown = np.full(top.shape, NO_ANSWER, dtype=np.int64)  # [candidates, orders, items]
        for k, ids in enumerate(self.option_ids):
            shown[np.isin(top, ids)] = k
        orders = np.asarray(self.orders, dtype=np.int64)  # [orders, 5]: shown j -> content
        content = np.take_along_axis(orders[None], np.maximum(shown, 0), axis=2)
        return np.where(shown == NO_ANSWER, NO_ANSWER, content)

    def option_probs(self, soft: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Option probabilities ``[candidates, items, 5]`` in content order (option 1 first,
        whatever order they were shown in), averaged over the orders, and the raw mass on the
        five tokens ``[candidates, items]`` (averaged over the orders).
        """
        r = self.read(soft)
        return r.probs, r.mass.mean(1)

    def generate(
        self, soft: torch.Tensor | None = None, max_new_tokens: int = 8,
        which: Sequence[int] | None = None,
    ) -> list[str]:
        """Greedy answers as text, one per (order, item), orders outermost; or only for the
        prompts numbered in ``which`` (same numbering), in that order."""
        n = len(self.orders) * len(self.instrument.items)
        rows = range(n) if which is None else which
        segs = Segments([self.segments.pre[i] for i in rows],
                        [self.segments.post[i] for i in rows])
        return generate(self.lm, segs, soft, max_new_tokens) if len(segs) else []

    def said(
        self, reading: Reading, soft: torch.Tensor | None = None
    ) -> tuple[np.ndarray, dict[int, str]]:
        """What the model says to each (order, item) under one prompt: the option its greedy
        first token names; where that token is no option, its greedy reply parsed as
        ``generate`` does. Returns content indices ``[orders, items]`` (``NO_ANSWER`` where the
        reply names no option) and the generated replies by prompt number."""
        said = reading.said[0].copy()
        n_i = len(self.instrument.items)
        missing = [int(o * n_i + i) for o, i in zip(*np.nonzero(said == NO_ANSWER), strict=True)]
        replies = dict(zip(missing, self.generate(soft, which=missing), strict=True))
        for k, text in replies.items():
            o, i = divmod(k, n_i)
            value = parse_answer(text, self.orders[o])
            said[o, i] = NO_ANSWER if value is None else value - 1
        return said, replies


@dataclass
class Reading:
    """A survey's answers: ``by_order`` ``[candidates, orders, items, 5]`` in option-content
    order (calibrated if asked), ``mass`` ``[candidates, orders, items]`` raw option mass,
    ``said`` ``[candidates, orders, items]`` the option (content index) the greedy first token
    names, ``NO_ANSWER`` where it names none."""

    orders: list[Order]
    by_order: np.ndarray
    mass: np.ndarray
    said: np.ndarray

    @property
    def probs(self) -> np.ndarray:
        """``[candidates, items, 5]``: the distributions averaged over the orders."""
        return self.by_order.mean(1)

    def order_means(self, missing: str = "renormalise") -> np.ndarray:
        """Expected item means ``[candidates, orders, items]`` in each order alone, under the
        rule for the probability off the options (:data:`MISSING_RULES`)."""
        means = self.by_order @ np.arange(1, N_OPTIONS + 1, dtype=float)
        return apply_missing(means, self.mass, missing)

    def said_means(self) -> np.ndarray:
        """Item values ``[candidates, orders, items]`` of the first tokens said (1-5), the
        middle answer where no option was said."""
        return said_values(self.said)


def check_missing(rule: str) -> str:
    key = str(rule).strip().lower()
    if key == "renormalize":
        key = "renormalise"
    if key not in MISSING_RULES:
        raise CultureTuneError(f"unknown --missing {rule!r}; use one of {', '.join(MISSING_RULES)}")
    return key


def apply_missing(means: np.ndarray, mass: np.ndarray, missing: str) -> np.ndarray:
    """Item means read from the options' share (``renormalise``), or with the probability off
    the options counted as the middle answer (``neutral``)."""
    if check_missing(missing) == "renormalise":
        return means
    middle = (N_OPTIONS + 1) / 2
    m = np.clip(mass, 0.0, 1.0)
    return m * means + (1.0 - m) * middle


def said_values(said: np.ndarray) -> np.ndarray:
    """Content indices (or ``NO_ANSWER``) as answers 1-5; a non-answer reads as the middle."""
    said = np.asarray(said)
    return np.where(said == NO_ANSWER, (N_OPTIONS + 1) / 2, said + 1.0)


def item_means(probs: np.ndarray, mode: str = "expected") -> np.ndarray:
    """Item scores from option probabilities: probability-weighted mean or most likely option."""
    values = np.arange(1, N_OPTIONS + 1, dtype=float)
    if mode == "expected":
        return probs @ values
    if mode == "argmax":
        return probs.argmax(-1) + 1.0
    raise CultureTuneError(f"unknown answer mode {mode!r} here; use expected or argmax")


def parse_answer(text: str, order: Order | None = None) -> int | None:
    """The first number in a generated answer, if it is an option: the shown number mapped back
    to the option it labels in ``order`` (1 = the instrument's first option)."""
    m = re.search(r"\d+", text)
    if not m or not 1 <= int(m.group()) <= N_OPTIONS:
        return None
    value = int(m.group())
    return value if order is None else order[value - 1] + 1


@dataclass
class ItemResult:
    var: str
    text: str
    probs: list[float]
    mass: float
    mean: float | None
    generated: str | None = None
    #: The item mean read in each order alone (option-content scale), orders as listed.
    order_means: list[float | None] = field(default_factory=list)
    #: Generated text in every order (``generate`` mode; ``said``: only where the first token
    #: was no option), orders as listed.
    generated_by_order: list[str | None] | None = None
    #: ``said``/``generate``: the share of orders in which the reply named an option.
    answered: float | None = None


@dataclass
class SurveyResult:
    """One administration of the instrument: per-item answers, indices and, if targeted, loss
    (with the loss of answering every item uniformly beside it)."""

    model: str
    instrument: str
    answers: str
    placement: str | None
    system: str | None
    orders: str
    order_list: list[list[int]]
    calibrated: bool
    constants: dict[str, float]
    items: list[ItemResult]
    indices: dict[str, float | None]
    target: Target | None = None
    loss: Loss | None = None
    uniform_loss: Loss | None = None
    prompt: str | None = None
    notes: list[str] = field(default_factory=list)
    #: The ``expected`` reading's rule for the probability off the options (MISSING_RULES).
    missing: str | None = None

    @property
    def answered(self) -> float | None:
        """``said``/``generate``: the share of replies (items x orders) that name an option."""
        shares = [it.answered for it in self.items if it.answered is not None]
        return float(np.mean(shares)) if shares else None

    @property
    def means(self) -> dict[str, float | None]:
        return {it.var: it.mean for it in self.items}

    @property
    def option_mass(self) -> float:
        """Mean over items of the raw probability the model put on the option tokens."""
        return float(sum(it.mass for it in self.items) / max(len(self.items), 1))

    @property
    def reverse(self) -> bool:
        return self.orders == "reversed"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["target"] = self.target.to_dict() if self.target else None
        d["loss"] = self.loss.to_dict() if self.loss else None
        d["uniform_loss"] = self.uniform_loss.to_dict() if self.uniform_loss else None
        d["means"] = self.means
        d["option_mass"] = self.option_mass
        d["answered"] = self.answered
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


def uniform_indices(
    constants: Mapping[str, float], instrument: Instrument | str = "vsm2013"
) -> dict[str, float]:
    """The indices of answering every item uniformly (every item mean 3): each index is its C."""
    inst = load_instrument(instrument) if isinstance(instrument, str) else instrument
    return compute_indices(dict.fromkeys(inst.vars, 3.0), constants, inst)


def uniform_loss(
    target: Target, constants: Mapping[str, float], kind: str = "l1",
    instrument: Instrument | str = "vsm2013",
) -> Loss:
    """The loss of uniform answers: the baseline a reading has to beat to say anything."""
    return loss(uniform_indices(constants, instrument), target, kind)


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
    reading: Reading | None = None,
) -> SurveyResult:
    """Administer the instrument once (in every order of the survey) and score it.

    ``reading`` is the survey's :meth:`Survey.read` of ``soft`` when the caller already has it
    (several answer modes of one prompt then cost one forward pass)."""
    if answers not in ANSWER_MODES:
        raise CultureTuneError(
            f"unknown --answers {answers!r}; use one of {', '.join(ANSWER_MODES)}"
        )
    missing = check_missing(missing)
    if answers in ("generate", "said") and survey.calibrate:
        raise CultureTuneError("--calibrate reweights next-token probabilities; it does not "
                               f"apply to --answers {answers} (use expected or argmax)")
    reading = reading or survey.read(soft)
    by_order, mass_by_order = reading.by_order[0], reading.mass[0]
    mass = mass_by_order.mean(0)
    probs = by_order.mean(0)
    notes: list[str] = []
    n_items, n_orders = len(survey.vars), len(survey.orders)
    texts: list[list[str | None]] | None = None
    answered: list[float | None] = [None] * n_items
    if answers in ("generate", "said"):
        if answers == "generate":
            flat = survey.generate(soft)
            texts = [flat[o * n_items:(o + 1) * n_items] for o in range(n_orders)]
            values = np.array([[parse_answer(texts[o][i], order) or 0 for i in range(n_items)]
                               for o, order in enumerate(survey.orders)]) - 1
        else:
            values, replies = survey.said(reading, soft)
            texts = [[replies.get(o * n_items + i) for i in range(n_items)]
                     for o in range(n_orders)]
        values = np.where(values < 0, NO_ANSWER, values)
        order_means = [[None if values[o, i] == NO_ANSWER else float(values[o, i] + 1)
                        for o in range(n_orders)] for i in range(n_items)]
        means: list[float | None] = []
        for i, var in enumerate(survey.vars):
            for o in range(n_orders):
                if values[o, i] == NO_ANSWER:
                    where = "" if n_orders == 1 else f" (order {o + 1})"
                    notes.append(f"{var}: unparsable answer {texts[o][i]!r}{where} (it names no "
                                 "option)")
            got = [v for v in order_means[i] if v is not None]
            answered[i] = len(got) / n_orders
            if answers == "said":  # a non-answer reads as the middle answer, never dropped
                means.append(float(said_values(values[:, i]).mean()))
            else:
                means.append(float(np.mean(got)) if got else None)
        if answers == "said" and any(a < 1 for a in answered):
            lost = int(round(sum((1 - a) * n_orders for a in answered)))
            notes.append(f"{lost} of {n_items * n_orders} replies name no option; each is read "
                         "as the middle answer (3)")
    else:
        per = item_means(by_order, answers)  # [orders, items]
        if answers == "expected":
            per = apply_missing(per, mass_by_order, missing)
        means = [float(x) for x in per.mean(0)]
        order_means = [[float(per[o, i]) for o in range(n_orders)] for i in range(n_items)]
    items = [
        ItemResult(
            var=it.var,
            text=it.text,
            probs=[float(p) for p in probs[i]],
            mass=float(mass[i]),
            mean=means[i],
            generated=None if texts is None else texts[0][i],
            order_means=order_means[i],
            generated_by_order=None if texts is None else [t[i] for t in texts],
            answered=answered[i],
        )
        for i, it in enumerate(survey.instrument.items)
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
        notes=notes,
        missing=missing if answers == "expected" else None,
    )


__all__ = [
    "ANSWER_MODES",
    "CONTENT_FREE",
    "MISSING_RULES",
    "NO_ANSWER",
    "DIMENSIONS",
    "PLACEMENTS",
    "Reading",
    "Survey",
    "SurveyResult",
    "apply_missing",
    "check_missing",
    "item_means",
    "item_prompt",
    "option_token_ids",
    "parse_answer",
    "persona_prompt",
    "prompt_segments",
    "run_survey",
    "said_values",
    "uniform_indices",
    "uniform_loss",
]
