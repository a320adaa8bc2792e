"""The three bundled wordings of the VSM 2013: same items, scales and formulas, different words.

The paraphrases exist to test whether results depend on the exact wording, so each must share
the official instrument's structure while its stems and item texts share at most half of their
content words with every other wording's.
"""

from __future__ import annotations

import itertools
import re

import pytest

from culturetune.instrument.items import Instrument
from culturetune.instrument.vsm import load_instrument

WORDINGS = ("vsm2013", "paraphrase", "paraphrase2")
MAX_SHARED = 0.5

# Function words that any English wording needs; everything else counts as a content word.
STOPWORDS = frozenset(
    """
    the and you your yours yourself are for with that this these those who whom what which
    how not but can from any all each its their them they his her has had was were been
    will would should could does did into than then there out about some such more much
    """.split()
)


def content_words(text: str) -> set[str]:
    """Lower-cased alphabetic words of 3+ letters, minus :data:`STOPWORDS`."""
    words = re.findall(r"[a-z]+", text.lower())
    return {w for w in words if len(w) >= 3 and w not in STOPWORDS}


def shared_share(text: str, other: str) -> float:
    """The share of ``text``'s content words that also appear in ``other``."""
    mine = content_words(text)
    return len(mine & content_words(other)) / len(mine) if mine else 0.0


@pytest.fixture(scope="module")
def wordings() -> dict[str, Instrument]:
    return {name: load_instrument(name) for name in WORDINGS}


def test_content_words() -> None:
    words = content_words("How often are subordinates afraid to contradict their boss (or not)?")
    assert words == {"often", "subordinates", "afraid", "contradict", "boss"}
    assert content_words("") == set()


def test_only_the_official_wording_claims_to_be_official(wordings) -> None:
    assert [w.name for w in wordings.values()] == list(WORDINGS)
    assert wordings["vsm2013"].official
    for name in ("paraphrase", "paraphrase2"):
        assert not wordings[name].official
        assert "NOT the official" in wordings[name].source


@pytest.mark.parametrize("name", ["paraphrase", "paraphrase2"])
def test_wordings_share_items_options_and_formulas(wordings, name: str) -> None:
    official, other = wordings["vsm2013"], wordings[name]
    assert len(other.items) == len(official.items) == 24
    assert other.vars == official.vars
    for a, b in zip(official.items, other.items, strict=True):
        assert (b.id, b.var, b.group, b.options) == (a.id, a.var, a.group, a.options)
        assert bool(b.stem) == bool(a.stem)
    assert other.formulas == official.formulas


# The second paraphrase against both others. (The first paraphrase keeps many official words:
# m06 and m16 share all of theirs, so it is a rewording of the lead-ins more than of the items.)
PAIRS = [(a, b) for a, b in itertools.permutations(WORDINGS, 2) if "paraphrase2" in (a, b)]


@pytest.mark.parametrize("first,second", PAIRS)
def test_wordings_use_different_words(wordings, first: str, second: str) -> None:
    for a, b in zip(wordings[first].items, wordings[second].items, strict=True):
        assert a.text != b.text
        share = shared_share(a.text, b.text)
        assert share <= MAX_SHARED, f"{a.var} text: {first} shares {share:.2f} with {second}"
        if a.stem:
            share = shared_share(a.stem, b.stem)
            assert share <= MAX_SHARED, f"{a.var} stem: {first} shares {share:.2f} with {second}"
