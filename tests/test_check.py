"""The model check, the ``said`` reading, the objective's views and mass floor, and the verdict
rule, on synthetic respondents (the bundled tokenizer and chat template, answers decided by a
rule that reads the prompt) and on the bundled model itself."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from synthetic import by_content, by_middle, by_position, install, shown_labels, tokenizer_only

from culturetune.instrument.targets import lookup_country
from culturetune.instrument.vsm import load_instrument, parse_constants
from culturetune.reading.administer import run_survey
from culturetune.reading.answers import NO_ANSWER, apply_missing, said_values
from culturetune.reading.check import (
    MIN_CONTENT_FREE_DIFFERENCE,
    MIN_ITEM_VARIATION,
    MIN_PROBE_GAP,
    ModelCheck,
    check_model,
    content_free_difference,
    item_variation,
    poles,
    run_check,
    verdict,
)
from culturetune.reading.survey import Survey
from culturetune.reading.validity import ViewResult, assess

C50 = parse_constants(None)


# --------------------------------------------------------------------------- the model check


@pytest.fixture(scope="module")
def tok_lm():
    """The bundled model's tokenizer and chat template, no weights: synthetic respondents only."""
    return tokenizer_only()


def test_a_respondent_that_answers_by_position_is_named_so(tok_lm, monkeypatch) -> None:
    install(monkeypatch, by_position(0))
    c = run_check(tok_lm)
    assert c.verdict == "answers by position"
    assert c.content_agreement == 0 and c.position_agreement == 1
    assert all(p["gap"] == 0 for p in c.probe.values())
    assert c.said["printed"] == [1] * 24 and c.said["reversed"] == [1] * 24
    assert c.warning() and "measure the answer format" in c.warning()


def test_a_respondent_that_reads_the_options_answers_by_content(tok_lm, monkeypatch) -> None:
    install(monkeypatch, by_content())
    c = run_check(tok_lm)
    assert c.verdict == "answers by content", c.summary()
    assert c.content_agreement == 1
    # asked to agree it names the agreeing pole (1), asked to disagree the other one (5)
    for p in c.probe.values():
        assert p["asked_high"] == 1 and p["asked_low"] == 5 and p["gap"] >= MIN_PROBE_GAP
    assert c.top_option_match == 1 and c.answered == 1 and c.warning() is None


def test_content_without_instructions_does_not_follow_them(tok_lm, monkeypatch) -> None:
    install(monkeypatch, by_content(follows_instructions=False))
    c = run_check(tok_lm)
    assert c.verdict == "does not follow instructions"
    assert c.content_agreement == 1 and not c.probe_passed


def test_a_respondent_that_names_no_option_does_not_answer(tok_lm, monkeypatch) -> None:
    install(monkeypatch, lambda system, user: None)
    c = run_check(tok_lm)
    assert c.verdict == "does not answer" and c.answered == 0
    assert c.replies["printed"][0] == "I am not sure."


def test_verdict_order_and_poles() -> None:
    assert verdict(0.9, 0.1, True, 1.0) == "answers by content"
    assert verdict(0.9, 0.1, False, 1.0) == "does not follow instructions"
    # a respondent that always names the middle option agrees with itself in content and in
    # position; its answers do not vary with the items, whether or not it follows instructions
    assert verdict(1.0, 1.0, True, 1.0, items_ok=False) == "ignores the items"
    assert verdict(1.0, 1.0, False, 1.0, items_ok=False) == "ignores the items"
    assert verdict(0.9, 0.1, True, 1.0, items_ok=False) == "ignores the items"
    # (d) needs content agreement to name it: a fixed position is answering by position
    assert verdict(0.0, 1.0, False, 1.0, items_ok=False) == "answers by position"
    assert verdict(1.0, 1.0, False, 1.0) == "answers by position"
    assert verdict(0.2, 0.2, False, 1.0) == "answers inconsistently"
    assert verdict(1.0, 0.0, True, 0.3) == "does not answer"
    signs = poles(load_instrument())
    assert signs[19] == -1 and (np.delete(signs, 19) == 1).all()  # m20 runs never..always


