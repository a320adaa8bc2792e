"""The numbers of an experiment report, read from a ``results.json`` dict: means over seeds,
cells per country and method, each method's validity (:mod:`culturetune.reading.validity`), and
every table of the report as a :class:`Table` of strings (rendered by
:mod:`culturetune.report.document`).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from culturetune.experiment.methods import BASELINES, view_from_key, view_key
from culturetune.instrument.vsm import DIMENSIONS
from culturetune.reading.validity import MIN_GAIN, ViewResult, assess, check_views

MISSING = "—"
#: Short names of the views in tables (others show their key).
VIEW_LABELS = {
    "vsm2013:shown": "official, printed order",
    "vsm2013:reversed": "official, reversed order",
    "vsm2013:both": "official, printed + reversed",
    "vsm2013:cyclic": "official, 5 cyclic orders",
    "paraphrase:both": "paraphrase, printed + reversed",
    "paraphrase:cyclic": "paraphrase, 5 cyclic orders",
    "paraphrase2:both": "second paraphrase, printed + reversed",
    "vsm2013:both:said": "official, said, printed + reversed",
    "vsm2013:shown:said": "official, said, printed order",
    "vsm2013:reversed:said": "official, said, reversed order",
}
ROLE_LABELS = {"wording": "other wording", "shown": "printed order alone",
               "reversed": "reversed order alone", "said": "what the model says",
               "said shown": "what it says, printed order",
               "said reversed": "what it says, reversed order"}


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


# --------------------------------------------------------------------------- numbers


def _finite(values: Iterable[Any]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def mean_sd(values: Iterable[Any]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (``None`` when undefined) of the finite values."""
    xs = _finite(values)
    if not xs:
        return None, None
    return statistics.fmean(xs), (statistics.stdev(xs) if len(xs) > 1 else None)


def fmt_mean_sd(values: Iterable[Any], digits: int = 1, sign: bool = False) -> str:
    """``"12.3 ± 1.2"`` over seeds, ``"12.3"`` for one value, ``"—"`` for none."""
    m, sd = mean_sd(values)
    if m is None:
        return MISSING
    mean = f"{m:+.{digits}f}" if sign else f"{m:.{digits}f}"
    return mean if sd is None else f"{mean} ± {sd:.{digits}f}"


def _num(x: float | None, digits: int = 1, sign: bool = False) -> str:
    if x is None:
        return MISSING
    return f"{x:+.{digits}f}" if sign else f"{x:.{digits}f}"


def fmt_p(p: float | None) -> str:
    if p is None:
        return MISSING
    return "<0.001" if p < 0.001 else f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


# --------------------------------------------------------------------------- selection


def countries(results: dict[str, Any]) -> list[dict[str, Any]]:
    return list(results["countries"])


def methods(results: dict[str, Any]) -> list[str]:
    """The methods that have cells, in the configured order."""
    have = {c["method"] for c in results["cells"]}
    return [m for m in results["methods"] if m in have]


def tuned_methods(results: dict[str, Any]) -> list[str]:
    return [m for m in methods(results) if m not in BASELINES]


def cells_of(
    results: dict[str, Any], code: str | None = None, method: str | None = None
) -> list[dict[str, Any]]:
    """Cells of a country (code) and/or a method, in file order."""
    return [
        c
        for c in results["cells"]
        if (code is None or c["code"] == code) and (method is None or c["method"] == method)
    ]


def view_label(key: str) -> str:
    """A readable name for a view key (``vsm2013:both`` -> "official, printed + reversed")."""
    if key in VIEW_LABELS:
        return VIEW_LABELS[key]
    base, said = (key[:-5], True) if key.endswith(":said") else (key, False)
    base, cal = (base[:-4], True) if base.endswith(":cal") else (base, False)
    label = VIEW_LABELS.get(base)
    if label is None:
        path, _, orders = base.rpartition(":")
        label = f"{path.rsplit('/', 1)[-1]}, {orders}"
    return label + (", calibrated" if cal else "") + (", said" if said else "")


