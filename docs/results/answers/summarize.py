"""Tuning runs side by side: every view of their validity check, the option mass and the verdict.

    python docs/results/answers/summarize.py docs/results/answers/runs [--json]

Reads each run folder's ``culturetune.json`` (written by ``culturetune tune``) and prints one
Markdown table per country: the objective, then plain / tuned loss on each view (the training
objective, the held-out wordings order-balanced, each order alone, and what the model says in
both orders and each alone), with the uniform answer's loss, the option mass plain -> tuned, the
share of replies that name an option, and the verdict with the checks that failed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROLES = ("wording", "shown", "reversed", "said", "said shown", "said reversed")


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def load_runs(root: Path) -> list[dict[str, Any]]:
    runs = []
    for meta_path in sorted(root.glob("*/culturetune.json")):
        meta = json.loads(meta_path.read_text())
        runs.append({"name": meta_path.parent.name, **meta})
    return runs


def row(run: dict[str, Any]) -> dict[str, Any]:
    """One run's numbers: the views by role (the last held-out wording for ``wording``)."""
    v = run["validity"]
    views: dict[str, dict[str, Any]] = {}
    for c in v["checks"]:
        views[c["role"]] = c  # later wordings replace earlier ones: paraphrase2 comes last
    said = views.get("said", {})
    return {
        "run": run["name"], "country": run["config"]["target"]["name"],
        "training": v["training"], "views": views, "verdict": v["verdict"],
        "failed": v.get("failed", []), "plain_mass": v.get("plain_mass"),
        "tuned_mass": v.get("tuned_mass"), "answered": said.get("tuned_answered"),
        "uniform": v["training"]["uniform"],
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = ["run", "tuned on: plain → tuned", *(f"{r}: plain → tuned" for r in ROLES),
            "mass plain → tuned", "said: answered", "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["training"]
        cells = [r["run"], f"{_num(t['plain'])} → {_num(t['tuned'])}"]
        for role in ROLES:
            c = r["views"].get(role)
            cells.append("—" if c is None else f"{_num(c['plain'])} → {_num(c['tuned'])}")
        pm, tm = r["plain_mass"], r["tuned_mass"]
        cells.append("—" if pm is None else f"{pm:.2f} → {tm:.3f}")
        cells.append("—" if r["answered"] is None else f"{r['answered']:.0%}")
        cells.append(r["verdict"])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if not argv or argv[0].startswith("-"):
        sys.exit("usage: summarize.py RUNS_FOLDER [--json]")
    rows = [row(r) for r in load_runs(Path(argv[0]))]
    if not rows:
        sys.exit(f"no culturetune.json under {argv[0]}/*/")
    if "--json" in argv:
        print(json.dumps(rows, indent=2))
        return
    for country in dict.fromkeys(r["country"] for r in rows):
        mine = [r for r in rows if r["country"] == country]
        print(f"### {country} (uniform answers: loss {mine[0]['uniform']:.1f} on every view)\n")
        print(table(mine) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
