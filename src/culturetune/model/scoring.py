"""Scoring the replies of many prompts under many soft prompts, within bounded memory.

Prompts are grouped by the size of their option trie (:mod:`culturetune.model.replies`), so
that a prompt whose options are single tokens is not padded to the length of one whose options
are long phrases, and each group is one :class:`~culturetune.model.engine.PromptScorer`.
Above :data:`MAX_CACHED_PROMPTS` prompts the groups' prefix caches are built for each call and
dropped, so that memory stays bounded (``--orders all``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from culturetune.model.engine import PromptScorer, Segments
from culturetune.model.loading import LoadedModel
from culturetune.model.replies import ReplySet

#: Prompts encoded at once; more are scored in chunks whose caches are built for each call.
MAX_CACHED_PROMPTS = 600


class ReplyScorer:
    """Options' log-probabilities ``[candidates, prompts, options]`` and the option each greedy
    reply spells ``[candidates, prompts]`` for a population of soft prompts."""

    def __init__(self, lm: LoadedModel, segments: Segments, replies: ReplySet,
                 max_rows: int = 512) -> None:
        self.lm, self.segments, self.replies, self.max_rows = lm, segments, replies, max_rows
        size = replies.internal_count.tolist()
        groups: dict[int, list[int]] = {}
        for i, k in enumerate(size):
            groups.setdefault(k, []).append(i)
        self.blocks = [idx[a : a + MAX_CACHED_PROMPTS] for _, idx in sorted(groups.items())
                       for a in range(0, len(idx), MAX_CACHED_PROMPTS)]
        self.keep = len(segments) <= MAX_CACHED_PROMPTS
        self.n_options = replies.n_options
        #: A joined scorer's blocks: the scorer and block each came from (:meth:`joined`).
        self._parts: list[tuple[ReplyScorer, int]] | None = None
        self._scorers: list[PromptScorer] | None = (
            [self._scorer(b) for b in self.blocks] if self.keep else None)

    @classmethod
    def joined(cls, scorers: Sequence[ReplyScorer]) -> ReplyScorer:
        """One scorer over the prompts of ``scorers`` in turn (an objective over two wordings),
        each block read by the scorer it belongs to: the very shapes, hence the very numbers,
        of each read alone (in bf16 a score depends on what its batch is padded to), and no
        second copy of their caches."""
        if len({s.n_options for s in scorers}) != 1:
            raise ValueError("joined scorers need the same number of options")
        out = cls.__new__(cls)
        out.lm, out.max_rows = scorers[0].lm, scorers[0].max_rows
        out.segments = Segments([p for s in scorers for p in s.segments.pre],
                                [p for s in scorers for p in s.segments.post])
        out.replies, out.n_options = None, scorers[0].n_options
        out.blocks, out._parts, at = [], [], 0
        for s in scorers:
            for j, idx in enumerate(s.blocks):
                out.blocks.append([at + i for i in idx])
                out._parts.append((s, j))
            at += len(s)
        out.keep, out._scorers = True, None
        return out

    def __len__(self) -> int:
        return len(self.segments)

    def _block(self, b: int) -> PromptScorer:
        """The prompt scorer of block ``b`` (made for this call where caches are not kept)."""
        if self._parts is not None:
            owner, j = self._parts[b]
            return owner._block(j)
        if self._scorers is not None:
            return self._scorers[b]
        return self._scorer(self.blocks[b])

    def _scorer(self, idx: Sequence[int]) -> PromptScorer:
        segs = Segments([self.segments.pre[i] for i in idx], [self.segments.post[i] for i in idx])
        return PromptScorer(self.lm, segs, max_rows=self.max_rows,
                            replies=self.replies.select(list(idx)))

    def __call__(self, soft: torch.Tensor | None) -> tuple[torch.Tensor, np.ndarray]:
        cands = 1 if soft is None else soft.shape[0]
        n, k = len(self.segments), self.n_options
        logp = torch.empty(cands, n, k)
        said = np.empty((cands, n), dtype=np.int64)
        for b, idx in enumerate(self.blocks):
            lp, s = self._block(b).reply_scores(soft)
            logp[:, idx] = lp.float()
            said[:, idx] = s
        return logp, said

    def value_and_grad(
        self, soft: torch.Tensor, loss_of: LossOf, chunk: int | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, np.ndarray]:
        """A loss of one soft prompt's readings and its gradient with respect to the prompt.

        ``soft`` is ``[1, tokens, hidden]``; ``loss_of(logp, said)`` maps the options'
        log-probabilities ``[1, prompts, options]`` (and what each greedy reply says) to a pair of
        scalars: the one to differentiate and the one to report (they differ only where a
        smooth surrogate stands in for a maximum). Returns the reported loss, the gradient
        ``[1, tokens, hidden]`` (float32), and the log-probabilities and said options read.

        With ``chunk`` (prompts per backward pass) smaller than a group of prompts, the
        readings are taken first without a graph (the very shapes of a survey's reading, so
        the loss is what ``survey --prompt`` reads), ``dloss/dlogp`` is taken on them, and the
        forward pass is run again with a graph ``chunk`` prompts at a time, each chunk's
        ``logp . dloss/dlogp`` back-propagated and the gradients summed: memory then holds one
        chunk's graph. Otherwise one graph holds every prompt (no second forward pass).
        """
        leaf = soft.detach().float().clone().requires_grad_(True)
        if chunk is None or all(len(idx) <= chunk for idx in self.blocks):
            with torch.enable_grad():
                logp, said = self(leaf)
                surrogate, value = loss_of(logp, said)
                surrogate.backward()
            return value.detach(), leaf.grad, logp.detach(), said
        with torch.no_grad():
            logp, said = self(leaf.detach())
        at = logp.double().requires_grad_(True)
        with torch.enable_grad():
            surrogate, value = loss_of(at, said)
            (dlogp,) = torch.autograd.grad(surrogate, at)
        with torch.enable_grad():
            for b, idx in enumerate(self.blocks):
                scorer = self._block(b)
                for a in range(0, len(idx), chunk):
                    rows = idx[a : a + chunk]
                    part, _ = scorer.rows(a, a + len(rows)).reply_scores(leaf)
                    (part.double() * dlogp[:, rows]).sum().backward()
        return value.detach(), leaf.grad, logp, said


#: ``loss_of(logp, said) -> (surrogate, reported)`` (see :meth:`ReplyScorer.value_and_grad`).
LossOf = Callable[[torch.Tensor, np.ndarray], tuple[torch.Tensor, torch.Tensor]]


__all__ = ["MAX_CACHED_PROMPTS", "LossOf", "ReplyScorer"]
