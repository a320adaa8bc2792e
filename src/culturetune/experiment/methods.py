"""What an experiment compares and reads, and how results name it: the methods of the grid
(``plain``, ``persona`` and ``<optimizer>[-<orders>][-cal]``), the views every cell is read in,
and the results format. Shared by the experiment (which measures cells) and the report (which
reads ``results.json``), so that neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from culturetune.core import defaults
from culturetune.core.choices import GRADIENT_OPTIMIZERS, OPTIMIZERS
from culturetune.core.errors import CultureTuneError
from culturetune.reading.validity import View

#: The ``format`` of an experiment's ``results.json`` (and of each saved cell's settings).
FORMAT = "culturetune-experiment/2"
#: Methods that tune nothing: one cell per country (they are deterministic).
BASELINES: tuple[str, ...] = ("plain", "persona")
#: Option orders a tuned method may be suffixed with (``pso-cyclic``); without one it is tuned on
#: the experiment's ``orders``. A ``-cal`` suffix tunes on calibrated answers.
METHOD_ORDERS: tuple[str, ...] = ("shown", "reversed", "both", "cyclic")
#: The default grid: the plain model, persona prompting and every optimizer on the default
#: (order-balanced) objective; DE is the reference study's optimizer.
DEFAULT_METHODS: tuple[str, ...] = BASELINES + tuple(
    o for o in OPTIMIZERS if o not in GRADIENT_OPTIMIZERS)
#: Examples of the method grammar (``<optimizer>[-<orders>][-cal]``) for help texts.
METHOD_EXAMPLES = "pso, de, pso-shown, pso-cyclic, pso-cal, de-both"
#: Views every cell is read in, whatever its method was tuned on: the official items in each
#: order set, the two paraphrases (held-out wordings) order-balanced, and what the model says
#: (``said``) to the official items in both orders and in each alone; all in the experiment's
#: answer format (:func:`judge_views` adds the official items in each other format).
JUDGE_VIEWS: tuple[View, ...] = (
    View("vsm2013", "shown"), View("vsm2013", "reversed"), View("vsm2013", "both"),
    View("vsm2013", "cyclic"), View("paraphrase", "both"), View("paraphrase", "cyclic"),
    View("paraphrase2", "both"), View("vsm2013", "both", reading="said"),
    View("vsm2013", "shown", reading="said"), View("vsm2013", "reversed", reading="said"),
)
#: The view the loss tables lead with: the official items, order-balanced (culturetune's default
#: reading), in the experiment's format.
HEADLINE = View("vsm2013", "both")


def in_format(view: View, fmt: str) -> View:
    """The same view asked in another answer format."""
    return replace(view, format=fmt)


def headline_view(fmt: str = "number") -> View:
    return in_format(HEADLINE, fmt)


def judge_views(fmt: str = "number", others: tuple[str, ...] = ()) -> list[View]:
    """:data:`JUDGE_VIEWS` in ``fmt``, and the official items order-balanced in each of
    ``others`` (the other answer formats)."""
    return ([in_format(v, fmt) for v in JUDGE_VIEWS]
            + [in_format(HEADLINE, f) for f in others if f != fmt])


@dataclass(frozen=True)
class MethodSpec:
    """A method of the grid: a baseline, or an optimizer with the objective it is tuned on."""

    name: str
    optimizer: str | None = None
    orders: str | None = None
    calibrate: bool = False
    #: The answer format it is read (and tuned) in.
    format: str = "number"

    @property
    def tuned(self) -> bool:
        return self.optimizer is not None

    @property
    def training_view(self) -> View | None:
        return (View("vsm2013", self.orders, self.calibrate, format=self.format) if self.tuned
                else None)


def parse_method(name: str, orders: str = defaults.ORDERS, calibrate: bool = False,
                 format: str = "number") -> MethodSpec:
    """``plain``, ``persona`` or ``<optimizer>[-<orders>][-cal]`` (``pso``, ``pso-cyclic-cal``);
    an optimizer without orders is tuned on ``orders`` (and ``calibrate``) of the experiment,
    in its answer ``format``."""
    key = str(name).strip().lower()
    if key in BASELINES:
        return MethodSpec(key, format=format)
    parts = key.split("-")
    opt, rest = parts[0], parts[1:]
    cal = calibrate
    if rest and rest[-1] == "cal":
        cal, rest = True, rest[:-1]
    if opt not in OPTIMIZERS or len(rest) > 1 or (rest and rest[0] not in METHOD_ORDERS):
        raise CultureTuneError(
            f"unknown method {name!r}; use plain, persona or <optimizer>[-<orders>][-cal] with "
            f"optimizer {'/'.join(OPTIMIZERS)} and orders {'/'.join(METHOD_ORDERS)} (e.g. "
            f"{METHOD_EXAMPLES})"
        )
    return MethodSpec(key, opt, rest[0] if rest else orders, cal, format)


_FORMAT_KEYS = ("letter", "words")


def view_key(view: View) -> str:
    """How a view is named in results: ``vsm2013:both``, ``paraphrase:cyclic:cal``,
    ``vsm2013:shown:said``, ``vsm2013:both:words`` (a format other than number), a file's path
    with its orders."""
    return (f"{view.instrument}:{view.orders}" + (":cal" if view.calibrate else "")
            + (f":{view.format}" if view.format != "number" else "")
            + (":said" if view.reading == "said" else ""))


def view_from_key(key: str) -> View:
    """The view a results key names (the inverse of :func:`view_key`)."""
    parts = key.split(":")
    said = parts[-1] == "said"
    if said:
        parts = parts[:-1]
    fmt = parts[-1] if parts[-1] in _FORMAT_KEYS else "number"
    if fmt != "number":
        parts = parts[:-1]
    cal = parts[-1] == "cal"
    if cal:
        parts = parts[:-1]
    return View(":".join(parts[:-1]), parts[-1], cal, "said" if said else "expected", fmt)
