"""Replies scored as token sequences: each prompt's options as a token trie.

A prompt's answer options are one or more token sequences each (its *forms*: ``"1"`` and
``" 1"``, or an option's words). Merged into a trie, sequences that share leading tokens share
their nodes, so that every token of every option is scored once. The engine feeds a prompt's
*internal* nodes (those with children) after the prompt under a tree attention mask (each node
sees the prompt and its own ancestors) and reads the next-token distribution at the prompt's end
(*slot* 0) and at every internal node (slot 1 + its index). A node's log-probability is read at
its parent's slot; a sequence's is the sum over its nodes. The greedy path (what the model would
say) follows the most likely token at each slot while it stays in the trie.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

#: A greedy path that leaves every option's tokens: no option is said.
OFF = -1


class SharedStart(ValueError):
    """One option's form is the start of another's at the token level (or the same tokens):
    with no end-of-reply token, the longer reply would count for both, so such options are not
    scored. ``short`` and ``long`` are the two options (the same option where one of its forms
    starts another of its own forms)."""

    def __init__(self, short: int, long: int, same: bool = False) -> None:
        self.short, self.long, self.same = short, long, same
        super().__init__(f"options {short} and {long} have a form in common" if same else
                         f"a form of option {short} is the start of a form of option {long}")


@dataclass
class Trie:
    """One prompt's options as a token trie (nodes in insertion order: parents first)."""

    token: list[int]
    parent: list[int]  # -1: the prompt's end
    #: Option of each form's end node: ``ends[k]`` is the option whose form ends at node k, or -1.
    ends: list[int]
    #: Nodes of each form, root to end: ``paths[option][form]``.
    paths: list[list[list[int]]]

    @classmethod
    def build(cls, options: list[list[list[int]]], strict: bool = True) -> Trie:
        """The trie of one prompt's options (``[option][form][token]``). A form that ends where
        another form goes on (one is the start of the other) or that ends at the same node
        raises :class:`SharedStart`: the replies have no end token, so the shorter form's
        probability would hold the longer one's too. ``strict=False`` allows them, for
        continuations scored each on its own (lm-evaluation-harness's log-likelihood of a text
        after a context, where one continuation may well start another): every form's sum over
        its path is still its own log-probability, but the greedy path names the first option
        ending at a node and is not a reading of what the model says."""
        token: list[int] = []
        parent: list[int] = []
        ends: list[int] = []
        child: dict[tuple[int, int], int] = {}
        paths: list[list[list[int]]] = []
        for o, forms in enumerate(options):
            unique: list[list[int]] = []
            for form in forms:  # a form that tokenizes like another is counted once
                form = [int(t) for t in form]
                if not form:
                    raise ValueError("an option form needs at least one token")
                if form not in unique:
                    unique.append(form)
            option_paths = []
            for form in unique:
                at, path = -1, []
                for t in form:
                    if (at, t) not in child:
                        child[(at, t)] = len(token)
                        token.append(t)
                        parent.append(at)
                        ends.append(-1)
                    at = child[(at, t)]
                    path.append(at)
                if ends[at] != -1:  # the same tokens as another option's form
                    if strict:
                        raise SharedStart(ends[at], o, same=True)
                    option_paths.append(path)
                    continue
                ends[at] = o
                option_paths.append(path)
            paths.append(option_paths)
        for p in parent:  # a form ends where another goes on
            if strict and p >= 0 and ends[p] != -1:
                longer = next(o for o, forms in enumerate(paths) for f in forms
                              if p in f[:-1])
                raise SharedStart(ends[p], longer)
        return cls(token, parent, ends, paths)

    @property
    def internal(self) -> list[int]:
        """Nodes with children, in node order (each after its parent)."""
        has = set(p for p in self.parent if p >= 0)
        return [k for k in range(len(self.token)) if k in has]

    def depth(self, k: int) -> int:
        d = 0
        while self.parent[k] >= 0:
            k, d = self.parent[k], d + 1
        return d


