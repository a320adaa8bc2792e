"""CulturalBench-Easy's continuation scorings in bfloat16 against float32, for both ways of scoring
a question's choices (one token trie under the tree mask; one copy of the context's cache per
choice).

    python benchmarks/bench_culturalbench_dtype.py [--model M] [--country China] [--data PATH]
        [--scorings mc,cloze]

For each scoring, dtype and way it prints the accuracy, how many answers differ from the float32
trie, and the largest per-choice log-likelihood gap to it. It separates what the trie changes
(float32: trie against copies) from what bfloat16's rounding changes (either way against float32).
"""

from __future__ import annotations

import argparse
import sys

from bench_culturalbench import default_data

from culturetune.core.choices import BENCH_SCORINGS
from culturetune.core.errors import CultureTuneError
from culturetune.culturalbench import Condition, evaluate_easy, load_culturalbench, scoring
from culturetune.culturalbench.likelihood import copied_continuation_logprobs
from culturetune.model.loading import load_model

#: The scorings that read continuations (``letter`` reads one next token: nothing to compare).
CONTINUATION_SCORINGS = tuple(s for s in BENCH_SCORINGS if s != "letter")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--country", default="China")
    ap.add_argument("--data", default=None, help="CulturalBench-Easy file (default: shared/hub)")
    ap.add_argument("--scorings", default="mc,cloze")
    args = ap.parse_args()
    scorings = [s.strip() for s in args.scorings.split(",") if s.strip()]
    if not scorings or any(s not in CONTINUATION_SCORINGS for s in scorings):
        sys.exit(f"error: --scorings takes {', '.join(CONTINUATION_SCORINGS)} (comma-separated)")
    try:
        questions = load_culturalbench("easy", args.data or default_data(),
                                       countries=[args.country])
    except CultureTuneError as exc:
        sys.exit(f"error: {exc}")
    plain = Condition.plain()
    ways = {"trie": scoring.continuation_logprobs, "copies": copied_continuation_logprobs}
    results = {}
    for dtype in ("float32", "bfloat16"):
        lm = load_model(args.model, dtype=dtype)
        for sc in scorings:
            for way, fn in ways.items():
                scoring.continuation_logprobs = fn
                results[dtype, sc, way] = evaluate_easy(lm, questions, plain, sc, None)
        scoring.continuation_logprobs = ways["trie"]
        name = lm.name
        del lm
    n = len(questions)
    print(f"model {name}; CulturalBench-Easy {args.country}: {n} questions, plain")
    for sc in scorings:
        ref = results["float32", sc, "trie"]
        for (dtype, s, way), out in results.items():
            if s != sc:
                continue
            differ = sum(a.predicted != b.predicted for a, b in zip(out, ref, strict=True))
            gap = max(abs(x - y) for a, b in zip(out, ref, strict=True)
                      for x, y in zip(a.loglik, b.loglik, strict=True))
            print(f"{sc:5s} {dtype:8s} {way:6s}: accuracy {sum(o.correct for o in out)}/{n}; "
                  f"answers differing from the float32 trie {differ}; largest gap {gap:.1e} nats")


if __name__ == "__main__":
    main()
