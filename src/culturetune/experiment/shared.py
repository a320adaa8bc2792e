"""What the cells of one process share: surveys with their prefix caches, CulturalBench letter
scoring with its prompts encoded once, and the questions with the plain model's reference.

Built once per :class:`~culturetune.experiment.cells.CellRunner`; each cell reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from culturetune.core.errors import CultureTuneError
from culturetune.experiment.methods import view_key
from culturetune.instrument.targets import Target
from culturetune.reading.validity import View

if TYPE_CHECKING:
    from culturetune.experiment.config import ExperimentConfig


class Surveys:
    """Surveys per (view, system prompt), built once (their prefix caches are reused by every
    cell); those of a persona system prompt are dropped after its cell."""

    def __init__(self, lm: Any, placement: str, constants: dict[str, float],
                 missing: str | None = None) -> None:
        self.lm, self.placement, self.constants = lm, placement, constants
        from culturetune.core import defaults

        self.missing = missing or defaults.MISSING
        self.cache: dict[tuple[tuple[str, str, bool, str], str | None], Any] = {}

    def get(self, view: View, system: str | None) -> Any:
        """The survey of a view's wording and orders (shared by its readings)."""
        from culturetune.reading.administer import Survey

        key = ((view.instrument, view.orders, view.calibrate, view.format), system)
        if key not in self.cache:
            self.cache[key] = Survey(
                self.lm, view.instrument, system=system, placement=self.placement,
                orders=view.orders, calibrate=view.calibrate, format=view.format,
            )
        return self.cache[key]

    def forget(self, system: str | None) -> None:
        for key in [k for k in self.cache if k[1] == system]:
            del self.cache[key]

    def measure(
        self, target: Target, soft: Any, system: str | None, views: Sequence[View]
    ) -> dict[str, dict[str, Any]]:
        """Indices, loss and option mass in each view (``said`` views: with the share of replies
        that name an option); each survey is read once for all of its views' readings."""
        from culturetune.reading.administer import read_within, run_survey

        out: dict[str, dict[str, Any]] = {}
        reads: dict[Any, Any] = {}
        for view in views:
            survey = self.get(view, system)
            full = survey  # one order alone: a slice of both orders' survey where that is read
            if view.orders in ("shown", "reversed") and any(
                    v.orders == "both" and (v.instrument, v.calibrate, v.format)
                    == (view.instrument, view.calibrate, view.format) for v in views):
                full = self.get(View(view.instrument, "both", view.calibrate,
                                     format=view.format), system)
            reading, said = read_within(full, survey, soft, reads, view.reading == "said")
            r = run_survey(survey, soft=soft, constants=self.constants, target=target,
                           answers=view.reading, reading=reading, said=said,
                           missing=self.missing)
            out[view_key(view)] = {
                "indices": r.indices,
                "loss": None if r.loss is None else r.loss.value,
                "option_mass": r.option_mass,
            }
            if view.reading == "said":
                out[view_key(view)]["answered"] = r.answered
        return out


class LetterScorer:
    """CulturalBench-Easy letter scoring with the prompts encoded once (KV cache), so that each
    soft prompt placed before the answer costs only its virtual tokens. Same prompts, orders,
    batches and label tokens as :func:`culturetune.culturalbench.evaluate_easy`."""

    BATCH = 32

    def __init__(self, lm: Any, questions: Sequence[Any], system: str | None,
                 orders: str = "shown") -> None:
        from culturetune.culturalbench import (
            LETTER_FORMS,
            LETTER_HINT,
            LETTERS,
            easy_prompt,
            label_groups,
            length_batches,
        )
        from culturetune.instrument.orders import option_orders
        from culturetune.model.engine import PromptScorer, split_tokens
        from culturetune.reading.administer import label_token_ids

        self.questions = list(questions)
        self.orders = option_orders(orders, len(LETTERS))
        ids = label_token_ids(lm.tokenizer, LETTER_FORMS, LETTER_HINT)
        self.flat, self.groups = label_groups(ids)
        texts = [lm.render(easy_prompt(q, o), system)[0] for o in self.orders
                 for q in self.questions]
        self.n_texts = len(texts)
        self.parts = [
            (idx, PromptScorer(lm, split_tokens(lm, [texts[j] for j in idx],
                                                [len(texts[j]) for j in idx])))
            for idx in length_batches(texts, self.BATCH)
        ]

    def correct(self, soft: Any) -> list[bool]:
        import torch

        from culturetune.culturalbench import LETTERS, label_logprobs
        from culturetune.instrument.orders import to_content_order

        per_label = torch.empty(self.n_texts, len(self.groups))
        batch = None if soft is None else soft[None]
        for idx, scorer in self.parts:
            per_label[idx] = label_logprobs(scorer, batch, self.flat, self.groups)
        probs = torch.softmax(per_label, -1).double().numpy()
        probs = probs.reshape(len(self.orders), len(self.questions), len(LETTERS))
        pred = to_content_order(probs, self.orders).mean(0).argmax(-1).tolist()
        return [LETTERS[p] == q.answer for p, q in zip(pred, self.questions, strict=True)]


