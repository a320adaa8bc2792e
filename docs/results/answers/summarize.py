"""Tuning runs side by side: every view of their validity check, the option mass and the verdict.

    python docs/results/answers/summarize.py FOLDER [FOLDER ...] [--one-table] [--json]

Reads the ``culturetune.json`` (written by ``culturetune tune``) of each run folder given, or of
each run folder inside a folder given, and prints one Markdown table per country (or, with
``--one-table``, one table with a row per run and its uniform loss): plain / tuned loss on each
view (the training objective, the last held-out wording order-balanced, each order alone, and
what the model says in both orders and each alone), the option mass plain -> tuned, the share of
replies that name an option, and the verdict.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROLES = ("wording", "shown", "reversed", "said", "said shown", "said reversed")


def _num(x: float | None) -> str:
    return "—" if x is None else f"{x:.1f}"


def load_runs(paths: list[Path]) -> list[dict[str, Any]]:
    runs = []
    for root in paths:
        found = ([root / "culturetune.json"] if (root / "culturetune.json").exists()
                 else sorted(root.glob("*/culturetune.json")))
        for meta_path in found:
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


def table(rows: list[dict[str, Any]], uniform: bool = False) -> str:
    head = ["run", *(["uniform"] if uniform else []), "tuned on: plain → tuned",
            *(f"{r}: plain → tuned" for r in ROLES), "mass plain → tuned", "said: answered",
            "verdict"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        t = r["training"]
        cells = [r["run"], *([_num(r["uniform"])] if uniform else []),
                 f"{_num(t['plain'])} → {_num(t['tuned'])}"]
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
    paths = [Path(a) for a in argv if not a.startswith("-")]
    if not paths:
        sys.exit("usage: summarize.py FOLDER [FOLDER ...] [--one-table] [--json]")
    rows = [row(r) for r in load_runs(paths)]
    if not rows:
        sys.exit(f"no culturetune.json in or under {', '.join(map(str, paths))}")
    if "--json" in argv:
        print(json.dumps(rows, indent=2))
        return
    if "--one-table" in argv:
        print(table(rows, uniform=True))
        return
    for country in dict.fromkeys(r["country"] for r in rows):
        mine = [r for r in rows if r["country"] == country]
        print(f"### {country} (uniform answers: loss {mine[0]['uniform']:.1f} on every view)\n")
        print(table(mine) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
