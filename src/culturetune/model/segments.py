"""A prompt as two token sequences around the soft prompt's place: ``pre`` (encoded once, its KV
cache shared by every candidate) and ``post`` (run for every candidate)."""

from __future__ import annotations

from dataclasses import dataclass

from culturetune.model.loading import LoadedModel


@dataclass
class Segments:
    """Token ids before and after the soft prompt, one pair per prompt."""

    pre: list[list[int]]
    post: list[list[int]]

    def __post_init__(self) -> None:
        if len(self.pre) != len(self.post):
            raise ValueError("pre and post must have one entry per prompt")
        if any(not a and not b for a, b in zip(self.pre, self.post, strict=True)):
            raise ValueError("every prompt needs at least one token before or after the prompt")
        if any(self.post) and not all(self.post):
            raise ValueError("either every prompt has a part after the soft prompt or none has")

    def __len__(self) -> int:
        return len(self.pre)


def split_tokens(lm: LoadedModel, texts: list[str], splits: list[int]) -> Segments:
    """Tokenize each text as two pieces, cut at the given character offsets.

    Chat-template text already holds its special tokens; the plain format gets the tokenizer's
    BOS token (if it uses one) at the very start, before the ``pre`` piece.
    """
    tok = lm.tokenizer
    bos = [] if lm.has_chat_template or not _adds_bos(tok) else [tok.bos_token_id]
    pre, post = [], []
    for text, at in zip(texts, splits, strict=True):
        head = tok.encode(text[:at], add_special_tokens=False) if at else []
        tail = tok.encode(text[at:], add_special_tokens=False)
        if at:
            head = bos + head
        else:
            tail = bos + tail
        pre.append(head)
        post.append(tail)
    return Segments(pre, post)


def _adds_bos(tok: object) -> bool:
    if tok.bos_token_id is None:
        return False
    ids = tok.encode("a", add_special_tokens=True)
    return bool(ids) and ids[0] == tok.bos_token_id


__all__ = ["Segments", "split_tokens"]
