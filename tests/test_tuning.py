"""Soft-prompt tuning on the bundled default model, with small budgets."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import lookup_country
from culturetune.model.loading import load_model
from culturetune.reading.survey import Survey
from culturetune.tuning.config import TuneConfig
from culturetune.tuning.objective import SearchSpace
from culturetune.tuning.optimizer import make_optimizer
from culturetune.tuning.search import (
    CHECKPOINT,
    HISTORY,
    Interrupted,
    tune,
)
from culturetune.tuning.softprompt import ADAPTER_FILE, META_FILE, SoftPrompt, initial_prompt

pytestmark = pytest.mark.model


def small(**kw) -> TuneConfig:
    """A short derivative-free run (PSO, named: the search's own mechanics are tested here;
    Adam's in tests/test_gradient.py)."""
    base = dict(target=lookup_country("China"), optimizer="pso", budget=32, population=8, seed=3)
    base.update(kw)
    return TuneConfig(**base)


@pytest.fixture(scope="module")
def china_run(lm, tmp_path_factory):
    return tune(lm, small(), tmp_path_factory.mktemp("run") / "china")


def test_tuned_loss_is_lower_than_plain(china_run):
    assert china_run.final.loss.value < china_run.baseline.loss.value
    assert china_run.evaluations == 32
    assert china_run.status == "done"


def test_history_is_monotone_and_complete(china_run):
    hist = china_run.history
    assert [h["evaluations"] for h in hist] == [8, 16, 24, 32]
    best = [h["best_loss"] for h in hist]
    assert best == sorted(best, reverse=True)
    lines = (china_run.folder / HISTORY).read_text().splitlines()
    assert lines[0] == "evaluations,best_loss,mean_loss,seconds" and len(lines) == 5


def test_saved_prompt_loads_exactly(china_run, lm):
    loaded = SoftPrompt.load(china_run.folder)
    assert torch.equal(loaded.embeddings, china_run.prompt.embeddings)
    assert loaded.placement == "answer"
    meta = json.loads((china_run.folder / META_FILE).read_text())
    assert meta["config"]["seed"] == 3
    assert meta["final"]["loss"]["value"] == pytest.approx(china_run.final.loss.value)
    assert set(meta["versions"]) >= {"torch", "transformers", "nevergrad", "culturetune"}
    # Applying the loaded prompt reproduces the reported loss.
    survey = Survey(lm, placement=loaded.placement)
    from culturetune.instrument.vsm import parse_constants
    from culturetune.reading.administer import run_survey

    again = run_survey(
        survey,
        soft=loaded.embeddings,
        constants=parse_constants(None),
        target=lookup_country("China"),
    )
    assert again.loss.value == pytest.approx(china_run.final.loss.value, abs=1e-6)


def test_same_seed_same_run(lm, tmp_path, china_run):
    other = tune(lm, small(), tmp_path / "again")
    assert torch.equal(other.prompt.embeddings, china_run.prompt.embeddings)


def test_resume_equals_uninterrupted(lm, tmp_path, china_run):
    folder = tmp_path / "interrupted"

    def stop_after_two_steps(progress):
        if progress.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted, match="--resume"):
        tune(lm, small(), folder, on_progress=stop_after_two_steps)
    assert (folder / CHECKPOINT).exists()
    assert not (folder / ADAPTER_FILE).exists()
    resumed = tune(lm, small(), folder, resume=True)
    assert resumed.evaluations == 32
    assert torch.equal(resumed.prompt.embeddings, china_run.prompt.embeddings)
    assert [h["best_loss"] for h in resumed.history] == [h["best_loss"] for h in china_run.history]


def test_time_limit_then_resume(lm, tmp_path):
    folder = tmp_path / "timed"
    first = tune(lm, small(budget=16), folder, time_limit=0.0)
    assert first.status == "time-limit" and first.evaluations == 8  # first step always runs


def test_existing_run_folder_needs_resume(lm, china_run):
    with pytest.raises(CultureTuneError, match="--resume"):
        tune(lm, small(), china_run.folder)


def test_resume_without_run_is_an_error(lm, tmp_path):
    with pytest.raises(CultureTuneError, match="nothing to resume"):
        tune(lm, small(), tmp_path / "empty", resume=True)


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("optimizer", "sgd", "unknown optimizer"),
        ("init", "zeros", "unknown --init"),
        ("placement", "middle", "unknown placement"),
        ("budget", 0, "--budget"),
        ("subspace", 0, "--subspace"),
    ],
)
def test_bad_settings(field, value, message):
    with pytest.raises(CultureTuneError, match=message):
        small(**{field: value}).validate()


