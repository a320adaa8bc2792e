"""Does an alignment hold? A tuned prompt scored on views of the survey it was not tuned on.

The *training view* is the wording and option orders the optimizer saw. Each *check* is another
view: another wording of the items (order-balanced), or the printed and the reversed order alone.
For each view the plain model, the uniform answer (every index = C) and the tuned prompt are
scored; the share of the training gain kept is ``(plain - tuned) / (plain - tuned on the training
view)``. The verdict: *held* when every check keeps at least half of the gain, *collapsed* when
one keeps none of it, *partly held* otherwise; *no gain* when tuning gained less than a point.
The saved prompt is chosen on the training view only, never on these checks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: A check keeps the alignment when the tuned prompt keeps at least this share of its gain.
HELD_SHARE = 0.5
#: A gain over the plain model smaller than this (index points) is too small to check.
MIN_GAIN = 1.0
#: Order sets that balance positions (reading in them averages position preference out).
BALANCED = ("both", "cyclic", "all")
BUNDLED_WORDINGS = ("vsm2013", "paraphrase")


@dataclass(frozen=True)
class View:
    """A wording (bundled name or file path) read in an order set, calibrated or not."""

    instrument: str
    orders: str
    calibrate: bool = False

    @property
    def name(self) -> str:
        wording = self.instrument if "/" not in self.instrument else self.instrument.rsplit(
            "/", 1)[-1]
        return f"{wording} · {self.orders}" + (" · calibrated" if self.calibrate else "")


def check_views(training: View, extra_instruments: Sequence[str] = ()) -> list[tuple[str, View]]:
    """The held-out views of a run tuned on ``training``: (role, view) pairs.

    Roles: ``wording`` (another wording, order-balanced, same reading otherwise), ``shown``
    and ``reversed`` (the training wording in one order alone). A view equal to the training
    view is left out.
    """
    balanced = training.orders if training.orders in BALANCED else "both"
    out: list[tuple[str, View]] = []
    others = [w for w in BUNDLED_WORDINGS if w != training.instrument]
    for wording in [*others, *extra_instruments]:
        out.append(("wording", View(wording, balanced, training.calibrate)))
    for orders in ("shown", "reversed"):
        view = View(training.instrument, orders, training.calibrate)
        if view != training:
            out.append((orders, view))
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


@dataclass
class Validity:
    """The training view's losses, each check's, and the verdict."""

    training: ViewResult
    checks: list[ViewResult] = field(default_factory=list)
    verdict: str = "unknown"
    rule: str = (f"held: every check keeps at least {HELD_SHARE:.0%} of the training gain; "
                 "collapsed: a check keeps none of it; partly held otherwise")

    @property
    def gain(self) -> float | None:
        t = self.training
        return None if t.plain is None or t.tuned is None else t.plain - t.tuned

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "gain": self.gain}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Validity:
        return cls(
            training=ViewResult(**d["training"]),
            checks=[ViewResult(**c) for c in d["checks"]],
            verdict=d["verdict"],
            rule=d.get("rule", cls.rule),
        )


def assess(training: ViewResult, checks: Sequence[ViewResult]) -> Validity:
    """Fill each check's share kept and state, and the verdict."""
    v = Validity(training, list(checks))
    for c in v.checks:
        c.kept = share_kept(c.plain, c.tuned, v.gain)
        c.state = state(c.kept)
    v.verdict = verdict(v.gain, [c.kept for c in v.checks])
    return v


__all__ = [
    "BALANCED",
    "HELD_SHARE",
    "MIN_GAIN",
    "Validity",
    "View",
    "ViewResult",
    "assess",
    "check_views",
    "share_kept",
    "state",
    "verdict",
]
