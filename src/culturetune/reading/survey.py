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
from culturetune.instrument import formats
from culturetune.instrument.items import Instrument
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
from culturetune.model.generate import generate
from culturetune.model.loading import LoadedModel
from culturetune.model.replies import OFF, ReplySet
from culturetune.model.scoring import ReplyScorer
from culturetune.model.segments import Segments
from culturetune.reading.prompts import (
    CONTENT_FREE,
    INSTRUCTION,
    N_OPTIONS,
    PLACEMENTS,
    check_chat_template,
    check_instrument_format,
    check_placement,
    format_instruction,
    item_prompt,
    label_token_ids,
    option_token_ids,
    persona_prompt,
    prompt_segments,
    word_token_ids,
)

ANSWER_MODES = ("expected", "argmax", "said", "generate")
#: What the ``expected`` reading does with the probability that is not on the answer options:
#: ``renormalise`` reads the options' share alone; ``neutral`` counts the rest as the middle
#: answer, so that a prompt that silences the options moves the answers toward uniform, not
#: toward whatever remainder is left.
MISSING_RULES = ("renormalise", "neutral")
#: A ``said`` answer that is not an option: the greedy reply named no option (counted, and read
#: as the middle answer in losses, never dropped).
NO_ANSWER = OFF
#: Option orders a survey reads answers in unless told otherwise (see culturetune.core.defaults).
DEFAULT_ORDERS = defaults.ORDERS
#: Surface forms of each option: the bare digit and, where it is one token, the digit after a
#: space (tokenizers that split ``" 1"`` would otherwise put their answer mass elsewhere).
OPTION_FORMS = tuple(formats.label_forms("number", N_OPTIONS))


