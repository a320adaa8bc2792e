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

The tuning step and ``check-model`` of each model are measured by the model engine's owner:
add them to :data:`MEASUREMENTS` (a child script that prints one JSON object, like the two
below) and they join the table.
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

#: (step name, child script, when it runs: "always" or "float32" (only with the float32 cache)).
#: The engine's owner adds the tuning step and check-model here.
MEASUREMENTS: list[tuple[str, str, str]] = [
    ("first load", LOAD, "always"),
    ("later load", LOAD, "always"),
    ("float32 cache read as bf16", OLD_WAY, "float32"),
]


def run_child(script: str, name: str, dtype: str, cache: Path) -> dict:
    env = {**os.environ, "CULTURETUNE_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-c", script, name, dtype], env=env,
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
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()

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
                for step, script, when in MEASUREMENTS:
                    if when == "float32" and dtype != "float32":
                        continue
                    print(f"{name} {dtype}: {step} ...", file=sys.stderr, flush=True)
                    load = os.getloadavg()[0]
                    row = {"model": name, "dtype": dtype, "step": step, "load_avg": load,
                           **run_child(script, name, dtype, cache)}
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
                 else "", f"load avg {r['load_avg']:.1f}"]
        cache = (f"{r['folder_bytes'] / 1e9:.2f}" if r["step"] == "first load" else "")
        print(f"{r['model']:<22} {r['dtype']:<9} {r['step']:<27} {r['seconds']:>8.1f} "
              f"{r['peak_bytes'] / 1e9:>8.2f} {cache:>9}  {', '.join(n for n in notes if n)}")
    print(f"(measured {time.strftime('%Y-%m-%d %H:%M')}, {os.cpu_count()} cores; peak = VmHWM "
          "after one forward pass; cache = the dtype's dequantized folder)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
