"""Does a model answer an instrument by content? Three measurements before anything is tuned.

A model that answers by position (it names the first listed option whatever the question) or
that ignores instructions gives a survey reading that no prompt can align with values: any gain
measures the format. The check reads what the model *says* (the ``said`` reading: the option
whose label or words the greedy reply spells, or its generated reply matched where it spells
none: :meth:`culturetune.reading.survey.Survey.said_all`):

(a) **order agreement**: each item asked with the options printed and reversed; on how many
    items do the two answers name the same option *content*, and on how many the same shown
    *position*;
(b) **instruction probe**: with a system prompt asking for the most-agreeing option (greatest
    importance, highest frequency) and one asking for the most-disagreeing option, do the answers
    move apart in the asked direction, in each order alone, by at least ``MIN_PROBE_GAP`` points
    on the 1-5 scale;
(c) **most likely option against the reply**: on how many items the option with the most
    probability is the option the greedy reply names (Wang et al. 2024, "My Answer is C");
(d) **the items' content**: the answers vary with the items (on at least ``MIN_ITEM_VARIATION``
    of the items, each order alone, the model names another option than the one it names most
    often) and differ from what it says to content-free items of the same format (the question
    replaced by "N/A", "" or "[MASK]", the same lead-in and options: on at least
    ``MIN_CONTENT_FREE_DIFFERENCE`` of the items it names another option than the one it names
    most often to those, in the same order). A model that names the middle option of every
    item agrees with itself across orders and may well follow the probe's instructions, but
    says nothing about the items.

Each is measured in an answer format (:mod:`culturetune.instrument.formats`): numbered options
answered by a number, lettered by a letter, or listed as words answered by the option's words.
A model can answer by position in one format and by content in another, so the check measures
every format and names the one in which the model answers by content, if any (``--format auto``
reads in that one; where there is none, in the one where it comes closest:
:func:`closest_format`).

Verdicts: *answers by content* ((a), (b) and (d) pass), *ignores the items* (content agrees
across orders but (d) fails), *answers by position*, *does not follow instructions* (content
agrees across orders but the probe fails), *answers inconsistently*, *does not answer* (most
replies name no option). Results are cached per model, instrument and format.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from culturetune.core.files import read_json, write_json
from culturetune.instrument.formats import FORMATS, READ_FORMAT

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
#: (d): share of items (each order alone, the mean of the two orders) on which the model names
#: another option than the one it names most often. One that names a fixed option (the middle,
#: or one pole) has none; one answering at random about 0.75; VSM 2013's 24 items ask about
#: different things on different scales, and a fifth of them is 5 items.
MIN_ITEM_VARIATION = 0.2
#: (d): share of items (over both orders) on which the model names another option than the one
#: it names most often to content-free items of the same lead-in and options in the same order.
#: A model that does not read the question has none.
MIN_CONTENT_FREE_DIFFERENCE = 0.2
#: Below this share of replies that name an option, the model "does not answer".
MIN_ANSWERED = 0.5
VERDICTS = ("answers by content", "ignores the items", "answers by position",
            "does not follow instructions", "answers inconsistently", "does not answer")
#: Verdicts under which a format's reading carries nothing of the model's answers: views in such
#: a format are not read (by position, every reading is the labels' bias; ignoring the items, it
#: is the answer to no question; no answer, no reading).
UNREAD_VERDICTS = ("ignores the items", "answers by position", "does not answer")
#: Bump when what the check measures changes (cached checks of older versions are redone).
#: 2: answer formats; (c) compares the most likely option with the said reply.
#: 3: words scored and said in their capitalised form too; (c) named top_option_match.
#: 4: (d) the items' content: item_variation, content_free_difference, content_free_said.
CHECK_VERSION = 4
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
    """The four measurements and the verdict (see the module docstring)."""

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
    #: (c) items where the most likely option is the option the greedy reply names.
    top_option_match: float
    #: Share of replies (items x orders, no system prompt) that name an option.
    answered: float
    #: What the plain model said in each order: option positions as shown, 1 = the first
    #: listed (None: no option).
    said: dict[str, list[int | None]] = field(default_factory=dict)
    #: The generated reply where the greedy path spelled no option (None where it did).
    replies: dict[str, list[str | None]] = field(default_factory=dict)
    #: (d) share of items, each order alone (mean of the two), whose said option is not the
    #: one said most often; share of items whose said option is not the one said most often to
    #: content-free items of the same format in the same order. ``None``: a check from before
    #: version 4, which did not measure them.
    item_variation: float | None = None
    content_free_difference: float | None = None
    #: What the plain model said to the content-free items in each order: per item format
    #: (lead-in and options), per content-free text, option positions as shown (None: no
    #: option).
    content_free_said: dict[str, list[list[int | None]]] = field(default_factory=dict)
    rule: str = (f"answers by content: at least {MIN_AGREEMENT:.0%} of items get the same option "
                 f"content in printed and reversed order, the instruction probe moves the "
                 f"answers at least {MIN_PROBE_GAP:g} point apart in the asked direction in "
                 f"each order alone, and the answers vary with the items (at least "
                 f"{MIN_ITEM_VARIATION:.0%} of items, each order alone, get another option than "
                 f"the most common one) and differ from the answers to content-free items of the "
                 f"same format (on at least {MIN_CONTENT_FREE_DIFFERENCE:.0%} of items)")
    seconds: float = 0.0
    version: int = CHECK_VERSION
    #: The answer format the model was asked in (:data:`culturetune.instrument.formats.FORMATS`).
    format: str = READ_FORMAT

    @property
    def answers_by_content(self) -> bool:
        return self.verdict == "answers by content"

    @property
    def probe_passed(self) -> bool:
        return all(p["gap"] >= MIN_PROBE_GAP for p in self.probe.values())

    @property
    def items_passed(self) -> bool | None:
        """(d): the answers vary with the items and differ from the content-free answers
        (``None`` for a check from before version 4)."""
        if self.item_variation is None or self.content_free_difference is None:
            return None
        return items_pass(self.item_variation, self.content_free_difference)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "answers_by_content": self.answers_by_content,
                "probe_passed": self.probe_passed, "items_passed": self.items_passed}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelCheck:
        if "first_token_match" in d:  # its name before issue 32
            d = {"top_option_match": d["first_token_match"], **d}
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in known})

    def summary(self) -> str:
        """One line: the verdict with its numbers."""
        gaps = ", ".join(f"{k} {v['gap']:+.2f}" for k, v in self.probe.items())
        if self.items_passed is None:
            items = "answers against the items not measured (a check before version 4)"
        else:
            items = (f"another option than the most common on {self.item_variation:.0%} of "
                     f"items (needs {MIN_ITEM_VARIATION:.0%}), than the content-free answer on "
                     f"{self.content_free_difference:.0%} (needs "
                     f"{MIN_CONTENT_FREE_DIFFERENCE:.0%})")
        return (f"{self.format} format: {self.verdict}: same option content in both orders on "
                f"{self.content_agreement:.0%} of items (same position "
                f"{self.position_agreement:.0%}); "
                f"instruction probe gap {gaps} (needs {MIN_PROBE_GAP:g}); {items}; most likely "
                f"option = reply on {self.top_option_match:.0%}; replies naming an option "
                f"{self.answered:.0%}")

    def warning(self) -> str | None:
        """What a tuning run on this model measures, where the model fails the check."""
        if self.answers_by_content:
            return None
        return (f"this model {self.verdict} on {self.instrument} in the {self.format} format "
                "(culturetune check-model): any gain from tuning will measure the answer format, "
                "not values")


def items_pass(variation: float, content_free_difference: float) -> bool:
    """(d): the answers vary with the items and differ from the content-free answers."""
    return (variation >= MIN_ITEM_VARIATION
            and content_free_difference >= MIN_CONTENT_FREE_DIFFERENCE)


def item_variation(said: np.ndarray) -> float:
    """(d): the share of items, each order alone (the mean over orders), whose said option
    (content indices ``[orders, items]``) is named and is not the option named most often."""
    from culturetune.reading.answers import NO_ANSWER

    shares = []
    for row in said:
        named = row[row != NO_ANSWER]
        if not len(named):
            shares.append(0.0)
            continue
        mode = np.bincount(named).argmax()
        shares.append(float(((row != NO_ANSWER) & (row != mode)).mean()))
    return float(np.mean(shares))


def content_free_difference(said: np.ndarray, free: np.ndarray, format_of: Sequence[int]
                            ) -> float:
    """(d): the share of (order, item) pairs whose said option (content indices ``[orders,
    items]``) is named and is not the option said most often to the content-free items
    ``free`` ``[orders, item formats, texts]`` of the item's format (``format_of``) in the same
    order (where those name none, any named option differs)."""
    from culturetune.reading.answers import NO_ANSWER

    modal = np.full(free.shape[:2], NO_ANSWER, dtype=np.int64)
    for o, f in np.ndindex(*free.shape[:2]):
        named = free[o, f][free[o, f] != NO_ANSWER]
        if len(named):
            modal[o, f] = np.bincount(named).argmax()
    ref = modal[:, list(format_of)]
    return float(((said != NO_ANSWER) & (said != ref)).mean())


def verdict(content: float, position: float, probe_ok: bool, answered: float,
            items_ok: bool = True) -> str:
    """The check's verdict from its numbers (see the module docstring); ``items_ok``: (d)."""
    if answered < MIN_ANSWERED:
        return "does not answer"
    if content >= MIN_AGREEMENT and probe_ok and items_ok:
        return "answers by content"
    if content >= MIN_AGREEMENT and not items_ok:
        return "ignores the items"
    if position >= MIN_AGREEMENT:
        return "answers by position"
    if content >= MIN_AGREEMENT:
        return "does not follow instructions"
    return "answers inconsistently"


