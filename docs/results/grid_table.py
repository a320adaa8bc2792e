"""One table of an experiment folder's cells, every view of each: read from the cell files
(``cells/<code>/<method>.json``), so that it also covers a grid whose last cells are still to
run. Writes ``table.md`` in the folder and prints it.

    python docs/results/grid_table.py docs/results/reference-1.5b-words

Per cell: forward-equivalents and steps of the tuning run, its wall time (tuning / whole cell,
checks and CulturalBench included), L1 loss to the country on the official items (both orders:
the headline), the training objective (tuned cells: the worst of the official items and the
first paraphrase, each order alone, with the option-mass floor), the second paraphrase (never
tuned on), each option order alone, what the model says in each order, the option mass, the
verdict with the share of the training gain kept (never-tuned wording / printed / reversed), and
CulturalBench-Easy accuracy with its 95 % interval and the exact McNemar test against the plain
model. Verdicts come from the report's own rule (``culturetune.report.tables.validity``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from culturetune.core.files import write_text
from culturetune.core.stats import compare
from culturetune.report.tables import validity, view_label

#: Short names of the checks in the verdict column.
ROLE = {"shown": "printed", "said shown": "said printed",
        "said reversed": "said reversed", "said": "said both"}


def load(folder: Path) -> dict[str, Any]:
    """The folder's ``results.json`` with its cells replaced by every cell file there."""
    results = json.loads((folder / "results.json").read_text())
    cells = [json.loads(p.read_text()) for p in sorted((folder / "cells").glob("*/*.json"))]
    order = {m: i for i, m in enumerate(["plain", "persona", "adam", "de", "cma", "pso"])}
    results["cells"] = sorted(cells, key=lambda c: order.get(c["method"], 99))
    methods = list(dict.fromkeys([*results["methods"], *(c["method"] for c in cells)]))
    results["methods"] = sorted(methods, key=lambda m: order.get(m, 99))
    tuned = next((s for s in results["specs"].values() if s.get("optimizer")), None)
    for c in cells:
        if c["method"] not in results["specs"] and tuned is not None:
            results["specs"][c["method"]] = {**tuned, "optimizer": c["optimizer"]}
    return results


def pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.0f} %"


def row(results: dict[str, Any], country: dict[str, Any], cell: dict[str, Any],
        plain: dict[str, Any] | None) -> list[str]:
    fmt = results["answer_format"]
    views = cell["views"]

    def loss(key: str) -> str:
        v = views.get(key)
        return "" if v is None else f"{v['loss']:.2f}"

    tuning = cell.get("tuning") or {}
    fe = tuning.get("evaluations")
    steps = len(tuning.get("history") or [])
    verdict = kept = ""
    if cell["method"] != "plain":
        v = validity(results, country, cell["method"])
        roles = {view_label(k): (k.split(":")[0] if c["role"] == "wording"
                                 else ROLE.get(c["role"], c["role"]))
                 for k, c in v["checks"].items()}
        failed = [roles.get(f, f) for f in v["failed"]]
        verdict = v["verdict"] + (f" (failed: {', '.join(failed)})" if failed else "")
        share = v["checks"].get(f"paraphrase2:both:{fmt}", {}).get("kept")
        kept = "" if share is None else f"{100 * share:.1f} %"
    b = cell.get("bench") or {}
    bench = ""
    if b.get("accuracy") is not None:
        bench = f"{b['accuracy']:.3f} [{b['low']:.2f}, {b['high']:.2f}]"
        if plain is not None and cell is not plain:
            keys = sorted(plain["bench"]["correct"])
            p = compare([plain["bench"]["correct"][k] for k in keys],
                        [b["correct"][k] for k in keys]).p_value
            bench += f", p = {p:.2f}"
    mass = views.get(f"vsm2013:both:{fmt}", {}).get("option_mass")
    return [
        country["name"], cell["method"],
        "" if fe is None else f"{fe:.0f} ({steps})",
        (f"{tuning['seconds'] / 60:.1f} / " if tuning.get("seconds") else "")
        + f"{cell['seconds'] / 60:.1f} min",
        loss(f"vsm2013:both:{fmt}"),
        "" if not tuning else f"{tuning['best_search_loss']:.2f}",
        loss(f"paraphrase2:both:{fmt}") + (f" ({kept} kept)" if kept else ""),
        loss(f"vsm2013:shown:{fmt}"), loss(f"vsm2013:reversed:{fmt}"),
        f"{loss(f'vsm2013:shown:{fmt}:said')} / {loss(f'vsm2013:reversed:{fmt}:said')}",
        "" if mass is None else f"{mass:.2f}",
        verdict, bench,
    ]


def main(folder: Path) -> str:
    results = load(folder)
    head = ["country", "method", "fe (steps)", "wall: tuning / cell", "official, both orders",
            "training objective", "never-tuned wording", "printed alone", "reversed alone",
            "said: printed / reversed", "option mass", "verdict",
            "CulturalBench-Easy [95 % CI], McNemar vs plain"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for country in results["countries"]:
        cells = [c for c in results["cells"] if c["code"] == country["code"]]
        plain = next((c for c in cells if c["method"] == "plain"), None)
        for cell in cells:
            lines.append("| " + " | ".join(row(results, country, cell, plain)) + " |")
    total = sum(c["seconds"] for c in results["cells"]) / 60
    text = "\n".join(lines) + f"\n\n{len(results['cells'])} cells, {total:.0f} min in all.\n"
    write_text(folder / "table.md", text)
    return text


if __name__ == "__main__":
    print(main(Path(sys.argv[1])))
