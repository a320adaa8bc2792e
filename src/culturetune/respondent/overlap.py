"""How much two texts share: the content words of a text and the share of them another text
holds, the measure that keeps the respondent's data clear of the VSM 2013 items
(:data:`~culturetune.respondent.data.MAX_SHARED`).
"""

from __future__ import annotations

import re

_STOP = frozenset(
    """
    the and you your yours yourself are for with that this these those who whom what which
    how not but can from any all each its their them they his her has had have was were been
    will would should could does did into than then there out about some such more much
    """.split()
)


def content_words(text: str) -> set[str]:
    """Lower-cased alphabetic words of 3+ letters, function words left out."""
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) >= 3 and w not in _STOP}


def shared_share(text: str, other: str) -> float:
    """The share of ``text``'s content words that also appear in ``other``."""
    mine = content_words(text)
    return len(mine & content_words(other)) / len(mine) if mine else 0.0


def max_overlap(texts: list[str], references: list[str]) -> tuple[float, str, str]:
    """The largest share of content words any of ``texts`` shares with any of ``references``
    (either way round), with the pair."""
    best = (0.0, "", "")
    for t in texts:
        for r in references:
            share = max(shared_share(t, r), shared_share(r, t))
            if share > best[0]:
                best = (share, t, r)
    return best
