"""The experiment report: tables and figures built from a ``results.json`` dict.

Every table is a small function returning a :class:`Table`; the report is a list of blocks
(headings, paragraphs, lists, tables, images) rendered once as Markdown and once as standalone
HTML, so both hold the same content. Figures are PNGs drawn with matplotlib's Agg canvas (no
pyplot state), saved under ``figures/`` and referenced by relative path.
"""

from __future__ import annotations

import html
import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from culturetune.errors import CultureTuneError
from culturetune.files import atomic_path, read_json, write_text
from culturetune.validity import (
    HELD_SHARE,
    MIN_GAIN,
    View,
    ViewResult,
    assess,
    check_views,
)
from culturetune.vsm import DIMENSIONS

BASELINES = ("plain", "persona")
MISSING = "—"
#: Short names of the views in tables (others show their key).
VIEW_LABELS = {
    "vsm2013:shown": "official, printed order",
    "vsm2013:reversed": "official, reversed order",
    "vsm2013:both": "official, printed + reversed",
    "vsm2013:cyclic": "official, 5 cyclic orders",
    "paraphrase:both": "paraphrase, printed + reversed",
    "paraphrase:cyclic": "paraphrase, 5 cyclic orders",
}
ROLE_LABELS = {"wording": "other wording", "shown": "printed order alone",
               "reversed": "reversed order alone"}


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
    base, cal = (key[:-4], True) if key.endswith(":cal") else (key, False)
    label = VIEW_LABELS.get(base)
    if label is None:
        path, _, orders = base.rpartition(":")
        label = f"{path.rsplit('/', 1)[-1]}, {orders}"
    return label + (", calibrated" if cal else "")


def headline(results: dict[str, Any]) -> str:
    return results.get("headline", "vsm2013:both")


def view_loss(cell: dict[str, Any], key: str) -> float | None:
    v = cell.get("views", {}).get(key)
    return None if v is None else v["loss"]


def _plain_view(cells: Sequence[dict[str, Any]], key: str) -> float | None:
    m, _ = mean_sd(c["plain_reference"]["views"].get(key) for c in cells)
    return m


def _uniform(results: dict[str, Any], code: str) -> float | None:
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


def _view_of(key: str) -> View:
    parts = key.split(":")
    cal = parts[-1] == "cal"
    if cal:
        parts = parts[:-1]
    return View(":".join(parts[:-1]), parts[-1], cal)


def _checks(results: dict[str, Any], method: str) -> list[tuple[str, str]]:
    """(role, view key) of each check of a method's validity."""
    from culturetune.experiment import view_key

    extra = results["config"].get("validate_instruments") or []
    train = _view_of(training_view(results, method))
    return [(role, view_key(v)) for role, v in check_views(train, extra)]


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
    from culturetune.vsm import parse_constants

    c = parse_constants(constants)
    rows.append(["uniform", *(f"{c[d]:.1f}" for d in DIMENSIONS),
                 _num(_uniform(results, country["code"]))])
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
    rows = [["uniform", *(_num(_uniform(results, c["code"])) for c in cs)]]
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
    para = "paraphrase:both"
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
               "paraphrase, printed + reversed", "gain kept on paraphrase",
               "CulturalBench Δ", "seconds per run", "evaluations / s"]
    return Table(headers, rows)


#: Kept for callers of the first report format's name.
optimizer_table = method_table


def validity(results: dict[str, Any], country: dict[str, Any], method: str) -> dict[str, Any]:
    """Whether a method's alignment held on the views it was not tuned on (mean over seeds):
    see :mod:`culturetune.validity` for the rule."""
    cells = cells_of(results, country["code"], method)
    train = training_view(results, method)

    def row(role: str, key: str) -> ViewResult:
        return ViewResult(role=role, view=view_label(key), instrument=key, orders="",
                          calibrated=key.endswith(":cal"), plain=_plain_view(cells, key),
                          uniform=_uniform(results, country["code"]) or 0.0,
                          tuned=mean_sd(view_loss(c, key) for c in cells)[0])

    v = assess(row("training", train), [row(r, k) for r, k in _checks(results, method)])
    return {"method": method, "training": train, "loss": v.training.tuned,
            "plain": v.training.plain, "verdict": v.verdict,
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
                "reversed": "the reversed order"}
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


