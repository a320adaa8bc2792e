"""What an Adam step costs, in forward-equivalents, measured in one run.

One forward-equivalent is one candidate's forward pass over the training prompts (what a
derivative-free optimizer pays per evaluation). For the default objective (worst of vsm2013 and
the first paraphrase x both orders, mass floor) this measures, on one prompt:
- the forward pass (the objective read for one candidate), timed;
- an Adam step through one graph (``--grad-chunk`` none), timed and counted in FLOPs
  (``torch.utils.flop_counter``, the count ``tune`` uses for its budget);
- an Adam step back-propagated ``--chunk`` prompts at a time (forward without a graph first,
  then a forward with a graph per chunk), timed and counted;
and prints each step's cost as a ratio to the forward pass, with the peak resident memory after
each step (``ru_maxrss``: the high-water mark of the process, so run the chunked step alone with
``--only-chunked`` to read its own peak).

    python benchmarks/bench_gradient.py [--model M] [--format words] [--chunk 16]
                                        [--repeats 3] [--only-chunked]

Targets on the 2-core CPU: an Adam step <= 3.5 forward-equivalents (SmolLM2-135M and
Qwen2.5-Coder-1.5B-Instruct); a chunked 1.5B step in words within 8 GB.
"""

from __future__ import annotations

import argparse
import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from culturetune.instrument.targets import lookup_country
from culturetune.model.loading import load_model
from culturetune.tuning.config import TuneConfig
from culturetune.tuning.objective import make_objective
from culturetune.tuning.softprompt import initial_prompt, resolve_init


def timed(fn, repeats: int) -> float:
    fn()  # warm-up (caches, first-call allocations)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def flops(fn) -> int:
    with FlopCounterMode(display=False) as count:
        fn()
    return count.get_total_flops()


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None)
    ap.add_argument("--format", default="words")
    ap.add_argument("--chunk", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--only-chunked", action="store_true")
    args = ap.parse_args()
    lm = load_model(args.model)
    config = TuneConfig(target=lookup_country("China"), optimizer="adam",
                        format=args.format).validate()
    obj = make_objective(lm, config)
    init = resolve_init("auto", config.placement, config.format)
    prompt = initial_prompt(lm, config.tokens, init, None, 0).float()
    n = sum(s.n_prompts for s in obj.surveys)
    print(f"{lm.name} ({lm.dtype}, {torch.get_num_threads()} threads), {config.format} format, "
          f"{n} training prompts, {config.tokens} virtual tokens")
    forward = timed(lambda: obj(prompt[None]), args.repeats)
    f_flops = flops(lambda: obj(prompt[None]))
    print(f"forward pass (1 forward-equivalent): {forward:.2f} s, {f_flops / 1e12:.3f} TFLOP, "
          f"peak {peak_gb():.2f} GB")
    steps = [("one graph", None)] if not args.only_chunked else []
    steps.append((f"chunks of {args.chunk}", args.chunk))
    for name, chunk in steps:
        def step(c=chunk):
            return obj.value_and_grad(prompt, config.temperature, c)
        seconds = timed(step, args.repeats)
        count = flops(step)
        print(f"adam step, {name}: {seconds:.2f} s = {seconds / forward:.2f} forward-equivalents "
              f"by time, {count / f_flops:.2f} by FLOPs (target <= 3.5); peak {peak_gb():.2f} GB")


if __name__ == "__main__":
    main()