class Survey:
    """The instrument set up on one model: prompts encoded once, answers for many soft prompts.

    Every item is asked in every order of ``orders`` (a name from
    :data:`culturetune.instrument.orders.ORDER_SETS`) in the answer format ``format``
    (:data:`culturetune.instrument.formats.FORMATS`); with ``calibrate`` each order's
    distribution is also divided by the one the model gives content-free items of the same
    format (see :func:`culturetune.instrument.orders.calibrate`). An option's probability is that
    of its label (``number``, ``letter``) or of its whole words (``words``) as the reply.
    Answers come back in option-content order.
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
        format: str = formats.DEFAULT_FORMAT,
    ) -> None:
        self.lm = lm
        self.instrument = load_instrument(instrument) if isinstance(instrument, str) else instrument
        self.system = system
        self.placement = check_placement(placement)
        self.orders_name = check_orders(orders)
        self.orders = option_orders(self.orders_name, N_OPTIONS)
        self.calibrate = bool(calibrate)
        self.max_rows = max_rows
        self.format = formats.check_format(format, formats.FORMATS)
        inst, fmt = self.instrument, self.format
        check_instrument_format(inst, fmt)
        check_chat_template(lm, fmt)
        instruction = format_instruction(inst, fmt)
        self.option_ids = (None if fmt == "words" else option_token_ids(lm.tokenizer, fmt))
        users = [item_prompt(it, o, instruction, fmt=fmt) for o in self.orders
                 for it in inst.items]
        #: The options as shown in every prompt, and the item each prompt asks.
        self.shown = [shown_options(it.options, o) for o in self.orders for it in inst.items]
        self.users = list(users)  # the questions of every (order, item), orders outermost
        # Content-free prompts: one per (lead-in, option scale) format and content-free text.
        keys: list[tuple[str, tuple[str, ...]]] = []
        self.formats: list = []
        self.format_of: list[int] = []
        for it in inst.items:
            if (it.stem, it.options) not in keys:
                keys.append((it.stem, it.options))
                self.formats.append(it)
            self.format_of.append(keys.index((it.stem, it.options)))
        self.content_free = tuple(inst.content_free or CONTENT_FREE)
        if self.calibrate:
            for o in self.orders:
                for f in self.formats:
                    for t in self.content_free:
                        users.append(item_prompt(f, o, instruction, text=t, fmt=fmt))
                        self.shown.append(shown_options(f.options, o))
        self.n_prompts = len(users)
        self.segments = prompt_segments(lm, users, system, placement)
        self.reply_options = self._reply_options()
        self._scorer: ReplyScorer | None = None

    def _reply_options(self) -> list[list[list[list[int]]]]:
        """Each prompt's replies as token sequences: ``[prompt][shown option][form]``, the
        option's label (in each of its forms) or its words."""
        if self.option_ids is not None:
            per = [[[i] for i in ids] for ids in self.option_ids]
            options = [per] * self.n_prompts
        else:
            words: dict[tuple[str, ...], list[list[int]]] = {}
            options = []
            for shown in self.shown:
                key = tuple(shown)
                if key not in words:
                    words[key] = word_token_ids(self.lm, shown)
                options.append([[ids] for ids in words[key]])
        return options

    @property
    def scorer(self) -> ReplyScorer | None:
        """Scores this survey's prompts (built on first use: its prefix caches take memory)."""
        if self._scorer is None:
            replies = ReplySet(self.reply_options, pad=self.lm.tokenizer.pad_token_id or 0)
            self._scorer = ReplyScorer(self.lm, self.segments, replies, self.max_rows)
        return self._scorer

    @property
    def vars(self) -> tuple[str, ...]:
        return tuple(it.var for it in self.instrument.items)

    @property
    def reverse(self) -> bool:
        """True when the options are shown last to first only."""
        return self.orders_name == "reversed"

    def _scores(self, soft: torch.Tensor | None) -> tuple[torch.Tensor, np.ndarray]:
        """Log-probabilities of the options as shown ``[candidates, prompts, 5]`` and the shown
        option each greedy reply spells ``[candidates, prompts]`` (``NO_ANSWER`` where none).
        Always this survey's own scorer, never a joint one (:func:`read_many`): in bf16 the
        scores depend on what a batch is padded to, and a survey read alone (``culturetune
        survey --prompt``) must give what a run reported."""
        return self.scorer(soft)

    def orders_within(self, other: Survey) -> list[int] | None:
        """Where each of ``other``'s orders sits among this survey's, if this survey asks every
        prompt ``other`` asks (same model, items, format, system text, placement and
        calibration), else ``None``: ``other``'s readings are then slices of this one's."""
        same = (other.lm is self.lm and other.instrument == self.instrument
                and other.format == self.format and other.system == self.system
                and other.placement == self.placement and other.calibrate == self.calibrate)
        if not same or any(o not in self.orders for o in other.orders):
            return None
        return [self.orders.index(o) for o in other.orders]

    def read(self, soft: torch.Tensor | None = None) -> Reading:
        """Answers of each candidate in each order, mapped to option-content order."""
        if soft is not None and soft.dim() == 2:
            soft = soft[None]
        return self.reading_from(*self._scores(soft))

    def reading_from(self, logp: torch.Tensor, greedy: np.ndarray) -> Reading:
        """A :class:`Reading` from this survey's scores (see :meth:`_scores`)."""
        p = logp.double().exp()
        mass = p.sum(-1)
        probs = (p / mass[..., None]).cpu().numpy()
        mass = mass.cpu().numpy()
        n_o, n_i = len(self.orders), len(self.instrument.items)
        shown = probs[:, : n_o * n_i].reshape(-1, n_o, n_i, N_OPTIONS)
        if self.calibrate:
            n_f, n_t = len(self.formats), len(self.content_free)
            cf = probs[:, n_o * n_i:].reshape(-1, n_o, n_f, n_t, N_OPTIONS).mean(3)
            shown = calibrate_probs(shown, cf[:, :, self.format_of])
        said = np.asarray(greedy)[:, : n_o * n_i].reshape(-1, n_o, n_i)
        return Reading(
            orders=self.orders,
            by_order=to_content_order(shown, self.orders),
            mass=mass[:, : n_o * n_i].reshape(-1, n_o, n_i),
            said=self._to_content(said),
        )

    def _to_content(self, shown: np.ndarray) -> np.ndarray:
        """Shown positions ``[candidates, orders, items]`` as content indices (or NO_ANSWER)."""
        orders = np.asarray(self.orders, dtype=np.int64)  # [orders, 5]: shown j -> content
        content = np.take_along_axis(orders[None], np.maximum(shown, 0), axis=2)
        return np.where(shown == NO_ANSWER, NO_ANSWER, content)

    def parse(self, k: int, text: str) -> int | None:
        """The option (content index, 0-based) a generated reply to prompt ``k`` names."""
        shown = self.shown[k]
        if self.format == "words":
            j = formats.match_words(text, shown)
        else:
            j = formats.match_label(text, self.format, len(shown))
        if j is None:
            return None
        return self.orders[k // len(self.instrument.items)][j]

    def option_probs(self, soft: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Option probabilities ``[candidates, items, 5]`` in content order (option 1 first,
        whatever order they were shown in), averaged over the orders, and the raw mass on the
        five options ``[candidates, items]`` (averaged over the orders).
        """
        r = self.read(soft)
        return r.probs, r.mass.mean(1)

    def generate(
        self, soft: torch.Tensor | None = None, max_new_tokens: int | None = None,
        which: Sequence[int] | None = None,
    ) -> list[str]:
        """Greedy answers as text, one per (order, item), orders outermost; or only for the
        prompts numbered in ``which`` (same numbering), in that order."""
        if max_new_tokens is None:  # words: enough to spell the longest option after a label
            max_new_tokens = 8 if self.format != "words" else 4 + max(
                len(ids) for options in self.reply_options for forms in options
                for ids in forms)
        n = len(self.orders) * len(self.instrument.items)
        rows = range(n) if which is None else which
        segs = Segments([self.segments.pre[i] for i in rows],
                        [self.segments.post[i] for i in rows])
        return generate(self.lm, segs, soft, max_new_tokens) if len(segs) else []

    def said(
        self, reading: Reading, soft: torch.Tensor | None = None
    ) -> tuple[np.ndarray, dict[int, str]]:
        """What the model says to each (order, item) under one prompt: the option its greedy
        reply spells; where the greedy path leaves every option, its greedy reply generated and
        matched to the options (:meth:`parse`). Returns content indices ``[orders, items]``
        (``NO_ANSWER`` where the reply names no option) and the generated replies by prompt
        number."""
        said = reading.said[0].copy()
        n_i = len(self.instrument.items)
        missing = [int(o * n_i + i) for o, i in zip(*np.nonzero(said == NO_ANSWER), strict=True)]
        replies = dict(zip(missing, self.generate(soft, which=missing), strict=True))
        for k, text in replies.items():
            o, i = divmod(k, n_i)
            value = self.parse(k, text)
            said[o, i] = NO_ANSWER if value is None else value
        return said, replies


def read_within(
    full: Survey, survey: Survey, soft: torch.Tensor | None, cache: dict[Any, Any],
    said: bool = False,
) -> tuple[Reading, tuple[np.ndarray, dict[int, str]] | None]:
    """``survey``'s reading of ``soft`` (and, with ``said``, what the model says), read once on
    ``full`` and kept in ``cache`` (one per soft prompt), sliced where ``survey`` asks some of
    ``full``'s orders (:meth:`Survey.orders_within`): one order alone costs no pass of its own."""
    at = full.orders_within(survey)
    if at is None:
        full, at = survey, list(range(len(survey.orders)))
    key = id(full)
    if key not in cache:
        cache[key] = full.read(soft)
    reading, said_by = cache[key], None
    if said:
        if ("said", key) not in cache:
            cache[("said", key)] = full.said(reading, soft)
        said_by = cache[("said", key)]
    if full is survey:
        return reading, said_by
    if said_by is not None:
        n_i = len(survey.instrument.items)
        said_by = (said_by[0][at], {j * n_i + i: text for k, text in said_by[1].items()
                                    for o, i in [divmod(k, n_i)]
                                    for j, a in enumerate(at) if a == o})
    return reading.subset(at), said_by


_OWN_SCORES = Survey._scores


def read_many(surveys: Sequence[Survey], soft: torch.Tensor | None) -> list[Reading]:
    """Each survey's reading of the same soft prompts, in one batch where they share a model
    and a placement (an objective over two wordings costs one pass, not two)."""
    if soft is not None and soft.dim() == 2:
        soft = soft[None]
    joint = _joint_scorer(surveys)
    if joint is None:
        return [s.read(soft) for s in surveys]
    logp, greedy = joint(soft)
    out, at = [], 0
    for s in surveys:
        out.append(s.reading_from(logp[:, at : at + s.n_prompts],
                                  greedy[:, at : at + s.n_prompts]))
        at += s.n_prompts
    return out


def _joint_scorer(surveys: Sequence[Survey]) -> ReplyScorer | None:
    first = surveys[0] if surveys else None
    if (len(surveys) < 2 or any(s.lm is not first.lm for s in surveys)
            or Survey._scores is not _OWN_SCORES):  # a test's synthetic respondent
        return None
    key = tuple(id(s) for s in surveys)
    cached = getattr(first, "_joint", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    if len({bool(s.segments.post and s.segments.post[0]) for s in surveys}) > 1:
        return None  # one placement cuts every prompt the same way
    segs = Segments([p for s in surveys for p in s.segments.pre],
                    [p for s in surveys for p in s.segments.post])
    options = [o for s in surveys for o in s.reply_options]
    replies = ReplySet(options, pad=first.lm.tokenizer.pad_token_id or 0)
    scorer = ReplyScorer(first.lm, segs, replies, first.max_rows)
    first._joint = (key, scorer)
    return scorer


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

    def subset(self, at: Sequence[int]) -> Reading:
        """The reading of the orders at positions ``at`` alone."""
        at = list(at)
        return Reading([self.orders[i] for i in at], self.by_order[:, at], self.mass[:, at],
                       self.said[:, at])

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


def _or_none(value: int | None) -> int:
    return NO_ANSWER if value is None else value


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
    #: The answer format the items were asked in (culturetune.instrument.formats).
    format: str = formats.DEFAULT_FORMAT

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
    said: tuple[np.ndarray, dict[int, str]] | None = None,
) -> SurveyResult:
    """Administer the instrument once (in every order of the survey) and score it.

    ``reading`` is the survey's :meth:`Survey.read` of ``soft`` when the caller already has it
    (several answer modes of one prompt then cost one forward pass); ``said``, likewise, its
    :meth:`Survey.said` (content indices ``[orders, items]`` and the generated replies)."""
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
            values = np.array([[_or_none(survey.parse(o * n_items + i, texts[o][i]))
                                for i in range(n_items)] for o in range(n_orders)])
        else:
            values, replies = said if said is not None else survey.said(reading, soft)
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
        format=survey.format,
    )


__all__ = [
    "ANSWER_MODES",
    "INSTRUCTION",
    "N_OPTIONS",
    "check_placement",
    "label_token_ids",
    "read_many",
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
