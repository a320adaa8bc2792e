"""Scoring CulturalBench questions under a condition: the formulations of Easy (``letter``,
``mc``, ``cloze``) and Hard (true/false judgements), one outcome per question.

* ``letter`` reads the next-token distribution over the four letters after the assistant header,
  in each option order of an order set (``cyclic``: every option once under every letter), mapped
  back to the dataset's option order and averaged, so that a preference for a letter cannot
  score.
* ``mc`` is lm-evaluation-harness's multiple-choice formulation: the options are shown, the
  context ends with ``Answer:`` and the letters are scored as continuations (outside the chat
  template as lm-eval runs it by default, or inside it).
* ``cloze`` (alias ``loglik``) shows the question alone and compares the summed log-likelihood of
  each option's text as the answer (and the same divided by the option's length in characters,
  lm-eval's ``acc_norm``).
* **Hard**: every (question, option) pair is judged true or false from P(True) vs P(False).

Each is scored under a :class:`~culturetune.culturalbench.condition.Condition`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from culturetune.core.errors import CultureTuneError
from culturetune.culturalbench.condition import Condition
from culturetune.culturalbench.data import LETTERS, HardQuestion, Question
from culturetune.culturalbench.likelihood import continuation_logprobs, label_probs
from culturetune.instrument.orders import Order, option_orders, shown_options, to_content_order
from culturetune.model.loading import PLAIN_SYSTEM, PLAIN_USER, LoadedModel
from culturetune.reading.administer import label_token_ids

#: Other names accepted for a scoring: ``loglik`` was the name of ``cloze`` before there were
#: three formulations.
SCORING_ALIASES = {"loglik": "cloze"}
EASY_INSTRUCTION = "Answer with the letter of the correct option only."
HARD_INSTRUCTION = ("Is this answer true or false for this question? "
                    "Answer with True or False only.")
# Surface forms of each label, in the same variant order for every label (see label_token_ids).
LETTER_FORMS = tuple((x, " " + x) for x in LETTERS)
TRUTH_FORMS = (("True", "true", " True", " true"), ("False", "false", " False", " false"))
LETTER_HINT = "use --scoring mc or cloze (Easy) or another model"
TRUTH_HINT = "use another model for the Hard split"

Progress = Callable[[str, int, int], None]


def check_scoring(scoring: str, split: str = "easy", chat_template: bool = True) -> str:
    """The scoring's canonical name (``loglik`` is ``cloze``), after checking it fits the split
    and the chat-template choice."""
    s = str(scoring).strip().lower()
    s = SCORING_ALIASES.get(s, s)
    if s not in SCORINGS:
        raise CultureTuneError(f"unknown scoring {scoring!r}; use letter, mc or cloze "
                               "(loglik is cloze)")
    if s != "letter" and split == "hard":
        raise CultureTuneError(f"--scoring {scoring} applies to the easy split only; the hard "
                               "split reads True/False from the next token")
    if not chat_template and s == "letter":
        raise CultureTuneError("--no-chat-template applies to --scoring mc and cloze only; "
                               "letter scoring asks inside the chat template")
    return s


# --------------------------------------------------------------------------- evaluation


def easy_prompt(q: Question, order: Order | None = None) -> str:
    """The user message of letter scoring: the question, options A-D and the instruction.
    ``order`` lists the options in another order (letter j shows option ``order[j]``)."""
    options = q.options if order is None else shown_options(q.options, order)
    lines = [q.question] + [f"{x}. {o}" for x, o in zip(LETTERS, options, strict=True)]
    return "\n".join(lines + [EASY_INSTRUCTION])


def hard_prompt(question: str, option: str) -> str:
    """The user message of one Hard judgement."""
    return f"Question: {question}\nAnswer: {option}\n{HARD_INSTRUCTION}"


@dataclass(frozen=True)
class EasyOutcome:
    """The model's answer to one Easy question. ``letter`` scoring fills ``probs`` (renormalised
    over A-D) and ``mass``; ``mc`` fills ``loglik``; ``cloze`` fills ``loglik`` and the
    ``*_norm`` fields."""

    question_idx: int
    country: str
    answer: str
    predicted: str
    correct: bool
    probs: tuple[float, ...] | None = None
    mass: float | None = None
    loglik: tuple[float, ...] | None = None
    predicted_norm: str | None = None
    correct_norm: bool | None = None
    #: Letter scoring in several option orders: the option (as its letter in the dataset's
    #: order) predicted in each order alone.
    order_predicted: tuple[str, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        for k in ("probs", "loglik", "order_predicted"):
            d[k] = None if d[k] is None else list(d[k])
        return d


@dataclass(frozen=True)
class HardOutcome:
    """The model's four judgements of one Hard question."""

    question_idx: int
    country: str
    truth: tuple[bool, ...]
    p_true: tuple[float, ...]
    mass: tuple[float, ...]

    @property
    def judged(self) -> tuple[bool, ...]:
        return tuple(p > 0.5 for p in self.p_true)

    @property
    def judgements_correct(self) -> tuple[bool, ...]:
        return tuple(j == t for j, t in zip(self.judged, self.truth, strict=True))

    @property
    def correct(self) -> bool:
        return all(self.judgements_correct)

    def to_dict(self) -> dict[str, Any]:
        return {"question_idx": self.question_idx, "country": self.country,
                "truth": list(self.truth), "p_true": list(self.p_true), "mass": list(self.mass),
                "judged": list(self.judged), "correct": self.correct}


