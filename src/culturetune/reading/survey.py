"""The instrument set up on one model (:class:`Survey`): every item in every option order of an
order set, encoded once and scored for many soft prompts in one batch, and several surveys read
together (:func:`read_many`) or as slices of a larger one (:func:`read_within`).

Each prompt's answer is read from the next-token distribution restricted to the options' replies
(their labels, or their words) and renormalised; the mass the model put on them is kept. Each
order's distribution is mapped back to option-content order, optionally calibrated against
content-free items. All candidate soft prompts of an optimizer step go through one
:class:`~culturetune.model.scoring.ReplyScorer` batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from culturetune.core import defaults
from culturetune.core.errors import CultureTuneError
from culturetune.instrument import formats
from culturetune.instrument.items import Instrument
from culturetune.instrument.orders import (
    calibrate as calibrate_probs,
)
from culturetune.instrument.orders import (
    check_orders,
    option_orders,
    shown_options,
    to_content_order,
)
from culturetune.instrument.vsm import load_instrument
from culturetune.model.generate import generate
from culturetune.model.loading import LoadedModel
from culturetune.model.replies import ReplySet
from culturetune.model.scoring import ReplyScorer
from culturetune.model.segments import Segments
from culturetune.reading.answers import NO_ANSWER, Readout
from culturetune.reading.prompts import (
    CONTENT_FREE,
    N_OPTIONS,
    check_chat_template,
    check_instrument_format,
    check_placement,
    format_instruction,
    item_prompt,
    option_token_ids,
    prompt_segments,
    word_forms,
)

#: Option orders a survey reads answers in unless told otherwise (see culturetune.core.defaults).
DEFAULT_ORDERS = defaults.ORDERS


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
        format: str = formats.READ_FORMAT,
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
        #: One item of each (lead-in, option scale) pair: the content-free prompts' templates.
        self.item_formats: list = []
        self.format_of: list[int] = []
        for it in inst.items:
            if (it.stem, it.options) not in keys:
                keys.append((it.stem, it.options))
                self.item_formats.append(it)
            self.format_of.append(keys.index((it.stem, it.options)))
        self.content_free = tuple(inst.content_free or CONTENT_FREE)
        #: With ``calibrate``, the content-free questions of every (order, item format,
        #: content-free text), in that nesting, asked after :attr:`users`.
        self.content_free_users: list[str] = []
        if self.calibrate:
            for o in self.orders:
                for f in self.item_formats:
                    for t in self.content_free:
                        users.append(item_prompt(f, o, instruction, text=t, fmt=fmt))
                        self.content_free_users.append(users[-1])
                        self.shown.append(shown_options(f.options, o))
        self.n_prompts = len(users)
        self.segments = prompt_segments(lm, users, system, placement)
        self.reply_options = self._reply_options()
        self._scorer: ReplyScorer | None = None

    def _reply_options(self) -> list[list[list[list[int]]]]:
        """Each prompt's replies as token sequences: ``[prompt][shown option][form]``, the
        option's label or its words, each in the forms a reply takes."""
        if self.option_ids is not None:
            per = [[[i] for i in ids] for ids in self.option_ids]
            options = [per] * self.n_prompts
        else:
            words: dict[tuple[str, ...], list[list[int]]] = {}
            options = []
            for shown in self.shown:
                key = tuple(shown)
                if key not in words:
                    words[key] = word_forms(self.lm, shown)
                options.append(words[key])
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
        Always this survey's own scorer, whose batches :func:`read_many` reuses: in bf16 the
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

    @torch.inference_mode()
    def read(self, soft: torch.Tensor | None = None) -> Readout:
        """Answers of each candidate in each order, mapped to option-content order."""
        if soft is not None and soft.dim() == 2:
            soft = soft[None]
        return self.reading_from(*self._scores(soft))

    @torch.inference_mode()
    def read_content_free(self, soft: torch.Tensor | None = None
                          ) -> tuple[Readout, np.ndarray, dict[int, str]]:
        """One pass of a calibrated survey read two ways (the model check): the items'
        reading *not* calibrated, and what the model says to the content-free prompts
        (:meth:`content_free_said`) under one soft prompt (or none)."""
        if not self.calibrate:
            raise ValueError("content-free prompts are asked by a calibrated survey only")
        if soft is not None and soft.dim() == 2:
            soft = soft[None]
        logp, greedy = self._scores(soft)
        reading = self.reading_from(logp, greedy, calibrate=False)
        free, replies = self.content_free_said(greedy, None if soft is None else soft[0])
        return reading, free, replies

    def content_free_said(self, greedy: np.ndarray, soft: torch.Tensor | None = None
                          ) -> tuple[np.ndarray, dict[int, str]]:
        """What the model says to the content-free prompts (first candidate of ``greedy``,
        the shown option each greedy reply spells ``[candidates, prompts]``), read as
        :meth:`said_all` reads the items: content indices ``[orders, item formats,
        content-free texts]`` (``NO_ANSWER`` where the reply names no option) and the generated
        replies by prompt number."""
        n_o, n_i = len(self.orders), len(self.instrument.items)
        n_f, n_t = len(self.item_formats), len(self.content_free)
        start = n_o * n_i
        shown = np.asarray(greedy)[0, start:start + n_o * n_f * n_t].reshape(n_o, n_f * n_t)
        orders = np.asarray(self.orders, dtype=np.int64)
        said = np.where(shown == NO_ANSWER, NO_ANSWER,
                        np.take_along_axis(orders, np.maximum(shown, 0), axis=1))
        missing = [start + int(o * n_f * n_t + j)
                   for o, j in zip(*np.nonzero(said == NO_ANSWER), strict=True)]
        texts = self.generate(soft, which=missing)
        replies = dict(zip(missing, texts, strict=True))
        for k, text in replies.items():
            o, j = divmod(k - start, n_f * n_t)
            value = self.parse(k, text)
            said[o, j] = NO_ANSWER if value is None else value
        return said.reshape(n_o, n_f, n_t), replies

    def reading_from(self, logp: torch.Tensor, greedy: np.ndarray, *,
                     tensors: bool = False, calibrate: bool | None = None) -> Readout:
        """A :class:`Readout` from this survey's scores (see :meth:`_scores`): numpy arrays, or
        with ``tensors`` float64 tensors that keep ``logp``'s graph (the tuning objective's
        gradient reads the same formulas). ``calibrate=False`` leaves a calibrated survey's
        items uncalibrated."""
        p = logp.double().exp()
        mass = p.sum(-1)
        probs = p / mass[..., None]
        if not tensors:
            probs, mass = probs.detach().cpu().numpy(), mass.detach().cpu().numpy()
        n_o, n_i = len(self.orders), len(self.instrument.items)
        shown = probs[:, : n_o * n_i].reshape(-1, n_o, n_i, N_OPTIONS)
        if self.calibrate and calibrate is not False:
            n_f, n_t = len(self.item_formats), len(self.content_free)
            cf = probs[:, n_o * n_i:].reshape(-1, n_o, n_f, n_t, N_OPTIONS).mean(3)
            shown = calibrate_probs(shown, cf[:, :, self.format_of])
        said = np.asarray(greedy)[:, : n_o * n_i].reshape(-1, n_o, n_i)
        return Readout(
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
        return self.orders[self._order_of(k)][j]

    def _order_of(self, k: int) -> int:
        """The order (its index in :attr:`orders`) prompt ``k`` shows its options in."""
        n_i = len(self.instrument.items)
        if k < len(self.orders) * n_i:
            return k // n_i
        return (k - len(self.orders) * n_i) // (len(self.item_formats) * len(self.content_free))

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
        prompts numbered in ``which`` (same numbering, the content-free prompts after the
        items), in that order."""
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
        self, reading: Readout, soft: torch.Tensor | None = None
    ) -> tuple[np.ndarray, dict[int, str]]:
        """What the model says to each (order, item) under one prompt (the first candidate of
        ``reading``; see :meth:`said_all`): content indices ``[orders, items]`` and the
        generated replies by prompt number."""
        said, replies = self.said_all(reading, soft, candidates=1)
        return said[0], replies[0]

    def said_all(
        self, reading: Readout, soft: torch.Tensor | None = None, candidates: int | None = None,
    ) -> tuple[np.ndarray, list[dict[int, str]]]:
        """What the model says, the one definition that the objective, the checks, ``survey``
        and the report read: the option whose reply form (its label, or its words as written
        or with a capital first letter) the greedy path through the options' tokens spells;
        where that path leaves every option, the greedy reply generated and matched to the
        options (:meth:`parse`: case and punctuation aside, a leading list label tolerated).
        Returns content indices ``[candidates, orders, items]`` (``NO_ANSWER`` where the reply
        names no option) and each candidate's generated replies by prompt number."""
        said = reading.said[:candidates].copy()
        if soft is not None and soft.dim() == 2:
            soft = soft[None]
        n_i = len(self.instrument.items)
        out = []
        for c in range(len(said)):
            missing = [int(o * n_i + i)
                       for o, i in zip(*np.nonzero(said[c] == NO_ANSWER), strict=True)]
            texts = self.generate(None if soft is None else soft[c], which=missing)
            replies = dict(zip(missing, texts, strict=True))
            for k, text in replies.items():
                o, i = divmod(k, n_i)
                value = self.parse(k, text)
                said[c, o, i] = NO_ANSWER if value is None else value
            out.append(replies)
        return said, out


def read_within(
    full: Survey, survey: Survey, soft: torch.Tensor | None, cache: dict[Any, Any],
    said: bool = False,
) -> tuple[Readout, tuple[np.ndarray, dict[int, str]] | None]:
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


@torch.inference_mode()
def read_many(surveys: Sequence[Survey], soft: torch.Tensor | None) -> list[Readout]:
    """Each survey's reading of the same soft prompts, through their joined scorers where they
    share a model (each prompt in the batch its survey reads it in alone)."""
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


def joint_scorer(surveys: Sequence[Survey]) -> ReplyScorer:
    """The one scorer that reads these surveys together, as :func:`read_many` does (the
    tuning objective's gradient runs through it, so that it sees the same numbers)."""
    if len(surveys) == 1:
        return surveys[0].scorer
    joint = _joint_scorer(surveys)
    if joint is None:
        raise CultureTuneError("these surveys cannot be read in one pass (another model or "
                               "placement), so they have no joint gradient")
    return joint


def _joint_scorer(surveys: Sequence[Survey]) -> ReplyScorer | None:
    """The surveys' own scorers joined (:meth:`ReplyScorer.joined`): each prompt is read in the
    batch it has when its survey is read alone, so an objective's reading of a prompt is what
    ``culturetune survey --prompt`` reads; ``None`` where they do not share a model."""
    first = surveys[0] if surveys else None
    if (len(surveys) < 2 or any(s.lm is not first.lm for s in surveys)
            or Survey._scores is not _OWN_SCORES):  # a test's synthetic respondent
        return None
    key = tuple(id(s) for s in surveys)
    cached = getattr(first, "_joint", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    scorers = [s.scorer for s in surveys]
    if any(sc is None for sc in scorers) or len({sc.n_options for sc in scorers}) > 1:
        return None
    scorer = ReplyScorer.joined(scorers)
    first._joint = (key, scorer)
    return scorer


__all__ = ["DEFAULT_ORDERS", "Survey", "joint_scorer", "read_many", "read_within"]
