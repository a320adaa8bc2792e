"""Does a model answer an instrument by content? Three measurements before anything is tuned.

A model that answers by position (it names the first listed option whatever the question) or
that ignores instructions gives a survey reading that no prompt can align with values: any gain
measures the format. The check reads what the model *says* (the ``said`` reading: the greedy
first token, or its greedy reply where that token is no option):

(a) **order agreement**: each item asked with the options printed and reversed; on how many
    items do the two answers name the same option *content*, and on how many the same shown
    *position*;
(b) **instruction probe**: with a system prompt asking for the most-agreeing option (greatest
    importance, highest frequency) and one asking for the most-disagreeing option, do the answers
    move apart in the asked direction, in each order alone, by at least ``MIN_PROBE_GAP`` points
    on the 1-5 scale;
(c) **first token against text**: on how many items the most likely option token is the option
    the greedy reply names (Wang et al. 2024, "My Answer is C").

Verdicts: *answers by content* ((a) and (b) pass), *answers by position*, *does not follow
instructions* (content agrees across orders but the probe fails), *answers inconsistently*,
*does not answer* (most replies name no option). Results are cached per model and instrument.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from culturetune.core.files import read_json, write_json

#: The instruction probe's system prompts: the agreeing pole and the disagreeing pole.
HIGH_SYSTEM = ("Whatever the question, always choose the option that expresses the strongest "
               "agreement, the greatest importance or the highest frequency.")
LOW_SYSTEM = ("Whatever the question, always choose the option that expresses the strongest "
              "disagreement, the least importance or the lowest frequency.")
#: (a): share of items that must get the same option content in both orders. A model answering
#: at random agrees on 1 item in 5 by chance; one that names a fixed position on none (but the
#: middle); half is far from both.
MIN_AGREEMENT = 0.5
#: (b): how far apart (1-5 scale, mean over items, each order alone) the two instructions must
#: move the answers. A model that follows them moves 4 points (from one end to the other); one
#: that answers by position moves 0. One point is a full step of the scale on every item, or the
#: whole scale on a quarter of them.
MIN_PROBE_GAP = 1.0
#: Below this share of replies that name an option, the model "does not answer".
MIN_ANSWERED = 0.5
VERDICTS = ("answers by content", "answers by position", "does not follow instructions",
            "answers inconsistently", "does not answer")
#: Bump when what the check measures changes (cached checks of older versions are redone).
CHECK_VERSION = 1
#: Words that mark an option as the agreeing / important / frequent pole of its scale.
_HIGH_POLE = ("utmost", "always", "strongly agree", "very good", "very proud")


def poles(instrument: Any) -> np.ndarray:
    """+1 for items whose first option is the scale's agreeing pole, -1 for items whose last one
    is (VSM 2013 item 20 runs from "never" to "always"). Scales with no marked pole count +1."""
    out = []
    for it in instrument.items:
        first, last = it.options[0].lower(), it.options[-1].lower()
        marked_last = any(w in last for w in _HIGH_POLE) and not any(w in first for w in
                                                                      _HIGH_POLE)
        out.append(-1 if marked_last else 1)
    return np.array(out)


@dataclass
class ModelCheck:
    """The three measurements and the verdict (see the module docstring)."""

    model: str
    instrument: str
    verdict: str
    items: int
    #: (a) items with the same option content / the same shown position in both orders.
    content_agreement: float
    position_agreement: float
    #: (a) mean |item mean printed - item mean reversed| on the 1-5 scale (said answers).
    order_gap: float
    #: (b) per order: mean pole score (1 = agreeing pole) asked high / low, and their gap.
    probe: dict[str, dict[str, float]]
    #: (c) items where the most likely option token is the option the greedy reply names.
    first_token_match: float
    #: Share of replies (items x orders, no system prompt) that name an option.
    answered: float
    #: What the plain model said in each order: option numbers as shown (None: no option).
    said: dict[str, list[int | None]] = field(default_factory=dict)
    replies: dict[str, list[str]] = field(default_factory=dict)
    rule: str = (f"answers by content: at least {MIN_AGREEMENT:.0%} of items get the same option "
                 f"content in printed and reversed order, and the instruction probe moves the "
                 f"answers at least {MIN_PROBE_GAP:g} point apart in the asked direction in "
                 "each order alone")
    seconds: float = 0.0
    version: int = CHECK_VERSION

    @property
    def answers_by_content(self) -> bool:
        return self.verdict == "answers by content"

    @property
    def probe_passed(self) -> bool:
        return all(p["gap"] >= MIN_PROBE_GAP for p in self.probe.values())

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "answers_by_content": self.answers_by_content,
                "probe_passed": self.probe_passed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCheck:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def summary(self) -> str:
        """One line: the verdict with its numbers."""
        gaps = ", ".join(f"{k} {v['gap']:+.2f}" for k, v in self.probe.items())
        return (f"{self.verdict}: same option content in both orders on "
                f"{self.content_agreement:.0%} of items (same position "
                f"{self.position_agreement:.0%}); "
                f"instruction probe gap {gaps} (needs {MIN_PROBE_GAP:g}); first token = reply "
                f"on {self.first_token_match:.0%}; replies naming an option {self.answered:.0%}")

    def warning(self) -> str | None:
        """What a tuning run on this model measures, where the model fails the check."""
        if self.answers_by_content:
            return None
        return (f"this model {self.verdict} on {self.instrument} (culturetune check-model): any "
                "gain from tuning will measure the answer format, not values")


def verdict(content: float, position: float, probe_ok: bool, answered: float) -> str:
    """The check's verdict from its numbers (see the module docstring)."""
    if answered < MIN_ANSWERED:
        return "does not answer"
    if content >= MIN_AGREEMENT and probe_ok:
        return "answers by content"
    if position >= MIN_AGREEMENT:
        return "answers by position"
    if content >= MIN_AGREEMENT:
        return "does not follow instructions"
    return "answers inconsistently"