def _counter(progress: Progress | None, name: str, total: int) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda done: progress(name, done, total)


def evaluate_easy(
    lm: LoadedModel,
    questions: Sequence[Question],
    condition: Condition,
    scoring: str = "letter",
    batch_size: int | None = None,
    progress: Progress | None = None,
    orders: str = "shown",
) -> list[EasyOutcome]:
    """Answer Easy questions under a condition, batched; one outcome per question.

    Letter scoring asks each question in every option order of ``orders``
    (:mod:`culturetune.instrument.orders`), maps each distribution over A-D back to the dataset's
    option order and predicts the option with the highest average probability.
    """
    scoring = check_scoring(scoring, "easy")
    qs = list(questions)
    if not qs:
        return []
    soft = condition.soft_tensor(lm)
    if scoring == "letter":
        perms = option_orders(orders, len(LETTERS))
        tick = _counter(progress, condition.name, len(qs) * len(perms))
        texts, splits = [], []
        for order in perms:
            for q in qs:
                text, user_at = lm.render(easy_prompt(q, order), condition.system_for(q.country))
                texts.append(text)
                splits.append(condition.split_at(text, user_at))
        ids = label_token_ids(lm.tokenizer, LETTER_FORMS, LETTER_HINT)
        probs, mass = label_probs(lm, texts, splits, soft, ids, batch_size or 32, tick)
        by_order = to_content_order(probs.double().numpy().reshape(len(perms), len(qs), -1),
                                    perms)
        avg, mass_avg = by_order.mean(0), mass.double().numpy().reshape(len(perms), -1).mean(0)
        out = []
        for i, q in enumerate(qs):
            pred = LETTERS[int(np.argmax(avg[i]))]
            each = tuple(LETTERS[int(np.argmax(by_order[o, i]))] for o in range(len(perms)))
            out.append(EasyOutcome(q.question_idx, q.country, q.answer, pred, pred == q.answer,
                                   probs=tuple(float(x) for x in avg[i]),
                                   mass=float(mass_avg[i]),
                                   order_predicted=each if len(perms) > 1 else None))
        return out
    return evaluate_choices(lm, qs, condition, batch_size=batch_size, progress=progress,
                            formulation=scoring)


def mc_prompt(q: Question) -> str:
    """lm-eval's multiple-choice context: the question, options A-D and ``Answer:``."""
    lines = [q.question] + [f"{x}. {o}" for x, o in zip(LETTERS, q.options, strict=True)]
    return "\n".join(lines + ["Answer:"])