def run_check(lm: Any, instrument: str = "vsm2013",
              progress: Callable[[str], None] | None = None,
              format: str = READ_FORMAT) -> ModelCheck:
    """Measure (a), (b), (c) and (d) in one answer format on a loaded model (no cache; see
    :func:`check_model`)."""
    from culturetune.reading.answers import NO_ANSWER, said_values
    from culturetune.reading.survey import Survey

    began = time.perf_counter()
    said: dict[str | None, np.ndarray] = {}
    plain = None
    for system in (None, HIGH_SYSTEM, LOW_SYSTEM):
        if progress:
            progress(f"{format} format, " + {None: "plain", HIGH_SYSTEM: "asked to agree",
                                             LOW_SYSTEM: "asked to disagree"}[system])
        # the plain model is also asked the content-free items (d), read uncalibrated
        survey = Survey(lm, instrument, system=system, orders="both", format=format,
                        calibrate=system is None)
        if system is None:
            reading, free, _ = survey.read_content_free()
        else:
            reading = survey.read()
        s, replies = survey.said(reading)  # [2 orders, items], content indices
        said[system] = s
        if system is None:
            plain = survey, reading, replies
        del survey  # its prefix caches are not needed again
    survey, reading, replies = plain
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
    # (c) the most likely option against what the reply says, no system prompt, both orders.
    top_option = reading.by_order[0].argmax(-1)  # [orders, items], content order
    match = float((top_option == s).mean())
    shown = {
        name: [None if v == NO_ANSWER else int(np.argsort(order)[v]) + 1 for v in s[o]]
        for o, (name, order) in enumerate(zip(("printed", "reversed"), survey.orders,
                                              strict=True))
    }
    texts = [replies.get(k) for k in range(2 * n)]
    probe_ok = all(p["gap"] >= MIN_PROBE_GAP for p in probe.values())
    # (d) the items' content: variation across items, and the content-free answers
    variation = item_variation(s)
    free_difference = content_free_difference(s, free, survey.format_of)
    free_shown = {
        name: [[None if v == NO_ANSWER else int(np.argsort(order)[v]) + 1 for v in texts_said]
               for texts_said in free[o]]
        for o, (name, order) in enumerate(zip(("printed", "reversed"), survey.orders,
                                              strict=True))
    }
    return ModelCheck(
        model=lm.name, instrument=inst.name,
        verdict=verdict(content, position, probe_ok, answered,
                        items_pass(variation, free_difference)), items=n,
        content_agreement=content, position_agreement=position, order_gap=order_gap,
        probe=probe, top_option_match=match, answered=answered, said=shown,
        replies={"printed": texts[:n], "reversed": texts[n:]},
        item_variation=variation, content_free_difference=free_difference,
        content_free_said=free_shown,
        seconds=round(time.perf_counter() - began, 2), format=format,
    )