# --------------------------------------------------------------------------- figures


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def _series(results: dict[str, Any], country: dict[str, Any]) -> list[tuple[str, list[float]]]:
    """(label, six values) for target and each method (mean over seeds), complete ones only."""
    out = []
    if all(country["target"][d] is not None for d in DIMENSIONS):
        out.append(("target", [float(country["target"][d]) for d in DIMENSIONS]))
    for method in methods(results):
        cells = cells_of(results, country["code"], method)
        means = [mean_sd(c["indices"][d] for c in cells)[0] for d in DIMENSIONS]
        if cells and all(m is not None for m in means):
            out.append((method, means))
    return out


def radar_figure(results: dict[str, Any], country: dict[str, Any], path: Path) -> Path:
    """The six indices of target, plain, persona and tuned methods on one radar chart."""
    import numpy as np

    series = _series(results, country)
    fig = _figure(5.2, 5.2)
    ax = fig.add_subplot(projection="polar")
    angles = np.linspace(0, 2 * np.pi, len(DIMENSIONS), endpoint=False).tolist()
    values = [v for _, vs in series for v in vs] or [0.0]
    ax.set_ylim(min(0.0, min(values) - 10), max(100.0, max(values) + 10))
    for label, vs in series:
        style = {"color": "black", "linewidth": 2.2, "linestyle": "--"} if label == "target" else {}
        ax.plot(angles + angles[:1], vs + vs[:1], label=label, **style)
    ax.set_xticks(angles)
    ax.set_xticklabels(DIMENSIONS)
    ax.set_title(f"{country['name']}: VSM 2013 indices", pad=18)
    ax.legend(loc="upper right", bbox_to_anchor=(1.32, 1.12), fontsize=8)
    return _save(fig, path)


def _curves(cells: Sequence[dict[str, Any]]) -> tuple[list[float], Any] | None:
    """Evaluations and a [runs, steps] array of best-so-far loss, cut to the shortest run."""
    import numpy as np

    hists = [c["tuning"]["history"] for c in cells if c.get("tuning") and c["tuning"]["history"]]
    if not hists:
        return None
    n = min(len(h) for h in hists)
    x = [h["evaluations"] for h in hists[0][:n]]
    return x, np.array([[h["best_loss"] for h in hist[:n]] for hist in hists])


def convergence_figure(results: dict[str, Any], path: Path) -> Path | None:
    """Best loss against evaluations per optimizer and country: median and min–max over seeds."""
    import numpy as np

    opts = tuned_methods(results)
    if not opts:
        return None
    cs = countries(results)
    cols = min(2, len(cs))
    rows = math.ceil(len(cs) / cols)
    fig = _figure(5.0 * cols, 3.4 * rows)
    for i, country in enumerate(cs):
        ax = fig.add_subplot(rows, cols, i + 1)
        for j, method in enumerate(opts):
            curves = _curves(cells_of(results, country["code"], method))
            if curves is None:
                continue
            x, y = curves
            color = f"C{j}"
            ax.plot(x, np.median(y, 0), color=color, label=method)
            if len(y) > 1:
                ax.fill_between(x, y.min(0), y.max(0), color=color, alpha=0.2)
        plain = cells_of(results, country["code"])
        ref = plain[0]["plain_reference"]["views"].get(headline(results)) if plain else None
        if ref is not None:
            ax.axhline(ref, color="grey", linestyle=":", label="plain (order-balanced)")
        ax.set_title(country["name"])
        ax.set_xlabel("evaluations")
        ax.set_ylabel("best loss")
        ax.legend(fontsize=8)
    fig.suptitle("Tuning: best loss on each method's own objective (median over seeds, band = "
                 "min–max)")
    return _save(fig, path)


