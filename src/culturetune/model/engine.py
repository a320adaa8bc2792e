"""Batched next-token scoring of many prompts under many soft prompts.

Every prompt is split in two token sequences around the point where a soft prompt goes:
``pre`` (encoded once, its KV cache shared by all candidates and all optimizer steps) and ``post``
(run for every candidate). ``prefix`` placement has an empty ``pre``; ``answer`` placement has an
empty ``post``, so a candidate costs only its own virtual tokens. One forward pass scores a whole
population on every prompt: rows are ordered candidate-major (row = candidate * prompts + prompt).
With :class:`~culturetune.model.replies.ReplySet` tries the options' tokens are scored in the same
pass under a tree mask.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from culturetune.core.errors import CultureTuneError
from culturetune.model.attention import (
    SHARED_PREFIX_ATTENTION,
    SharedPrefix,
    decoder_forward,
    make_cache,
)
from culturetune.model.fit import rows_within
from culturetune.model.loading import LoadedModel
from culturetune.model.replies import ReplySet
from culturetune.model.segments import Segments, split_tokens


class NoTreeMask(CultureTuneError):
    """The model's architecture bypasses transformers' attention interface, so a trie of
    replies cannot be scored under the tree mask in one pass."""


#: Bytes of float32 logits one read of the output layer may hold at once (rows x reads x vocab).
LOGIT_BYTES = 256 * 2**20


@contextmanager
def cache_mode() -> Iterator[None]:
    """What a scorer keeps across calls (prefix caches, masks, embedded tokens) is made outside
    any graph and outside inference mode, so that reads (under inference mode) and gradient
    steps (under autograd) can both use it."""
    with torch.inference_mode(False), torch.no_grad():
        yield


class PromptScorer:
    """Next-token log-probabilities at the end of each prompt, for a population of soft prompts.

    ``pre`` segments are encoded once at construction. :meth:`next_token_logprobs` then costs one
    forward pass over ``candidates × prompts`` rows of ``virtual tokens + post`` length.
    """

    def __init__(
        self,
        lm: LoadedModel,
        segments: Segments,
        max_rows: int = 512,
        shared_attention: bool = True,
        attention_dtype: torch.dtype | None = None,
        replies: ReplySet | None = None,
    ) -> None:
        self.lm = lm
        self.segments = segments
        if replies is not None and len(replies) != len(segments):
            raise ValueError("replies must have one trie per prompt")
        self.replies = replies
        self.max_rows = max_rows
        model = lm.model
        self.device = torch.device(lm.device)
        self.dtype = model.get_input_embeddings().weight.dtype
        self.embed = model.get_input_embeddings()
        self.decoder = model.get_decoder()
        self.head = model.get_output_embeddings()
        with cache_mode():  # kept across calls: no graph, not inference tensors
            n = len(segments)
            pad = lm.tokenizer.pad_token_id or 0
            # Left-padded pre part: its KV cache is computed once.
            self.pre_len = torch.tensor([len(p) for p in segments.pre], device=self.device)
            lp = int(self.pre_len.max()) if n else 0
            self.pre_mask = torch.zeros(n, lp, dtype=torch.long, device=self.device)
            self.kv: list[tuple[torch.Tensor, torch.Tensor]] | None = None
            self.pre_last: torch.Tensor | None = None  # final hidden state of each pre part
            if lp:
                ids = torch.full((n, lp), pad, dtype=torch.long, device=self.device)
                for i, p in enumerate(segments.pre):
                    if p:
                        ids[i, lp - len(p) :] = torch.tensor(p, device=self.device)
                        self.pre_mask[i, lp - len(p) :] = 1
                pos = (self.pre_mask.cumsum(-1) - 1).clamp(min=0)
                out = decoder_forward(
                    self.decoder,
                    input_ids=ids,
                    attention_mask=self.pre_mask,
                    position_ids=pos,
                    use_cache=True,
                )
                cache = getattr(out, "cache", None) or out.past_key_values
                self.pre_last = out.last_hidden_state[:, -1]
                self.kv = [(layer[0], layer[1]) for layer in cache]
            # Right-padded post part, embedded once.
            lq = max((len(p) for p in segments.post), default=0)
            self.post_len = torch.tensor([len(p) for p in segments.post], device=self.device)
            self.post_mask = torch.zeros(n, lq, dtype=torch.long, device=self.device)
            post_ids = torch.full((n, lq), pad, dtype=torch.long, device=self.device)
            for i, p in enumerate(segments.post):
                if p:
                    post_ids[i, : len(p)] = torch.tensor(p, device=self.device)
                    self.post_mask[i, : len(p)] = 1
            self.post_embeds = self.embed(post_ids) if lq else None

            self.shared_attention = shared_attention
            #: Dtype of the shared-prefix attention math: float32 on the CPU, where bf16 kernels for
            #: these small strided batched matmuls are slow; the model's own dtype on a GPU.
            self.attention_dtype = attention_dtype or (
                torch.float32 if self.device.type == "cpu" else self.dtype)
            self.kv_attn: list[tuple[torch.Tensor, torch.Tensor]] | None = None
            self.node_embeds = None
            self._trees: dict[int, torch.Tensor] = {}
            if replies is not None and replies.n_internal:
                self.node_embeds = self.embed(replies.input_ids.to(self.device))

    def rows(self, a: int, b: int) -> PromptScorer:
        """This scorer for its prompts ``a:b`` alone, sharing its caches (views, no copies): a
        gradient step back-propagates a chunk of prompts at a time
        (:meth:`culturetune.model.scoring.ReplyScorer.value_and_grad`)."""
        out = copy.copy(self)
        out.segments = Segments(self.segments.pre[a:b], self.segments.post[a:b])
        for name in ("pre_len", "pre_mask", "pre_last", "post_len", "post_mask", "post_embeds"):
            value = getattr(self, name)
            setattr(out, name, None if value is None else value[a:b])
        out.kv = None if self.kv is None else [(k[a:b], v[a:b]) for k, v in self.kv]
        out.kv_attn = (None if self.kv_attn is None
                       else [(k[a:b], v[a:b]) for k, v in self.kv_attn])
        out._trees = {}
        if self.replies is not None:
            out.replies = self.replies.select(list(range(a, b)))
            with cache_mode():
                out.node_embeds = (self.embed(out.replies.input_ids.to(self.device))
                                   if out.replies.n_internal else None)
        return out

    @property
    def hidden_size(self) -> int:
        return int(self.embed.weight.shape[1])

    def next_token_logprobs(
        self, soft: torch.Tensor | None, token_ids: list[int] | None = None
    ) -> torch.Tensor:
        """Log-probabilities of the next token after each prompt under each soft prompt.

        ``soft`` is ``[candidates, virtual tokens, hidden]`` (or ``None`` for the plain model).
        Returns ``[candidates, prompts, V]`` log-probabilities over the full vocabulary, or over
        ``token_ids`` only (still normalised over the full vocabulary) when they are given.
        """
        if soft is None:
            soft = torch.zeros(1, 0, self.hidden_size)
        return self.next_token_scores(soft, token_ids)[0]

    def next_token_scores(
        self, soft: torch.Tensor | None, token_ids: list[int] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`next_token_logprobs` and the most likely next token over the whole vocabulary
        ``[candidates, prompts]`` (what greedy decoding would say first), from the same logits."""
        if soft is None:
            soft = torch.zeros(1, 0, self.hidden_size)
        soft = soft.to(self.device, self.dtype)
        n = len(self.segments)
        per = max(1, self.rows_per_pass(soft.shape[1]) // max(n, 1))
        outs = [self._chunk(soft[i : i + per], token_ids) for i in range(0, soft.shape[0], per)]
        return torch.cat([o[0] for o in outs], 0), torch.cat([o[1] for o in outs], 0)

    def _chunk(
        self, soft: torch.Tensor, token_ids: list[int] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        p, t, _ = soft.shape
        n = len(self.segments)
        rows = p * n
        if t == 0 and self.post_embeds is None:  # plain model, nothing after the cached part
            logp, top = self._logprobs(self.pre_last.repeat(p, 1), token_ids)
            return logp.view(p, n, -1), top.view(p, n)
        parts = [soft.repeat_interleave(n, 0)] if t else []
        if self.post_embeds is not None:
            parts.append(self.post_embeds.repeat(p, 1, 1))
        embeds = torch.cat(parts, 1)
        start = self.pre_len.repeat(p)[:, None]
        pos = start + torch.arange(embeds.shape[1], device=self.device)[None, :]
        out = self._forward_rows(embeds, pos, p, t)
        last = (t + self.post_len - 1).repeat(p)
        hidden = out.last_hidden_state[torch.arange(rows, device=self.device), last]
        logp, top = self._logprobs(hidden, token_ids)
        return logp.view(p, n, -1), top.view(p, n)

    def _forward_rows(self, embeds: torch.Tensor, pos: torch.Tensor, p: int, t: int) -> object:
        """Run the candidates' tokens after the cached prefix (if any)."""
        n = len(self.segments)
        virt = torch.ones(n, t, dtype=torch.long, device=self.device)
        mask = torch.cat([self.pre_mask, virt, self.post_mask], 1).repeat(p, 1)
        if self.kv is None:
            return decoder_forward(
                self.decoder, inputs_embeds=embeds, attention_mask=mask, position_ids=pos
            )
        if self.shared_attention:
            out = self._shared_forward(embeds, pos)
            if out is not None:
                return out
        cache = make_cache([(k.repeat(p, 1, 1, 1), v.repeat(p, 1, 1, 1)) for k, v in self.kv])
        return decoder_forward(
            self.decoder,
            inputs_embeds=embeds,
            attention_mask=mask,
            position_ids=pos,
            cache=cache,
            use_cache=True,
        )

    def _shared_forward(self, embeds: torch.Tensor, pos: torch.Tensor) -> object | None:
        """Forward with attention reading the unrepeated prefix cache (``None`` if unsupported)."""
        ctx = SharedPrefix(self._prefix_kv(), self.pre_mask.bool(), len(self.segments))
        out = self._decode_shared(embeds, pos, ctx)
        if out is None:  # this architecture bypasses the attention interface
            self.shared_attention = False
        return out

    def _prefix_kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The prefix cache in the attention dtype, unrepeated (made once); an empty prefix
        where nothing comes before the soft prompt."""
        if self.kv_attn is None:
            with cache_mode():
                self.kv_attn = self._attention_kv()
        return self.kv_attn

    def _attention_kv(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        config = self.lm.model.config
        dt = self.attention_dtype
        if self.kv is not None:
            return [(k.to(dt), v.to(dt)) for k, v in self.kv]
        heads = int(config.num_attention_heads)  # nothing before the soft prompt: empty prefix
        kvh = int(getattr(config, "num_key_value_heads", None) or heads)
        d = int(getattr(config, "head_dim", None) or self.hidden_size // heads)
        empty = torch.zeros(len(self.segments), kvh, 0, d, dtype=dt, device=self.device)
        return [(empty, empty)] * int(config.num_hidden_layers)

    def _decode_shared(
        self, embeds: torch.Tensor, pos: torch.Tensor, ctx: SharedPrefix
    ) -> object | None:
        """The decoder run with attention reading ``ctx``'s shared prefix; ``None`` where the
        architecture bypasses transformers' attention interface (no layer called it)."""
        config = self.lm.model.config
        before = config._attn_implementation
        config._attn_implementation = SHARED_PREFIX_ATTENTION
        try:
            out = self.decoder(
                inputs_embeds=embeds, position_ids=pos, use_cache=False, shared_prefix=ctx
            )
        finally:
            config._attn_implementation = before
        return out if ctx.calls == len(ctx.kv) else None

    def _logprobs(
        self, hidden: torch.Tensor, token_ids: list[int] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logp = torch.log_softmax(self.head(hidden).float(), -1)
        top = logp.argmax(-1)
        return (logp if token_ids is None else logp[:, token_ids]), top


    # ------------------------------------------------------------------ replies as sequences

    def reply_scores(self, soft: torch.Tensor | None) -> tuple[torch.Tensor, np.ndarray]:
        """Each option's log-probability as the reply ``[candidates, prompts, options]`` (its
        forms' token sequences after the prompt, summed over forms) and the option the greedy
        reply spells ``[candidates, prompts]`` (:data:`culturetune.model.replies.OFF` where it
        leaves every option), for the tries given as ``replies``: one forward pass per chunk of
        candidates, every option's tokens under a tree mask."""
        if self.replies is None:
            raise ValueError("this scorer was built without replies")
        if soft is None:
            soft = torch.zeros(1, 0, self.hidden_size)
        soft = soft.to(self.device, self.dtype)
        n = len(self.segments)
        per = max(1, self.rows_per_pass(soft.shape[1]) // max(n, 1))
        outs = [self._reply_chunk(soft[i : i + per]) for i in range(0, soft.shape[0], per)]
        node_logp = torch.cat([o[0] for o in outs], 0)
        top = np.concatenate([o[1] for o in outs], 0)
        return self.replies.option_logprobs(node_logp), self.replies.greedy(top)

    def rows_per_pass(self, t: int) -> int:
        """Rows (candidate x prompt) of one forward pass: ``max_rows``, or fewer where a batch
        of :data:`culturetune.model.fit.BATCH_BYTES` holds fewer: a row of ``t`` soft tokens,
        the part after them and the trie's nodes costs its activations and its attention scores
        over the cached prefix. Set by the model and the settings, never by the free memory."""
        config = self.lm.model.config
        lq = 0 if self.post_embeds is None else self.post_embeds.shape[1]
        own = t + lq + (self.replies.n_internal if self.replies is not None else 0)
        heads = int(getattr(config, "num_attention_heads", 1))
        mlp = int(getattr(config, "intermediate_size", 4 * self.hidden_size))
        cached = int(self.pre_mask.shape[1])
        per_row = 4 * own * (10 * self.hidden_size + 3 * mlp + 3 * heads * (cached + own))
        return rows_within(per_row, self.max_rows)

    def _reply_chunk(self, soft: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """Node log-probabilities ``[p, n, nodes]`` and the most likely token at every read
        ``[p, n, 1 + internal nodes]`` for a chunk of ``p`` candidates."""
        p, t, _ = soft.shape
        n, hidden = len(self.segments), self.hidden_size
        if self.node_embeds is None:  # every option one token: read the prompt's end only
            if t == 0 and self.post_embeds is None:
                root = self.pre_last.repeat(p, 1)
            else:
                parts = [soft.repeat_interleave(n, 0)] if t else []
                if self.post_embeds is not None:
                    parts.append(self.post_embeds.repeat(p, 1, 1))
                embeds = torch.cat(parts, 1)
                pos = self.pre_len.repeat(p)[:, None] + torch.arange(
                    embeds.shape[1], device=self.device)[None, :]
                out = self._forward_rows(embeds, pos, p, t)
                last = (t + self.post_len - 1).repeat(p)
                root = out.last_hidden_state[torch.arange(p * n, device=self.device), last]
            reads = root.view(p, n, 1, hidden)
        else:
            reads = self._tree_reads(soft)
        return self._read_nodes(reads)

    def _tree_reads(self, soft: torch.Tensor) -> torch.Tensor:
        """Hidden states ``[p, n, 1 + N, hidden]`` at the prompt's end and at each internal
        node, the nodes run after the candidates' tokens under a tree mask."""
        p, t, _ = soft.shape
        n, hidden = len(self.segments), self.hidden_size
        replies = self.replies
        lq = 0 if self.post_embeds is None else self.post_embeds.shape[1]
        parts = [soft.repeat_interleave(n, 0)] if t else []
        if self.post_embeds is not None:
            parts.append(self.post_embeds.repeat(p, 1, 1))
        parts.append(self.node_embeds.repeat(p, 1, 1))
        embeds = torch.cat(parts, 1)
        head = self.pre_len[:, None] + torch.arange(t + lq, device=self.device)[None, :]
        depth = replies.input_depth.to(self.device)
        nodes = (self.pre_len + t + self.post_len)[:, None] + depth
        pos = torch.cat([head, nodes], 1).repeat(p, 1)
        out = self._tree_forward(embeds, pos, t)
        h = out.last_hidden_state.view(p, n, -1, hidden)
        if t + lq == 0:
            root = self.pre_last[None].expand(p, -1, -1)
        else:
            root = h[:, torch.arange(n, device=self.device), t + self.post_len - 1]
        return torch.cat([root[:, :, None], h[:, :, t + lq :]], 2)

    def _tree_bias(self, t: int) -> torch.Tensor:
        """``[n, S, S]`` additive mask over each row's own tokens (soft prompt, the part after
        it, the trie's internal nodes): causal before the nodes; a node sees the soft prompt,
        the prompt's own tokens after it and its ancestors (itself included)."""
        if t not in self._trees:
            with cache_mode():
                self._trees[t] = self._make_tree_bias(t)
        return self._trees[t]

    def _make_tree_bias(self, t: int) -> torch.Tensor:
        replies, n = self.replies, len(self.segments)
        lq = 0 if self.post_embeds is None else self.post_embeds.shape[1]
        big = replies.n_internal
        size = t + lq + big
        allowed = torch.ones(size, size, dtype=torch.bool, device=self.device).tril()
        allowed = allowed[None].repeat(n, 1, 1)
        first = t + lq
        allowed[:, first:, :] = False
        allowed[:, first:, :t] = True
        if lq:
            seen = torch.arange(lq, device=self.device)[None, :] < self.post_len[:, None]
            allowed[:, first:, t:first] = seen[:, None, :]
        eye = torch.eye(big, dtype=torch.bool, device=self.device)[None]
        valid = replies.input_valid.to(self.device)[:, :, None]
        allowed[:, first:, first:] = replies.ancestor.to(self.device) | (eye & ~valid)
        bias = torch.zeros(n, size, size, dtype=self.attention_dtype, device=self.device)
        return bias.masked_fill_(~allowed, float("-inf"))

    def _tree_forward(self, embeds: torch.Tensor, pos: torch.Tensor, t: int) -> object:
        ctx = SharedPrefix(self._prefix_kv(), self.pre_mask.bool(), len(self.segments))
        ctx.tree = self._tree_bias(t)
        out = self._decode_shared(embeds, pos, ctx)
        if out is None:
            raise NoTreeMask(
                f"{self.lm.name}: its architecture does not run attention through transformers' "
                "attention interface, which the words format needs to score every option's "
                "tokens in one pass; use --format number or letter")
        return out

    def _read_nodes(self, reads: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
        """Log-probability of every trie node at its parent's read, and the most likely token
        at every read, from hidden states ``[p, n, R, hidden]`` (the output layer in chunks)."""
        p, n, r, hidden = reads.shape
        vocab = int(self.head.weight.shape[0])
        slot = self.replies.read_slot.to(self.device).repeat(p, 1)  # [rows, K]
        flat = slot * vocab + self.replies.read_token.to(self.device).repeat(p, 1)
        h = reads.reshape(p * n, r, hidden)
        step = max(1, LOGIT_BYTES // (r * vocab * 4))
        node, top = [], []
        for a in range(0, p * n, step):
            logits = self.head(h[a : a + step]).float()  # [rows, R, V]
            lse = torch.logsumexp(logits, -1)
            top.append(logits.argmax(-1))
            node.append(logits.view(logits.shape[0], -1).gather(1, flat[a : a + step])
                        - lse.gather(1, slot[a : a + step]))
            del logits
        node_logp = torch.cat(node).view(p, n, -1)
        return node_logp.cpu(), torch.cat(top).view(p, n, r).cpu().numpy()


__all__ = ["LOGIT_BYTES", "NoTreeMask", "PromptScorer", "Segments", "split_tokens"]
