"""The survey's prompts: one chat turn per item and option order, in an answer format, and the
replies each prompt is read by (the options' labels or their words, as token sequences).

An item's user message is its lead-in, its question, the options in the view's order (numbered,
lettered or plain words: :mod:`culturetune.instrument.formats`) and the format's instruction. The
soft prompt's placement cuts each rendered prompt in the part before it (cached once) and the
part after it (:func:`prompt_segments`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from culturetune.core.choices import PLACEMENTS
from culturetune.core.errors import CultureTuneError
from culturetune.instrument import formats
from culturetune.instrument.items import Instrument, Item
from culturetune.instrument.orders import Order, shown_options
from culturetune.model.engine import Segments, split_tokens
from culturetune.model.loading import LoadedModel
from culturetune.model.replies import SharedStart, Trie

N_OPTIONS = 5
#: Question texts with no content, for contextual calibration (Zhao et al. 2021).
CONTENT_FREE = ("N/A", "", "[MASK]")
_CIRCLE = re.compile(r"\s*\(please [^)]*\)\s*:?")

#: Friendlier names for persona prompts than the table's own.
_PERSONA_NAMES = {
    "U.S.A.": "the United States",
    "Great Britain": "the United Kingdom",
    "Korea South": "South Korea",
    "Czech Rep": "the Czech Republic",
    "Dominican Rep": "the Dominican Republic",
    "Netherlands": "the Netherlands",
    "Philippines": "the Philippines",
}


def persona_prompt(country: str) -> str:
    """The system prompt of persona prompting: the model is asked to be a person from a country."""
    name = _PERSONA_NAMES.get(country, country)
    return f"You are a person from {name}. Answer as a typical person from {name} would."


def item_prompt(
    item: Item, order: Order | None = None, instruction: str | None = None,
    text: str | None = None, fmt: str = "number",
) -> str:
    """The user message for one item, its options listed in ``order`` (shown position j holds
    option ``order[j]``, labelled j + 1, letter j, or by its words alone in ``fmt`` words).
    The lead-in's "(please circle ...)" phrase, meant for paper, is left out. ``text``
    replaces the question (content-free prompts)."""
    labels = list(item.options) if order is None else shown_options(item.options, order)
    stem = _CIRCLE.sub("", item.stem or "").strip()
    question = item.text if text is None else text
    lines = [stem, question] if stem else [question]
    lines.append("")
    lines += formats.option_lines(fmt, labels)
    lines += ["", formats.instruction(fmt, len(labels), instruction)]
    return "\n".join(lines)


def format_instruction(instrument: Instrument, fmt: str) -> str | None:
    """The instrument's own instruction for ``fmt`` (``None``: the format's English default).
    An instrument that sets its own (a translation) can be asked in another format only where it
    gives that format's instruction too."""
    own = getattr(instrument, "instructions", None) or {}
    if fmt in own:
        return own[fmt]
    if instrument.instruction is None:
        return None
    if fmt == "number":
        return instrument.instruction
    raise CultureTuneError(
        f"instrument {instrument.name!r} sets its own answer instruction for numbered options; "
        f"to ask it in --format {fmt}, give that format's instruction in the file "
        f"(\"instructions\": {{\"{fmt}\": \"...\"}}) or use --format number")


def check_instrument_format(instrument: Instrument, fmt: str) -> None:
    """Everything about an instrument and a format that can be checked before a model loads."""
    formats.check_format(fmt, formats.FORMATS)
    format_instruction(instrument, fmt)
    if fmt == "words":
        for it in instrument.items:
            formats.check_option_words(it.var, it.options)


def label_token_ids(
    tokenizer: Any, forms: Sequence[Sequence[str]], hint: str = ""
) -> list[list[int]]:
    """Token ids of each label's surface forms (e.g. ``"A"`` and ``" A"``).

    Variant j of the forms is used only where it is one token for every label (so that no label
    gains from having more forms); at least one variant must be, and all ids must be distinct.
    """
    encoded = [[tokenizer.encode(f, add_special_tokens=False) for f in label] for label in forms]
    usable = [j for j in range(len(forms[0])) if all(len(e[j]) == 1 for e in encoded)]
    if not usable:
        shown = "; ".join(
            f"{label[0]!r} -> {tokenizer.convert_ids_to_tokens(enc[0])}"
            for label, enc in zip(forms, encoded, strict=True) if len(enc[0]) != 1
        )
        raise CultureTuneError(
            f"this tokenizer does not encode the answer labels as single tokens: {shown}. "
            "culturetune reads answers from one next-token distribution" + (hint and f"; {hint}")
        )
    ids = [[enc[j][0] for j in usable] for enc in encoded]
    flat = [i for x in ids for i in x]
    if len(set(flat)) != len(flat):
        named = {f[0]: i for f, i in zip(forms, ids, strict=True)}
        raise CultureTuneError(
            f"answer labels {[f[0] for f in forms]} are not distinct tokens in this tokenizer "
            f"({named}); they must be distinct" + (hint and f"; {hint}")
        )
    return ids