def cache_path(lm: Any, instrument: str, format: str = READ_FORMAT) -> Path:
    """Where the check of this model (name, dtype, device) on this instrument in this answer
    format is cached."""
    from culturetune.core.cache import cache_dir
    from culturetune.instrument.vsm import load_instrument

    inst = load_instrument(instrument)
    key = [CHECK_VERSION, lm.name, str(lm.dtype), str(lm.device).split(":")[0], inst.to_dict(),
           format]
    key = json.dumps(key, sort_keys=True, default=str)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return cache_dir() / "checks" / f"{digest}.json"


def check_model(lm: Any, instrument: str = "vsm2013", *, refresh: bool = False,
                progress: Callable[[str], None] | None = None,
                format: str = READ_FORMAT) -> ModelCheck:
    """The model check in one format, from the cache where this model, instrument and format
    were checked before."""
    path = cache_path(lm, instrument, format)
    if path.exists() and not refresh:
        try:
            d = read_json(path)
            if d.get("version") == CHECK_VERSION and d.get("format", READ_FORMAT) == format:
                return ModelCheck.from_dict(d)
        except Exception:  # noqa: BLE001 - a broken cache entry is measured again
            pass
    result = run_check(lm, instrument, progress, format)
    try:
        write_json(path, result.to_dict())
    except Exception:  # noqa: BLE001 - the cache is an optimisation; the check still stands
        pass
    return result