def loss_bars_figure(results: dict[str, Any], path: Path) -> Path:
    """Grouped bars, one panel per view (official items order-balanced; the paraphrase, never
    tuned on): loss per method (bars) and country (groups), sd over seeds as error bars, the
    uniform answer's loss as a dashed line."""
    import numpy as np

    cs, ms = countries(results), methods(results)
    keys = [headline(results)] + (["paraphrase:both"] if headline(results) != "paraphrase:both"
                                  else [])
    width_in = max(5.0, 1.2 * len(cs) * max(1, len(ms)) / 2)
    fig = _figure(width_in, 3.6 * len(keys))
    width = 0.8 / max(1, len(ms))
    x = np.arange(len(cs))
    for row, key in enumerate(keys):
        ax = fig.add_subplot(len(keys), 1, row + 1)
        for j, method in enumerate(ms):
            stats = [mean_sd(view_loss(c, key) for c in cells_of(results, k["code"], method))
                     for k in cs]
            means = [np.nan if m is None else m for m, _ in stats]
            errs = [0.0 if s is None else s for _, s in stats]
            ax.bar(x + (j - (len(ms) - 1) / 2) * width, means, width, label=method,
                   color=f"C{j}", yerr=errs if any(errs) else None, capsize=3)
        for i, k in enumerate(cs):
            u = _uniform(results, k["code"])
            if u is not None:
                ax.hlines(u, i - 0.45, i + 0.45, colors="black", linestyles="--",
                          label="uniform answers" if i == 0 else None)
        ax.set_xticks(x)
        ax.set_xticklabels([c["name"] for c in cs])
        ax.set_ylabel("loss (mean |index − target|)")
        ax.set_title(f"{view_label(key)}" + (" — never tuned on" if key.startswith("paraphrase")
                                             else ""))
        ax.legend(fontsize=7, ncol=min(len(ms) + 1, 7))
    fig.suptitle("Loss per method and country (error bars: sd over seeds)")
    return _save(fig, path)


def make_figures(results: dict[str, Any], out_dir: Path) -> dict[str, Any]:
    """Draw every figure under ``out_dir/figures``; returns paths relative to ``out_dir``."""
    folder = Path(out_dir) / "figures"
    rel = lambda p: None if p is None else p.relative_to(out_dir).as_posix()  # noqa: E731
    figs: dict[str, Any] = {"radar": {}}
    for country in countries(results):
        path = radar_figure(results, country, folder / f"radar-{country['code']}.png")
        figs["radar"][country["code"]] = rel(path)
    figs["convergence"] = rel(convergence_figure(results, folder / "convergence.png"))
    figs["loss"] = rel(loss_bars_figure(results, folder / "loss-by-method.png"))
    return figs


# --------------------------------------------------------------------------- document


Block = tuple  # ("h", level, text) | ("p", text) | ("list", [text]) | ("table", Table)
# | ("img", path, alt)


def _intro(results: dict[str, Any]) -> list[Block]:
    cfg, mach = results["config"], results.get("machine", {})
    cs = ", ".join(c["name"] for c in countries(results))
    bench = results.get("bench", {})
    versions = ", ".join(f"{k} {v}" for k, v in results.get("versions", {}).items())
    where = mach.get("gpu") or mach.get("cpu") or "unknown"
    bench_orders = (f", option orders {bench['orders']} averaged" if bench.get("orders")
                    else "")
    return [
        ("h", 1, f"Cultural alignment experiment: {results['model']}"),
        (
            "p",
            f"Countries: {cs}. Methods: {', '.join(methods(results))}. Tuned methods: "
            f"{cfg['seeds']} seed(s), {cfg['budget']} evaluations per run (population "
            f"{cfg['population']}, {cfg['tokens']} virtual tokens placed at the "
            f"{cfg['placement']}, subspace {cfg['subspace'] or 'full'}); a method named by its "
            f"optimizer alone is tuned on option orders {cfg.get('orders', 'shown')}"
            + (" with calibration" if cfg.get("calibrate") else "") + ".",
        ),
        (
            "list",
            [
                f"Machine: {where}, {mach.get('cores')} cores, {mach.get('torch_threads')} torch "
                f"threads, device {mach.get('device')}, {mach.get('dtype')}.",
                f"Versions: {versions}.",
                f"CulturalBench: {bench.get('source') or 'not run'} ({bench.get('split')}, "
                f"{bench.get('scoring')} scoring{bench_orders}, "
                + (f"at most {bench['limit']}" if bench.get("limit") else "all")
                + " questions per country).",
                f"Created {results.get('created')}; {len(results['cells'])} cells, "
                f"{results.get('reused_cells', 0)} reused from an earlier run; this run took "
                f"{results.get('seconds', 0) / 60:.1f} min.",
            ],
        ),
        (
            "p",
            "Loss: mean absolute difference between the model's six indices and the country's "
            "scores (lower is better); uniform: the loss of answering every item uniformly "
            "(every index = C), which any reading has to beat to say something. Every cell is "
            "read in the same views: the official items in the printed order, the reversed "
            "order, both averaged (the headline) and all five cyclic orders averaged, and the "
            "paraphrased items (written for culturetune, NOT the official VSM 2013), which no "
            "method is tuned on. Orders are averaged after mapping each answer back to option "
            "order. Tuned methods show mean ± sd over seeds. Indices marked * in a target row "
            "are estimates, not measured scores.",
        ),
    ]