@dataclass(frozen=True)
class Formulation:
    """One way of asking an Easy question, declared as lm-evaluation-harness declares a task:
    ``doc_to_text`` (the user text; ``plain_text`` wraps it outside the chat template) and
    ``doc_to_choice`` (the continuations scored), or neither for ``letter``, which reads the
    next token instead; ``acc_norm``: also answer per character of the choice."""

    name: str
    note: str
    doc_to_text: Callable[[Question], str] | None = None
    doc_to_choice: Callable[[Question], Sequence[str]] | None = None
    plain_text: str = "{user}"
    acc_norm: bool = False


#: The Easy formulations by name, in the order the tables list them.
FORMULATIONS: dict[str, Formulation] = {f.name: f for f in (
    Formulation("letter", "options A-D shown with an instruction line; next-token probability "
                "of each letter after the assistant header"),
    Formulation("mc", "lm-evaluation-harness's multiple choice: options shown, context ending "
                "'Answer:'; log-likelihood of each letter as the continuation",
                doc_to_text=mc_prompt, doc_to_choice=lambda q: LETTERS),
    Formulation("cloze", "question alone; log-likelihood of each option's text as the "
                "continuation (the model never sees the other options, so fluency and length "
                "weigh in)", doc_to_text=lambda q: q.question, doc_to_choice=lambda q: q.options,
                plain_text=PLAIN_USER, acc_norm=True),
)}
SCORINGS = tuple(FORMULATIONS)
SCORING_NOTES = {name: f.note for name, f in FORMULATIONS.items()}


def lmeval_context(
    lm: LoadedModel, user: str, system: str | None = None, chat_template: bool = True
) -> tuple[str, int]:
    """A context as lm-evaluation-harness builds it, and the offset where the user text starts.

    In the chat template (``--apply_chat_template``): the user turn rendered ready for the
    assistant's reply. Outside it, or for a model without one: ``user`` itself, after a
    ``"{system}\\n\\n"`` paragraph when there is a system prompt.
    """
    if chat_template and lm.has_chat_template:
        return lm.render(user, system)
    head = PLAIN_SYSTEM.format(system=system) if system else ""
    return head + user, len(head)


