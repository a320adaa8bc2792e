"""The defaults a user gets, in one place, each chosen by a measurement (README, "Why these
defaults"). Torch-free, so that the command line can show them without loading a model."""

#: Option orders every survey reads answers in and every tuning run is scored on: printed and
#: reversed, averaged in option-content order. The plain default model answers by position; in
#: this reading its indices are those of uniform answers, and a prompt cannot win by favouring a
#: position.
ORDERS = "both"
#: The derivative-free optimizer of ``tune``: lowest losses on the first version's grid; on the
#: order-balanced objective it ties CMA-ES on the held-out paraphrase (4 countries x 3 seeds) and
#: overfits the tuned-on view less. Differential Evolution, the reference study's optimizer,
#: stays available (``--optimizer de``) and in the experiment grid.
OPTIMIZER = "pso"
#: Evaluations (candidate surveys) of a ``tune`` run: 80 steps of 16 candidates, the most that
#: keeps ``make demo`` (the default run with its validity check) within 5 minutes on 2 CPU cores
#: with the two-order objective. The loss is still falling there; ``--budget`` buys more.
BUDGET = 1280
#: Option orders of CulturalBench letter scoring: the four cyclic shifts put every option once
#: under every letter, so a preference for one letter (the plain default model answers "A")
#: cannot score. ("both" would pair A with D and B with C, which is not balanced for argmax.)
BENCH_ORDERS = "cyclic"
#: The ``expected`` reading's rule for the probability not on the answer options (survey,
#: tuning, the experiment): see culturetune.survey.MISSING_RULES and README, "Why these defaults".
MISSING = "renormalise"
#: How a tuning run's objective aggregates its training views (culturetune.tuning.OBJECTIVES).
OBJECTIVE = "pooled"
#: The option-mass floor of a tuning run, as a share of the plain model's mass (None: none).
MIN_MASS: float | None = None
#: Wordings a tuning run tunes on beside ``--instrument`` (``--train-instrument``).
TRAIN_INSTRUMENTS: tuple[str, ...] = ()