def held_out(results: dict[str, Any]) -> str:
    """The held-out wording's order-balanced view: the first paraphrase, or the second where a
    method was tuned on the first (and the experiment read the second)."""
    tuned = {w for s in results.get("specs", {}).values() for w in s.get("wordings") or []}
    read = any("paraphrase2:both" in c.get("views", {}) for c in results["cells"])
    return "paraphrase2:both" if "paraphrase" in tuned and read else "paraphrase:both"


def headline(results: dict[str, Any]) -> str:
    return results.get("headline", "vsm2013:both")


def view_loss(cell: dict[str, Any], key: str) -> float | None:
    v = cell.get("views", {}).get(key)
    return None if v is None else v["loss"]


def _plain_view(cells: Sequence[dict[str, Any]], key: str) -> float | None:
    m, _ = mean_sd(c["plain_reference"]["views"].get(key) for c in cells)
    return m


def uniform_loss(results: dict[str, Any], code: str) -> float | None:
    """The loss of answering every item uniformly, for a country (its code)."""
    cells = cells_of(results, code)
    return cells[0]["uniform_loss"] if cells else None


def _acc_delta(cells: Sequence[dict[str, Any]]) -> list[float]:
    return _finite((c["bench"].get("vs_plain") or {}).get("difference") for c in cells)


def _p_values(cells: Sequence[dict[str, Any]]) -> list[float]:
    return _finite((c["bench"].get("vs_plain") or {}).get("p_value") for c in cells)


def training_view(results: dict[str, Any], method: str) -> str:
    """The view a method was tuned on (the headline view for the baselines)."""
    spec = results.get("specs", {}).get(method, {})
    return spec.get("training_view") or headline(results)


def trained_on(results: dict[str, Any], method: str) -> str:
    spec = results.get("specs", {}).get(method, {})
    if not spec.get("optimizer"):
        return MISSING
    return spec["orders"] + (" + calibration" if spec.get("calibrate") else "")


def _checks(results: dict[str, Any], method: str) -> list[tuple[str, str]]:
    """(role, view key) of each check of a method's validity."""
    extra = results["config"].get("validate_instruments") or []
    train = view_from_key(training_view(results, method))
    trained = results.get("specs", {}).get(method, {}).get("wordings") or []
    # only views the experiment read (results made before said views and paraphrase2 lack them)
    present = {k for c in results["cells"] for k in c.get("views", {})}
    return [(role, view_key(v)) for role, v in check_views(train, extra, trained)
            if view_key(v) in present]


def _mass(cells: Sequence[dict[str, Any]], key: str) -> tuple[float | None, float | None]:
    """Mean option mass of the plain model and of the cells on a view (``None`` if unknown)."""
    plain = mean_sd((c["plain_reference"].get("mass") or {}).get(key) for c in cells)[0]
    tuned = mean_sd((c.get("views", {}).get(key) or {}).get("option_mass") for c in cells)[0]
    return plain, tuned


# --------------------------------------------------------------------------- tables


def indices_table(results: dict[str, Any], country: dict[str, Any]) -> Table:
    """The six indices (headline view) and the loss of target / plain / uniform / each method
    (mean ± sd over seeds)."""
    est = set(country.get("estimated", []))
    target = [
        MISSING if country["target"][d] is None else f"{country['target'][d]:.0f}"
        + ("*" if d in est else "")
        for d in DIMENSIONS
    ]
    rows = [["target", *target, MISSING]]
    constants = results["config"].get("constants")
    from culturetune.instrument.vsm import parse_constants

    c = parse_constants(constants)
    rows.append(["uniform", *(f"{c[d]:.1f}" for d in DIMENSIONS),
                 _num(uniform_loss(results, country["code"]))])
    key = headline(results)
    for method in methods(results):
        cells = cells_of(results, country["code"], method)
        if not cells:
            continue
        row = [fmt_mean_sd(c["views"][key]["indices"][d] for c in cells) for d in DIMENSIONS]
        rows.append([_method_label(method, cells), *row,
                     fmt_mean_sd(view_loss(c, key) for c in cells)])
    return Table(["", *DIMENSIONS, "loss"], rows)


def _method_label(method: str, cells: Sequence[dict[str, Any]]) -> str:
    n = len(cells)
    return method if method in BASELINES else f"{method} ({n} seed{'s' * (n != 1)})"


