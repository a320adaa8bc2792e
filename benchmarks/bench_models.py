"""Load time, peak memory and disk of every installed known model (``culturetune models``).

    python benchmarks/bench_models.py [--models NAME,...] [--dtypes auto,float32] [--json]

For each installed known model and dtype, in a fresh temporary cache:

- **first load**: assembling the GGUF file from its part packages (where it is split) and
  dequantizing it into the cache, then loading the cached copy;
- **later load**: loading the cached copy alone;
- with ``float32`` among the dtypes, also **float32 cache read as bf16**: how models were loaded
  before the cache kept the run dtype (the float32 folder converted on every load).

Each measurement runs in a subprocess of its own, so that its peak resident memory (``VmHWM``,
read after one short forward pass that touches the weights a survey needs) is its own. The table
gives seconds, peak memory and the size on disk of the dtype's cache folder after the first load
(and any assembled GGUF file left behind: there should be none).

- **tuning step, number / words**: one step of 16 candidates of the default objective (the worst
  of two wordings x each order alone) in that answer format, after building the objective; the
  peak against the target of 2 x the weights + 2 GB;
- **check-model, number / words**: the model check in that format, measured afresh.

``--steps`` picks some (``--steps tuning``: the loads and the tuning steps).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from culturetune.core import registry

CHILD_HEAD = r"""
import json, sys, time
from pathlib import Path

def peak_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

def touch(model, tokenizer):
    import torch
    ids = tokenizer("How important is it to have sufficient time for your personal life?",
                    return_tensors="pt").input_ids
    with torch.no_grad():
        model(ids)

name, dtype = sys.argv[1], sys.argv[2]
"""

LOAD = CHILD_HEAD + r"""
from culturetune.cli import quiet_transformers
from culturetune.core import registry
from culturetune.model.loading import known_cache_folder, load_model

quiet_transformers()
marks = {}
began = time.perf_counter()
lm = load_model(name, device="cpu", dtype=dtype,
                progress=lambda m: marks.setdefault(m.split()[0], time.perf_counter() - began))
seconds = time.perf_counter() - began
touch(lm.model, lm.tokenizer)
steps = {}
if "assembling" in marks:
    steps["assembly_s"] = marks.get("dequantizing", seconds) - marks["assembling"]
if "dequantizing" in marks:
    steps["dequantize_s"] = seconds - marks["dequantizing"]
folder = known_cache_folder(registry.KNOWN[name], lm.dtype)
size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
print(json.dumps({"seconds": seconds, "peak_bytes": peak_bytes(), "folder_bytes": size, **steps}))
"""

#: The float32 cache read in bf16: how every load ran before the cache kept the run dtype.
OLD_WAY = CHILD_HEAD + r"""
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer
from culturetune.cli import quiet_transformers
from culturetune.core import registry
from culturetune.model.loading import known_cache_folder

quiet_transformers()
folder = known_cache_folder(registry.KNOWN[name], "float32")
began = time.perf_counter()
tok = AutoTokenizer.from_pretrained(folder)
model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.bfloat16)
seconds = time.perf_counter() - began
touch(model, tok)
print(json.dumps({"seconds": seconds, "peak_bytes": peak_bytes()}))
"""

#: One tuning step of 16 candidates (the default objective: the worst of two wordings x each
#: order alone, with the option-mass floor), in the answer format ``sys.argv[3]``: the seconds to
#: build the objective (the prompts' prefix caches, the plain model's mass) and of the step.
STEP = CHILD_HEAD + r"""
import torch
from culturetune.cli import quiet_transformers
from culturetune.instrument.targets import lookup_country
from culturetune.model.loading import load_model
from culturetune.tuning.config import TuneConfig
from culturetune.tuning.objective import make_objective
from culturetune.tuning.softprompt import initial_prompt

quiet_transformers()
fmt = sys.argv[3]
lm = load_model(name, device="cpu", dtype=dtype)
weights = sum(p.numel() * p.element_size() for p in lm.model.parameters())
config = TuneConfig(target=lookup_country("China"), format=fmt)
init = "lead" if fmt == "words" else "vocab"
prompts = torch.stack([initial_prompt(lm, config.tokens, init, None, seed) for seed in range(16)])
prompts = prompts + 0.01 * torch.randn_like(prompts.float()).to(prompts.dtype)
began = time.perf_counter()
objective = make_objective(lm, config)
built = time.perf_counter() - began
began = time.perf_counter()
with torch.no_grad():
    objective(prompts)
step = time.perf_counter() - began
print(json.dumps({"seconds": step, "build_s": built, "peak_bytes": peak_bytes(),
                  "weights_bytes": weights}))