@pytest.mark.parametrize("optimizer", ["de", "cma", "pso", "random"])
def test_every_optimizer_asks_and_tells(optimizer):
    opt = make_optimizer(small(optimizer=optimizer), dim=6)
    cands = [opt.ask() for _ in range(8)]
    for c in cands:
        opt.tell(c, float(np.sum(c.value**2)))
    assert all(c.value.shape == (6,) for c in cands)


def test_search_space_starts_at_the_initial_prompt(lm):
    start = initial_prompt(lm, 3, "vocab", seed=1)
    for dim in (8, None):
        space = SearchSpace(start, dim, lm.embedding_stats[1], seed=1)
        assert torch.equal(space.prompts(np.zeros(space.dim))[0], start)
        moved = space.prompts(np.ones((2, space.dim)))
        assert moved.shape == (2, 3, lm.hidden_size)
        assert not torch.equal(moved[0], start)


def test_initialisations(lm):
    text = initial_prompt(lm, 4, "text", "You are from China.")
    ids = lm.tokenizer.encode("You are from China.", add_special_tokens=False)[:4]
    emb = lm.model.get_input_embeddings().weight.float()
    assert torch.equal(text, emb[torch.tensor(ids)])
    rand = initial_prompt(lm, 4, "random", seed=0)
    assert rand.std().item() == pytest.approx(lm.embedding_stats[1], rel=0.2)
    with pytest.raises(CultureTuneError, match="--init-text"):
        initial_prompt(lm, 4, "text")


def test_prompt_for_another_hidden_size_is_refused(lm, tmp_path):
    SoftPrompt(torch.zeros(2, 64), "answer", "tiny-model").save(tmp_path / "p")
    prompt = SoftPrompt.load(tmp_path / "p")
    with pytest.raises(CultureTuneError, match="hidden size 64"):
        prompt.check_hidden_size(lm)


def test_corrupt_prompt_folders(tmp_path):
    with pytest.raises(CultureTuneError, match="not found"):
        SoftPrompt.load(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CultureTuneError, match="missing"):
        SoftPrompt.load(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / ADAPTER_FILE).write_bytes(b"not a safetensors file")
    with pytest.raises(CultureTuneError, match="corrupt"):
        SoftPrompt.load(bad)


def test_peft_loads_a_prefix_prompt_with_the_same_answers(lm32, tmp_path):
    from peft import PeftModel

    from culturetune.reading.prompts import item_prompt, option_token_ids

    prompt = SoftPrompt(initial_prompt(lm32, 4, "vocab", seed=5), "prefix", lm32.name)
    prompt.save(tmp_path / "prefix", lm32)
    survey = Survey(lm32, placement="prefix", orders="shown")
    ours, _ = survey.option_probs(prompt.embeddings)

    fresh = load_model(dtype="float32")
    peft_model = PeftModel.from_pretrained(fresh.model, tmp_path / "prefix")
    peft_model.eval()
    ids = option_token_ids(fresh.tokenizer)
    for i, item in enumerate(survey.instrument.items[:4]):
        text, _ = fresh.render(item_prompt(item))
        enc = fresh.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            logits = peft_model(**enc).logits[0, -1]
        full = torch.softmax(logits.double(), -1)
        probs = torch.stack([full[group].sum() for group in ids])
        probs = (probs / probs.sum()).numpy()
        np.testing.assert_allclose(probs, ours[0, i], atol=1e-4)


def test_objective_averages_the_survey_orders(lm32):
    from culturetune.instrument.vsm import compute_indices_batch, parse_constants
    from culturetune.reading.answers import item_means
    from culturetune.tuning.objective import Objective

    lm = lm32
    target, c50 = lookup_country("India"), parse_constants(None)
    shown, reverse = Survey(lm, orders="shown"), Survey(lm, orders="reversed")
    both_survey = Survey(lm, orders="both")
    prompts = torch.stack([initial_prompt(lm, 2, "vocab", seed=s) for s in range(3)])
    both = Objective(both_survey, target, c50)
    means = (item_means(shown.option_probs(prompts)[0])
             + item_means(reverse.option_probs(prompts)[0])) / 2
    # one batch of both orders vs two batches: float32 rounding apart, the same
    np.testing.assert_allclose(both.indices(prompts), compute_indices_batch(means, c50),
                               atol=1e-3)
    # The printed-order objective alone scores differently: position matters to this model.
    assert not np.allclose(both(prompts), Objective(shown, target, c50)(prompts), atol=1)