class ReplySet:
    """The tries of many prompts, laid out as padded tensors for one batched forward.

    ``n`` prompts; ``N`` internal nodes at most per prompt (fed as input tokens), ``K`` nodes at
    most (scored), ``O`` options, ``F`` forms at most, ``D`` tokens at most per form."""

    def __init__(self, options: list[list[list[list[int]]]], pad: int = 0,
                 strict: bool = True) -> None:
        self._layout([Trie.build(o, strict) for o in options], pad)

    def _layout(self, tries: list[Trie], pad: int) -> None:
        with torch.inference_mode(False):  # index tensors a gradient step may save
            self._lay_out(tries, pad)

    def _lay_out(self, tries: list[Trie], pad: int) -> None:
        self.tries, self.pad = tries, pad
        self.n_options = max((len(t.paths) for t in self.tries), default=0)
        if any(len(t.paths) != self.n_options for t in self.tries):
            raise ValueError("every prompt needs the same number of options")
        n = len(self.tries)
        internals = [t.internal for t in self.tries]
        self.n_internal = max((len(i) for i in internals), default=0)
        self.n_nodes = max((len(t.token) for t in self.tries), default=0)
        n_forms = max((len(p) for t in self.tries for p in t.paths), default=1)
        n_depth = max((len(f) for t in self.tries for p in t.paths for f in p), default=1)
        N, K = self.n_internal, self.n_nodes
        self.internal_count = torch.tensor([len(i) for i in internals], dtype=torch.long)
        self.input_ids = torch.full((n, N), pad, dtype=torch.long)
        self.input_depth = torch.zeros(n, N, dtype=torch.long)
        self.input_valid = torch.zeros(n, N, dtype=torch.bool)
        #: ``ancestor[i, a, b]``: internal node b is internal node a or one of its ancestors.
        self.ancestor = torch.zeros(n, N, N, dtype=torch.bool)
        self.read_slot = torch.zeros(n, K, dtype=torch.long)  # where node k's probability is
        self.read_token = torch.zeros(n, K, dtype=torch.long)
        self.paths = torch.full((n, self.n_options, n_forms, n_depth), K, dtype=torch.long)
        self._slot_of: list[dict[int, int]] = []
        self._child: list[dict[tuple[int, int], int]] = []
        for i, (trie, inner) in enumerate(zip(self.tries, internals, strict=True)):
            slot = {k: j + 1 for j, k in enumerate(inner)}
            self._slot_of.append(slot)
            self._child.append({(slot.get(p, 0) if p >= 0 else 0, t): k for k, (t, p) in
                                enumerate(zip(trie.token, trie.parent, strict=True))})
            for j, k in enumerate(inner):
                self.input_ids[i, j] = trie.token[k]
                self.input_depth[i, j] = trie.depth(k)
                self.input_valid[i, j] = True
                a = k
                while a >= 0:
                    self.ancestor[i, j, slot[a] - 1] = True
                    a = trie.parent[a]
            for k, (t, p) in enumerate(zip(trie.token, trie.parent, strict=True)):
                self.read_slot[i, k] = 0 if p < 0 else slot[p]
                self.read_token[i, k] = t
            for o, forms in enumerate(trie.paths):
                for f, path in enumerate(forms):
                    self.paths[i, o, f, : len(path)] = torch.tensor(path)

    def __len__(self) -> int:
        return len(self.tries)

    def select(self, idx: list[int]) -> ReplySet:
        """The tries of the prompts ``idx``, laid out as narrow as they allow."""
        out = ReplySet.__new__(ReplySet)
        out._layout([self.tries[i] for i in idx], self.pad)
        return out

    def option_logprobs(self, node_logp: torch.Tensor) -> torch.Tensor:
        """``[candidates, prompts, O]`` log-probability of each option (its forms summed), from
        the nodes' log-probabilities ``[candidates, prompts, K]``."""
        c, n, _ = node_logp.shape
        padded = torch.cat([node_logp, node_logp.new_zeros(c, n, 1)], -1)  # index K reads 0
        flat = self.paths.view(n, -1)
        seq = padded.gather(2, flat[None].expand(c, -1, -1).to(padded.device))
        seq = seq.view(c, n, *self.paths.shape[1:]).sum(-1)  # [c, n, O, F]
        unused = (self.paths[..., 0] == self.n_nodes).to(seq.device)
        seq = seq.masked_fill(unused[None], float("-inf"))
        return torch.logsumexp(seq, -1)

    def greedy(self, top: np.ndarray) -> np.ndarray:
        """The option each greedy path spells, or :data:`OFF`, from the most likely token at
        every slot ``top`` ``[candidates, prompts, 1 + N]``."""
        c, n = top.shape[:2]
        out = np.full((c, n), OFF, dtype=np.int64)
        for i in range(n):
            trie, child, slot_of = self.tries[i], self._child[i], self._slot_of[i]
            for cand in range(c):
                slot = 0
                while True:
                    k = child.get((slot, int(top[cand, i, slot])))
                    if k is None:
                        break
                    nxt = slot_of.get(k)
                    if nxt is None or (trie.ends[k] >= 0
                                       and (nxt, int(top[cand, i, nxt])) not in child):
                        out[cand, i] = trie.ends[k]
                        break
                    slot = nxt
        return out


__all__ = ["OFF", "ReplySet", "SharedStart", "Trie"]