def run_check(lm: Any, instrument: str = "vsm2013",
              progress: Callable[[str], None] | None = None) -> ModelCheck:
    """Measure (a), (b) and (c) on a loaded model (no cache; see :func:`check_model`)."""
    from culturetune.reading.survey import NO_ANSWER, Survey, parse_answer, said_values

    began = time.perf_counter()
    said: dict[str | None, np.ndarray] = {}
    plain = None
    for system in (None, HIGH_SYSTEM, LOW_SYSTEM):
        if progress:
            progress({None: "plain", HIGH_SYSTEM: "asked to agree",
                      LOW_SYSTEM: "asked to disagree"}[system])
        survey = Survey(lm, instrument, system=system, orders="both")
        reading = survey.read()
        said[system] = survey.said(reading)[0]  # [2 orders, items], content indices
        if system is None:
            plain = survey, reading
    survey, reading = plain
    inst = survey.instrument
    n = len(inst.items)
    s = said[None]
    answered = float((s != NO_ANSWER).mean())
    both = (s[0] != NO_ANSWER) & (s[1] != NO_ANSWER)
    content = float((both & (s[0] == s[1])).mean())
    position = float((both & (s[0] == len(survey.orders[1]) - 1 - s[1])).mean())
    values = said_values(s)
    order_gap = float(np.abs(values[0] - values[1]).mean())
    sign = poles(inst)

    def pole_score(v: np.ndarray) -> np.ndarray:  # 1 = the agreeing pole, 5 = the other
        return np.where(sign > 0, v, 6 - v)

    probe = {}
    for o, name in enumerate(("printed", "reversed")):
        high = float(pole_score(said_values(said[HIGH_SYSTEM][o])).mean())
        low = float(pole_score(said_values(said[LOW_SYSTEM][o])).mean())
        probe[name] = {"asked_high": high, "asked_low": low, "gap": low - high}
    # (c) first token against the text of the greedy reply, no system prompt, both orders.
    replies = survey.generate()
    parsed = np.array([(parse_answer(t, survey.orders[k // n]) or 0) - 1
                       for k, t in enumerate(replies)]).reshape(2, n)
    top_option = reading.by_order[0].argmax(-1)  # [orders, items], content order
    match = float((top_option == parsed).mean())
    shown = {
        name: [None if v == NO_ANSWER else int(np.argsort(order)[v]) + 1 for v in s[o]]
        for o, (name, order) in enumerate(zip(("printed", "reversed"), survey.orders,
                                              strict=True))
    }
    probe_ok = all(p["gap"] >= MIN_PROBE_GAP for p in probe.values())
    return ModelCheck(
        model=lm.name, instrument=inst.name,
        verdict=verdict(content, position, probe_ok, answered), items=n,
        content_agreement=content, position_agreement=position, order_gap=order_gap,
        probe=probe, first_token_match=match, answered=answered, said=shown,
        replies={"printed": replies[:n], "reversed": replies[n:]},
        seconds=round(time.perf_counter() - began, 2),
    )


def cache_path(lm: Any, instrument: str) -> Path:
    """Where the check of this model (name, dtype, device) on this instrument is cached."""
    from culturetune.core.cache import cache_dir
    from culturetune.instrument.vsm import load_instrument

    inst = load_instrument(instrument)
    key = [CHECK_VERSION, lm.name, str(lm.dtype), str(lm.device).split(":")[0], inst.to_dict()]
    if getattr(lm, "source", ""):  # the respondent: which adapter (its hash) is merged
        key.append(lm.source)
    key = json.dumps(key, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / "checks" / f"{digest}.json"


def check_model(lm: Any, instrument: str = "vsm2013", *, refresh: bool = False,
                progress: Callable[[str], None] | None = None) -> ModelCheck:
    """The model check, from the cache where this model and instrument were checked before."""
    path = cache_path(lm, instrument)
    if path.exists() and not refresh:
        try:
            d = read_json(path)
            if d.get("version") == CHECK_VERSION:
                return ModelCheck.from_dict(d)
        except Exception:  # noqa: BLE001 - a broken cache entry is measured again
            pass
    result = run_check(lm, instrument, progress)
    try:
        write_json(path, result.to_dict())
    except Exception:  # noqa: BLE001 - the cache is an optimisation; the check still stands
        pass
    return result


__all__ = ["HIGH_SYSTEM", "LOW_SYSTEM", "MIN_AGREEMENT", "MIN_PROBE_GAP", "ModelCheck",
           "VERDICTS", "check_model", "poles", "run_check", "verdict"]
