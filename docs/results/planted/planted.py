"""A planted target: a positive control by construction.

The target is the model's own six indices under a hard system prompt that moves its answers
(culturetune's "strongest disagreement" probe by default), read on the official items in both
orders in the run's answer format. Soft prompts are tuned toward it *without* that system prompt
(``culturetune tune --target-from-system TEXT``, the default objective), one run per seed. An
alignment is known to exist (the hard prompt reaches the target), so the question is whether
tuning finds one, and whether it holds on views it was not tuned on.

For each view (the training wording, the held-out wording, each option order alone, what the
model says) the table gives the distance (L1 loss) from the target of the plain model, of the
hard prompt itself and of each tuned prompt, and the share of the plain model's distance each
closes: ``(plain - x) / plain``.

    python docs/results/planted/planted.py --model qwen2.5-coder-1.5b --format words \
        --seeds 3 --budget 640 --out docs/results/planted/qwen-1.5b-words

Resumable: finished runs are kept, an interrupted one continues. Writes ``planted.json`` and
``planted.md`` in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import culturetune as ct
from culturetune.core.choices import PLACEMENTS
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import write_json, write_text
from culturetune.reading.check import LOW_SYSTEM

#: (label, wording, orders, reading): the views every prompt is read in.
VIEWS = (
    ("training wording (vsm2013, both orders)", "vsm2013", "both", "expected"),
    ("first paraphrase (both orders)", "paraphrase", "both", "expected"),
    ("second paraphrase, never tuned on (both orders)", "paraphrase2", "both", "expected"),
    ("printed order alone", "vsm2013", "shown", "expected"),
    ("reversed order alone", "vsm2013", "reversed", "expected"),
    ("said, both orders", "vsm2013", "both", "said"),
    ("said, printed order", "vsm2013", "shown", "said"),
    ("said, reversed order", "vsm2013", "reversed", "said"),
)


def loss_of(lm: Any, target: Any, fmt: str, view: tuple[str, str, str, str], *,
            system: str | None = None, prompt: Any = None) -> float:
    _, wording, orders, reading = view
    r = ct.survey_model(lm, target, orders=orders, instrument=wording, system=system,
                        prompt=prompt, answers=reading, format=fmt)
    return float(r.loss.value)


def run(args: argparse.Namespace) -> dict[str, Any]:
    out = Path(args.out)
    lm = ct.load_model(args.model)
    runs = []
    for seed in range(args.seeds):
        folder = out / f"s{seed}"
        began = time.perf_counter()
        resume = (folder / "run.json").exists()
        print(f"seed {seed}: {'resuming' if resume else 'tuning'} in {folder}", flush=True)
        settings = dict(format=args.format, seed=seed, budget=args.budget,
                        optimizer=args.optimizer, placement=args.placement, tokens=args.tokens)
        if args.train_instrument is not None:
            settings["train_instruments"] = [args.train_instrument]
        if not resume:
            settings["target_system"] = args.system
        result = ct.tune(lm, None, folder, resume=resume, progress=lambda p: print(
            f"  step {p.step}: {p.evaluations:g}/{p.budget} evals, best {p.best_loss:.2f}, "
            f"{p.rate:.2f} evals/s", flush=True), **settings)
        runs.append((seed, result, time.perf_counter() - began))
    target = runs[0][1].config.target
    known = reused_columns(args.reuse, target, args.format, args.system)
    table = []
    for view in VIEWS:
        if view[0] in known:
            plain, hard = known[view[0]]
        else:
            plain = loss_of(lm, target, args.format, view)
            hard = loss_of(lm, target, args.format, view, system=args.system)
        tuned = [loss_of(lm, target, args.format, view, prompt=r) for _, r, _ in runs]
        table.append({"view": view[0], "wording": view[1], "orders": view[2],
                      "reading": view[3], "plain": plain, "hard_prompt": hard, "tuned": tuned})
        print(f"{view[0]}: plain {plain:.2f}, hard prompt {hard:.2f}, tuned "
              f"{', '.join(f'{t:.2f}' for t in tuned)}", flush=True)
    return {
        "model": lm.name, "format": args.format, "system": args.system,
        "target": target.to_dict(), "budget": args.budget, "optimizer": args.optimizer,
        "placement": args.placement, "tokens": args.tokens,
        "reused_plain_and_hard_from": args.reuse if known else None,
        "objective": runs[0][1].validity.training.view,
        "runs": [{"seed": s, "folder": str(r.folder), "verdict": r.validity.verdict,
                  "failed": r.validity.failed, "evaluations": r.evaluations,
                  "seconds": round(r.seconds, 1), "wall_seconds": round(w, 1),
                  "plain_loss": r.baseline.loss.value, "tuned_loss": r.final.loss.value,
                  "option_mass": [r.baseline.option_mass, r.final.option_mass]}
                 for s, r, w in runs],
        "views": table,
        "command": " ".join(sys.argv),
    }


def reused_columns(path: str | None, target: Any, fmt: str,
                   system: str) -> dict[str, tuple[float, float]]:
    """The plain and hard-prompt losses of an earlier ``planted.json`` (they do not depend on
    the tuned prompt), when it was read toward the same target, format and system prompt; else
    nothing, and they are measured again."""
    if path is None:
        return {}
    old = json.loads(Path(path).read_text())
    same = (old["format"] == fmt and old["system"] == system
            and all(abs(old["target"]["scores"][k] - v) < 1e-6
                    for k, v in target.scores.items()))
    if not same:
        print(f"not reusing {path}: another target, format or system prompt", flush=True)
        return {}
    return {v["view"]: (v["plain"], v["hard_prompt"]) for v in old["views"]}


def closed(plain: float, x: float) -> str:
    return "" if plain <= 0 else f"{100 * (plain - x) / plain:.0f} %"


def markdown(res: dict[str, Any]) -> str:
    lines = [f"# Planted target: {res['model']}, {res['format']} format",
             "",
             f"Target: the model's own indices under the system prompt {res['system']!r} "
             "(official items, both orders, expected reading): "
             + ", ".join(f"{k} {v:.1f}" for k, v in res["target"]["scores"].items()) + ".",
             f"Tuned toward it without that prompt: {res.get('tokens', 5)} virtual tokens "
             f"placed at the {res.get('placement', 'answer')}, {res['optimizer']}, "
             f"{res['budget']} evaluations per seed, objective: {res['objective']}; "
             "culturetune's checks.",
             "",
             "| view | plain | hard prompt (closed) | tuned, mean ± sd over seeds (closed) |",
             "| --- | --- | --- | --- |"]
    for v in res["views"]:
        t = v["tuned"]
        mean = statistics.fmean(t)
        sd = statistics.stdev(t) if len(t) > 1 else 0.0
        lines.append(f"| {v['view']} | {v['plain']:.2f} | {v['hard_prompt']:.2f} "
                     f"({closed(v['plain'], v['hard_prompt'])}) | {mean:.2f} ± {sd:.2f} "
                     f"({closed(v['plain'], mean)}) |")
    lines += ["", "| seed | verdict | checks that failed | evaluations | tuning time |",
              "| --- | --- | --- | --- | --- |"]
    for r in res["runs"]:
        lines.append(f"| {r['seed']} | {r['verdict']} | {', '.join(r['failed']) or '-'} | "
                     f"{r['evaluations']} | {r['seconds'] / 60:.0f} min |")
    lines += ["", f"Reproduce: `{res['command']}`", ""]
    return "\n".join(lines)


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, before the model loads; None when nothing is."""
    if args.placement not in PLACEMENTS:
        return f"unknown placement {args.placement!r}; use one of {', '.join(PLACEMENTS)}"
    if args.tokens < 1 or args.seeds < 1 or args.budget < 1:
        return "--tokens, --seeds and --budget must be at least 1"
    if args.reuse is not None:
        try:
            old = json.loads(Path(args.reuse).read_text())
            if not {"format", "system", "target", "views"} <= old.keys():
                raise ValueError
        except (OSError, ValueError, AttributeError):
            return (f"--reuse {args.reuse}: not a planted.json this script wrote; give one or "
                    "drop --reuse")
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--format", default="words")
    ap.add_argument("--system", default=LOW_SYSTEM)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", type=int, default=640)
    ap.add_argument("--optimizer", default="pso")
    ap.add_argument("--placement", default="answer", help="answer, system or prefix")
    ap.add_argument("--tokens", type=int, default=5, help="virtual tokens")
    ap.add_argument("--reuse", default=None, help="an earlier planted.json whose plain and "
                    "hard-prompt columns (same target, format, system prompt) are reused")
    ap.add_argument("--train-instrument", default=None,
                    help="none: tune on the official items alone (half the cost of the default "
                    "objective, which adds the first paraphrase)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    problem = check_args(args)
    if problem:
        sys.exit(f"error: {problem}")
    try:
        res = run(args)
    except CultureTuneError as e:
        sys.exit(f"error: {e}")
    out = Path(args.out)
    write_json(out / "planted.json", res)
    write_text(out / "planted.md", markdown(res))
    print(markdown(res))


if __name__ == "__main__":
    main()
