"""Time CulturalBench-Easy for one country on the default model (plain condition).

    python benchmarks/bench_culturalbench.py [--country China] [--scoring letter|mc|cloze]
        [--model M] [--data PATH] [--dtype auto|float32|bfloat16] [--batch-size N] [--repeat 2]

With a continuation scoring (``mc``, ``cloze``; ``loglik`` is ``cloze``) it times both ways of
scoring a question's choices in the same run: as one token trie under the tree mask (what
culturetune does) and with one copy of the context's cache per choice (what it did before, and
still does where a model's attention bypasses transformers' interface), and prints the ratio and
whether the two give the same answers. Target: the trie no slower than the copies.

By default the country with the most Easy questions is used (China, 59 questions), read from the
project's shared data folder when present (``$CULTURETUNE_SHARED_DATA`` or ``../shared/data``),
else from the Hugging Face hub. The model load and a two-question warm-up are not timed.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path

import torch

from culturetune.culturalbench import Condition, evaluate_easy, load_culturalbench, scoring
from culturetune.culturalbench.likelihood import copied_continuation_logprobs
from culturetune.model.loading import load_model

ROOT = Path(__file__).resolve().parents[1]


def default_data() -> Path | None:
    shared = Path(os.environ.get("CULTURETUNE_SHARED_DATA") or ROOT.parent / "shared" / "data")
    path = shared / "culturalbench" / "CulturalBench-Easy.csv"
    return path if path.exists() else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--country", default=None, help="default: the one with most questions")
    ap.add_argument("--scoring", default="letter", choices=["letter", "loglik", "mc", "cloze"])
    ap.add_argument("--data", default=None, help="CulturalBench-Easy file (default: shared/hub)")
    ap.add_argument("--model", default=None)
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs; the best is reported")
    args = ap.parse_args()

    data = args.data or default_data()
    questions = load_culturalbench("easy", data)
    country = args.country
    if country is None:
        country = Counter(q.country for q in questions).most_common(1)[0][0]
    questions = load_culturalbench("easy", data, countries=[country])

    t0 = time.perf_counter()
    lm = load_model(args.model, dtype=args.dtype)
    load_s = time.perf_counter() - t0
    plain = Condition.plain()
    evaluate_easy(lm, questions[:2], plain, args.scoring, args.batch_size)  # warm-up

    def run() -> tuple[float, list]:
        times, outcomes = [], []
        for _ in range(max(1, args.repeat)):
            t0 = time.perf_counter()
            outcomes = evaluate_easy(lm, questions, plain, args.scoring, args.batch_size)
            times.append(time.perf_counter() - t0)
        return min(times), outcomes

    best, outcomes = run()
    n = len(questions)
    correct = sum(o.correct for o in outcomes)
    print(f"model {lm.name} ({lm.dtype}, {lm.device}, torch threads {torch.get_num_threads()}); "
          f"load {load_s:.1f} s")
    print(f"CulturalBench-Easy {country}: {n} questions, {args.scoring} scoring, plain")
    print(f"time: {best:.2f} s (best of {args.repeat}), {n / best:.1f} questions/s")
    print(f"accuracy {correct}/{n} = {correct / n:.3f}; predicted letters "
          f"{dict(sorted(Counter(o.predicted for o in outcomes).items()))}")
    if args.scoring == "letter":
        return
    if outcomes[0].correct_norm is not None:
        norm = sum(bool(o.correct_norm) for o in outcomes)
        print(f"accuracy_norm {norm}/{n} = {norm / n:.3f}")
    scoring.continuation_logprobs = copied_continuation_logprobs  # the choices' own caches
    before, old = run()
    gap = max(abs(a - b) for o, p in zip(outcomes, old, strict=True)
              for a, b in zip(o.loglik, p.loglik, strict=True))
    same = [o.predicted for o in outcomes] == [p.predicted for p in old]
    print(f"one cache copy per choice: {before:.2f} s; trie / copies: {best / before:.2f} "
          f"({before / best:.2f}x faster); same answers: {same}; largest log-likelihood gap "
          f"{gap:.1e}")

if __name__ == "__main__":
    main()
