"""Log-likelihoods on a model, batched: the next-token probability of a few labels after each
prompt (letters A-D, True/False), and the summed log-probability of continuation texts after a
context (lm-evaluation-harness's ``loglikelihood``).

Both insert a soft prompt (``[1, tokens, hidden]``) where a prompt's text is split, and batch
prompts of similar length together, through :class:`~culturetune.model.engine.PromptScorer`: label
probabilities at each prompt's end; continuations as one token trie per context
(:class:`~culturetune.model.replies.ReplySet`), every continuation's tokens scored in the same
forward pass as the context's end under the tree mask, as the survey scores an option's words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch

from culturetune.core.errors import CultureTuneError
from culturetune.model.attention import decoder_forward, make_cache
from culturetune.model.engine import NoTreeMask, PromptScorer
from culturetune.model.loading import LoadedModel
from culturetune.model.replies import ReplySet
from culturetune.model.segments import split_tokens


def length_batches(texts: Sequence[str], size: int) -> Iterator[list[int]]:
    """Indices of ``texts`` in batches of ``size``, shortest first (similar lengths pad less)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    step = max(1, size)
    for i in range(0, len(order), step):
        yield order[i : i + step]


def label_groups(label_ids: Sequence[Sequence[int]]) -> tuple[list[int], list[list[int]]]:
    """All labels' token ids in one flat list, and each label's positions in that list."""
    flat = [i for ids in label_ids for i in ids]
    groups, at = [], 0
    for ids in label_ids:
        groups.append(list(range(at, at + len(ids))))
        at += len(ids)
    return flat, groups


@torch.inference_mode()
def label_logprobs(
    scorer: PromptScorer, soft: torch.Tensor | None, flat: list[int], groups: list[list[int]]
) -> torch.Tensor:
    """``[prompts, labels]`` log-probability of each label (its forms summed) after each of the
    scorer's prompts, under one soft prompt ``[1, tokens, hidden]`` (or none)."""
    lp = scorer.next_token_logprobs(soft, flat)[0].cpu()
    return torch.stack([lp[:, g].logsumexp(-1) for g in groups], -1)


