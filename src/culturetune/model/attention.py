"""Attention over a prefix cache shared by many rows, and calling a decoder with a cache.

:func:`shared_prefix_attention` is registered with transformers' attention interface as
:data:`SHARED_PREFIX_ATTENTION`: the candidates' own tokens (rows candidate-major) attend to
the unrepeated prefix cache of their prompt and, under a causal or a tree mask, to each other.
"""

from __future__ import annotations

import inspect

import torch


def make_cache(kv: list[tuple[torch.Tensor, torch.Tensor]]) -> object:
    from transformers import DynamicCache

    cache = DynamicCache()
    for i, (k, v) in enumerate(kv):
        cache.update(k, v, i)
    return cache


def decoder_forward(decoder: torch.nn.Module, cache: object = None, **kwargs: object) -> object:
    """Call a decoder with a KV cache under the keyword its transformers version uses."""
    if cache is not None:
        params = inspect.signature(decoder.forward).parameters
        kwargs["cache" if "cache" in params else "past_key_values"] = cache
    return decoder(**kwargs)


SHARED_PREFIX_ATTENTION = "culturetune_shared_prefix"


class SharedPrefix:
    """Per-layer prefix keys/values ``[prompts, kv heads, L, d]`` shared by every candidate."""

    def __init__(
        self, kv: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor, prompts: int
    ) -> None:
        self.kv, self.prompts, self.calls = kv, prompts, 0
        dtype = kv[0][0].dtype if kv else torch.float32
        self.dtype = dtype
        zero = torch.zeros((), dtype=dtype, device=mask.device)
        ninf = torch.full((), float("-inf"), dtype=dtype, device=mask.device)
        # Additive biases, built once per forward and shared by all layers.
        self.pre_bias = torch.where(mask, zero, ninf)[None, :, None, None, None, :]
        self.own_bias: torch.Tensor | None = None
        #: ``[prompts, t, t]`` additive bias among each row's own tokens (a tree mask) in place
        #: of the causal one.
        self.tree: torch.Tensor | None = None

    def own_mask(self, t: int, device: torch.device) -> torch.Tensor:
        """The additive mask among each row's own ``t`` tokens: the tree mask where one is set,
        else the causal mask."""
        if self.tree is not None:
            return self.tree[None, :, None, None]
        if self.own_bias is None or self.own_bias.shape[-1] != t:
            upper = torch.ones(t, t, dtype=torch.bool, device=device).triu(1)
            self.own_bias = torch.zeros(t, t, dtype=self.pre_bias.dtype, device=device)
            self.own_bias.masked_fill_(upper, float("-inf"))
        return self.own_bias


def shared_prefix_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    shared_prefix: SharedPrefix | None = None,
    **kwargs: object,
) -> tuple[torch.Tensor, None]:
    """Attention over ``[shared prefix | own tokens]`` without copying the prefix per candidate.

    ``query``/``key``/``value`` hold the candidates' own tokens, rows candidate-major; the prefix
    of prompt ``i`` is attended to by every row ``c * prompts + i``. Scores against the prefix
    broadcast over candidates, so its cache is read once per layer instead of once per row.
    """
    ctx = shared_prefix
    kp, vp = ctx.kv[module.layer_idx]
    ctx.calls += 1
    out_dtype = query.dtype
    query, key, value = query.to(ctx.dtype), key.to(ctx.dtype), value.to(ctx.dtype)
    rows, heads, t, d = query.shape
    n, kvh, length, _ = kp.shape
    g, p = heads // kvh, rows // n
    scale = scaling if scaling is not None else d**-0.5
    # [prompts, kv heads, candidates * group * t, d]: one batched matmul per prompt and kv head.
    q = (query * scale).view(p, n, kvh, g, t, d).permute(1, 2, 0, 3, 4, 5).reshape(n, kvh, -1, d)
    s_pre = (q @ kp.transpose(-1, -2)).view(n, kvh, p, g, t, length)
    s_pre = s_pre.permute(2, 0, 1, 3, 4, 5) + ctx.pre_bias  # [p, n, kvh, g, t, L]
    k = key.view(p, n, kvh, 1, t, d)
    v = value.view(p, n, kvh, 1, t, d)
    qo = (query * scale).view(p, n, kvh, g, t, d)
    s_own = qo @ k.transpose(-1, -2) + ctx.own_mask(t, query.device)  # [p, n, kvh, g, t, t]
    w = torch.softmax(torch.cat([s_pre, s_own], -1), -1)
    out = w[..., length:] @ v
    if length:  # an empty prefix (nothing before the soft prompt) adds nothing
        w_pre = w[..., :length].permute(1, 2, 0, 3, 4, 5).reshape(n, kvh, -1, length)
        out = out + (w_pre @ vp).view(n, kvh, p, g, t, d).permute(2, 0, 1, 3, 4, 5)
    return out.reshape(rows, heads, t, d).transpose(1, 2).to(out_dtype).contiguous(), None


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(SHARED_PREFIX_ATTENTION, shared_prefix_attention)


_register()


__all__ = ["SHARED_PREFIX_ATTENTION", "SharedPrefix", "decoder_forward", "make_cache",
           "shared_prefix_attention"]
