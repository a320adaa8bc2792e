"""CulturalBench results: several conditions evaluated on the same questions, with every accuracy's
95 % Wilson interval and an exact McNemar test against the baseline condition, per country and
for all countries together; and the readable tables of a result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from culturetune.core.errors import CultureTuneError
from culturetune.core.stats import Accuracy, Comparison, accuracy, compare
from culturetune.culturalbench.condition import Condition
from culturetune.culturalbench.data import (
    HUB_CONFIGS,
    LETTERS,
    AnyQuestion,
    HardQuestion,
    Question,
    check_split,
    countries_in,
)
from culturetune.culturalbench.scoring import (
    SCORING_NOTES,
    Progress,
    check_scoring,
    evaluate_choices,
    evaluate_easy,
    evaluate_hard,
)
from culturetune.model.loading import LoadedModel

#: The row of every question pooled.
ALL_COUNTRIES = "All countries"


# --------------------------------------------------------------------------- results

METRICS = {
    ("easy", "letter"): ("accuracy",),
    ("easy", "mc"): ("accuracy",),
    ("easy", "cloze"): ("accuracy", "accuracy_norm"),
    ("hard", "letter"): ("question_accuracy", "judgement_accuracy"),
}
METRIC_NOTES = {
    "accuracy": "share of questions answered right",
    "accuracy_norm": "as accuracy, log-likelihood divided by the option's length in characters",
    "question_accuracy": "share of questions with all four true/false judgements right "
                         "(CulturalBench-Hard's headline measure)",
    "judgement_accuracy": "share of single true/false judgements right (four per question, "
                          "not independent: its interval is too narrow)",
}


def _units(outcomes: Sequence[Any], metric: str) -> list[bool]:
    if metric == "accuracy":
        return [o.correct for o in outcomes]
    if metric == "accuracy_norm":
        return [bool(o.correct_norm) for o in outcomes]
    if metric == "question_accuracy":
        return [o.correct for o in outcomes]
    if metric == "judgement_accuracy":
        return [c for o in outcomes for c in o.judgements_correct]
    raise ValueError(metric)


@dataclass(frozen=True)
class Cell:
    """One accuracy of a (country, condition, metric), and its comparison with the baseline."""

    country: str
    condition: str
    metric: str
    accuracy: Accuracy
    vs_baseline: Comparison | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"country": self.country, "condition": self.condition, "metric": self.metric,
                **self.accuracy.to_dict(),
                "vs_baseline": None if self.vs_baseline is None else self.vs_baseline.to_dict()}


def _reference(split: str, questions: Sequence[AnyQuestion]) -> dict[str, Any]:
    """What trivial strategies score on these questions (to read accuracies against)."""
    if split == "easy":
        counts = {x: sum(q.answer == x for q in questions) for x in LETTERS}
        top = max(LETTERS, key=counts.__getitem__)
        return {"random": 0.25, "majority_letter": top,
                "majority_share": counts[top] / len(questions) if questions else None}
    judgements = [t for q in questions for t in q.truth]
    return {"random_question": 1 / 16, "random_judgement": 0.5,
            "all_false_judgement": (judgements.count(False) / len(judgements)
                                    if judgements else None)}


@dataclass
class BenchResult:
    """Accuracies per country (and all countries together) and condition."""

    split: str
    scoring: str
    model: str
    conditions: list[Condition]
    countries: list[str]
    metrics: tuple[str, ...]
    baseline: str | None
    cells: list[Cell]
    outcomes: dict[str, list[Any]] = field(default_factory=dict)
    reference: dict[str, dict[str, Any]] = field(default_factory=dict)
    n_questions: dict[str, int] = field(default_factory=dict)
    chat_template: bool = True
    #: Option orders of letter scoring (``None`` where the options' order does not apply).
    orders: str | None = None

    @property
    def benchmark(self) -> str:
        return HUB_CONFIGS[self.split]

    def cell(self, country: str, condition: str, metric: str | None = None) -> Cell:
        metric = metric or self.metrics[0]
        for c in self.cells:
            if (c.country, c.condition, c.metric) == (country, condition, metric):
                return c
        raise KeyError((country, condition, metric))

    def to_dict(self, per_question: bool = False) -> dict[str, Any]:
        d: dict[str, Any] = {
            "benchmark": self.benchmark, "split": self.split, "scoring": self.scoring,
            "orders": self.orders, "model": self.model, "baseline": self.baseline,
            "conditions": [c.to_dict() for c in self.conditions],
            "metrics": {m: METRIC_NOTES[m] for m in self.metrics},
            "interval": "95 % Wilson score interval",
            "test": "exact McNemar test (two-sided) against the baseline on the same questions; "
                    "b = baseline right and condition wrong, c = the reverse",
            "countries": [
                {"country": country, "n_questions": self.n_questions[country],
                 "reference": self.reference[country],
                 "results": [c.to_dict() for c in self.cells if c.country == country]}
                for country in [*self.countries, ALL_COUNTRIES]
            ],
        }
        if self.scoring in ("mc", "cloze"):
            d["formulation"] = SCORING_NOTES[self.scoring]
            d["chat_template"] = self.chat_template
        if per_question:
            d["outcomes"] = {k: [o.to_dict() for o in v] for k, v in self.outcomes.items()}
        return d


def run_bench(
    lm: LoadedModel,
    questions: Sequence[AnyQuestion],
    conditions: Sequence[Condition],
    split: str = "easy",
    scoring: str = "letter",
    baseline: str | None = "plain",
    batch_size: int | None = None,
    progress: Progress | None = None,
    orders: str = "shown",
    chat_template: bool = True,
) -> BenchResult:
    """Evaluate every condition on the same questions.

    Each (country, condition, metric) gets an accuracy with its Wilson interval; every condition
    other than ``baseline`` (when present) gets an exact McNemar test against it on the same
    questions. An ``All countries`` row pools every question. ``chat_template=False`` scores
    ``mc`` and ``cloze`` outside the model's chat template (lm-eval's default).
    """
    split = check_split(split)
    scoring = check_scoring(scoring, split, chat_template)
    qs = list(questions)
    if not qs:
        raise CultureTuneError("no questions to evaluate")
    kind = Question if split == "easy" else HardQuestion
    if not all(isinstance(q, kind) for q in qs):
        raise CultureTuneError(f"run_bench(split={split!r}) needs {kind.__name__} objects; load "
                               f"the questions with the same split")
    names = [c.name for c in conditions]
    if not names:
        raise CultureTuneError("no conditions to evaluate")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise CultureTuneError(f"condition names must be distinct; repeated: {', '.join(dup)}")
    base = baseline if baseline in names else None
    outcomes: dict[str, list[Any]] = {}
    for cond in conditions:
        if split == "easy" and scoring != "letter":
            outcomes[cond.name] = evaluate_choices(lm, qs, cond, chat_template, batch_size,
                                                   progress, formulation=scoring)
        elif split == "easy":
            outcomes[cond.name] = evaluate_easy(lm, qs, cond, scoring, batch_size, progress,
                                                orders=orders)
        else:
            outcomes[cond.name] = evaluate_hard(lm, qs, cond, batch_size, progress)
    metrics = METRICS[(split, scoring)]
    countries = countries_in(qs)
    groups = {c: [i for i, q in enumerate(qs) if q.country == c] for c in countries}
    groups[ALL_COUNTRIES] = list(range(len(qs)))
    cells = []
    for country, idx in groups.items():
        for metric in metrics:
            units = {n: _units([outcomes[n][i] for i in idx], metric) for n in names}
            for n in names:
                vs = compare(units[base], units[n]) if base and n != base else None
                cells.append(Cell(country, n, metric, accuracy(units[n]), vs))
    return BenchResult(
        split=split, scoring=scoring, model=lm.name, conditions=list(conditions),
        chat_template=chat_template and (scoring == "letter" or lm.has_chat_template),
        countries=countries, metrics=metrics, baseline=base, cells=cells, outcomes=outcomes,
        reference={c: _reference(split, [qs[i] for i in idx]) for c, idx in groups.items()},
        n_questions={c: len(idx) for c, idx in groups.items()},
        orders=orders if (split, scoring) == ("easy", "letter") else None,
    )


# --------------------------------------------------------------------------- tables


def _fmt_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def _reference_line(split: str, ref: dict[str, Any]) -> str:
    if split == "easy":
        share = ref["majority_share"]
        return (f"random guessing 0.25; always answering {ref['majority_letter']} "
                f"{share:.2f}" if share is not None else "random guessing 0.25")
    return (f"random guessing: questions 0.06, judgements 0.50; always judging False: "
            f"judgements {ref['all_false_judgement']:.2f}, questions 0.00")


def _span(values: Sequence[float], fmt: str) -> str:
    lo, hi = fmt.format(min(values)), fmt.format(max(values))
    return lo if lo == hi else f"{lo}-{hi}"


def format_tables(result: BenchResult) -> str:
    """Readable tables: one per country and, with several, one for all countries together."""
    metrics = result.metrics
    many = len(metrics) > 1
    ns = [result.n_questions[c] for c in result.countries]
    widths = [result.cell(c, result.conditions[0].name).accuracy.half_width
              for c in result.countries]
    orders = "" if result.orders is None else (
        f" in option orders {result.orders} (answers mapped back to the dataset's option order "
        "and averaged)" if result.orders != "shown" else " in the dataset's option order")
    lines = [
        f"{result.benchmark}, {result.scoring} scoring{orders}, model {result.model}; "
        f"conditions: {', '.join(c.name for c in result.conditions)}",
        "acc: accuracy with its 95 % Wilson interval; ±: half the interval's width in points.",
    ]
    if result.scoring in ("mc", "cloze"):
        where = "inside the chat template" if result.chat_template else "no chat template"
        lines.insert(1, f"{result.scoring} ({where}): {SCORING_NOTES[result.scoring]}.")
    if result.baseline:
        lines.append(f"p: exact McNemar test against {result.baseline} on the same questions "
                     f"(b = {result.baseline} right and the condition wrong, c = the reverse).")
    if len(ns) > 1:
        lines.append(
            f"Read with care: {_span(ns, '{}')} questions per country give intervals of "
            f"±{_span([100 * w for w in widths], '{:.0f}')} points; differences inside them are "
            "not evidence, and across many countries some p < 0.05 will occur by chance."
        )
    else:
        lines.append(f"Read with care: {ns[0]} questions give an interval of "
                     f"±{100 * widths[0]:.0f} points; differences inside it are not evidence.")
    if many:
        lines += [f"{m}: {METRIC_NOTES[m]}" for m in metrics]
    name_w = max(9, *(len(c.name) for c in result.conditions))
    metric_w = max(len(m) for m in metrics)
    # With one country the "All countries" table would repeat it.
    shown = result.countries + ([ALL_COUNTRIES] if len(result.countries) > 1 else [])
    for country in shown:
        n = result.n_questions[country]
        lines += ["", f"{country}: {n} question{'s' * (n != 1)} "
                      f"({_reference_line(result.split, result.reference[country])})"]
        head = f"  {'condition':<{name_w}}  " + (f"{'metric':<{metric_w}}  " if many else "")
        head += f"{'n':>5}  {'acc':>5}  {'95 % CI':<14}  {'±':>3}"
        if result.baseline:
            head += f"  p vs {result.baseline}"
        lines.append(head)
        for cond in result.conditions:
            for metric in metrics:
                cell = result.cell(country, cond.name, metric)
                a = cell.accuracy
                acc = "   -" if a.value is None else f"{a.value:.3f}"
                row = f"  {cond.name:<{name_w}}  " + (f"{metric:<{metric_w}}  " if many else "")
                row += (f"{a.n:>5}  {acc:>5}  [{a.low:.3f}, {a.high:.3f}]  "
                        f"{100 * a.half_width:>3.0f}")
                if result.baseline:
                    vs = cell.vs_baseline
                    row += ("  -" if vs is None else
                            f"  {_fmt_p(vs.p_value)} (b {vs.b}, c {vs.c})")
                lines.append(row)
    return "\n".join(lines)
