"""Option orders, mapping answers back to content order, calibration and the uniform baseline.

The pure tests need no model. The ``model`` tests put a synthetic answerer behind a real
:class:`~culturetune.reading.survey.Survey` (its next-token reading replaced) so that the whole path
from prompts to indices is checked against answers whose origin is known.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from culturetune.core.errors import CultureTuneError
from culturetune.instrument.orders import (
    ORDER_SETS,
    calibrate,
    check_orders,
    option_orders,
    order_count,
    to_content_order,
)
from culturetune.instrument.targets import lookup_country, parse_target
from culturetune.instrument.vsm import DIMENSIONS, compute_indices_batch, parse_constants
from culturetune.reading.administer import run_survey
from culturetune.reading.answers import item_means
from culturetune.reading.prompts import N_OPTIONS
from culturetune.reading.results import uniform_indices, uniform_loss
from culturetune.reading.survey import Survey

C50 = parse_constants(None)


# --------------------------------------------------------------------------- orders


@pytest.mark.parametrize("k", [4, 5])
def test_order_sets(k: int) -> None:
    ident = tuple(range(k))
    assert option_orders("shown", k) == [ident]
    assert option_orders("reversed", k) == [ident[::-1]]
    assert option_orders("both", k) == [ident, ident[::-1]]
    cyc = option_orders("cyclic", k)
    assert len(cyc) == k and cyc[0] == ident
    # a Latin square: every option once in every position
    for pos in range(k):
        assert sorted(o[pos] for o in cyc) == list(range(k))
    every = option_orders("all", k)
    assert len(every) == len(set(every)) == math.factorial(k)
    for name in ORDER_SETS:
        assert order_count(name, k) == len(option_orders(name, k))
        assert all(sorted(o) == list(ident) for o in option_orders(name, k))


def test_unknown_order_set_is_an_error() -> None:
    with pytest.raises(CultureTuneError, match="shown, reversed, both, cyclic, all"):
        check_orders("sideways")
    assert check_orders(" Both ") == "both"


@given(st.permutations(range(5)), st.lists(st.floats(0.01, 1.0), min_size=5, max_size=5))
def test_content_order_undoes_the_shown_order(order: list[int], weights: list[float]) -> None:
    content = np.array(weights) / sum(weights)  # the answer to the options themselves
    shown = content[list(order)]  # position j shows option order[j]
    back = to_content_order(shown[None, None, :], [tuple(order)])[0, 0]
    np.testing.assert_allclose(back, content)


@pytest.mark.parametrize("name", ["both", "cyclic", "all"])
@pytest.mark.parametrize("position", range(5))
def test_an_answer_by_position_only_gives_the_constants(name: str, position: int) -> None:
    """Whatever position a model prefers, reading it in a balanced order set averages to the
    middle of the scale on every item, so every index is its constant C."""
    orders = option_orders(name, 5)
    shown = np.zeros((len(orders), 24, 5))
    shown[:, :, position] = 1.0
    means = item_means(to_content_order(shown, orders).mean(0))
    if name == "both" and position != 2:
        np.testing.assert_allclose(means, 3.0)  # symmetric: positions j and 4 - j pair up
    np.testing.assert_allclose(compute_indices_batch(means, C50), [50.0] * 6, atol=1e-9)


# --------------------------------------------------------------------------- calibration


def test_calibration_divides_out_the_content_free_answer() -> None:
    p = np.array([0.5, 0.2, 0.1, 0.1, 0.1])
    # the content-free answer equals the real one: nothing is left but uniform
    np.testing.assert_allclose(calibrate(p, p), np.full(5, 0.2))
    # a uniform content-free answer changes nothing
    np.testing.assert_allclose(calibrate(p, np.full(5, 0.2)), p)
    # a worked example: p / cf = [1, 1, 0.5, 1, 2] -> / 5.5
    cf = np.array([0.5, 0.2, 0.2, 0.1, 0.05])
    np.testing.assert_allclose(calibrate(p, cf), np.array([1, 1, 0.5, 1, 2]) / 5.5)
    # broadcast over candidates and items; unnormalised cf is renormalised; zeros are floored
    out = calibrate(np.tile(p, (3, 2, 1)), np.array([1.0, 0.4, 0.4, 0.2, 0.0]))
    assert out.shape == (3, 2, 5) and np.allclose(out.sum(-1), 1.0) and np.isfinite(out).all()


# --------------------------------------------------------------------------- uniform baseline


def test_uniform_answers_give_the_constants() -> None:
    assert uniform_indices(C50) == pytest.approx(dict.fromkeys(DIMENSIONS, 50.0))
    c = parse_constants("PDI=0,IDV=10")
    assert uniform_indices(c) == pytest.approx(c)
    china = lookup_country("China")  # 80, 20, 66, 30, 87, 24
    gaps = [abs(50 - china.scores[d]) for d in DIMENSIONS]
    assert uniform_loss(china, C50).value == pytest.approx(sum(gaps) / 6)
    partial = parse_target("PDI=60,IDV=45")
    assert uniform_loss(partial, C50, "l2").value == pytest.approx(math.sqrt((100 + 25) / 2))


# --------------------------------------------------------------------------- through a Survey


def _position_only(survey: Survey, position: int) -> None:
    """Replace the survey's reading: the model always names the option shown at ``position``,
    whatever the question (real questions and content-free ones alike)."""
    def scores(soft: torch.Tensor | None) -> tuple[torch.Tensor, np.ndarray]:
        cands = 1 if soft is None else soft.shape[0]
        lp = torch.full((cands, survey.n_prompts, N_OPTIONS), -30.0)
        lp[:, :, position] = math.log(0.6)  # 0.6 of the mass on the options
        return lp, np.full((cands, survey.n_prompts), position)

    survey._scores = scores  # type: ignore[method-assign]


def _few_items():
    """Four items of different formats (enough for the scoring paths, cheaper than 24)."""
    import dataclasses

    from culturetune.instrument.vsm import load_instrument

    inst = load_instrument()
    return dataclasses.replace(inst, items=tuple(inst.item(v) for v in
                                                 ("m01", "m11", "m15", "m21")))


@pytest.mark.model
@pytest.mark.parametrize("orders", ["both", "cyclic"])
def test_position_only_model_scores_the_constants(lm, orders: str) -> None:
    survey = Survey(lm, orders=orders)
    _position_only(survey, 0)
    r = run_survey(survey, constants=C50, target=lookup_country("China"))
    assert r.indices == pytest.approx(dict.fromkeys(DIMENSIONS, 50.0))
    assert r.loss.value == pytest.approx(r.uniform_loss.value)
    # each order alone shows the position preference; the table keeps it visible
    shown = [it.order_means for it in r.items]
    assert all(m[0] == pytest.approx(1.0) for m in shown)
    assert all(it.mass == pytest.approx(0.6, abs=1e-6) for it in r.items)
    # ... while the printed order alone reads the first option everywhere
    alone = Survey(lm, orders="shown")
    _position_only(alone, 0)
    assert all(it.mean == pytest.approx(1.0) for it in run_survey(alone, constants=C50).items)


@pytest.mark.model
def test_calibration_removes_a_position_prior(lm) -> None:
    """A model that answers by position for real and content-free questions alike has nothing
    left after calibration: every answer is uniform, whatever order it is read in."""
    survey = Survey(lm, orders="shown", calibrate=True)
    assert survey.n_prompts == 24 + len(survey.item_formats) * 3
    assert len(survey.item_formats) == 8  # VSM 2013: 8 (lead-in, answer scale) formats
    _position_only(survey, 3)
    r = run_survey(survey, constants=C50)
    for it in r.items:
        assert it.probs == pytest.approx([0.2] * 5)
    with pytest.raises(CultureTuneError, match="generate"):
        run_survey(survey, constants=C50, answers="generate")


@pytest.mark.model
def test_generated_answers_are_mapped_back_and_averaged(lm, monkeypatch) -> None:
    survey = Survey(lm, orders="both")
    # shown number 1 in both orders: option 1, then option 5 -> mean 3; item 2 unparsable once
    texts = ["1"] * 24 + ["1", "no idea"] + ["1"] * 22
    monkeypatch.setattr(survey, "generate", lambda soft=None, max_new_tokens=8: texts)
    r = run_survey(survey, answers="generate", constants=C50)
    assert r.items[0].mean == 3.0 and r.items[0].order_means == [1.0, 5.0]
    assert r.items[1].mean == 1.0 and r.items[1].order_means == [1.0, None]
    assert any("m02" in n and "order 2" in n for n in r.notes)


@pytest.mark.model
def test_orders_in_one_batch_equal_each_order_alone(lm) -> None:
    """Averaging inside one survey equals averaging surveys of one order each (float32)."""
    from culturetune.model.loading import load_model

    lm32 = load_model(dtype="float32")
    g = torch.Generator().manual_seed(1)
    w = lm32.model.get_input_embeddings().weight.float()
    soft = w[torch.randint(0, w.shape[0], (2, 3), generator=g)]
    inst = _few_items()
    both = Survey(lm32, inst, orders="both").option_probs(soft)[0]
    alone = [Survey(lm32, inst, orders=o).option_probs(soft)[0] for o in ("shown", "reversed")]
    np.testing.assert_allclose(both, (alone[0] + alone[1]) / 2, atol=2e-4)


@pytest.mark.model
def test_large_order_sets_are_scored_in_chunks(lm32, monkeypatch) -> None:
    """Surveys with more prompts than one cache holds (``--orders all``) build their caches
    chunk by chunk; the answers are the same as from one cache (to float32 rounding: the
    chunks are batches of other shapes)."""
    import culturetune.model.scoring as scoring

    lm = lm32
    g = torch.Generator().manual_seed(2)
    w = lm.model.get_input_embeddings().weight.float()
    soft = w[torch.randint(0, w.shape[0], (2, 3), generator=g)]
    inst = _few_items()
    whole = Survey(lm, inst, orders="cyclic")
    assert whole.scorer.keep and len(whole.scorer.blocks) == 1
    monkeypatch.setattr(scoring, "MAX_CACHED_PROMPTS", 8)
    chunked = Survey(lm, inst, orders="cyclic")
    assert not chunked.scorer.keep and len(chunked.scorer.blocks) == 3  # 4 items x 5 orders
    np.testing.assert_allclose(chunked.option_probs(soft)[0], whole.option_probs(soft)[0],
                               atol=1e-5)
    assert list(itertools.islice(option_orders("all", 5), 1)) == [(0, 1, 2, 3, 4)]