class Bench:
    """CulturalBench questions of the experiment's countries and per-condition correctness."""

    def __init__(self, lm: Any, config: ExperimentConfig, named: str | None = None) -> None:
        self.lm, self.split, self.placement = lm, config.bench_split, config.placement
        self.limit, self.orders = config.bench_limit, config.bench_orders
        self.questions: list[Any] = []
        self.source: str | None = None
        if self.split is not None:
            from culturetune.culturalbench import load_dataset_table, questions_from_dataset

            ds, source = load_dataset_table(self.split, config.data)
            self.questions = questions_from_dataset(ds, self.split, source)
            # A local file is named by its absolute path, so that a rerun from another folder
            # still recognises its finished cells.
            self.source = source if config.data is None else str(Path(source).resolve())
        if named is not None:  # a copy of the driver's data file: named as the driver names it
            self.source = named
        self.country: str | None = None
        self.scorers: dict[str | None, LetterScorer] = {}

    def questions_for(self, target: Target) -> tuple[list[Any], str | None]:
        """The country's questions and, when there are none, a note saying why."""
        from culturetune.culturalbench import select_questions

        if self.split is None:
            return [], "CulturalBench not run (bench_split is null)"
        try:
            return select_questions(self.questions, [target.name], self.limit), None
        except CultureTuneError:
            bench = f"CulturalBench-{self.split.capitalize()}"
            return [], f"no {bench} questions for {target.name} in {self.source}"

    def correct(self, target: Target, system: str | None, soft: Any) -> list[bool]:
        """Per-question correctness under a system prompt and/or a soft prompt."""
        qs, _ = self.questions_for(target)
        if not qs:
            return []
        if self.split == "easy" and (soft is None or self.placement == "answer"):
            if self.country != target.code:  # keep only the current country's encodings
                self.scorers, self.country = {}, target.code
            if system not in self.scorers:
                self.scorers[system] = LetterScorer(self.lm, qs, system, self.orders)
            scorer = self.scorers[system]
            if system is not None:
                del self.scorers[system]  # persona prompts are scored once
            return scorer.correct(soft)
        return self._evaluate(qs, system, soft)

    def _evaluate(self, qs: list[Any], system: str | None, soft: Any) -> list[bool]:
        from culturetune.culturalbench import Condition, evaluate_easy, evaluate_hard
        from culturetune.tuning.softprompt import SoftPrompt

        prompt = None if soft is None else SoftPrompt(soft, self.placement)
        cond = Condition("condition", system=system, soft=prompt)
        if self.split == "easy":
            return [o.correct for o in evaluate_easy(self.lm, qs, cond, orders=self.orders)]
        return [o.correct for o in evaluate_hard(self.lm, qs, cond)]

    def block(
        self, target: Target, correct: list[bool], plain: list[bool] | None
    ) -> dict[str, Any]:
        """Accuracy with its Wilson interval, per-question outcomes and McNemar vs plain."""
        from culturetune.core.stats import accuracy, compare

        qs, note = self.questions_for(target)
        acc = accuracy(correct)
        return {
            "split": self.split,
            "orders": self.orders if self.split == "easy" else None,
            "n": acc.n,
            "k": acc.k,
            "accuracy": acc.value,
            "low": acc.low if acc.n else None,
            "high": acc.high if acc.n else None,
            "note": note,
            "correct": {str(q.question_idx): c for q, c in zip(qs, correct, strict=True)},
            "vs_plain": compare(plain, correct).to_dict() if plain and acc.n else None,
        }
