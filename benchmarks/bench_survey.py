"""Time one full VSM 2013 survey of the default model and report peak memory.

    python benchmarks/bench_survey.py [--model M] [--dtype auto|float32|bfloat16]
        [--answers expected|argmax|generate] [--repeat 3] [--json]

The model load is timed separately. A survey is the whole job after loading: prompt setup (the
24 item prompts encoded, their KV cache built) plus ``run_survey``; it is repeated and the median
reported. Peak memory is the process's maximum resident set size. Targets: a survey under 5 s
after the model is loaded, under 2 GB peak memory.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import sys
import time

import torch

from culturetune.cli import quiet_transformers
from culturetune.core.choices import ANSWER_MODES
from culturetune.instrument.targets import lookup_country
from culturetune.instrument.vsm import parse_constants
from culturetune.model.loading import load_model
from culturetune.reading.administer import run_survey
from culturetune.reading.survey import Survey

TARGET_SURVEY_S = 5.0
TARGET_PEAK_GB = 2.0


def peak_rss_gb() -> float:
    """Peak resident memory of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024**3 if sys.platform == "darwin" else 1024**2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--answers", default="expected", choices=ANSWER_MODES)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="print the numbers as JSON")
    args = ap.parse_args()

    quiet_transformers()
    start = time.perf_counter()
    lm = load_model(args.model, dtype=args.dtype)
    load_s = time.perf_counter() - start

    constants, target = parse_constants(None), lookup_country("China")
    times, setups = [], []
    for _ in range(max(1, args.repeat)):
        start = time.perf_counter()
        survey = Survey(lm)
        setups.append(time.perf_counter() - start)
        result = run_survey(survey, answers=args.answers, constants=constants, target=target)
        times.append(time.perf_counter() - start)
    survey_s = statistics.median(times)
    peak = peak_rss_gb()
    report = {
        "model": lm.name,
        "device": lm.device,
        "dtype": lm.dtype,
        "answers": args.answers,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_s": round(load_s, 3),
        "survey_s_median": round(survey_s, 3),
        "survey_s_all": [round(t, 3) for t in times],
        "setup_s_median": round(statistics.median(setups), 3),
        "peak_rss_gb": round(peak, 3),
        "loss_vs_china": round(result.loss.value, 3) if result.loss else None,
        "targets": {"survey_s": TARGET_SURVEY_S, "peak_rss_gb": TARGET_PEAK_GB},
    }
    ok = survey_s < TARGET_SURVEY_S and peak < TARGET_PEAK_GB
    if args.json:
        print(json.dumps({**report, "ok": ok}, indent=2))
        return 0
    mark = {True: "ok", False: "MISSED"}
    print(f"model       {lm.name} on {lm.device} ({lm.dtype}), {report['threads']} threads")
    print(f"load        {load_s:6.2f} s (not part of the survey)")
    print(
        f"survey      {survey_s:6.2f} s median of {len(times)} "
        f"(setup {report['setup_s_median']:.2f} s; answers {args.answers})"
        f"  target < {TARGET_SURVEY_S:g} s: {mark[survey_s < TARGET_SURVEY_S]}"
    )
    peak_ok = mark[peak < TARGET_PEAK_GB]
    print(f"peak memory {peak:6.2f} GB  target < {TARGET_PEAK_GB:g} GB: {peak_ok}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