def label_probs(
    lm: LoadedModel,
    texts: Sequence[str],
    splits: Sequence[int],
    soft: torch.Tensor | None,
    label_ids: Sequence[Sequence[int]],
    batch_size: int = 32,
    progress: Callable[[int], None] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next-token probabilities of each label after each prompt, batched through
    :class:`~culturetune.model.engine.PromptScorer`.

    Returns ``(probs, mass)``: ``[prompts, labels]`` renormalised over the labels (forms of one
    label summed) and ``[prompts]`` the total probability the model put on the labels.
    """
    flat, groups = label_groups(label_ids)
    per_label = torch.empty(len(texts), len(groups))
    done = 0
    for idx in length_batches(texts, batch_size):
        segs = split_tokens(lm, [texts[i] for i in idx], [splits[i] for i in idx])
        per_label[idx] = label_logprobs(PromptScorer(lm, segs), soft, flat, groups)
        done += len(idx)
        if progress:
            progress(done)
    total = per_label.logsumexp(-1)
    return (per_label - total[:, None]).exp(), total.exp()


@torch.inference_mode()
def continuation_logprobs(
    lm: LoadedModel,
    contexts: Sequence[str],
    splits: Sequence[int],
    continuations: Sequence[Sequence[str]],
    soft: torch.Tensor | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """Summed log-probability of each continuation text after its context.

    The context (with the soft prompt ``[1, tokens, hidden]`` inserted at ``splits``) is cached
    up to the soft prompt; its continuations, encoded on their own as lm-eval encodes them, are
    one token trie (continuations that share leading tokens share those nodes; one may start
    another) run after it under the tree mask: one forward pass per batch of ``batch_size``
    contexts, whatever their number of continuations. Returns one list of sums per context.
    Models whose attention bypasses transformers' attention interface are scored with one copy
    of the context's cache per continuation instead (:func:`copied_continuation_logprobs`).
    """
    tok = lm.tokenizer
    encoded = [[_encode(tok, c) for c in cs] for cs in continuations]
    pad = tok.pad_token_id or 0
    out: list[list[float]] = [[] for _ in contexts]
    by_count: dict[int, list[int]] = {}
    for i, cs in enumerate(encoded):
        by_count.setdefault(len(cs), []).append(i)
    done = 0
    for count, members in sorted(by_count.items()):
        for part in length_batches([contexts[i] for i in members], batch_size):
            idx = [members[j] for j in part]
            if count:
                segs = split_tokens(lm, [contexts[i] for i in idx], [splits[i] for i in idx])
                replies = ReplySet([[[ids] for ids in encoded[i]] for i in idx], pad,
                                   strict=False)
                try:
                    logp = PromptScorer(lm, segs, replies=replies).reply_scores(soft)[0][0]
                except NoTreeMask:
                    return copied_continuation_logprobs(lm, contexts, splits, continuations,
                                                        soft, batch_size, progress)
                for r, i in enumerate(idx):
                    out[i] = [float(x) for x in logp[r]]
            done += len(idx)
            if progress:
                progress(done)
    return out


def _encode(tok: Any, text: str) -> list[int]:
    ids = tok.encode(text, add_special_tokens=False)
    if not ids:
        raise CultureTuneError(f"continuation {text!r} encodes to no tokens")
    return list(ids)


@torch.inference_mode()
def copied_continuation_logprobs(
    lm: LoadedModel,
    contexts: Sequence[str],
    splits: Sequence[int],
    continuations: Sequence[Sequence[str]],
    soft: torch.Tensor | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[list[float]]:
    """:func:`continuation_logprobs` without the tree mask, for architectures that bypass
    transformers' attention interface: each context is run once and its KV cache repeated for
    each of its continuations, which are right-padded and scored in one further pass."""
    tok = lm.tokenizer
    model = lm.model
    device = torch.device(lm.device)
    embed = model.get_input_embeddings()
    decoder, head = model.get_decoder(), model.get_output_embeddings()
    dtype = embed.weight.dtype
    soft_rows = soft[0].to(device, dtype) if soft is not None and soft.shape[1] else None
    pad = tok.pad_token_id or 0
    out: list[list[float]] = [[] for _ in contexts]
    done = 0
    for idx in length_batches(contexts, batch_size):
        segs = split_tokens(lm, [contexts[i] for i in idx], [splits[i] for i in idx])
        rows = []
        for pre, post in zip(segs.pre, segs.post, strict=True):
            parts = [embed(torch.tensor(pre, dtype=torch.long, device=device))] if pre else []
            if soft_rows is not None:
                parts.append(soft_rows)
            if post:
                parts.append(embed(torch.tensor(post, dtype=torch.long, device=device)))
            rows.append(torch.cat(parts, 0))
        b, lc = len(rows), max(r.shape[0] for r in rows)
        ctx_len = torch.tensor([r.shape[0] for r in rows], device=device)
        ctx = torch.zeros(b, lc, rows[0].shape[1], dtype=dtype, device=device)
        ctx_mask = torch.zeros(b, lc, dtype=torch.long, device=device)
        for i, r in enumerate(rows):  # left-padded
            ctx[i, lc - r.shape[0]:] = r
            ctx_mask[i, lc - r.shape[0]:] = 1
        pos = (ctx_mask.cumsum(-1) - 1).clamp(min=0)
        first = decoder_forward(decoder, inputs_embeds=ctx, attention_mask=ctx_mask,
                                position_ids=pos, use_cache=True)
        cache = getattr(first, "cache", None) or first.past_key_values
        kv = [(layer[0], layer[1]) for layer in cache]
        last = first.last_hidden_state[:, -1]
        # One row per (context, continuation), right-padded.
        owner, conts = [], []
        for j, i in enumerate(idx):
            for c in continuations[i]:
                ids = _encode(tok, c)
                owner.append(j)
                conts.append(ids)
        own = torch.tensor(owner, device=device)
        lq = max(len(c) for c in conts)
        cont_ids = torch.full((len(conts), lq), pad, dtype=torch.long, device=device)
        cont_mask = torch.zeros(len(conts), lq, dtype=torch.long, device=device)
        for r, ids in enumerate(conts):
            cont_ids[r, : len(ids)] = torch.tensor(ids, device=device)
            cont_mask[r, : len(ids)] = 1
        cache2 = make_cache([(k[own], v[own]) for k, v in kv])
        second = decoder_forward(
            decoder, inputs_embeds=embed(cont_ids),
            attention_mask=torch.cat([ctx_mask[own], cont_mask], 1),
            position_ids=ctx_len[own][:, None] + torch.arange(lq, device=device)[None],
            cache=cache2, use_cache=True,
        )
        # The state predicting continuation token t is the one before it.
        states = torch.cat([last[own][:, None], second.last_hidden_state[:, :-1]], 1)
        valid = cont_mask.bool()
        logp = torch.log_softmax(head(states[valid]).float(), -1)
        tok_lp = logp.gather(1, cont_ids[valid][:, None])[:, 0]
        row_of = torch.arange(len(conts), device=device)[:, None].expand(-1, lq)[valid]
        sums = torch.zeros(len(conts), device=device).index_add_(0, row_of, tok_lp).cpu()
        for r, j in enumerate(owner):
            out[idx[j]].append(float(sums[r]))
        done += len(idx)
        if progress:
            progress(done)
    return out