def loss_table(results: dict[str, Any], key: str | None = None) -> Table:
    """Loss in one view per method (rows) and country (columns), mean ± sd over seeds, with
    the uniform answer's loss as a row."""
    key = key or headline(results)
    cs = countries(results)
    rows = [["uniform", *(_num(uniform_loss(results, c["code"])) for c in cs)]]
    for method in methods(results):
        row = [method]
        for country in cs:
            row.append(fmt_mean_sd(view_loss(c, key)
                                   for c in cells_of(results, country["code"], method)))
        rows.append(row)
    return Table(["method", *(c["name"] for c in cs)], rows)


def accuracy_table(results: dict[str, Any], country: dict[str, Any]) -> Table:
    """CulturalBench accuracy per method and seed with 95 % intervals and McNemar p vs plain."""
    rows = []
    for method in methods(results):
        for c in cells_of(results, country["code"], method):
            b = c["bench"]
            vs = b.get("vs_plain")
            interval = _interval(b)
            rows.append(
                [
                    method,
                    MISSING if c["seed"] is None else str(c["seed"]),
                    str(b["n"]),
                    _num(b["accuracy"], 3),
                    interval,
                    MISSING if not vs else _num(vs["difference"], 3, sign=True),
                    MISSING if not vs else f"{fmt_p(vs['p_value'])} (b {vs['b']}, c {vs['c']})",
                ]
            )
    headers = ["method", "seed", "n", "accuracy", "95 % interval", "Δ vs plain", "p vs plain"]
    return Table(headers, rows)


def method_table(results: dict[str, Any]) -> Table:
    """Every tuned method over all countries and seeds: what it was tuned on, its loss there and
    its gain over the plain model, its loss on the held-out views, the share of the gain kept on
    the other wording, CulturalBench change, and time."""
    rows = []
    para = held_out(results)
    for method in tuned_methods(results):
        cells = cells_of(results, method=method)
        train = training_view(results, method)
        gains = _finite(c["plain_reference"]["views"].get(train) - view_loss(c, train)
                        for c in cells if view_loss(c, train) is not None
                        and c["plain_reference"]["views"].get(train) is not None)
        kept = []
        for c in cells:
            g = (c["plain_reference"]["views"].get(train) or 0) - (view_loss(c, train) or 0)
            p, t = c["plain_reference"]["views"].get(para), view_loss(c, para)
            if g >= MIN_GAIN and p is not None and t is not None:
                kept.append((p - t) / g)
        tuning = [c["tuning"] for c in cells if c.get("tuning")]
        seconds = [t["seconds"] for t in tuning]
        rate = sum(t["evaluations"] for t in tuning) / sum(seconds) if sum(seconds) else None
        rows.append([
            method,
            results.get("specs", {}).get(method, {}).get("optimizer") or method,
            trained_on(results, method),
            str(len(cells)),
            fmt_mean_sd(view_loss(c, train) for c in cells),
            fmt_mean_sd(gains),
            fmt_mean_sd(view_loss(c, "vsm2013:both") for c in cells),
            fmt_mean_sd(view_loss(c, "vsm2013:cyclic") for c in cells),
            fmt_mean_sd(view_loss(c, para) for c in cells),
            MISSING if not kept else f"{100 * statistics.fmean(kept):.0f} %",
            fmt_mean_sd(_acc_delta(cells), 3, sign=True),
            fmt_mean_sd(seconds, 0),
            _num(rate, 1),
        ])
    headers = ["method", "optimizer", "tuned on (orders)", "runs", "loss tuned on",
               "gain over plain", "official, printed + reversed", "official, 5 cyclic orders",
               f"{view_label(para)} (held out)", "gain kept there",
               "CulturalBench Δ", "seconds per run", "evaluations / s"]
    return Table(headers, rows)


