"""Administering the VSM 2013 to the bundled default model and reading its answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from culturetune.core.errors import CultureTuneError
from culturetune.instrument import formats
from culturetune.instrument.items import Instrument
from culturetune.instrument.targets import lookup_country
from culturetune.instrument.vsm import DIMENSIONS, compute_indices, load_instrument, parse_constants
from culturetune.model.loading import PLAIN_SYSTEM, PLAIN_USER, LoadedModel, load_model
from culturetune.reading.administer import run_survey
from culturetune.reading.prompts import item_prompt, option_token_ids, persona_prompt
from culturetune.reading.results import SurveyResult
from culturetune.reading.survey import Survey

C50 = parse_constants(None)
REVERSED = (4, 3, 2, 1, 0)
CONFIDENT = 0.9


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def lm32(lm: LoadedModel) -> LoadedModel:
    """conftest's ``lm`` when that is float32 already (on the CPU), so the model loads once."""
    return lm if lm.dtype == "float32" else load_model(dtype="float32")


@pytest.fixture(scope="module")
def survey(lm: LoadedModel) -> Survey:
    return Survey(lm, orders="shown")


@pytest.fixture(scope="module")
def reversed_survey(lm: LoadedModel) -> Survey:
    return Survey(lm, orders="reversed")


@pytest.fixture(scope="module")
def results(survey: Survey, reversed_survey: Survey) -> dict[str, SurveyResult]:
    """Every answer mode on the plain survey, and expected/generate on the reversed one."""
    out = {m: run_survey(survey, answers=m, constants=C50) for m in ("expected", "argmax")}
    out["generate"] = run_survey(survey, answers="generate", constants=C50)
    out["rev-expected"] = run_survey(reversed_survey, answers="expected", constants=C50)
    out["rev-argmax"] = run_survey(reversed_survey, answers="argmax", constants=C50)
    out["rev-generate"] = run_survey(reversed_survey, answers="generate", constants=C50)
    return out


def reversed_options(inst: Instrument) -> Instrument:
    """The same instrument with each item's options listed last to first."""
    items = tuple(dataclasses.replace(it, options=it.options[::-1]) for it in inst.items)
    return dataclasses.replace(inst, name=inst.name + "-reversed", items=items)


def confident(result: SurveyResult) -> list[int]:
    idx = [i for i, it in enumerate(result.items) if max(it.probs) > CONFIDENT]
    assert idx, "the default model should be confident (p > 0.9) on some items"
    return idx


# --------------------------------------------------------------------------- distributions, indices


@pytest.mark.model
def test_distributions_sum_to_one(results: dict[str, SurveyResult]) -> None:
    for name, r in results.items():
        assert len(r.items) == 24, name
        for it in r.items:
            assert len(it.probs) == 5
            assert min(it.probs) >= 0.0
            assert sum(it.probs) == pytest.approx(1.0, abs=1e-6), (name, it.var)
            assert 0.0 < it.mass <= 1.0 + 1e-6, (name, it.var)


@pytest.mark.model
def test_indices_follow_from_reported_means(results: dict[str, SurveyResult]) -> None:
    for name in ("expected", "argmax", "rev-expected"):
        r = results[name]
        assert r.indices == pytest.approx(compute_indices(r.means, r.constants)), name
    for it in results["expected"].items:
        assert it.mean == pytest.approx(float(np.dot(np.arange(1, 6), it.probs)))
    for it in results["argmax"].items:
        assert it.mean == float(np.argmax(it.probs) + 1)


@pytest.mark.model
def test_constants_shift_indices(survey: Survey, results: dict[str, SurveyResult]) -> None:
    c = parse_constants("0")
    r0 = run_survey(survey, constants=c)
    for d in DIMENSIONS:
        assert r0.indices[d] == pytest.approx(results["expected"].indices[d] - 50.0)


