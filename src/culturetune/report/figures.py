"""The figures of an experiment report: PNGs drawn with matplotlib's Agg canvas (no pyplot
state), saved under ``figures/`` and referenced by relative path.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from culturetune.core.files import atomic_path
from culturetune.instrument.vsm import DIMENSIONS
from culturetune.report.tables import (
    cells_of,
    countries,
    headline,
    held_out,
    mean_sd,
    methods,
    tuned_methods,
    uniform_loss,
    view_label,
    view_loss,
)


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
    para = held_out(results)
    keys = [headline(results)] + ([para] if headline(results) != para else [])
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
            u = uniform_loss(results, k["code"])
            if u is not None:
                ax.hlines(u, i - 0.45, i + 0.45, colors="black", linestyles="--",
                          label="uniform answers" if i == 0 else None)
        ax.set_xticks(x)
        ax.set_xticklabels([c["name"] for c in cs])
        ax.set_ylabel("loss (mean |index − target|)")
        ax.set_title(f"{view_label(key)}" + (" — never tuned on" if key == para
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
