"""The defaults a user gets, in one place, each chosen by a measurement (docs/tuning.md, "Why these
defaults"). Torch-free, so that the command line can show them without loading a model."""

#: Option orders every survey reads answers in and every tuning run is scored on: printed and
#: reversed, averaged in option-content order. The plain default model answers by position; in
#: this reading its indices are those of uniform answers, and a prompt cannot win by favouring a
#: position.
ORDERS = "both"
#: The optimizer of ``tune``: Adam on the objective's gradient. At equal compute (60
#: forward-equivalents, Qwen2.5-Coder-1.5B-Instruct in words) it closed 62 % of the planted
#: target's distance on the never-tuned wording and 51 % toward China's scores, against 24 % and
#: 6 % for PSO, 21 % for DE and 10 % for CMA-ES on the planted target
#: (docs/results/optimizers). Differential Evolution, the reference study's optimizer, stays in
#: the experiment grid and behind ``--optimizer de``.
OPTIMIZER = "adam"
#: Where Adam cannot run (``--reading said`` has no gradient; ``--workers``/``--ray-address``
#: spread a population over processes), ``--optimizer auto`` takes this derivative-free one:
#: lowest losses on the first version's grid, and on the order-balanced objective it ties CMA-ES
#: on the held-out paraphrase and overfits the tuned-on view less.
DERIVATIVE_FREE_OPTIMIZER = "pso"
#: Adam's learning rate (``--lr``), as a share of the embedding table's standard deviation per
#: step: the probe that closed 81 % of the planted target's distance on the never-tuned wording
#: in 30 steps used 0.1 (Qwen2.5-Coder-1.5B-Instruct, words; docs/results/optimizers).
LEARNING_RATE = 0.1
#: Temperature (index points) of the smooth maximum whose gradient Adam follows on the ``worst``
#: objective: views within about a point of the worst share the step (the probe used a smooth
#: maximum); 0 follows the worst view alone.
TEMPERATURE = 1.0
#: Forward-equivalents of a derivative-free ``tune`` run (candidate surveys: 40 steps of 16
#: candidates). The default objective reads two wordings in two orders (twice the prompts of one
#: wording), so 640 costs what 1280 did on one wording; it is also the budget the objectives were
#: compared at. ``--budget`` buys more.
BUDGET = 640
#: Forward-equivalents of an Adam run (``--optimizer adam``, the default): about 30 steps at 2.0
#: fe each, what closed 82 % of the planted target on the training views and 62 % on the
#: never-tuned wording (docs/results/optimizers), and what keeps ``make demo`` within five minutes
#: on 2 CPU cores.
GRADIENT_BUDGET = 60
#: Option orders of CulturalBench letter scoring: the four cyclic shifts put every option once
#: under every letter, so a preference for one letter (the plain default model answers "A")
#: cannot score. ("both" would pair A with D and B with C, which is not balanced for argmax.)
BENCH_ORDERS = "cyclic"
#: The ``expected`` reading's rule for the probability not on the answer options (survey,
#: tuning, the experiment): see culturetune.core.choices.MISSING_RULES. ``neutral`` kept the
#: option mass when tuned on (0.50 vs 0.11) but turns differences in option mass between items into
#: index differences: the plain model read ``neutral`` is further from uniform answers (China 28.1
#: vs 26.5 order-balanced) although it answers by position alone. Silence is handled by the mass
#: floor and the said checks instead (docs/tuning.md, "Why these defaults").
MISSING = "renormalise"
#: How a tuning run's objective aggregates its training views
#: (culturetune.core.choices.OBJECTIVES): the worst single view, so that a prompt cannot win by
#: favouring one option order or one wording (measured beside pooled and mean: docs/tuning.md, "Why
#: these defaults").
OBJECTIVE = "worst"
#: The option-mass floor of a tuning run, as a share of the plain model's mass (None: none):
#: without it every objective won by pushing probability off the answer options.
MIN_MASS: float | None = 0.5
#: Wordings a tuning run tunes on beside ``--instrument`` (``--train-instrument``): the first
#: paraphrase, so that the official sentences alone cannot be learned; the second paraphrase
#: stays held out.
TRAIN_INSTRUMENTS: tuple[str, ...] = ("paraphrase",)
#: The answer format of ``survey``, ``tune`` and ``experiment``: ``auto`` reads in the format in
#: which the cached model check says the model answers by content (culturetune.reading.check), else
#: in ``number``. Models answer by position in one format and by content in another (the bundled
#: SmolLM2-135M in none; Qwen2.5-Coder-1.5B-Instruct in ``words``): docs/reading.md.
FORMAT = "auto"