def _section(title: str, text: str, table: Table) -> list[Block]:
    return [("h", 2, title), ("p", text), ("table", table)]


def _overview(results: dict[str, Any], figures: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = _section(
        f"Loss per method: {view_label(headline(results))}",
        "The headline reading: the official items, answers averaged over the printed and the "
        "reversed option order.", loss_table(results))
    if any("paraphrase:both" in c.get("views", {}) for c in results["cells"]):
        blocks += _section(
            "Loss per method on the paraphrased items (held out)",
            "The same, on the paraphrased items: a wording no method was tuned on.",
            loss_table(results, "paraphrase:both"))
    if figures.get("loss"):
        blocks.append(("img", figures["loss"], "Loss per method and country"))
    if tuned_methods(results):
        blocks += _section(
            "Methods compared",
            "Over all countries and seeds: the view each method was tuned on, its loss there "
            "and its gain over the plain model; its loss on the official items read "
            "order-balanced and on the paraphrase (never tuned on); the share of the training "
            "gain kept on the paraphrase; the CulturalBench change against the plain model; "
            "time per tuning run.",
            method_table(results),
        )
        if figures.get("convergence"):
            blocks.append(("img", figures["convergence"], "Best loss against evaluations"))
        blocks += _section(
            "Validity at a glance",
            "Verdict per method and country, with the share of the training gain kept on the "
            "other wording / in the printed order alone / in the reversed order alone (views "
            "equal to the one tuned on are left out); details in the validity section below.",
            verdict_table(results),
        )
    acc = accuracy_summary_table(results)
    if acc.rows:
        blocks += _section(
            "CulturalBench accuracy at a glance",
            "Letter scoring with the options asked in every cyclic order and averaged, so that "
            "a preference for one letter cannot score. Plain model with its 95 % Wilson "
            "interval; other methods: mean ± sd over seeds, with the number of runs whose exact "
            "McNemar test against the plain model gives p < 0.05. Per-seed numbers are in the "
            "country sections.",
            acc,
        )
    return blocks


def _country_blocks(
    results: dict[str, Any], country: dict[str, Any], figures: dict[str, Any]
) -> list[Block]:
    blocks: list[Block] = [
        ("h", 3, f"{country['name']} ({country['code']})"),
        ("p", f"Indices on the headline view ({view_label(headline(results))})."),
        ("table", indices_table(results, country)),
    ]
    radar = figures.get("radar", {}).get(country["code"])
    if radar:
        blocks.append(("img", radar, f"{country['name']}: radar chart of the six indices"))
    if country.get("n_questions"):
        blocks += [
            (
                "p",
                f"CulturalBench accuracy on {country['n_questions']} questions: 95 % Wilson "
                "intervals; p: exact McNemar test against the plain model on the same questions "
                "(b = plain right and method wrong, c = the reverse).",
            ),
            ("table", accuracy_table(results, country)),
        ]
    else:
        note = country.get("bench_note") or "no CulturalBench questions"
        blocks.append(("p", f"CulturalBench accuracy: not available ({note})."))
    return blocks


def _validity_blocks(results: dict[str, Any]) -> list[Block]:
    blocks: list[Block] = [
        ("h", 2, "Validity: does the alignment survive views it was not tuned on?"),
        (
            "p",
            "Each prompt is scored on the view it was tuned on and on checks it never saw: the "
            "paraphrased items (written for culturetune; NOT the official VSM 2013 instrument), "
            "read in the same option orders, and the official items in the printed order alone "
            "and in the reversed order alone. Gain kept: the plain model's loss minus the "
            "prompt's on the check, divided by the same difference on the view it was tuned on. "
            f"Verdict: held when every check keeps at least {100 * HELD_SHARE:.0f} %; collapsed "
            "when a check keeps nothing; partly held otherwise. A method less than "
            f"{MIN_GAIN:g} point below the plain model's loss where it was tuned has no gain to "
            "check.",
        ),
    ]
    for country in countries(results):
        statements = [
            validity_statement(results, country, m)
            for m in methods(results)
            if m != "plain" and cells_of(results, country["code"], m)
        ]
        blocks += [
            ("h", 3, country["name"]),
            ("table", validity_table(results, country)),
            ("list", statements),
        ]
    return blocks


def report_blocks(results: dict[str, Any], figures: dict[str, Any]) -> list[Block]:
    """The whole report as blocks (rendered by :func:`to_markdown` and :func:`to_html`)."""
    blocks = _intro(results) + _overview(results, figures)
    blocks.append(("h", 2, "Countries"))
    for country in countries(results):
        blocks += _country_blocks(results, country, figures)
    return blocks + _validity_blocks(results)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(blocks: Sequence[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            out.append(f"{'#' * block[1]} {block[2]}")
        elif kind == "p":
            out.append(block[1])
        elif kind == "list":
            out.append("\n".join(f"- {item}" for item in block[1]))
        elif kind == "table":
            t: Table = block[1]
            lines = ["| " + " | ".join(_md_cell(h) for h in t.headers) + " |"]
            lines.append("|" + "|".join("---" for _ in t.headers) + "|")
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in t.rows]
            out.append("\n".join(lines))
        elif kind == "img":
            out.append(f"![{block[2]}]({block[1]})")
    return "\n\n".join(out) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222}table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}
