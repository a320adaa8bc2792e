"""Greedy generation with a soft prompt in place, in batches of a size fixed by the model."""

from __future__ import annotations

import torch

from culturetune.model.fit import rows_within
from culturetune.model.loading import LoadedModel
from culturetune.model.segments import Segments


def generation_batch(lm: LoadedModel, width: int, max_new_tokens: int, most: int = 32) -> int:
    """Prompts generated at once: each holds its KV cache, the prefill's activations and a few
    float32 copies of the next-token logits (a 151,936-token vocabulary makes these large)."""
    config = lm.model.config
    hidden = lm.hidden_size
    heads = int(getattr(config, "num_attention_heads", 1))
    kvh = int(getattr(config, "num_key_value_heads", None) or heads)
    d = int(getattr(config, "head_dim", None) or hidden // heads)
    layers = int(getattr(config, "num_hidden_layers", 1))
    mlp = int(getattr(config, "intermediate_size", 4 * hidden))
    vocab = int(getattr(config, "vocab_size", 50_000))
    length = width + max_new_tokens
    per = (layers * 2 * kvh * d * length * 4 + width * (10 * hidden + 3 * mlp) * 4
           + heads * width * width * 4 + 4 * vocab * 4)
    return rows_within(per, most)


@torch.inference_mode()
def generate(
    lm: LoadedModel,
    segments: Segments,
    soft: torch.Tensor | None = None,
    max_new_tokens: int = 8,
    batch_size: int | None = None,
) -> list[str]:
    """Greedy continuations of each prompt with the soft prompt ``[tokens, hidden]`` in place,
    in batches of a size fixed by the model (``batch_size`` caps them)."""
    model, tok = lm.model, lm.tokenizer
    embed = model.get_input_embeddings()
    dtype = embed.weight.dtype
    device = torch.device(lm.device)
    if soft is not None and soft.dim() == 3:
        soft = soft[0]
    soft = (torch.zeros(0, embed.weight.shape[1]) if soft is None else soft).to(device, dtype)
    seqs = []
    for pre, post in zip(segments.pre, segments.post, strict=True):
        parts = [embed(torch.tensor(pre, dtype=torch.long, device=device))] if pre else []
        parts.append(soft)
        if post:
            parts.append(embed(torch.tensor(post, dtype=torch.long, device=device)))
        seqs.append(torch.cat(parts))
    texts: list[str] = []
    width = max((s.shape[0] for s in seqs), default=1)
    batch_size = generation_batch(lm, width, max_new_tokens, batch_size or 32)
    for start in range(0, len(seqs), batch_size):
        chunk = seqs[start : start + batch_size]
        width = max(s.shape[0] for s in chunk)
        embeds = torch.zeros(len(chunk), width, soft.shape[1], dtype=dtype, device=device)
        mask = torch.zeros(len(chunk), width, dtype=torch.long, device=device)
        for i, s in enumerate(chunk):  # left padding, as generation expects
            embeds[i, width - s.shape[0] :] = s
            mask[i, width - s.shape[0] :] = 1
        out = model.generate(
            inputs_embeds=embeds,
            attention_mask=mask,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tok.pad_token_id,
        )
        texts += tok.batch_decode(out, skip_special_tokens=True)
    return texts


__all__ = ["generate", "generation_batch"]