@pytest.mark.model
def test_loss_against_a_target(survey: Survey) -> None:
    china = lookup_country("China")
    r = run_survey(survey, constants=C50, target=china, loss_kind="l2")
    assert r.loss is not None and r.loss.kind == "l2"
    assert r.loss.dimensions == DIMENSIONS
    gaps = np.array([r.indices[d] - china.scores[d] for d in DIMENSIONS])
    assert r.loss.value == pytest.approx(float(np.sqrt(np.mean(gaps**2))))


# --------------------------------------------------------------------------- answer modes


@pytest.mark.model
@pytest.mark.parametrize("prefix", ["", "rev-"])
def test_answer_modes_agree_where_confident(
    results: dict[str, SurveyResult], prefix: str
) -> None:
    exp, arg, gen = (results[prefix + m] for m in ("expected", "argmax", "generate"))
    for i in confident(exp):
        top = float(np.argmax(exp.items[i].probs) + 1)
        assert arg.items[i].mean == top
        assert round(exp.items[i].mean) == top
        assert gen.items[i].mean == top, (exp.items[i].var, gen.items[i].generated)
    assert all(it.generated is not None for it in gen.items)


@pytest.mark.model
def test_unparsable_answer_is_reported_not_guessed(
    survey: Survey, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = ["I would rather not say"] + ["3"] * 23
    monkeypatch.setattr(survey, "generate", lambda soft=None, max_new_tokens=8: texts)
    r = run_survey(survey, answers="generate", constants=C50, target=lookup_country("China"))
    assert r.items[0].mean is None and r.items[1].mean == 3.0
    assert r.indices["IDV"] is None  # IDV uses m01
    assert r.indices["PDI"] == pytest.approx(50.0)
    assert r.loss is None
    assert any("m01" in n and "unparsable" in n for n in r.notes)


# --------------------------------------------------------------------------- reversed options


def test_reversed_prompt_lists_options_5_to_1() -> None:
    item = load_instrument().item("m21")
    lines = item_prompt(item, REVERSED).splitlines()
    assert [ln for ln in lines if ln[:2] in {f"{k}." for k in range(1, 6)}] == [
        f"{k}. {label}" for k, label in enumerate(reversed(item.options), 1)
    ]
    assert lines[-1] == formats.instruction("number", 5)
    # a cyclic shift: shown number 1 labels option 2
    assert item_prompt(item, (1, 2, 3, 4, 0)).splitlines()[3] == f"1. {item.options[1]}"


@pytest.mark.model
def test_reversed_survey_maps_back_to_option_order(
    lm: LoadedModel, reversed_survey: Survey, results: dict[str, SurveyResult]
) -> None:
    # Listing the options 5..1 is the same prompt as an instrument whose options are reversed:
    # its probabilities, read in shown order and flipped, must be the reversed survey's.
    inst = reversed_options(load_instrument())
    shown = Survey(lm, inst, orders="shown")
    assert shown.segments == reversed_survey.segments
    p_shown, m_shown = shown.option_probs()
    p_rev, m_rev = reversed_survey.option_probs()
    np.testing.assert_allclose(p_rev, p_shown[..., ::-1], atol=1e-6)
    np.testing.assert_allclose(m_rev, m_shown, atol=1e-6)
    means_shown = run_survey(shown, constants=C50).means
    for var, mean in results["rev-expected"].means.items():
        assert mean == pytest.approx(6.0 - means_shown[var])


@pytest.mark.model
def test_reversed_generation_maps_back(results: dict[str, SurveyResult]) -> None:
    gen, exp = results["rev-generate"], results["rev-expected"]
    for i in confident(exp):
        top = int(np.argmax(exp.items[i].probs)) + 1  # in option order
        raw = formats.match_label(gen.items[i].generated or "", "number", 5)  # as written
        assert raw is not None and raw + 1 == 6 - top
        assert gen.items[i].mean == top


# --------------------------------------------------------------------------- batching, dtype


@pytest.mark.model
def test_batched_equals_one_item_at_a_time(lm32: LoadedModel) -> None:
    inst = load_instrument()
    full_p, full_m = Survey(lm32, inst, orders="shown").option_probs()
    by_length = sorted(range(len(inst.items)), key=lambda i: len(item_prompt(inst.items[i])))
    for i in (by_length[0], by_length[len(by_length) // 2], by_length[-1]):
        one = dataclasses.replace(inst, items=(inst.items[i],))
        p, m = Survey(lm32, one, orders="shown").option_probs()
        np.testing.assert_allclose(p[0, 0], full_p[0, i], atol=1e-4)
        np.testing.assert_allclose(m[0, 0], full_m[0, i], atol=1e-4)


@pytest.mark.model
def test_bf16_close_to_float32(lm: LoadedModel, lm32: LoadedModel) -> None:
    lm16 = lm if lm.dtype == "bfloat16" else load_model(dtype="bfloat16")
    p16, _ = Survey(lm16, orders="shown").option_probs()
    p32, _ = Survey(lm32, orders="shown").option_probs()
    assert float(np.abs(p16 - p32).max()) < 0.025  # docs/models.md: "within about 0.02"


# --------------------------------------------------------------------------- prompt formats


@pytest.mark.model
def test_plain_format_without_chat_template(lm: LoadedModel) -> None:
    tok = lm.tokenizer
    template = tok.chat_template
    system = persona_prompt("China")
    try:
        tok.chat_template = None
        assert not lm.has_chat_template
        text, user_at = lm.render("How are you?", system)
        head = PLAIN_SYSTEM.format(system=system)
        # SmolLM2 splits " 1" into a space and the digit, so the prompt ends with the space.
        assert lm.splits_leading_space
        assert text == head + PLAIN_USER.format(user="How are you?") + " "
        assert user_at == len(head)
        sv = Survey(lm, system=system)
        decoded = tok.decode(sv.segments.pre[0] + sv.segments.post[0])
        assert decoded.startswith(head + "Question: ")
        assert decoded.endswith("\nAnswer: ")
        assert "<|im_start|>" not in decoded
        r = run_survey(sv, constants=C50)
        for it in r.items:
            assert sum(it.probs) == pytest.approx(1.0, abs=1e-6)
        # The answer is the next token: most of the mass is on the five options.
        assert np.mean([it.mass for it in r.items]) > 0.5
    finally:
        tok.chat_template = template
    assert lm.has_chat_template
    assert lm.render("How are you?")[0].startswith("<|im_start|>")


@pytest.mark.model
def test_persona_goes_into_the_system_turn(lm: LoadedModel) -> None:
    system = persona_prompt("U.S.A.")
    assert "the United States" in system
    sv = Survey(lm, system=system)
    decoded = lm.tokenizer.decode(sv.segments.pre[0] + sv.segments.post[0])
    assert decoded.startswith("<|im_start|>system\n" + system)
    assert run_survey(sv, constants=C50).system == system


class FakeTokenizer:
    """Encodes each character as a token, except where told otherwise."""

    def __init__(self, special: dict[str, list[int]]) -> None:
        self.special = special

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return self.special.get(text, [ord(c) for c in text])

    def convert_ids_to_tokens(self, ids: list[int]) -> list[str]:
        return [f"<{i}>" for i in ids]


def test_options_must_be_single_tokens() -> None:
    tok = FakeTokenizer({"3": [51, 52], "5": []})
    with pytest.raises(CultureTuneError) as exc:
        option_token_ids(tok)
    msg = str(exc.value)
    assert "'3'" in msg and "'5'" in msg and "'1'" not in msg
    assert "single tokens" in msg
    fake = LoadedModel(model=None, tokenizer=tok, name="fake", device="cpu", dtype="float32")
    with pytest.raises(CultureTuneError, match="'3'"):
        Survey(fake)


def test_options_must_be_distinct_tokens() -> None:
    tok = FakeTokenizer({"4": [49]})  # "4" and "1" share a token
    with pytest.raises(CultureTuneError, match="distinct"):
        option_token_ids(tok)
