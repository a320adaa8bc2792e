"""One tuning step in each answer format, as a ratio to the number format, on each model.

A step is the default objective's work for a population of soft prompts: the items read in both
option orders (``both``), every candidate in one batch. ``number`` and ``letter`` read one next
token per prompt; ``words`` scores every option's whole words as the reply (its tokens as a trie
under a tree mask, in the same forward pass). Also the ``worst`` objective over two wordings x two
orders (the default objective) against the ``both`` step, in each format, and what the greedy
``said`` reading adds. Every ratio is measured in this run.

    python benchmarks/bench_formats.py [--model M ...] [--population 16] [--tokens 5]
                                       [--repeat 3]

Targets on the 2-core CPU: a ``words`` step at most 2.5x the ``number`` step; the ``worst``
objective over two wordings x two orders at most 2.2x the ``both`` step.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from culturetune.instrument.targets import lookup_country
from culturetune.instrument.vsm import parse_constants
from culturetune.model.loading import load_model
from culturetune.reading.prompts import format_problem
from culturetune.reading.survey import Survey
from culturetune.tuning.objective import Objective

FORMATS = ("number", "letter", "words")


def timed(fn, *args) -> float:
    fn(*args)  # warm-up (builds the prefix caches)
    times = []
    for _ in range(REPEAT):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


REPEAT = 3


def bench(name: str | None, pop: int, tokens: int) -> dict[str, float]:
    lm = load_model(name)
    std = lm.embedding_stats[1]
    gen = torch.Generator().manual_seed(0)
    soft = lm.embedding_stats[0] + std * torch.randn(pop, tokens, lm.hidden_size, generator=gen)
    target, constants = lookup_country("China"), parse_constants(None)
    print(f"model {lm.name} on {lm.device}, {lm.dtype}; population {pop} x {tokens} tokens, "
          f"{torch.get_num_threads()} threads")
    out: dict[str, float] = {}
    for fmt in FORMATS:
        problem = format_problem(lm, Survey(lm, "vsm2013", orders="shown").instrument, fmt)
        if problem:
            print(f"  {fmt}: cannot be asked ({problem})")
            continue
        surveys = [Survey(lm, w, orders="both", format=fmt) for w in ("vsm2013", "paraphrase")]
        both = Objective(surveys[0], target, constants)
        worst = Objective(surveys, target, constants, aggregate="worst")
        t_both, t_worst = timed(both, soft), timed(worst, soft)
        nodes = surveys[0].scorer.replies.n_internal
        out[fmt], out[f"{fmt}-worst"] = t_both, t_worst
        print(f"  {fmt:7s} both step {t_both:6.2f} s; worst of 2 wordings x 2 orders "
              f"{t_worst:6.2f} s = {t_worst / t_both:4.2f}x the both step   target <= 2.2x: "
              f"{'ok' if t_worst / t_both <= 2.2 else 'MISSED'}   (trie: up to {nodes} "
              "internal nodes per prompt)")
    if "words" in out and "number" in out:
        ratio = out["words"] / out["number"]
        print(f"  ratio words/number (both step): {ratio:.2f}x   target <= 2.5x: "
              f"{'ok' if ratio <= 2.5 else 'MISSED'}")
    if "letter" in out and "number" in out:
        print(f"  ratio letter/number: {out['letter'] / out['number']:.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"  peak resident memory so far: {peak:.0f} MB")
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", action="append", default=None,
                    help="A model to measure (repeatable; default: the bundled model)")
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3, help="timed steps (the median is shown)")
    args = ap.parse_args()
    global REPEAT
    REPEAT = args.repeat
    for name in args.model or [None]:
        bench(name, args.population, args.tokens)


if __name__ == "__main__":
    main()
