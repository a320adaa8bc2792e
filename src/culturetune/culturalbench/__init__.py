"""CulturalBench (Easy and Hard): does an alignment carry over to cultural knowledge?

One module per step of the data path; every public name is importable from here as well
(``culturetune.culturalbench.run_bench``):

* :mod:`~culturetune.culturalbench.data`: questions validated and chosen by country (no torch);
  :mod:`~culturetune.culturalbench.loading` reads them from the hub (``kellycyy/CulturalBench``)
  or a local CSV / JSON / JSONL / Parquet file.
* :mod:`~culturetune.culturalbench.likelihood`: label probabilities and continuation
  log-likelihoods on a model, batched, with a soft prompt inserted.
* :mod:`~culturetune.culturalbench.condition`: what is applied to the model (:class:`Condition`:
  a system prompt and/or a soft prompt).
* :mod:`~culturetune.culturalbench.scoring`: the formulations (a table, :data:`FORMULATIONS`):
  Easy ``letter`` (order-debiased), ``mc`` (lm-evaluation-harness's multiple choice), ``cloze``
  (alias ``loglik``), and Hard true/false judgements; one outcome per question.
* :mod:`~culturetune.culturalbench.results`: :func:`run_bench` evaluates several conditions on
  the same questions and reports every accuracy with a 95 % Wilson interval and an exact McNemar
  test against the plain model (:class:`BenchResult`); :func:`format_tables` prints it.
"""

from culturetune.culturalbench.condition import Condition, conditions
from culturetune.culturalbench.data import (
    CULTURALBENCH_COUNTRIES,
    EASY_COLUMNS,
    FILE_FORMATS,
    HARD_COLUMNS,
    HARD_OPTIONS,
    HUB_CONFIGS,
    HUB_ID,
    LETTERS,
    SPLITS,
    AnyQuestion,
    HardQuestion,
    Question,
    check_split,
    countries_in,
    questions_from_dataset,
    resolve_country,
    select_questions,
)
from culturetune.culturalbench.likelihood import (
    continuation_logprobs,
    label_groups,
    label_logprobs,
    label_probs,
    length_batches,
)
from culturetune.culturalbench.loading import load_culturalbench, load_dataset_table
from culturetune.culturalbench.results import (
    ALL_COUNTRIES,
    METRIC_NOTES,
    METRICS,
    BenchResult,
    Cell,
    format_tables,
    run_bench,
)
from culturetune.culturalbench.scoring import (
    EASY_INSTRUCTION,
    FORMULATIONS,
    HARD_INSTRUCTION,
    LETTER_FORMS,
    LETTER_HINT,
    SCORING_ALIASES,
    SCORING_NOTES,
    SCORINGS,
    TRUTH_FORMS,
    TRUTH_HINT,
    EasyOutcome,
    Formulation,
    HardOutcome,
    Progress,
    check_scoring,
    choice_logprobs,
    easy_prompt,
    evaluate_choices,
    evaluate_cloze,
    evaluate_easy,
    evaluate_hard,
    evaluate_mc,
    hard_prompt,
    lmeval_context,
    mc_prompt,
)

__all__ = [
    # data
    "CULTURALBENCH_COUNTRIES", "EASY_COLUMNS", "FILE_FORMATS", "HARD_COLUMNS", "HARD_OPTIONS",
    "HUB_CONFIGS", "HUB_ID", "LETTERS", "SPLITS", "AnyQuestion", "HardQuestion", "Question",
    "check_split", "countries_in", "load_culturalbench", "load_dataset_table",
    "questions_from_dataset", "resolve_country", "select_questions",
    # likelihood
    "continuation_logprobs", "label_groups", "label_logprobs", "label_probs", "length_batches",
    # scoring
    "EASY_INSTRUCTION", "FORMULATIONS", "HARD_INSTRUCTION", "LETTER_FORMS", "LETTER_HINT",
    "SCORING_ALIASES", "SCORING_NOTES", "SCORINGS", "TRUTH_FORMS", "TRUTH_HINT", "Condition",
    "EasyOutcome", "Formulation", "HardOutcome", "Progress", "check_scoring", "choice_logprobs",
    "conditions", "easy_prompt", "evaluate_choices", "evaluate_cloze", "evaluate_easy",
    "evaluate_hard", "evaluate_mc", "hard_prompt", "lmeval_context", "mc_prompt",
    # results
    "ALL_COUNTRIES", "METRIC_NOTES", "METRICS", "BenchResult", "Cell", "format_tables",
    "run_bench",
]
