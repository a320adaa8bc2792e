"""Candidate-surveys per second for three ways of scoring a population of soft prompts.

(a) naive: one ``generate`` per item per candidate, parsing the number (prefix placement);
(b) one batched full forward per population (prefix placement, nothing cached);
(c) the fastest path: answer placement, item prompts encoded once, candidates attend to the
    shared prefix cache (plus the same in float32, to show what bf16 buys).
(a)-(c) read the items in the printed order only. Then one optimizer step (the whole population)
of each objective: printed order, ``both`` orders (the default), ``cyclic`` and ``both`` with
calibration, and each one's ratio to the printed-order step, all measured in this run. Then the
objectives over training views (``--objective pooled|mean|worst``, one and two training wordings,
with and without the ``--min-mass`` floor) as ratios to the ``both`` step, and what the ``said``
reading costs: a whole ``said`` survey against an ``expected`` one (the greedy reply is read
from the same forward pass; replies are generated only where it spells no option).
Also checks that bf16 keeps the loss ranking of a population, and reports peak memory.

    python benchmarks/bench_tuning.py [--model M] [--population 16] [--tokens 5]
                                      [--objectives-only]

Targets on the 2-core CPU: (c) >= 30x (a); one step of 16 candidates x 24 items < 2 s;
``both`` step <= 2.2x the printed-order step; peak memory of the default tuning path < 2 GB;
``worst`` over two wordings x two orders <= 2.2x the ``both`` step. Answer formats:
benchmarks/bench_formats.py.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch

from culturetune.instrument.formats import match_label
from culturetune.instrument.targets import lookup_country
from culturetune.instrument.vsm import parse_constants
from culturetune.model.generate import generate
from culturetune.model.loading import load_model
from culturetune.reading.survey import Survey
from culturetune.tuning.objective import Objective


def timed(fn, *args, repeat: int = 3) -> float:
    fn(*args)  # warm-up
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--population", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=5)
    ap.add_argument("--naive-candidates", type=int, default=1)
    ap.add_argument("--objectives-only", action="store_true",
                    help="Only the objectives' step times and the said reading's cost.")
    args = ap.parse_args()
    pop, tokens = args.population, args.tokens

    lm = load_model(args.model)
    std = lm.embedding_stats[1]
    gen = torch.Generator().manual_seed(0)
    soft = lm.embedding_stats[0] + std * torch.randn(pop, tokens, lm.hidden_size, generator=gen)
    print(
        f"model {lm.name} on {lm.device}, {lm.dtype}; population {pop} x {tokens} tokens, "
        f"{torch.get_num_threads()} threads"
    )
    if args.objectives_only:
        objectives(lm, soft, lookup_country("China"), parse_constants(None))
        return

    # The default objective first, so that its peak memory (the tuning run's) is measured alone.
    both = Survey(lm, placement="answer", orders="both")
    t_both = timed(lambda: both.option_probs(soft))
    peak_tuning = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    answer = Survey(lm, placement="answer", orders="shown")
    t_c = timed(lambda: answer.option_probs(soft)) / pop
    step = t_c * pop
    t_cyclic = timed(Survey(lm, placement="answer", orders="cyclic").option_probs, soft)
    t_cal = timed(Survey(lm, placement="answer", orders="both", calibrate=True).option_probs,
                  soft)

    prefix = Survey(lm, placement="prefix", orders="shown")
    n_items = len(prefix.vars)

    def naive() -> None:
        for c in range(args.naive_candidates):
            for i in range(n_items):
                seg = type(prefix.segments)([prefix.segments.pre[i]], [prefix.segments.post[i]])
                match_label(generate(lm, seg, soft[c], max_new_tokens=4)[0], "number", 5)

    t_a = timed(naive, repeat=1) / args.naive_candidates
    t_b = timed(lambda: prefix.option_probs(soft)) / pop
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the float32 copy

    lm32 = load_model(args.model, dtype="float32")
    answer32 = Survey(lm32, placement="answer", orders="shown")
    t_c32 = timed(lambda: answer32.option_probs(soft)) / pop

    target = lookup_country("China")
    constants = parse_constants(None)
    loss_fast = Objective(answer, target, constants)(soft)
    loss_32 = Objective(answer32, target, constants)(soft)
    rho = spearman(loss_fast, loss_32)
    same_best = int(np.argmin(loss_fast)) == int(np.argmin(loss_32))

    rows = [
        ("(a) naive generate, per item per candidate", t_a),
        ("(b) batched full forward, prefix", t_b),
        (f"(c) shared prefix cache, answer, {lm.dtype}", t_c),
        ("(c) same path in float32", t_c32),
    ]
    print(f"{'method':48s} {'s/candidate':>12s} {'cand-surveys/s':>15s} {'vs (a)':>8s}")
    for name, t in rows:
        print(f"{name:48s} {t:12.4f} {1 / t:15.2f} {t_a / t:7.1f}x")
    print(
        f"ratio (c)/(a): {t_a / t_c:.1f}x   target >= 30x: {'ok' if t_a / t_c >= 30 else 'MISSED'}"
    )
    print(f"ratio (c)/(b): {t_b / t_c:.1f}x")
    print(
        f"one step of {pop} candidates x {n_items} items: {step:.2f} s   target < 2 s: "
        f"{'ok' if step < 2 else 'MISSED'}"
    )
    print(
        f"{lm.dtype} vs float32: loss Spearman rho {rho:.3f}, same best candidate: {same_best}, "
        f"max |loss diff| {np.abs(loss_fast - loss_32).max():.3f}"
    )
    print(f"one optimizer step ({pop} candidates), objective by option orders:")
    for name, t, prompts in [("shown (printed order)", step, 24), ("both (default)", t_both, 48),
                             ("cyclic", t_cyclic, 120), ("both + calibration", t_cal, 96)]:
        print(f"  {name:24s} {t:7.2f} s  {prompts:4d} prompts  {t / step:5.2f}x the printed-order "
              "step")
    print(f"ratio both/shown: {t_both / step:.2f}x   target <= 2.2x: "
          f"{'ok' if t_both / step <= 2.2 else 'MISSED'}")
    print(
        f"peak memory of the default tuning path (both orders): {peak_tuning:.0f} MB   "
        f"target < 2048 MB: {'ok' if peak_tuning < 2048 else 'MISSED'}"
    )
    print(f"peak memory with (a) and (b) too: {peak:.0f} MB (the full forward of (b) holds "
          "activations for every candidate x item x prompt token)")
    objectives(lm, soft, target, constants)


def objectives(lm, soft: torch.Tensor, target, constants) -> None:
    """Step time of each objective over training views, as a ratio to the ``both`` step."""
    from culturetune.reading.administer import run_survey

    wordings = {w: Survey(lm, w, placement="answer", orders="both")
                for w in ("vsm2013", "paraphrase")}
    base = Objective(wordings["vsm2013"], target, constants)  # today's `both` objective
    t_base = timed(base, soft)
    print(f"one step ({soft.shape[0]} candidates) of each objective, vs the both step "
          f"({t_base:.2f} s):")
    worst2 = None
    for aggregate in ("pooled", "mean", "worst"):
        for names in (["vsm2013"], ["vsm2013", "paraphrase"]):
            for floor in (None, 0.5):
                obj = Objective([wordings[w] for w in names], target, constants,
                                aggregate=aggregate, min_mass=floor)
                t = timed(obj, soft)
                if aggregate == "worst" and len(names) == 2 and floor is None:
                    worst2 = t
                label = f"{aggregate}, {len(names)} wording(s) x 2 orders" + (
                    f", mass floor {floor:g}" if floor else "")
                print(f"  {label:48s} {t:6.2f} s  {t / t_base:5.2f}x")
    print(f"ratio worst (2 wordings x 2 orders)/both: {worst2 / t_base:.2f}x   target <= 2.2x: "
          f"{'ok' if worst2 / t_base <= 2.2 else 'MISSED'}")
    survey = wordings["vsm2013"]
    kw = dict(constants=constants, target=target)
    t_exp = timed(lambda: run_survey(survey, answers="expected", **kw))
    t_said = timed(lambda: run_survey(survey, answers="said", **kw))
    print(f"a whole survey of the plain model: expected {t_exp:.3f} s, said {t_said:.3f} s "
          f"({100 * (t_said / t_exp - 1):+.1f} %; replies are generated only where the first "
          "token is no option)")


if __name__ == "__main__":
    main()
