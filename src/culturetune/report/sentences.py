"""The report's plain sentences: one per (country, method), saying whether the alignment held.

Built from the numbers of :mod:`culturetune.report.tables`; the document prints them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from culturetune.reading.validity import MIN_GAIN
from culturetune.report.tables import (
    ROLE_LABELS,
    _acc_delta,
    _num,
    _p_values,
    _pct,
    cells_of,
    fmt_mean_sd,
    fmt_p,
    validity,
    view_label,
)


def validity_statement(results: dict[str, Any], country: dict[str, Any], method: str) -> str:
    """One plain sentence per (country, method): did the alignment hold or collapse?"""
    v = validity(results, country, method)
    head = f"{country['name']}, {method}:"
    where = view_label(v["training"])
    if v["verdict"] == "no gain":
        return (
            f"{head} nothing to check — its loss {_num(v['loss'])} ({where}) is not clearly (by "
            f"{MIN_GAIN:g} point or more) below the plain model's {_num(v['plain'])}."
        )
    parts = [
        f"{head} the alignment {v['verdict'].upper()}.",
        f"Loss {_num(v['loss'])} against the plain model's {_num(v['plain'])} ({where}, "
        "what it was tuned on).",
    ]
    for key, c in v["checks"].items():
        name = ROLE_LABELS.get(c["role"], c["role"])
        parts.append(f"{name.capitalize()} ({view_label(key)}): {_num(c['loss'])} (plain "
                     f"{_num(c['plain'])}), {_kept(c)}.")
    collapsed = [c["role"] for c in v["checks"].values() if c["state"] == "collapsed"]
    if collapsed:
        what = {"wording": "the wording", "shown": "the printed order",
                "reversed": "the reversed order", "said": "what the model says",
                "said shown": "what it says in the printed order",
                "said reversed": "what it says in the reversed order"}
        lost = " and ".join(what.get(r, r) for r in collapsed)
        parts.append(f"It does not carry over to {lost}.")
    parts.append(_accuracy_sentence(cells_of(results, country["code"], method)))
    return " ".join(parts)


def _kept(check: dict[str, Any]) -> str:
    kept = check["kept"]
    if kept is None:
        return "not measured"
    if kept < 0:
        return "none of the gain kept (worse than the plain model on the same view)"
    return f"{_pct(kept)} of the gain kept"


def _accuracy_sentence(cells: Sequence[dict[str, Any]]) -> str:
    deltas = _acc_delta(cells)
    if not deltas:
        return "No CulturalBench comparison (no questions for this country)."
    ps = ", ".join(fmt_p(p) for p in _p_values(cells))
    change = fmt_mean_sd(deltas, 3, sign=True)
    return f"CulturalBench accuracy change vs plain {change} (McNemar p {ps})."