def test_the_check_is_cached_per_model_and_instrument(tok_lm, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    install(monkeypatch, by_position(0))
    first = check_model(tok_lm)
    import culturetune.reading.check as check_module

    def fail(*a, **k):
        raise AssertionError("measured again instead of read from the cache")

    monkeypatch.setattr(check_module, "run_check", fail)
    assert check_model(tok_lm).to_dict() == first.to_dict()
    with pytest.raises(AssertionError, match="measured again"):
        check_model(tok_lm, "paraphrase")  # another instrument is another entry
    with pytest.raises(AssertionError, match="measured again"):
        check_model(tok_lm, refresh=True)


@pytest.mark.model
def test_the_bundled_model_answers_by_position(lm) -> None:
    """The real default model names the first listed option under any instruction."""
    c = check_model(lm)
    assert c.verdict == "answers by position", c.summary()
    assert ModelCheck.from_dict(json.loads(json.dumps(c.to_dict()))).verdict == c.verdict


# --------------------------------------------------------------------------- (d) the items' content



@pytest.mark.parametrize("fmt", ["number", "words"])
@pytest.mark.parametrize("follows", [True, False], ids=["probe passes", "probe fails"])
def test_a_respondent_that_names_the_middle_option_does_not_answer_by_content(
        tok_lm, monkeypatch, fmt, follows) -> None:
    """The middle option's content in both orders on every item: order agreement is perfect
    (in content and in position) and, asked for a pole, it may name it; but its answers do not
    vary with the items and are what it says to content-free items."""
    install(monkeypatch, by_middle(follows))
    c = run_check(tok_lm, format=fmt)
    assert not c.answers_by_content and c.verdict == "ignores the items", c.summary()
    assert c.content_agreement == 1 and c.position_agreement == 1
    assert c.probe_passed is follows
    assert c.item_variation == 0 and c.content_free_difference == 0
    assert c.items_passed is False and c.warning() and "ignores the items" in c.warning()
    # it said the middle (shown 3) to every content-free item too: 8 VSM 2013 option scales
    # (lead-in and options) x 3 content-free texts, in each order
    assert c.content_free_said["printed"] == [[3, 3, 3]] * 8
    assert c.content_free_said["reversed"] == [[3, 3, 3]] * 8
    assert "than the content-free answer on 0% (needs 20%)" in c.summary()


@pytest.mark.parametrize("fmt", ["number", "words"])
def test_a_respondent_whose_answers_depend_on_the_item_answers_by_content(
        tok_lm, monkeypatch, fmt) -> None:
    install(monkeypatch, by_content())
    c = run_check(tok_lm, format=fmt)
    assert c.verdict == "answers by content", c.summary()
    assert c.item_variation >= MIN_ITEM_VARIATION
    assert c.content_free_difference >= MIN_CONTENT_FREE_DIFFERENCE
    assert c.items_passed is True
    d = c.to_dict()
    assert d["items_passed"] is True and d["item_variation"] == c.item_variation
    assert ModelCheck.from_dict(json.loads(json.dumps(d))) == c


def test_a_respondent_that_reads_the_options_but_not_the_question_ignores_the_items(
        tok_lm, monkeypatch) -> None:
    """Its own opinion of each option scale (the option first alphabetically, wherever shown),
    whatever the question: the answers vary across the items (their scales differ) but are
    what it says to content-free items of the same scale, so (d) fails."""

    def pick(system, user):
        labels = shown_labels(user)
        return labels.index(min(labels))

    install(monkeypatch, pick)
    c = run_check(tok_lm)
    assert c.content_agreement == 1 and c.item_variation >= MIN_ITEM_VARIATION
    assert c.content_free_difference == 0
    assert c.verdict == "ignores the items"


def test_the_items_condition_on_its_numbers() -> None:
    n = NO_ANSWER
    # each order alone: printed names option 2 on 3 items and 0 on one; reversed names 4 on all
    said = np.array([[2, 2, 0, 2], [4, 4, 4, 4]])
    assert item_variation(said) == pytest.approx((1 / 4 + 0) / 2)
    # a non-answer is no variation, and an order with no answer at all has none
    assert item_variation(np.array([[n, 1, 1, 3], [n, n, n, n]])) == pytest.approx(1 / 8)
    # two item formats, the content-free texts of format 0 said 2, 2, 3 (2 most often) printed
    # and nothing reversed (any named option then differs); format 1 said 1 in both orders
    free = np.array([[[2, 2, 3], [1, n, 1]], [[n, n, n], [1, 1, 1]]])
    format_of = [0, 0, 1, 1]
    said = np.array([[2, 3, 1, 4], [2, n, 1, 0]])
    # differs: printed items 1 (3 != 2) and 3 (4 != 1); reversed item 0 (2 != none), item 3
    assert content_free_difference(said, free, format_of) == pytest.approx(4 / 8)


def test_a_check_from_before_the_items_condition_still_reads() -> None:
    """A version-3 check (stored in an older run's culturetune.json) has no (d): it reads,
    says (d) was not measured, and keeps its verdict."""
    old = {"model": "m", "instrument": "vsm2013", "verdict": "answers by content", "items": 24,
           "content_agreement": 0.9, "position_agreement": 0.1, "order_gap": 0.2,
           "probe": {"printed": {"asked_high": 1.0, "asked_low": 5.0, "gap": 4.0},
                     "reversed": {"asked_high": 1.0, "asked_low": 5.0, "gap": 4.0}},
           "first_token_match": 0.8, "answered": 1.0, "version": 3, "format": "words"}
    c = ModelCheck.from_dict(old)
    assert c.items_passed is None and c.item_variation is None and c.top_option_match == 0.8
    assert c.answers_by_content and "not measured" in c.summary()
    assert c.to_dict()["items_passed"] is None


# --------------------------------------------------------------------------- --format auto


def _check(fmt: str, content: float, gaps: tuple[float, float], verdict: str) -> ModelCheck:
    """A model check with the numbers ``--format auto`` ranks formats by."""
    probe = {name: {"asked_high": 3.0, "asked_low": 3.0 + g, "gap": g}
             for name, g in zip(("printed", "reversed"), gaps, strict=True)}
    return ModelCheck(model="m", instrument="vsm2013", verdict=verdict, items=24,
                      content_agreement=content, position_agreement=0.1, order_gap=0.5,
                      probe=probe, top_option_match=0.5, answered=1.0, item_variation=0.5,
                      content_free_difference=0.5, format=fmt)


def test_auto_reads_where_the_model_comes_closest_to_answering_by_content() -> None:
    """No format passes: the most items with the same content in both orders wins (as
    Qwen2.5-Coder-1.5B-Instruct in words), not the number format, and the reason says why."""
    from culturetune.reading.check import choose_format, closest_format

    checks = {"number": _check("number", 0.12, (0.88, 0.04), "answers inconsistently"),
              "letter": _check("letter", 0.12, (0.96, 0.67), "answers inconsistently"),
              "words": _check("words", 0.75, (3.04, 0.67), "does not follow instructions")}
    assert closest_format(checks) == "words"
    choice = choose_format(None, "auto", checks=checks)
    assert choice.format == "words" and choice.check is checks["words"]
    assert choice.reason == (
        "--format auto: the model answers by content in no format (number: answers "
        "inconsistently; letter: answers inconsistently; words: does not follow instructions); "
        "it comes closest in the words format (the same option content in both orders on 75% of "
        "items (against number 12%, letter 12%); instruction probe gap +0.67 in the weaker "
        "order), so it is read in that format")


def test_auto_breaks_a_tie_in_content_by_the_probe_then_by_the_order_of_formats() -> None:
    from culturetune.reading.check import choose_format, closest_format

    # the same content in number and letter: the larger probe gap in the weaker order wins,
    # even where the other's stronger order moves more
    checks = {"number": _check("number", 0.4, (2.0, 0.1), "answers by position"),
              "letter": _check("letter", 0.4, (0.5, 0.6), "answers inconsistently"),
              "words": _check("words", 0.3, (3.0, 3.0), "answers inconsistently")}
    choice = choose_format(None, "auto", checks=checks)
    assert choice.format == "letter"
    assert "as many in number, and the instruction probe moves its answers +0.50 points in the " \
           "weaker order (against number +0.10)" in choice.reason
    # all alike: the first (the cheapest) format, and the reason says so
    same = {f: _check(f, 0.0, (0.0, 0.0), "answers by position")
            for f in ("words", "letter", "number")}
    assert closest_format(same) == "number"
    assert choose_format(None, "auto", checks=same).reason.endswith(
        "the same, so the first of number, letter, words), so it is read in that format")
    # a format that answers by content is taken before one that only comes closer in (a)
    passing = {"number": _check("number", 0.9, (0.2, 0.2), "does not follow instructions"),
               "words": _check("words", 0.6, (3.0, 3.0), "answers by content")}
    assert choose_format(None, "auto", checks=passing).format == "words"
    assert closest_format({}) is None


# --------------------------------------------------------------------------- the said reading


@pytest.mark.model
def test_said_reads_what_is_said_and_counts_non_answers(lm, monkeypatch) -> None:
    inst = load_instrument()
    quiet = {it.text for it in inst.items[:3]}  # three items get no option named

    def pick(system, user):
        return None if any(q in user for q in quiet) else 1  # else the second option shown

    install(monkeypatch, pick, mass=0.5)
    survey = Survey(lm, orders="both")
    r = run_survey(survey, answers="said", constants=C50, target=lookup_country("China"))
    assert r.answered == pytest.approx(21 / 24)
    assert [it.mean for it in r.items[:3]] == [3.0, 3.0, 3.0]  # a non-answer reads as 3
    # shown position 2 is option 2 printed and option 4 reversed: mean 3 either way, but each
    # order alone says what it said
    assert r.items[5].order_means == [2.0, 4.0]
    assert r.items[0].generated_by_order == ["I am not sure.", "I am not sure."]
    assert r.items[5].generated_by_order == [None, None]  # first token was an option
    assert any("name no option" in n for n in r.notes)


def test_said_values_and_the_missing_rule() -> None:
    said = np.array([[0, 4, NO_ANSWER]])
    assert said_values(said).tolist() == [[1.0, 5.0, 3.0]]
    means, mass = np.array([1.0, 5.0]), np.array([0.5, 0.0])
    assert apply_missing(means, mass, "renormalise").tolist() == [1.0, 5.0]
    assert apply_missing(means, mass, "neutral").tolist() == [2.0, 3.0]


# --------------------------------------------------------------------------- objectives


def _mass_of(soft: torch.Tensor | None) -> torch.Tensor:
    """Candidate 0 (or the plain model) keeps 0.6 on the options; a prompt whose first value is
    negative leaves 0.1."""
    if soft is None:
        return torch.tensor([0.6])
    return torch.where(soft[:, 0, 0] < 0, torch.tensor(0.1), torch.tensor(0.6))


@pytest.mark.model
def test_objectives_aggregate_views_and_floor_the_mass(lm, monkeypatch) -> None:
    from culturetune.instrument.targets import loss_batch
    from culturetune.instrument.vsm import compute_indices_batch
    from culturetune.tuning.objective import MASS_PENALTY, Objective

    # a respondent that names a position chosen by the question, not by the options' content
    install(monkeypatch, lambda system, user: len(user) % 5, mass=_mass_of)
    target = lookup_country("China")
    surveys = [Survey(lm, w, orders="both") for w in ("vsm2013", "paraphrase")]
    prompts = torch.ones(2, 1, lm.hidden_size)
    prompts[1, 0, 0] = -1.0
    per_view = []
    for s in surveys:
        for o in range(2):
            means = s.read(prompts).order_means()[:, o]
            per_view.append(loss_batch(compute_indices_batch(means, C50), target))
    per_view = np.stack(per_view, 1)  # [2 candidates, 4 views]
    # by position: the printed and the reversed order disagree, and so do the wordings
    assert per_view[0].max() - per_view[0].min() > 2
    worst = Objective(surveys, target, C50, aggregate="worst")
    mean = Objective(surveys, target, C50, aggregate="mean")
    pooled = Objective(surveys, target, C50, aggregate="pooled")
    np.testing.assert_allclose(worst(prompts), per_view.max(1))
    np.testing.assert_allclose(mean(prompts), per_view.mean(1))
    pooled_means = np.mean([s.read(prompts).order_means().mean(1) for s in surveys], 0)
    np.testing.assert_allclose(pooled(prompts), loss_batch(
        compute_indices_batch(pooled_means, C50), target), rtol=1e-6)
    floored = Objective(surveys, target, C50, aggregate="worst", min_mass=0.5)
    assert floored.floor == pytest.approx(0.3)
    penalty = MASS_PENALTY * (0.3 - 0.1) / 0.3
    np.testing.assert_allclose(floored(prompts), per_view.max(1) + [0, penalty], rtol=1e-5)
    # the neutral rule pulls what is off the options to the middle: less mass, nearer 3
    neutral = Objective(surveys, target, C50, aggregate="worst", missing="neutral")
    assert neutral(prompts)[1] < neutral(prompts)[0]


# --------------------------------------------------------------------------- the verdict


def _row(role: str, plain: float, tuned: float, reading: str = "expected") -> ViewResult:
    return ViewResult(role=role, view=role, instrument="vsm2013", orders="both",
                      calibrated=False, plain=plain, uniform=26.5, tuned=tuned, reading=reading)


def test_held_needs_the_said_views_and_the_mass() -> None:
    train = _row("training", 27.0, 17.0)  # gain 10
    good = [_row("wording", 27.0, 20.0), _row("shown", 27.0, 21.0),
            _row("said", 27.0, 21.0, "said")]
    assert assess(train, good, 0.6, 0.5).verdict == "held"
    lost_mass = assess(train, good, 0.6, 0.1)
    assert lost_mass.verdict == "partly held" and lost_mass.failed == ["option mass"]
    says_nothing_new = good[:2] + [_row("said", 27.0, 27.0, "said")]
    v = assess(train, says_nothing_new, 0.6, 0.5)
    assert v.verdict == "collapsed" and v.failed == ["said"]
    weak = good[:2] + [_row("said", 27.0, 24.0, "said")]
    assert assess(train, weak, 0.6, 0.5).verdict == "partly held"
    assert assess(_row("training", 27.0, 26.5), good, 0.6, 0.1).verdict == "no gain"



def test_the_validity_table_fits_80_columns_with_a_legend() -> None:
    """Short view names in the table, one line per view at 80 columns; the legend under it gives
    each view in full (a long objective, three wordings, one of them a file, another format)."""
    from rich.console import Console

    from culturetune.report.verdicts import print_validity

    train = _row("training", 27.0, 17.0)
    train.view = "worst of vsm2013, paraphrase x both orders, option mass >= 0.5 x plain"
    checks = [_row("wording", 27.0, 20.0), _row("wording", 27.0, 30.0),
              _row("wording", 27.0, 121.25), _row("shown", 27.0, 21.0),
              _row("reversed", 27.0, 24.0), _row("said", 27.0, 21.0, "said"),
              _row("said shown", 27.0, 101.0, "said"), _row("said reversed", 27.0, 22.0, "said"),
              _row("format", 27.0, 26.0)]
    views = ["paraphrase2 · both", "my_own_long_wording_of_the_survey.json · both",
             "paraphrase3 · both", "vsm2013 · shown", "vsm2013 · reversed",
             "vsm2013 · both · said", "vsm2013 · shown · said", "vsm2013 · reversed · said",
             "vsm2013 · both · letter"]
    for check, view in zip(checks, views, strict=True):
        check.view = view
    for check in checks[5:8]:
        check.plain_answered, check.tuned_answered = 1.0, 0.125
    checks[-1].format, checks[-1].counted = "letter", False
    validity = assess(train, checks, 0.6, 0.25)
    con = Console(width=80, file=io.StringIO(), color_system=None)
    print_validity(con, validity)
    lines = con.file.getvalue().splitlines()
    labels = ["tuned on", "other wording 1", "other wording 2", "other wording 3",
              "printed order", "reversed order", "said, both", "said, printed", "said, reversed",
              "letter format"]
    head = next(i for i, line in enumerate(lines) if line.startswith("view "))
    assert set(lines[head + 1].strip()) == {"─"}
    rows = lines[head + 2:head + 2 + len(labels)]
    # one line per view, in order, nothing cut; then the legend
    assert [r.split("  ")[0] for r in rows] == labels
    assert all(len(line.rstrip()) <= 80 for line in lines[:head + 2 + len(labels)])
    assert "-943 %" in rows[3] and "100% → 12%" in rows[7]
    assert lines[head + 2 + len(labels)] == "the views in full:"
    legend = lines[head + 3 + len(labels):head + 3 + 2 * len(labels)]
    assert legend[0] == f"  tuned on: {train.view}"
    assert legend[2] == "  other wording 2: my_own_long_wording_of_the_survey.json · both"
    assert legend[-1].startswith("  letter format: vsm2013 · both · letter (shown, not counted")
    assert any(line.startswith("verdict: COLLAPSED") for line in lines)

# --------------------------------------------------------------------------- stored with a run


@pytest.mark.model
def test_tune_stores_the_check_and_the_said_views(lm, tmp_path) -> None:
    from culturetune.tuning.config import TuneConfig
    from culturetune.tuning.search import tune

    cfg = TuneConfig(target=lookup_country("China"), budget=8, population=8, seed=1,
                     objective="worst", train_instruments=["paraphrase"], min_mass=0.5)
    result = tune(lm, cfg, tmp_path / "run")
    meta = json.loads((tmp_path / "run" / "culturetune.json").read_text())
    assert meta["model_check"]["verdict"] == "answers by position"
    assert result.model_check.verdict == "answers by position"
    v = meta["validity"]
    roles = [c["role"] for c in v["checks"]]
    # paraphrase was tuned on: only the second paraphrase is a held-out wording
    assert [c["instrument"] for c in v["checks"] if c["role"] == "wording"] == ["paraphrase2"]
    assert {"said", "said shown", "said reversed", "shown", "reversed"} <= set(roles)
    assert v["training"]["view"].startswith("worst of vsm2013, paraphrase")
    said = next(c for c in v["checks"] if c["role"] == "said")
    assert said["plain_answered"] == 1.0 and said["reading"] == "said"
    assert v["plain_mass"] == pytest.approx(result.baseline.option_mass)
