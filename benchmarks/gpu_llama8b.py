"""Population scoring throughput at Llama-3-8B scale on a GPU (random weights, bf16).

No weights are needed: the model is built from the Llama-3-8B-Instruct configuration with random
initialisation; token lengths come from a real chat tokenizer (the default model's, passed with
``--tokenizer``). Measures candidate-surveys per second for
(a) naive generate per item per candidate, (b) one batched full forward per population (prefix
placement), (c) the shared-prefix path (answer placement), and (c') answer placement with the
prefix cache copied per candidate, and (c) on the default order-balanced objective (both option
orders), for a few population sizes and rows per forward pass
(``--max-rows``; the tool's default is 512), with the peak GPU memory of each path.

    python benchmarks/gpu_llama8b.py --tokenizer DIR [--tiny]   # --tiny: CPU smoke test
"""

from __future__ import annotations

import argparse
import json
import time

import torch

LLAMA3_8B = dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                 num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                 max_position_embeddings=8192, rope_theta=500000.0, rms_norm_eps=1e-5,
                 tie_word_embeddings=False)
TINY = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, vocab_size=50000, tie_word_embeddings=False)


def timed(fn, device: str, repeat: int = 3) -> float:
    fn()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    sync()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        sync()
        best = min(best, time.perf_counter() - t)
    return best


def rate(fn, pop: int, device: str) -> tuple[float | None, float | None]:
    """Candidate-surveys per second and peak GPU memory in GiB (None, None where out of memory)."""
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        speed = pop / timed(fn, device)
    except torch.OutOfMemoryError:
        torch.cuda.empty_cache()
        return None, None
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    return speed, peak


def main() -> None:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from culturetune.model.generate import generate
    from culturetune.model.loading import LoadedModel
    from culturetune.reading.survey import Survey

    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--populations", default="16,64")
    ap.add_argument("--max-rows", default="512", help="rows per forward pass, comma-separated")
    ap.add_argument("--tokens", type=int, default=5)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    device = "cpu" if args.tiny else "cuda"
    config = LlamaConfig(**(TINY if args.tiny else LLAMA3_8B))
    torch.manual_seed(0)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device(device):
        model = LlamaForCausalLM(config)
    torch.set_default_dtype(torch.float32)
    model.eval().requires_grad_(False)
    torch.set_grad_enabled(False)
    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    lm = LoadedModel(model, tok, "random Llama-3-8B config", device, "bfloat16")
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"{name}: {sum(p.numel() for p in model.parameters()) / 1e9:.2f} B parameters, bf16")

    results = {"device": name, "tokens": args.tokens, "rows": []}
    if device == "cuda":
        results["weights_gb"] = torch.cuda.memory_allocated() / 2**30
        print(f"weights {results['weights_gb']:.1f} GiB")
    seg = Survey(lm, placement="prefix", orders="shown").segments
    items = len(seg)

    def naive() -> None:
        soft = torch.randn(args.tokens, config.hidden_size) * 0.02
        for i in range(items):
            one = type(seg)([seg.pre[i]], [seg.post[i]])
            generate(lm, one, soft, max_new_tokens=4)

    t_a = timed(naive, device, repeat=1)
    print(f"(a) naive generate: {1 / t_a:.2f} candidate-surveys/s")
    for max_rows in (int(x) for x in args.max_rows.split(",")):
        prefix = Survey(lm, placement="prefix", orders="shown", max_rows=max_rows)
        answer = Survey(lm, placement="answer", orders="shown", max_rows=max_rows)
        copied = Survey(lm, placement="answer", orders="shown", max_rows=max_rows)
        copied.scorer.shared_attention = False
        # the default objective: both option orders (a candidate-survey asks 48 prompts)
        both = Survey(lm, placement="answer", orders="both", max_rows=max_rows)
        paths = {"b": prefix, "c": answer, "c_copied_cache": copied, "c_both": both}
        for pop in (int(x) for x in args.populations.split(",")):
            soft = torch.randn(pop, args.tokens, config.hidden_size) * 0.02
            row = {"max_rows": max_rows, "population": pop, "a": 1 / t_a}
            for key, survey in paths.items():
                speed, peak = rate(lambda s=soft, sv=survey: sv.option_probs(s), pop, device)
                row[key], row[f"{key}_peak_gb"] = speed, peak
            results["rows"].append(row)

            def show(key: str, row: dict = row) -> str:
                if row[key] is None:
                    return "OOM"
                peak = row[f"{key}_peak_gb"]
                return f"{row[key]:.1f}" + ("" if peak is None else f" ({peak:.0f} GiB)")

            ratio_a = f"{row['c'] / row['a']:.1f}x" if row["c"] else "-"
            ratio_b = f"{row['c'] / row['b']:.1f}x" if row["c"] and row["b"] else "-"
            print(f"max_rows {max_rows:5d}, population {pop:4d} x {items} items, "
                  f"candidate-surveys/s (peak memory): (b) {show('b')}  (c) {show('c')}  "
                  f"(c' copied cache) {show('c_copied_cache')}  (c, both orders) "
                  f"{show('c_both')}   "
                  f"(c)/(a) {ratio_a}  (c)/(b) {ratio_b}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