def cached_check(lm: Any, instrument: str, format: str) -> ModelCheck | None:
    """The cached check in one format, or ``None`` where it was not measured."""
    path = cache_path(lm, instrument, format)
    try:
        d = read_json(path) if path.exists() else None
    except Exception:  # noqa: BLE001 - a broken cache entry counts as none
        return None
    if not d or d.get("version") != CHECK_VERSION or d.get("format") != format:
        return None
    return ModelCheck.from_dict(d)


def check_formats(lm: Any, instrument: str = "vsm2013", *, formats: Sequence[str] = FORMATS,
                  refresh: bool = False,
                  progress: Callable[[str], None] | None = None) -> dict[str, ModelCheck]:
    """The model check in every answer format (each cached on its own)."""
    return {f: check_model(lm, instrument, refresh=refresh, progress=progress, format=f)
            for f in formats}


def unread_formats(lm: Any, instrument: str, formats: Sequence[str]) -> dict[str, str]:
    """Of ``formats``, those whose cached check says a reading in them carries nothing
    (:data:`UNREAD_VERDICTS`), with the verdict; a format not checked yet is read."""
    out = {}
    for f in formats:
        check = cached_check(lm, instrument, f)
        if check is not None and check.verdict in UNREAD_VERDICTS:
            out[f] = check.verdict
    return out


def content_format(checks: dict[str, ModelCheck]) -> str | None:
    """The first format (in :data:`FORMATS` order: the cheapest first) in which the model
    answers by content, or ``None``."""
    for f in FORMATS:
        if f in checks and checks[f].answers_by_content:
            return f
    return None


def min_probe_gap(check: ModelCheck) -> float:
    """(b) in the weaker order: the probe gap that must reach ``MIN_PROBE_GAP``."""
    return min((p["gap"] for p in check.probe.values()), default=0.0)


