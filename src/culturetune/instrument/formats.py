"""Answer formats: how a model is asked to answer an item, and how a reply is matched to an
option. Torch-free.

- ``number``: the options numbered ``1.``..``5.``; "Answer with the number of one option only".
- ``letter``: the options lettered ``A.``..``E.``; "Answer with the letter of one option only".
- ``words``: the options listed without numbers or letters, one per line; "Answer with the exact
  words of one option only". The answer is the option's own text, scored as the whole reply
  (lm-evaluation-harness's ``multiple_choice`` scores each choice's full text the same way).

Option-ID tokens carry a selection bias that the option text does not (Zheng et al. 2023, "Large
Language Models Are Not Robust Multiple Choice Selectors"), so a model can answer by position in
one format and by content in another: the format is part of every view and every result.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from culturetune.core.choices import FORMAT_CHOICES, FORMATS
from culturetune.core.errors import CultureTuneError

#: The format a survey, a check or a result is read in when the caller names none. Not the
#: command line's default: that is ``core.defaults.FORMAT`` (``auto``), which settles on a
#: format per model (:func:`culturetune.reading.check.choose_format`) and passes it on.
READ_FORMAT = "number"
LETTERS = "ABCDEFGHIJ"
#: The longest option text the ``words`` format scores, in tokens (checked on the tokenizer).
MAX_OPTION_TOKENS = 24
#: The longest option text, in characters (checked before a model loads).
MAX_OPTION_CHARS = 200

_INSTRUCTIONS = {
    "number": "Answer with the number of one option only ({first}-{last}).",
    "letter": "Answer with the letter of one option only ({first}-{last}).",
    "words": "Answer with the exact words of one option only.",
}


def check_format(name: str, allowed: Sequence[str] = FORMAT_CHOICES) -> str:
    """The format name, lower-cased, or an error naming the valid ones."""
    key = str(name).strip().lower()
    if key not in allowed:
        raise CultureTuneError(f"unknown --format {name!r}; use one of {', '.join(allowed)}")
    return key


def labels(fmt: str, k: int) -> list[str]:
    """The option labels shown in a format (``[]`` for ``words``)."""
    if fmt == "number":
        return [str(j) for j in range(1, k + 1)]
    if fmt == "letter":
        return list(LETTERS[:k])
    return []


def instruction(fmt: str, k: int, custom: str | None = None) -> str:
    """The line that ends every item's prompt in ``fmt`` (``custom``: the instrument's own)."""
    if custom:
        return custom
    shown = labels(fmt, k)
    return _INSTRUCTIONS[fmt].format(first=shown[0] if shown else "", last=shown[-1] if shown
                                     else "")


def option_lines(fmt: str, options: Sequence[str]) -> list[str]:
    """The options as listed in the prompt, in the order given."""
    if fmt == "words":
        return list(options)
    return [f"{label}. {text}" for label, text in zip(labels(fmt, len(options)), options,
                                                       strict=True)]


def label_forms(fmt: str, k: int) -> list[tuple[str, ...]]:
    """Surface forms of each option's label as a reply's first token (``"1"`` and ``" 1"``)."""
    return [(lab, f" {lab}") for lab in labels(fmt, k)]


def _norm(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


def check_option_words(item: str, options: Sequence[str]) -> None:
    """What the ``words`` format needs of one item's options: none empty or too long, no two
    the same words (case and punctuation aside), none the start of another (the reply "agree"
    would then be both "agree" and the start of "agree strongly")."""
    norm = [_norm(o) for o in options]
    for text, n in zip(options, norm, strict=True):
        if not n:
            raise CultureTuneError(f"item {item}: option {text!r} has no words to answer with; "
                                   "the words format needs every option in words "
                                   "(or use --format number)")
        if len(text) > MAX_OPTION_CHARS:
            raise CultureTuneError(f"item {item}: option {text[:40]!r}... is {len(text)} "
                                   f"characters; the words format takes at most "
                                   f"{MAX_OPTION_CHARS} (or use --format number)")
    for i, a in enumerate(norm):
        for j, b in enumerate(norm):
            if i < j and a == b:
                raise CultureTuneError(
                    f"item {item}: options {i + 1} and {j + 1} have the same words "
                    f"({options[i]!r}); in the words format an answer could not tell them apart: "
                    "reword one of them (or use --format number)")
            if i != j and b.startswith(a + " "):
                raise CultureTuneError(
                    f"item {item}: option {i + 1} ({options[i]!r}) is the start of option "
                    f"{j + 1} ({options[j]!r}); in the words format the reply {options[i]!r} "
                    "would also start the other: reword one of them (or use --format number)")


_LEAD = re.compile(r"^[\s\-–—*•>\"'`“”‘’«»()\[\]]*(?:(?:\d+|[A-Ja-j])[.):]\s+)?[\s\"'`“”‘’«»]*")


def match_words(reply: str, options: Sequence[str]) -> int | None:
    """The option (index into ``options``) a generated reply names in the ``words`` format.

    Case-insensitive, punctuation aside; a leading dash, bullet, quote or list label ("2. ")
    is tolerated. The reply names an option when it starts with the option's words; failing
    that, when its first line is a run of words found in exactly one option (the reply
    "moderate importance" names "of moderate importance"). Otherwise ``None`` (no answer)."""
    first = reply.strip().splitlines()[0] if reply.strip() else ""
    text = _norm(_LEAD.sub("", first))
    if not text:
        return None
    norm = [_norm(o) for o in options]
    starts = [i for i, n in enumerate(norm) if text == n or text.startswith(n + " ")]
    if starts:
        return max(starts, key=lambda i: len(norm[i]))
    inside = [i for i, n in enumerate(norm) if f" {text} " in f" {n} "]
    return inside[0] if len(inside) == 1 else None


def match_label(reply: str, fmt: str, k: int) -> int | None:
    """The shown position (0-based) a ``number`` or ``letter`` reply names, or ``None``."""
    if fmt == "number":
        m = re.search(r"\d+", reply)
        return int(m.group()) - 1 if m and 1 <= int(m.group()) <= k else None
    m = re.search(r"\b([A-Za-z])\b", reply.strip())
    if not m:
        return None
    j = LETTERS.find(m.group(1).upper())
    return j if 0 <= j < k else None


__all__ = ["READ_FORMAT", "FORMATS", "FORMAT_CHOICES", "MAX_OPTION_TOKENS", "check_format",
           "check_option_words", "instruction", "label_forms", "labels", "match_label",
           "match_words", "option_lines"]
