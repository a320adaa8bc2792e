"""Two tuned methods of one experiment side by side, paired by country and seed.

    python docs/results/compare_methods.py docs/results/default/results.json pso cma

Prints a Markdown table per country (mean ± sd over seeds: loss on the official wording and on
the paraphrase, both orders; the share of the training gain kept on the paraphrase, mean gain
there over mean training gain; each single order; option mass; CulturalBench accuracy) and, over
every (country, seed) pair, how often the second method had the lower loss in each view, with
the Wilcoxon signed-rank test (scipy) on the differences. The paraphrase (order-balanced) is the
held-out view: neither method saw it.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy.stats import wilcoxon

TRAIN, HELD_OUT = "vsm2013:both", "paraphrase:both"
MIN_GAIN = 0.5  # as the report: a smaller training gain gives no meaningful share


def mean_sd(xs: list[float], fmt: str = ".1f") -> str:
    if not xs:
        return "—"
    if len(xs) == 1:
        return format(xs[0], fmt)
    return f"{statistics.fmean(xs):{fmt}} ± {statistics.stdev(xs):{fmt}}"


def kept(runs: list[dict[str, Any]]) -> float | None:
    """The mean gain on the paraphrase over the mean gain on the training view (gains over the
    plain model; a ratio of means, so that a seed with a tiny training gain cannot dominate)."""
    ref = runs[0]["plain_reference"]["views"]
    gain = statistics.fmean(ref[TRAIN] - c["views"][TRAIN]["loss"] for c in runs)
    if gain < MIN_GAIN:
        return None
    return statistics.fmean(ref[HELD_OUT] - c["views"][HELD_OUT]["loss"] for c in runs) / gain


def main(path: str, a: str, b: str) -> None:
    results = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = {(c["country"], c["method"], c["seed"]): c for c in results["cells"]}
    countries = list(dict.fromkeys(c["country"] for c in results["cells"]))
    print("| country | method | official (both) | paraphrase (both) | kept on paraphrase | "
          "printed alone | reversed alone | option mass | CulturalBench |")
    print("|---|---|---|---|---|---|---|---|---|")
    pairs = []
    for country in countries:
        plain = cells[(country, "plain", None)]
        for method in (a, b):
            runs = [c for (k, m, _), c in cells.items() if k == country and m == method]
            share = kept(runs)
            row = [country, method,
                   mean_sd([c["views"][TRAIN]["loss"] for c in runs]),
                   mean_sd([c["views"][HELD_OUT]["loss"] for c in runs]),
                   "—" if share is None else f"{100 * share:.0f} %",
                   mean_sd([c["views"]["vsm2013:shown"]["loss"] for c in runs]),
                   mean_sd([c["views"]["vsm2013:reversed"]["loss"] for c in runs]),
                   mean_sd([c["views"][TRAIN]["option_mass"] for c in runs], ".3f"),
                   mean_sd([c["bench"]["accuracy"] for c in runs], ".2f")]
            print("| " + " | ".join(row) + " |")
        print(f"| {country} | plain | {plain['views'][TRAIN]['loss']:.1f} | "
              f"{plain['views'][HELD_OUT]['loss']:.1f} | | "
              f"{plain['views']['vsm2013:shown']['loss']:.1f} | "
              f"{plain['views']['vsm2013:reversed']['loss']:.1f} | "
              f"{plain['views'][TRAIN]['option_mass']:.3f} | {plain['bench']['accuracy']:.2f} |")
        for (k, m, seed), c in cells.items():
            if k == country and m == a and (k, b, seed) in cells:
                pairs.append((c, cells[(k, b, seed)]))
    print()
    for view in (HELD_OUT, TRAIN, "vsm2013:shown", "vsm2013:reversed"):
        x = [p[0]["views"][view]["loss"] for p in pairs]
        y = [p[1]["views"][view]["loss"] for p in pairs]
        lower = sum(v < u for u, v in zip(x, y, strict=True))
        print(f"{view} loss over {len(pairs)} (country, seed) pairs: {a} mean "
              f"{statistics.fmean(x):.2f}, {b} mean {statistics.fmean(y):.2f}; {b} lower in "
              f"{lower} of {len(pairs)}; Wilcoxon signed-rank p = "
              f"{wilcoxon([u - v for u, v in zip(x, y, strict=True)]).pvalue:.3f}")

if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1].strip())
    main(*sys.argv[1:])