def choice_logprobs(
    lm: LoadedModel,
    contexts: Sequence[str],
    user_offsets: Sequence[int],
    choices: Sequence[Sequence[str]],
    condition: Condition,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """lm-eval's log-likelihood of each choice after its context, under a condition.

    As lm-eval's ``_encode_pair`` does, whitespace that ends a context (the newline after a chat
    template's assistant header) is scored as the start of every choice. A soft prompt at the
    ``answer`` placement still sits after that whitespace, right before the choice; the
    whitespace is then scored in a pass of its own, without the prompt.
    """
    soft = condition.soft_tensor(lm)
    heads = [c.rstrip() for c in contexts]
    tails = [c[len(h):] for c, h in zip(contexts, heads, strict=True)]
    if soft is None or condition.soft.placement != "answer":
        splits = [condition.split_at(h, at) for h, at in zip(heads, user_offsets, strict=True)]
        conts = [[t + c for c in cs] for t, cs in zip(tails, choices, strict=True)]
        return continuation_logprobs(lm, heads, splits, conts, soft, batch_size, progress)
    out = continuation_logprobs(lm, contexts, [len(c) for c in contexts], choices, soft,
                                batch_size, progress)
    spaced = [i for i, t in enumerate(tails) if t]
    if spaced:
        lead = continuation_logprobs(lm, [heads[i] for i in spaced],
                                     [len(heads[i]) for i in spaced],
                                     [[tails[i]] for i in spaced], None, batch_size)
        for i, (ws,) in zip(spaced, lead, strict=True):
            out[i] = [ws + x for x in out[i]]
    return out


def _choice_scores(
    lm: LoadedModel,
    qs: Sequence[Question],
    users: Sequence[str],
    choices: Sequence[Sequence[str]],
    condition: Condition,
    chat_template: bool,
    batch_size: int | None,
    progress: Progress | None,
) -> list[list[float]]:
    contexts, offsets = [], []
    for q, user in zip(qs, users, strict=True):
        text, at = lmeval_context(lm, user, condition.system_for(q.country), chat_template)
        contexts.append(text)
        offsets.append(at)
    tick = _counter(progress, condition.name, len(qs))
    return choice_logprobs(lm, contexts, offsets, choices, condition, batch_size or 16, tick)


def _ranked(q: Question, sums: Sequence[float], texts: Sequence[str] | None = None) -> EasyOutcome:
    """The outcome of choosing the most likely option (and, given the option texts, the most
    likely per character)."""
    best = LETTERS[max(range(len(sums)), key=sums.__getitem__)]
    if texts is None:
        return EasyOutcome(q.question_idx, q.country, q.answer, best, best == q.answer,
                           loglik=tuple(sums))
    normed = [s / max(1, len(t)) for s, t in zip(sums, texts, strict=True)]
    best_norm = LETTERS[max(range(len(normed)), key=normed.__getitem__)]
    return EasyOutcome(q.question_idx, q.country, q.answer, best, best == q.answer,
                       loglik=tuple(sums), predicted_norm=best_norm,
                       correct_norm=best_norm == q.answer)


def evaluate_choices(
    lm: LoadedModel,
    questions: Sequence[Question],
    condition: Condition,
    chat_template: bool = True,
    batch_size: int | None = None,
    progress: Progress | None = None,
    *,
    formulation: str,
) -> list[EasyOutcome]:
    """Answer Easy questions in a continuation formulation of :data:`FORMULATIONS` (``mc`` or
    ``cloze``) as lm-eval does: each choice scored as a continuation of the context after
    lm-eval's target delimiter (``" "`` outside the chat template, nothing inside it); the most
    likely choice is the answer (and, where the formulation says ``acc_norm``, the most likely
    per character of the choice)."""
    form = FORMULATIONS[formulation]
    if form.doc_to_text is None or form.doc_to_choice is None:
        raise CultureTuneError(f"{formulation} is not a continuation formulation")
    qs = list(questions)
    if not qs:
        return []
    chat = chat_template and lm.has_chat_template
    delim = "" if chat else " "
    users = [form.doc_to_text(q) if chat else form.plain_text.format(user=form.doc_to_text(q))
             for q in qs]
    choices = [form.doc_to_choice(q) for q in qs]
    conts = [[delim + c for c in cs] for cs in choices]
    ll = _choice_scores(lm, qs, users, conts, condition, chat, batch_size, progress)
    return [_ranked(q, sums, cs if form.acc_norm else None)
            for q, sums, cs in zip(qs, ll, choices, strict=True)]


#: lm-eval's multiple-choice formulation: :func:`mc_prompt` as the context and the letters as
#: continuations (``" A"``.. outside the chat template, ``"A"``.. inside it).
evaluate_mc = functools.partial(evaluate_choices, formulation="mc")
#: The cloze formulation: the question alone as the context (``"Question: {q}\\nAnswer:"``
#: outside the chat template), each option's text as the continuation, also answered per
#: character of the option (lm-eval's ``acc_norm``).
evaluate_cloze = functools.partial(evaluate_choices, formulation="cloze")


def evaluate_hard(
    lm: LoadedModel,
    questions: Sequence[HardQuestion],
    condition: Condition,
    batch_size: int | None = None,
    progress: Progress | None = None,
) -> list[HardOutcome]:
    """Judge every (question, option) pair of Hard questions true or false, batched."""
    qs = list(questions)
    if not qs:
        return []
    soft = condition.soft_tensor(lm)
    texts, splits = [], []
    for q in qs:
        system = condition.system_for(q.country)
        for option in q.options:
            text, user_at = lm.render(hard_prompt(q.question, option), system)
            texts.append(text)
            splits.append(condition.split_at(text, user_at))
    ids = label_token_ids(lm.tokenizer, TRUTH_FORMS, TRUTH_HINT)
    tick = _counter(progress, condition.name, len(texts))
    probs, mass = label_probs(lm, texts, splits, soft, ids, batch_size or 32, tick)
    p_true, masses = probs[:, 0].tolist(), mass.tolist()
    out, at = [], 0
    for q in qs:
        k = len(q.options)
        out.append(HardOutcome(q.question_idx, q.country, q.truth, tuple(p_true[at: at + k]),
                               tuple(masses[at: at + k])))
        at += k
    return out
