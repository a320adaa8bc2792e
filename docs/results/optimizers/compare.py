"""Optimizers at equal compute: the training loss against forward-equivalents, and the views no
optimizer was tuned on.

One forward-equivalent is one candidate's forward pass over the training prompts; a
derivative-free evaluation costs 1 and an Adam step its counted forward + backward (about 2), so
that ``--budget`` buys every optimizer the same compute. Each cell (optimizer x budget x seed) is
one ``culturetune tune`` run with the default objective (worst of vsm2013 and the first paraphrase
x both orders, option-mass floor 0.5 x plain) and its own checks, read from the run's
``culturetune.json``: the training loss, the second paraphrase (never tuned on, both orders),
each option order alone, what the model says (both orders, printed, reversed), the option mass,
the verdict, the wall time and the forward-equivalents spent.

    python docs/results/optimizers/compare.py --model qwen2.5-coder-1.5b --format words \
        --planted --optimizers adam,pso --budgets 60 --seeds 1 \
        --out docs/results/optimizers/planted-1.5b-words
    python docs/results/optimizers/compare.py --country China --format number \
        --optimizers adam,pso,de,cma --budgets 80,160,320 \
        --out docs/results/optimizers/china-smollm2

``--init-text TEXT`` starts every cell from TEXT's embeddings instead of the default start (how
much a result owes to where it began, where the seed does not enter).
``--planted`` tunes toward the model's own indices under culturetune's "strongest disagreement"
system prompt (a target a prompt is known to reach); with ``--lead TEXT`` toward its indices with
TEXT's embeddings in the soft prompt's own place (``--tokens`` of them), a point of the space.
Resumable: finished cells are read back, an interrupted one continues. Writes ``compare.json``,
``compare.md`` and ``compare.png`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import culturetune as ct
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import write_json, write_text
from culturetune.reading.check import LOW_SYSTEM

#: (column, validity role): the views each cell reports, from its run's checks.
VIEWS = (
    ("never-tuned wording", "wording"),
    ("printed alone", "shown"),
    ("reversed alone", "reversed"),
    ("said, both", "said"),
    ("said, printed", "said shown"),
    ("said, reversed", "said reversed"),
)


def cell(lm: Any, args: argparse.Namespace, optimizer: str, budget: int, seed: int) -> dict:
    """One run (tuned, or read back where it finished) and what it reports; ``lm()`` gives the
    model, loaded where a cell still has to be tuned."""
    folder = Path(args.out) / f"{optimizer}-b{budget}-s{seed}"
    done = folder / "culturetune.json"
    if not done.exists():
        resume = (folder / "run.json").exists()
        settings: dict[str, Any] = dict(format=args.format, seed=seed, budget=budget,
                                        optimizer=optimizer, tokens=args.tokens)
        if args.init_text is not None:
            settings.update(init="text", init_text=args.init_text)
        if args.planted and not resume:
            if args.lead is not None:
                settings["target_lead"] = args.lead
            else:
                settings["target_system"] = args.system
        began = time.perf_counter()
        print(f"{folder.name}: {'resuming' if resume else 'tuning'}", flush=True)
        ct.tune(lm(), None if args.planted or resume else args.country, folder, resume=resume,
                progress=lambda p: print(f"  step {p.step}: {p.evaluations:g}/{p.budget} "
                                         f"forward-equivalents, best {p.best_loss:.2f}",
                                         flush=True), **settings)
        print(f"{folder.name}: {time.perf_counter() - began:.0f} s", flush=True)
    meta = json.loads(done.read_text())
    checks = {c["role"]: c for c in meta["validity"]["checks"]}
    training = meta["validity"]["training"]
    history = [json.loads(json.dumps(r)) for r in _history(folder)]
    return {
        "optimizer": optimizer, "budget": budget, "seed": seed, "folder": str(folder),
        "forward_equivalents": meta["evaluations"], "steps": meta.get("steps"),
        "seconds": round(meta["seconds"], 1),
        "training": {"plain": training["plain"], "tuned": meta["best_search_loss"]},
        "views": {name: {"plain": checks[role]["plain"], "tuned": checks[role]["tuned"]}
                  for name, role in VIEWS if role in checks},
        "plain_mass": meta["validity"]["plain_mass"], "tuned_mass": meta["validity"]["tuned_mass"],
        "verdict": meta["validity"]["verdict"], "failed": meta["validity"]["failed"],
        "history": history,
    }


def _history(folder: Path) -> list[dict[str, float]]:
    import csv

    with (folder / "history.csv").open() as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def shell(args: list[str]) -> str:
    """``args`` as one line of a POSIX shell (``$'...'`` where an argument holds a newline)."""
    def one(a: str) -> str:
        if "\n" not in a:
            return shlex.quote(a)
        return "$'" + a.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"
    return " ".join(one(a) for a in args)


def closed(plain: float, x: float) -> str:
    return f"{x:.2f} ({(plain - x) / plain:.0%})" if plain else f"{x:.2f}"


def table(cells: list[dict]) -> str:
    head = ["optimizer", "budget (fe)", "seed", "steps", "training objective"]
    head += [name for name, _ in VIEWS] + ["option mass", "verdict", "wall"]
    rows = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    first = cells[0]
    plain = ["plain", "", "", "", f"{first['training']['plain']:.2f}"]
    plain += [f"{first['views'][n]['plain']:.2f}" if n in first["views"] else "" for n, _ in VIEWS]
    plain += [f"{first['plain_mass']:.2f}", "", ""]
    rows.append("| " + " | ".join(plain) + " |")
    for c in cells:
        row = [c["optimizer"], f"{c['forward_equivalents']:g}", str(c["seed"]),
               str(c["steps"] or ""), closed(c["training"]["plain"], c["training"]["tuned"])]
        row += [closed(c["views"][n]["plain"], c["views"][n]["tuned"]) if n in c["views"] else ""
                for n, _ in VIEWS]
        row += [f"{c['tuned_mass']:.2f}", c["verdict"], f"{c['seconds'] / 60:.1f} min"]
        rows.append("| " + " | ".join(row) + " |")
    return "\n".join(rows)


def figure(cells: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    colours: dict[str, Any] = {}
    for c in cells:
        h = c["history"]
        line, = ax.plot([r["evaluations"] for r in h], [r["best_loss"] for r in h],
                        color=colours.get(c["optimizer"]), alpha=0.8,
                        label=None if c["optimizer"] in colours else c["optimizer"])
        colours.setdefault(c["optimizer"], line.get_color())
        unseen = c["views"].get("never-tuned wording")
        if unseen:
            ax.scatter([c["forward_equivalents"]], [unseen["tuned"]], marker="x",
                       color=colours[c["optimizer"]], zorder=3)
    ax.axhline(cells[0]["training"]["plain"], color="grey", ls=":", label="plain (training)")
    unseen = cells[0]["views"].get("never-tuned wording")
    if unseen:
        ax.axhline(unseen["plain"], color="grey", ls="--", label="plain (never-tuned wording)")
    ax.set_xlabel("forward-equivalents")
    ax.set_ylabel("L1 distance to the target")
    ax.scatter([], [], marker="x", color="black", label="never-tuned wording, at the end")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--format", default="words")
    ap.add_argument("--country", default="China")
    ap.add_argument("--planted", action="store_true")
    ap.add_argument("--system", default=LOW_SYSTEM)
    ap.add_argument("--lead", default=None, help="with --planted: plant the target with this "
                    "text at the soft prompt's own place (inside the search space)")
    ap.add_argument("--tokens", type=int, default=5)
    ap.add_argument("--init-text", default=None, help="start from this text's embeddings "
                    "(its first --tokens tokens) instead of the default start")
    ap.add_argument("--optimizers", default="adam,pso")
    ap.add_argument("--budgets", default="60")
    ap.add_argument("--seeds", type=int, default=1)
    ap.add_argument("--adam-seeds", type=int, default=None,
                    help="seeds for adam (default: --seeds)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:
        optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
        budgets = [int(b) for b in args.budgets.split(",")]
        if not optimizers or any(b < 1 for b in budgets) or args.seeds < 1:
            raise ValueError("need optimizers, budgets >= 1 and --seeds >= 1")
    except ValueError as exc:
        sys.exit(f"error: {exc}")
    try:
        loaded: list[Any] = []

        def lm() -> Any:
            if not loaded:
                loaded.append(ct.load_model(args.model))
            return loaded[0]

        cells = [cell(lm, args, o, b, s) for o in optimizers for b in budgets
                 for s in range((args.adam_seeds or args.seeds) if o == "adam" else args.seeds)]
    except CultureTuneError as exc:
        sys.exit(f"error: {exc}")
    out = Path(args.out)
    what = ("planted target" + (" inside the search space" if args.lead else "")
            if args.planted else args.country)
    name = args.model or "smollm2-135m-instruct"
    title = f"{name}, {args.format} format, {what}"
    if args.init_text is not None:
        title += f", started from {args.init_text!r}"
    write_json(out / "compare.json", {"model": name, "format": args.format, "target": what,
                                      "cells": cells})
    figure(cells, out / "compare.png", title)
    text = (f"# Optimizers at equal compute: {title}\n\nL1 distance to the target (share of the "
            "plain model's distance closed). Budget in forward-equivalents (fe). Reproduce: "
            f"`python docs/results/optimizers/compare.py {shell(sys.argv[1:])}`\n\n"
            f"{table(cells)}\n\n![loss against forward-equivalents](compare.png)\n")
    write_text(out / "compare.md", text)
    print(text)


if __name__ == "__main__":
    main()