def closest_format(checks: dict[str, ModelCheck]) -> str | None:
    """The format in which the model comes closest to answering by content, where it answers by
    content in none: the most items with the same option content in both orders (a), then the
    larger probe gap in the weaker order (b); where both tie, the first in :data:`FORMATS`
    order (the cheapest). ``None`` where ``checks`` is empty."""
    ranked = [f for f in FORMATS if f in checks] + [f for f in checks if f not in FORMATS]
    if not ranked:
        return None
    return max(ranked, key=lambda f: (checks[f].content_agreement, min_probe_gap(checks[f]),
                                      -ranked.index(f)))


def _closest_reason(checks: dict[str, ModelCheck], chosen: str) -> str:
    """Why :func:`closest_format` chose ``chosen``: its numbers against the others'."""
    best = checks[chosen]
    tied = [f for f, c in checks.items() if f != chosen
            and c.content_agreement == best.content_agreement]
    others = ", ".join(f"{f} {c.content_agreement:.0%}" for f, c in checks.items()
                       if f != chosen)
    why = (f"the same option content in both orders on {best.content_agreement:.0%} of items"
           + (f" (against {others})" if others else ""))
    gap = min_probe_gap(best)
    if tied:
        ties = ", ".join(f"{f} {min_probe_gap(checks[f]):+.2f}" for f in tied)
        why += (f"; as many in {', '.join(tied)}, and the instruction probe moves its answers "
                f"{gap:+.2f} points in the weaker order (against {ties})")
        if all(min_probe_gap(checks[f]) == gap for f in tied):
            why += ", the same, so the first of " + ", ".join(
                f for f in FORMATS if f in checks)
    else:
        why += f"; instruction probe gap {gap:+.2f} in the weaker order"
    return why


@dataclass
class FormatChoice:
    """What ``--format auto`` read in, and why."""

    format: str
    reason: str
    check: ModelCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"format": self.format, "reason": self.reason}


def choose_format(lm: Any, requested: str, instrument: str = "vsm2013", *,
                  checks: dict[str, ModelCheck] | None = None, refresh: bool = False,
                  progress: Callable[[str], None] | None = None) -> FormatChoice:
    """The format a command reads in: ``requested`` unless it is ``auto`` (with its cached check,
    if any); ``auto`` takes the format in which the model check says the model answers by content
    (measuring the check in every format where it is not cached), else the one in which it comes
    closest (:func:`closest_format`; ``number`` where no format was checked)."""
    if requested != "auto":
        check = (checks or {}).get(requested) or cached_check(lm, instrument, requested)
        return FormatChoice(requested, "asked for", check)
    checks = checks or check_formats(lm, instrument, refresh=refresh, progress=progress)
    chosen = content_format(checks)
    if chosen is not None:
        return FormatChoice(chosen, f"--format auto: the model check says this model answers "
                            f"by content in the {chosen} format", checks[chosen])
    said = "; ".join(f"{f}: {c.verdict}" for f, c in checks.items())
    closest = closest_format(checks)
    if closest is None:
        return FormatChoice(READ_FORMAT, "--format auto: no format could be checked, so it is "
                            "read in the number format", None)
    return FormatChoice(closest, "--format auto: the model answers by content in no format "
                        f"({said}); it comes closest in the {closest} format "
                        f"({_closest_reason(checks, closest)}), so it is read in that format",
                        checks[closest])


__all__ = ["HIGH_SYSTEM", "LOW_SYSTEM", "MIN_AGREEMENT", "MIN_CONTENT_FREE_DIFFERENCE",
           "MIN_ITEM_VARIATION", "MIN_PROBE_GAP", "FormatChoice", "ModelCheck", "VERDICTS",
           "cached_check", "check_formats", "check_model", "choose_format", "closest_format",
           "content_free_difference", "content_format", "item_variation", "items_pass", "poles",
           "min_probe_gap", "run_check", "unread_formats", "verdict", "UNREAD_VERDICTS"]