"""

#: The model check in the answer format ``sys.argv[3]``, measured afresh (the bench's cache is
#: new): seconds, peak memory and the verdict.
CHECK = CHILD_HEAD + r"""
from culturetune.cli import quiet_transformers
from culturetune.model.loading import load_model
from culturetune.reading.check import check_model

quiet_transformers()
lm = load_model(name, device="cpu", dtype=dtype)
began = time.perf_counter()
check = check_model(lm, "vsm2013", format=sys.argv[3], refresh=True)
print(json.dumps({"seconds": time.perf_counter() - began, "peak_bytes": peak_bytes(),
                  "verdict": check.verdict}))
"""

#: (step name, child script, when it runs: "always" or "float32" (only with the float32 cache),
#: the script's extra arguments). ``--steps`` picks them by the first word of their names.
MEASUREMENTS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("first load", LOAD, "always", ()),
    ("later load", LOAD, "always", ()),
    ("float32 cache read as bf16", OLD_WAY, "float32", ()),
    ("tuning step, number", STEP, "always", ("number",)),
    ("tuning step, words", STEP, "always", ("words",)),
    ("check-model, number", CHECK, "always", ("number",)),
    ("check-model, words", CHECK, "always", ("words",)),
]


def run_child(script: str, name: str, dtype: str, cache: Path, extra: tuple[str, ...] = ()
              ) -> dict:
    env = {**os.environ, "CULTURETUNE_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", script, name, dtype, *extra], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": tail}
    return json.loads(done.stdout.strip().splitlines()[-1])


def folder_bytes(path: Path) -> int:
    """Bytes of the files under ``path``."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def resolve(dtype: str) -> str:
    if dtype != "auto":
        return dtype
    from culturetune.model.loading import resolve_dtype

    return resolve_dtype("auto", "cpu")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(registry.KNOWN),
                    help="known model names, comma-separated (default: all installed)")
    ap.add_argument("--dtypes", default="auto", help="comma-separated, e.g. auto,float32")
    ap.add_argument("--steps", default="first,later,float32,tuning,check",
                    help="which measurements, by the first word of their names (first load and "
                         "later load always run: the others need the cache they fill)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    wanted = {w.strip() for w in args.steps.split(",")} | {"first", "later"}

    rows = []
    for name in args.models.split(","):
        known = registry.lookup(name)
        if known is None or registry.problems(known):
            print(f"skipped {name}: not installed ({known.install if known else 'unknown'})",
                  file=sys.stderr)
            continue
        dtypes = list(dict.fromkeys(resolve(d) for d in args.dtypes.split(",")))
        cache = Path(tempfile.mkdtemp(prefix="bench-models-"))
        try:
            for dtype in dtypes:
                for step, script, when, extra in MEASUREMENTS:
                    if (when == "float32" and dtype != "float32") or step.split()[0].rstrip(
                            ",") not in wanted:
                        continue
                    print(f"{name} {dtype}: {step} ...", file=sys.stderr, flush=True)
                    load = os.getloadavg()[0]
                    row = {"model": name, "dtype": dtype, "step": step, "load_avg": load,
                           **run_child(script, name, dtype, cache, extra)}
                    if step == "first load":  # what stays on disk: the folder, no GGUF
                        row["gguf_left"] = folder_bytes(cache / "gguf") if (
                            cache / "gguf").exists() else 0
                    rows.append(row)
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<22} {'dtype':<9} {'step':<27} {'seconds':>8} {'peak GB':>8} "
          f"{'cache GB':>9}  notes")
    for r in rows:
        if "error" in r:
            print(f"{r['model']:<22} {r['dtype']:<9} {r['step']:<27} error: {r['error']}")
            continue
        notes = [f"assembly {r['assembly_s']:.1f} s" if "assembly_s" in r else "",
                 f"dequantize, save, load {r['dequantize_s']:.1f} s" if "dequantize_s" in r
                 else "", f"GGUF left {r['gguf_left'] / 1e9:.2f} GB" if r.get("gguf_left")
                 else "", f"objective built in {r['build_s']:.1f} s" if "build_s" in r else "",
                 (f"peak {r['peak_bytes'] / (2 * r['weights_bytes'] + 2e9):.2f} x (2 x weights "
                  "+ 2 GB)") if "weights_bytes" in r else "",
                 r.get("verdict", ""), f"load avg {r['load_avg']:.1f}"]
        cache = (f"{r['folder_bytes'] / 1e9:.2f}" if r["step"] == "first load" else "")
        print(f"{r['model']:<22} {r['dtype']:<9} {r['step']:<27} {r['seconds']:>8.1f} "
              f"{r['peak_bytes'] / 1e9:>8.2f} {cache:>9}  {', '.join(n for n in notes if n)}")
    print(f"(measured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores; peak = VmHWM "
          "after one forward pass; cache = the dtype's dequantized folder)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