def test_defaults_tune_order_balanced_and_check_the_prompt(lm, tmp_path):
    import shutil
    from importlib import resources

    mine = tmp_path / "my-wording.json"
    with resources.as_file(resources.files("culturetune") / "data" /
                           "vsm2013_paraphrase.json") as src:
        shutil.copy(src, mine)
    run = tune(lm, small(budget=16, validate_instruments=[str(mine)]), tmp_path / "both")
    assert run.config.orders == "both"
    meta = json.loads((run.folder / META_FILE).read_text())
    assert meta["config"]["orders"] == "both"
    v = meta["validity"]
    # the default objective: the worst of the official items and the paraphrase, each order
    # alone, with the option-mass floor; the second paraphrase is the held-out wording
    assert v["training"]["view"] == ("worst of vsm2013, paraphrase x both orders, option mass "
                                     ">= 0.5 x plain")
    assert meta["config"]["train_instruments"] == ["paraphrase"]
    # auto reads the bundled model in the number format (it answers by content in none); the
    # other formats are not read, since the check says a reading there carries no answers
    assert meta["config"]["format"] == "number"
    assert [(c["role"], c["instrument"], c["orders"], c["format"]) for c in v["checks"]] == [
        ("wording", "paraphrase2", "both", "number"),
        ("wording", str(mine.resolve()), "both", "number"),
        ("shown", "vsm2013", "shown", "number"), ("reversed", "vsm2013", "reversed", "number"),
        ("said", "vsm2013", "both", "number"), ("said shown", "vsm2013", "shown", "number"),
        ("said reversed", "vsm2013", "reversed", "number")]
    assert all(c["counted"] for c in v["checks"])
    assert v["unread"] == {"letter": "answers by position", "words": "does not answer"}
    # the training row is the objective's own loss: the worst view is no better than pooled
    assert v["training"]["plain"] >= run.baseline.loss.value - 1e-6
    gain = v["training"]["plain"] - v["training"]["tuned"]
    assert v["gain"] == pytest.approx(gain)
    # the option mass is the training survey's, plain and tuned, and their ratio
    assert v["plain_mass"] == meta["baseline"]["option_mass"]
    assert v["tuned_mass"] == meta["final"]["option_mass"]
    assert v["mass_kept"] == pytest.approx(v["tuned_mass"] / v["plain_mass"])
    # the shown-order check reads the same prompt as the shown view of the training survey
    assert v["checks"][2]["tuned"] is not None
    # each check's share kept and state, then the verdict and the failed checks, follow the rule
    # (culturetune.reading.validity) whichever way this run came out: a gain under one point
    # checks nothing, half the gain kept holds, none kept collapses
    for c in v["checks"]:
        assert c["uniform"] == pytest.approx(meta["uniform"]["loss"]["value"])
        if gain < 1.0 or c["plain"] is None or c["tuned"] is None:
            assert c["kept"] is None and c["state"] is None
        else:
            assert c["kept"] == pytest.approx((c["plain"] - c["tuned"]) / gain)
            assert c["state"] == ("held" if c["kept"] >= 0.5 else
                                  "weakened" if c["kept"] > 0 else "collapsed")
    states = [c["state"] for c in v["checks"]]
    if gain < 1.0:
        verdict, failed = "no gain", []
    elif None in states:
        verdict, failed = "unknown", []
    else:
        failed = [c["view"] for c in v["checks"] if c["state"] != "held"]
        failed += ["option mass"] if v["mass_kept"] < 0.5 else []
        verdict = "held" if not failed else "collapsed" if "collapsed" in states else "partly held"
    assert (v["verdict"], v["failed"]) == (verdict, failed)


def test_a_printed_order_run_is_checked_on_the_reversed_order(lm, tmp_path):
    run = tune(lm, small(orders="shown", budget=16), tmp_path / "shown")
    roles = [(c.role, c.orders, c.format) for c in run.validity.checks]
    assert roles == [("wording", "both", "number"),
                     ("reversed", "reversed", "number"),  # no "shown": tuned on it
                     ("said", "both", "number"), ("said shown", "shown", "number"),
                     ("said reversed", "reversed", "number")]
    assert run.validity.unread == {"letter": "answers by position", "words": "does not answer"}
    with pytest.raises(CultureTuneError, match="survey and bench only"):
        small(orders="all").validate()
