"""Every closed set of names a setting may take, in one place: the command line shows them (as
enums in ``--help``) and the library checks them. Torch-free and import-free, so that both read
the same lists."""

from __future__ import annotations

#: How ``survey`` reads an item's answer: the probability-weighted mean of the options
#: (``expected``), the most likely option (``argmax``), the option the greedy reply names
#: (``said``), or a generated reply matched to the options (``generate``).
ANSWER_MODES: tuple[str, ...] = ("expected", "argmax", "said", "generate")
#: What the ``expected`` reading does with the probability that is not on the answer options:
#: ``renormalise`` reads the options' share alone; ``neutral`` counts the rest as the middle
#: answer, so that a prompt that silences the options moves the answers toward uniform, not
#: toward whatever remainder is left.
MISSING_RULES: tuple[str, ...] = ("renormalise", "neutral")
#: What a tuning objective or a view reads: next-token probabilities (``expected``, with the
#: run's ``missing`` rule) or the option the model says (``said``: the option whose label or
#: words the greedy reply spells, else its generated reply matched; a non-option is the middle
#: answer).
READINGS: tuple[str, ...] = ("expected", "said")
#: How a tuning run's objective aggregates its training views (each wording x each option order):
#: ``pooled``: the loss of the answers averaged over all views; ``mean``: the mean of each view's
#: own loss; ``worst``: the largest of them (a prompt must do well in every view alone, so that
#: favouring a position or a wording cannot win).
OBJECTIVES: tuple[str, ...] = ("pooled", "mean", "worst")
#: The optimizers a soft prompt is tuned with: Adam on the objective's gradient, or a
#: derivative-free search (Differential Evolution, CMA-ES, particle swarm, random search).
OPTIMIZERS: tuple[str, ...] = ("adam", "de", "cma", "pso", "random")
#: The optimizers that follow the objective's gradient (they need the model's weights here and
#: the expected reading, and search the whole prompt, not a subspace).
GRADIENT_OPTIMIZERS: tuple[str, ...] = ("adam",)
#: What ``--optimizer`` accepts: an optimizer, or ``auto`` (the default): Adam, or the
#: derivative-free default where Adam cannot run (culturetune.core.defaults).
OPTIMIZER_CHOICES: tuple[str, ...] = ("auto", *OPTIMIZERS)
#: Where the soft prompt goes: before the answer, in the system turn, or before everything.
PLACEMENTS: tuple[str, ...] = ("answer", "system", "prefix")
#: Where a soft prompt starts (``auto``: the measured choice for the model).
INITS: tuple[str, ...] = ("random", "text", "vocab", "lead", "auto")
#: The dtypes a model may be loaded in (``auto``: the loader's choice for the device).
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
#: The answer formats an item can be asked in: options listed as numbers, as letters, or
#: answered with the option's words.
FORMATS: tuple[str, ...] = ("number", "letter", "words")
#: ``auto``: the format in which the cached model check says the model answers by content
#: (the first of :data:`FORMATS` that does), else ``number``.
FORMAT_CHOICES: tuple[str, ...] = (*FORMATS, "auto")
#: CulturalBench's two question sets.
BENCH_SPLITS: tuple[str, ...] = ("easy", "hard")
#: How ``bench`` scores a CulturalBench question (``loglik`` is another name for ``cloze``).
BENCH_SCORINGS: tuple[str, ...] = ("letter", "mc", "cloze", "loglik")

__all__ = ["ANSWER_MODES", "BENCH_SCORINGS", "BENCH_SPLITS", "DTYPES", "FORMATS",
           "FORMAT_CHOICES", "GRADIENT_OPTIMIZERS", "INITS", "MISSING_RULES", "OBJECTIVES",
           "OPTIMIZERS", "PLACEMENTS", "READINGS"]
