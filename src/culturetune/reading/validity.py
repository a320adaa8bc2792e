"""Does an alignment hold? A tuned prompt scored on views of the survey it was not tuned on.

The *training view* is the wording and option orders the optimizer saw. Each *check* is another
view: another wording of the items (order-balanced), the printed and the reversed order alone,
and what the model *says* (the ``said`` reading: its greedy answer, in both orders and in each
alone). For each view the plain model, the uniform answer (every index = C) and the tuned prompt
are scored; the share of the training gain kept is ``(plain - tuned) / (plain - tuned on the
training view)``. The verdict: *held* when every check keeps at least half of the gain and the
tuned prompt leaves at least half of the plain model's probability on the answer options,
*collapsed* when a check keeps none of the gain, *partly held* otherwise; *no gain* when tuning
gained less than a point. The verdict names the checks that failed. Other answer formats are
views too; one counts toward the verdict only where the model answers by content in it. The
saved prompt is chosen on the training view only, never on these checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from culturetune.core.choices import READINGS

#: A check keeps the alignment when the tuned prompt keeps at least this share of its gain.
HELD_SHARE = 0.5
#: A gain over the plain model smaller than this (index points) is too small to check.
MIN_GAIN = 1.0
#: Order sets that balance positions (reading in them averages position preference out).
BALANCED = ("both", "cyclic", "all")
BUNDLED_WORDINGS = ("vsm2013", "paraphrase", "paraphrase2")
#: The tuned prompt must leave at least this share of the plain model's option mass.
MASS_SHARE = 0.5
#: How a view's answers are read: ``expected`` (next-token probabilities over the options) or
#: ``said`` (what the model says: its greedy first token, or its reply parsed).
VIEW_READINGS = READINGS


@dataclass(frozen=True)
class View:
    """A wording (bundled name or file path) read in an order set, calibrated or not, from
    next-token probabilities (``expected``) or from what the model says (``said``)."""

    instrument: str
    orders: str
    calibrate: bool = False
    reading: str = "expected"
    #: The answer format (culturetune.instrument.formats); named in the view unless ``number``.
    format: str = "number"

    @property
    def name(self) -> str:
        wording = self.instrument if "/" not in self.instrument else self.instrument.rsplit(
            "/", 1)[-1]
        return (f"{wording} · {self.orders}" + (" · calibrated" if self.calibrate else "")
                + (f" · {self.format}" if self.format != "number" else "")
                + (" · said" if self.reading == "said" else ""))


def check_views(
    training: View, extra_instruments: Sequence[str] = (), trained: Sequence[str] = (),
    other_formats: Sequence[str] = (),
) -> list[tuple[str, View]]:
    """The held-out views of a run tuned on ``training`` (and on the wordings ``trained``):
    (role, view) pairs.

    Roles: ``wording`` (every wording not tuned on, order-balanced, same reading otherwise),
    ``shown`` and ``reversed`` (the training wording in one order alone), ``said``, ``said
    shown`` and ``said reversed`` (what the model says to the training wording, in both orders
    and in each alone; never calibrated), and ``format`` (the training wording, order-balanced,
    in each of ``other_formats``). A view equal to the training view is left out.
    """
    fmt = training.format
    balanced = training.orders if training.orders in BALANCED else "both"
    tuned_on = {training.instrument, *trained}
    out: list[tuple[str, View]] = []
    others = [w for w in [*BUNDLED_WORDINGS, *extra_instruments] if w not in tuned_on]
    for wording in dict.fromkeys(others):
        out.append(("wording", View(wording, balanced, training.calibrate, format=fmt)))
    for orders in ("shown", "reversed"):
        view = View(training.instrument, orders, training.calibrate, format=fmt)
        if view != training:
            out.append((orders, view))
    for role, orders in (("said", "both"), ("said shown", "shown"),
                         ("said reversed", "reversed")):
        out.append((role, View(training.instrument, orders, False, "said", fmt)))
    for other in other_formats:
        if other != fmt:
            out.append(("format", View(training.instrument, balanced, False, format=other)))
    return out


def share_kept(plain: float | None, tuned: float | None, gain: float | None) -> float | None:
    """Share of the training gain kept on a view (``None`` when not defined)."""
    if plain is None or tuned is None or gain is None or gain < MIN_GAIN:
        return None
    return (plain - tuned) / gain


def state(kept: float | None) -> str | None:
    if kept is None:
        return None
    return "held" if kept >= HELD_SHARE else "weakened" if kept > 0 else "collapsed"


def verdict(gain: float | None, kept: Sequence[float | None]) -> str:
    """``held`` / ``partly held`` / ``collapsed`` from the shares kept; ``no gain`` when the
    training gain is below ``MIN_GAIN``; ``unknown`` when a check could not be scored."""
    if gain is None or gain < MIN_GAIN:
        return "no gain"
    states = [state(k) for k in kept]
    if not states or None in states:
        return "unknown"
    if all(s == "held" for s in states):
        return "held"
    if "collapsed" in states:
        return "collapsed"
    return "partly held"


@dataclass
class ViewResult:
    """Losses on one view: plain model, uniform answers, tuned prompt; share of gain kept."""

    role: str
    view: str
    instrument: str
    orders: str
    calibrated: bool
    plain: float | None
    uniform: float
    tuned: float | None
    kept: float | None = None
    state: str | None = None
    reading: str = "expected"
    #: ``said`` views: the share of replies that name an option, plain and tuned.
    plain_answered: float | None = None
    tuned_answered: float | None = None
    format: str = "number"
    #: Whether the view counts toward the verdict: another answer format counts only where the
    #: model check says the model answers by content in it (else it is shown, not counted).
    counted: bool = True


@dataclass
class Validity:
    """The training view's losses, each check's, and the verdict."""

    training: ViewResult
    checks: list[ViewResult] = field(default_factory=list)
    verdict: str = "unknown"
    rule: str = (f"held: every check (the said views included) keeps at least {HELD_SHARE:.0%} "
                 f"of the training gain and the tuned option mass is at least "
                 f"{MASS_SHARE:.0%} of the plain model's; collapsed: a check keeps none of the "
                 "gain; partly held otherwise")
    #: Option mass (probability on the answer options, training wording, mean over items).
    plain_mass: float | None = None
    tuned_mass: float | None = None
    #: The checks that did not hold (their views, and "option mass" where it fell too far).
    failed: list[str] = field(default_factory=list)
    #: Other answer formats not read, with the model check's verdict in each (a reading in a
    #: format the model answers by position in, or not at all, says nothing of its answers).
    unread: dict[str, str] = field(default_factory=dict)

    @property
    def gain(self) -> float | None:
        t = self.training
        return None if t.plain is None or t.tuned is None else t.plain - t.tuned

    @property
    def mass_kept(self) -> float | None:
        if self.plain_mass is None or self.tuned_mass is None or self.plain_mass <= 0:
            return None
        return self.tuned_mass / self.plain_mass

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gain": self.gain, "mass_kept": self.mass_kept}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Validity:
        return cls(
            training=ViewResult(**d["training"]),
            checks=[ViewResult(**c) for c in d["checks"]],
            verdict=d["verdict"],
            rule=d.get("rule", cls.rule),
            plain_mass=d.get("plain_mass"),
            tuned_mass=d.get("tuned_mass"),
            failed=list(d.get("failed", [])),
            unread=dict(d.get("unread", {})),
        )


def assess(
    training: ViewResult, checks: Sequence[ViewResult],
    plain_mass: float | None = None, tuned_mass: float | None = None,
) -> Validity:
    """Fill each check's share kept and state, the verdict and the checks that failed; a
    tuned option mass under ``MASS_SHARE`` of the plain model's keeps the verdict from held."""
    v = Validity(training, list(checks), plain_mass=plain_mass, tuned_mass=tuned_mass)
    for c in v.checks:
        c.kept = share_kept(c.plain, c.tuned, v.gain)
        c.state = state(c.kept)
    counted = [c for c in v.checks if c.counted]
    v.verdict = verdict(v.gain, [c.kept for c in counted])
    if v.verdict in ("no gain", "unknown"):
        return v
    v.failed = [c.view for c in counted if c.state != "held"]
    kept = v.mass_kept
    if kept is not None and kept < MASS_SHARE:
        v.failed.append("option mass")
        if v.verdict == "held":
            v.verdict = "partly held"
    return v


__all__ = [
    "BALANCED",
    "HELD_SHARE",
    "MASS_SHARE",
    "MIN_GAIN",
    "VIEW_READINGS",
    "Validity",
    "View",
    "ViewResult",
    "assess",
    "check_views",
    "share_kept",
    "state",
    "verdict",
]
