"""Two tuned methods of one experiment side by side, paired by country and seed.

    python docs/results/compare_methods.py docs/results/default/results.json pso cma

Prints a Markdown table per country (mean ± sd over seeds: loss on the official wording and on
the paraphrase, both orders; the share of the training gain kept on the paraphrase, as the
report's validity section computes it from the seed-averaged losses; each single order; option
mass; CulturalBench accuracy) and, over every (country, seed) pair, how often the second method
had the lower loss in each view, with the Wilcoxon signed-rank test (scipy) on the differences.
The paraphrase (order-balanced) is the held-out view: neither method saw it.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from scipy.stats import wilcoxon

from culturetune.report.tables import (
    cells_of,
    countries,
    fmt_mean_sd,
    validity,
    view_loss,
)

TRAIN, HELD_OUT = "vsm2013:both", "paraphrase:both"
VIEWS = (HELD_OUT, TRAIN, "vsm2013:shown", "vsm2013:reversed")


def row(country: str, method: str, runs: list[dict[str, Any]], kept: float | None) -> str:
    mass = [c["views"][TRAIN]["option_mass"] for c in runs]
    cells = [country, method,
             *(fmt_mean_sd(view_loss(c, v) for c in runs) for v in (TRAIN, HELD_OUT)),
             "" if kept is None else f"{100 * kept:.0f} %",
             *(fmt_mean_sd(view_loss(c, v) for c in runs) for v in VIEWS[2:]),
             fmt_mean_sd(mass, 3), fmt_mean_sd((c["bench"]["accuracy"] for c in runs), 2)]
    return "| " + " | ".join(cells) + " |"


def main(path: str, a: str, b: str) -> None:
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
        have = {c["method"] for c in results["cells"]}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        sys.exit(f"error: {path} is not an experiment's results.json ({exc})")
    for method in (a, b):
        if method not in have or method in ("plain", "persona"):
            sys.exit(f"error: {method!r} is not a tuned method of {path}; it has: "
                     f"{', '.join(sorted(have - {'plain', 'persona'}))}")
    print("| country | method | official (both) | paraphrase (both) | kept on paraphrase | "
          "printed alone | reversed alone | option mass | CulturalBench |")
    print("|---|---|---|---|---|---|---|---|---|")
    pairs = []
    for country in countries(results):
        code = country["code"]
        for method in (a, b):
            kept = validity(results, country, method)["checks"][HELD_OUT]["kept"]
            print(row(country["name"], method, cells_of(results, code, method), kept))
        print(row(country["name"], "plain", cells_of(results, code, "plain"), None))
        seeds = {c["seed"]: c for c in cells_of(results, code, b)}
        pairs += [(c, seeds[c["seed"]]) for c in cells_of(results, code, a) if c["seed"] in seeds]
    print()
    for view in VIEWS:
        x = [view_loss(p, view) for p, _ in pairs]
        y = [view_loss(q, view) for _, q in pairs]
        lower = sum(v < u for u, v in zip(x, y, strict=True))
        print(f"{view} loss over {len(pairs)} (country, seed) pairs: {a} mean "
              f"{statistics.fmean(x):.2f}, {b} mean {statistics.fmean(y):.2f}; {b} lower in "
              f"{lower} of {len(pairs)}; Wilcoxon signed-rank p = "
              f"{wilcoxon([u - v for u, v in zip(x, y, strict=True)]).pvalue:.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__.split("\n\n")[1].strip())
    main(*sys.argv[1:])