def validity(results: dict[str, Any], country: dict[str, Any], method: str) -> dict[str, Any]:
    """Whether a method's alignment held on the views it was not tuned on (mean over seeds):
    see :mod:`culturetune.reading.validity` for the rule."""
    cells = cells_of(results, country["code"], method)
    train = training_view(results, method)

    def row(role: str, key: str) -> ViewResult:
        return ViewResult(role=role, view=view_label(key), instrument=key, orders="",
                          calibrated=key.endswith(":cal"), plain=_plain_view(cells, key),
                          uniform=uniform_loss(results, country["code"]) or 0.0,
                          tuned=mean_sd(view_loss(c, key) for c in cells)[0])

    v = assess(row("training", train), [row(r, k) for r, k in _checks(results, method)],
               *_mass(cells, train))
    return {"method": method, "training": train, "loss": v.training.tuned,
            "plain": v.training.plain, "verdict": v.verdict, "failed": v.failed,
            "plain_mass": v.plain_mass, "tuned_mass": v.tuned_mass,
            "checks": {k: {"role": c.role, "loss": c.tuned, "plain": c.plain, "kept": c.kept,
                           "state": c.state}
                       for (_, k), c in zip(_checks(results, method), v.checks, strict=True)}}


def validity_table(results: dict[str, Any], country: dict[str, Any]) -> Table:
    """Per method: loss on the view it was tuned on and on each check, shares kept, accuracy."""
    rows = []
    for method in methods(results):
        cells = cells_of(results, country["code"], method)
        if not cells:
            continue
        train = training_view(results, method)
        v = None if method == "plain" else validity(results, country, method)
        checks = [] if v is None else [
            f"{view_label(k)}: {fmt_mean_sd(view_loss(c, k) for c in cells)} "
            f"(plain {_num(ch['plain'])}, kept {_pct(ch['kept'])})"
            for k, ch in v["checks"].items()
        ]
        rows.append(
            [
                method,
                view_label(train) if method not in BASELINES else MISSING,
                fmt_mean_sd(view_loss(c, train) for c in cells),
                "; ".join(checks) or MISSING,
                MISSING if method == "plain" else fmt_mean_sd(_acc_delta(cells), 3, sign=True),
                MISSING if method == "plain" else ", ".join(fmt_p(p) for p in _p_values(cells))
                or MISSING,
                "reference" if v is None else v["verdict"],
            ]
        )
    headers = ["method", "tuned on", "loss there", "checks: loss (plain, gain kept)",
               "accuracy Δ vs plain", "McNemar p", "verdict"]
    return Table(headers, rows)


def verdict_table(results: dict[str, Any]) -> Table:
    """Validity at a glance: each method's verdict per country, with the share of gain kept
    on the other wording / the printed order alone / the reversed order alone."""
    cs = countries(results)
    rows = []
    for method in methods(results):
        if method == "plain":
            continue
        row = [method]
        for country in cs:
            if not cells_of(results, country["code"], method):
                row.append(MISSING)
                continue
            v = validity(results, country, method)
            kept = [c["kept"] for c in v["checks"].values()]
            shares = "" if all(k is None for k in kept) else f" ({' / '.join(map(_pct, kept))})"
            row.append(v["verdict"] + shares)
        rows.append(row)
    return Table(["method", *(c["name"] for c in cs)], rows)


def accuracy_summary_table(results: dict[str, Any]) -> Table:
    """CulturalBench accuracy per country: the plain model with its interval, every method's
    mean over seeds, and how many of its runs differ from the plain model at p < 0.05."""
    others = [m for m in methods(results) if m != "plain"]
    rows = []
    for country in countries(results):
        if not country.get("n_questions"):
            continue
        plain = cells_of(results, country["code"], "plain")
        row = [country["name"], str(country["n_questions"])]
        b = plain[0]["bench"] if plain else {"accuracy": None}
        row.append(MISSING if b["accuracy"] is None else f"{b['accuracy']:.2f} {_interval(b)}")
        for method in others:
            cells = cells_of(results, country["code"], method)
            acc = fmt_mean_sd((c["bench"]["accuracy"] for c in cells), 2)
            significant = sum(p < 0.05 for p in _p_values(cells))
            row.append(acc + (f" ({significant}/{len(cells)} p<0.05)" if significant else ""))
        rows.append(row)
    return Table(["country", "n", "plain [95 % CI]", *others], rows)


def _interval(bench: dict[str, Any]) -> str:
    return MISSING if bench.get("low") is None else f"[{bench['low']:.2f}, {bench['high']:.2f}]"


def _pct(x: float | None) -> str:
    return MISSING if x is None else f"{100 * x:.0f} %"