th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}img{max-width:100%}"""


def to_html(blocks: Sequence[Block], title: str = "culturetune experiment") -> str:
    e = html.escape
    body: list[str] = []
    for block in blocks:
        kind = block[0]
        if kind == "h":
            body.append(f"<h{block[1]}>{e(block[2])}</h{block[1]}>")
        elif kind == "p":
            body.append(f"<p>{e(block[1])}</p>")
        elif kind == "list":
            body.append("<ul>" + "".join(f"<li>{e(i)}</li>" for i in block[1]) + "</ul>")
        elif kind == "table":
            t: Table = block[1]
            head = "".join(f"<th>{e(h)}</th>" for h in t.headers)
            rows = "".join(
                "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in t.rows
            )
            body.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif kind == "img":
            body.append(f'<p><img src="{e(block[1])}" alt="{e(block[2])}"></p>')
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f"<style>{_CSS}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


RESULTS_KEYS = ("config", "model", "countries", "methods", "cells")


def load_results(folder: str | Path) -> dict[str, Any]:
    """Read ``results.json`` from an experiment folder (or the file itself), checking its shape."""
    path = Path(folder)
    if path.is_dir():
        path = path / "results.json"
    if not path.exists():
        raise CultureTuneError(
            f"{path} does not exist: run `culturetune experiment --out FOLDER` first"
        )
    results = read_json(path)
    from culturetune.experiment import FORMAT

    family = FORMAT.split("/")[0] + "/"
    missing = [k for k in RESULTS_KEYS if not isinstance(results, dict) or k not in results]
    if missing or not str(results.get("format", "")).startswith(family):
        raise CultureTuneError(
            f"{path} is not a culturetune experiment's results.json "
            f"(missing: {', '.join(missing) or 'format'})"
        )
    if results["format"] != FORMAT:
        raise CultureTuneError(
            f"{path} was written by an older culturetune ({results['format']}; this one reads "
            f"{FORMAT}): its report.md is as that version wrote it; run the experiment again "
            "into a new folder for the current views and checks"
        )
    return results


def write_report(results: dict[str, Any], out_dir: str | Path) -> dict[str, Any]:
    """Write figures, ``report.md`` and ``report.html`` into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    figures = make_figures(results, out)
    blocks = report_blocks(results, figures)
    write_text(out / "report.md", to_markdown(blocks))
    write_text(out / "report.html", to_html(blocks, f"culturetune experiment: {results['model']}"))
    return {"markdown": out / "report.md", "html": out / "report.html", "figures": figures}


__all__ = [
    "Table",
    "accuracy_summary_table",
    "accuracy_table",
    "convergence_figure",
    "fmt_mean_sd",
    "indices_table",
    "load_results",
    "loss_bars_figure",
    "loss_table",
    "make_figures",
    "mean_sd",
    "method_table",
    "optimizer_table",
    "radar_figure",
    "report_blocks",
    "to_html",
    "to_markdown",
    "validity",
    "validity_statement",
    "validity_table",
    "verdict_table",
    "write_report",
]