def option_token_ids(tokenizer: Any, fmt: str = "number") -> list[list[int]]:
    """Token ids of the five answer labels of ``fmt`` number or letter (each with its forms)."""
    return label_token_ids(
        tokenizer, formats.label_forms(fmt, N_OPTIONS),
        f"use a model whose tokenizer has the {fmt} labels as single tokens, or --format words")


def word_token_ids(lm: LoadedModel, options: Sequence[str], item: str = "") -> list[list[int]]:
    """Each option's words as the tokens of a reply (the assistant turn's first tokens)."""
    out = []
    for text in options:
        ids = lm.tokenizer.encode(text, add_special_tokens=False)
        if not ids or len(ids) > formats.MAX_OPTION_TOKENS:
            raise CultureTuneError(
                f"item {item}: option {text[:40]!r} is {len(ids)} tokens for this tokenizer; "
                f"the words format scores options of 1 to {formats.MAX_OPTION_TOKENS} tokens "
                "(shorten it, or use --format number)")
        out.append(ids)
    return out


def reply_forms(text: str) -> list[str]:
    """The forms a reply that says an option takes, as text: the option's own words and the
    same with a capital first letter ("very important", "Very important")."""
    forms = [text]
    capital = text[:1].upper() + text[1:]
    if capital != text:
        forms.append(capital)
    return forms


def word_forms(lm: LoadedModel, options: Sequence[str], item: str = "") -> list[list[list[int]]]:
    """Each option's reply forms (:func:`reply_forms`) as tokens ``[option][form][token]``,
    identical tokenizations once. Options where one's tokens are the start of another's (the
    reply "good" is the start of "goodish" for some tokenizers) are refused: with no end of
    the reply, the longer reply would count for both."""
    forms = []
    for text in options:
        ids = word_token_ids(lm, reply_forms(text), item)
        forms.append([f for k, f in enumerate(ids) if f not in ids[:k]])
    try:
        Trie.build(forms)
    except SharedStart as exc:
        where = f"item {item}: " if item else ""
        a, b = options[exc.short], options[exc.long]
        raise CultureTuneError(
            f"{where}options {a!r} and {b!r} start with the same tokens for this tokenizer "
            f"({a!r} is a reply that also starts {b!r}), so the words format cannot tell them "
            "apart: reword one of them (or use --format number)") from None
    return forms


def check_chat_template(lm: LoadedModel, fmt: str) -> None:
    if fmt == "words" and not lm.has_chat_template:
        raise CultureTuneError(
            f"{lm.name} has no chat template, and the words format reads the option's words as "
            "the start of the assistant's reply; use a chat model or --format number")


def format_problem(lm: LoadedModel, instrument: Instrument, fmt: str) -> str | None:
    """Why this model and instrument cannot be asked in ``fmt`` (``None`` where they can)."""
    try:
        check_instrument_format(instrument, fmt)
        check_chat_template(lm, fmt)
        if fmt == "words":
            for it in instrument.items:
                word_forms(lm, it.options, it.var)
        else:
            option_token_ids(lm.tokenizer, fmt)
    except CultureTuneError as exc:
        return str(exc)
    return None


def check_placement(placement: str) -> str:
    """The placement, or an error naming the allowed ones (core.choices.PLACEMENTS)."""
    if placement not in PLACEMENTS:
        raise CultureTuneError(
            f"unknown placement {placement!r}; use one of {', '.join(PLACEMENTS)}"
        )
    return placement


def prompt_segments(
    lm: LoadedModel, users: list[str], system: str | None, placement: str
) -> Segments:
    """Token segments around the soft prompt's position for a list of user messages."""
    check_placement(placement)
    texts, splits = [], []
    for user in users:
        text, user_at = lm.render(user, system)
        texts.append(text)
        splits.append({"prefix": 0, "system": user_at, "answer": len(text)}[placement])
    return split_tokens(lm, texts, splits)


__all__ = ["CONTENT_FREE", "N_OPTIONS", "PLACEMENTS", "check_chat_template",
           "check_instrument_format", "check_placement", "format_instruction", "format_problem",
           "item_prompt",
           "label_token_ids", "option_token_ids", "persona_prompt", "prompt_segments",
           "word_forms", "word_token_ids"]
