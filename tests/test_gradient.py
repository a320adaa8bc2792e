"""Tuning by the gradient (``--optimizer adam``): the torch form of the objective is the numpy
objective, its gradient is the objective's, Adam lowers the loss, resumes exactly, fits the memory
it is given, and refuses what it cannot take."""

from __future__ import annotations

import pytest
import torch

from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import lookup_country
from culturetune.tuning import limits
from culturetune.tuning.config import TuneConfig
from culturetune.tuning.objective import make_objective
from culturetune.tuning.search import Interrupted, tune

pytestmark = pytest.mark.model


def config(**kw) -> TuneConfig:
    base = dict(target=lookup_country("China"), optimizer="adam", format="number", seed=1)
    base.update(kw)
    return TuneConfig(**base).validate()


def prompts(lm, n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, lm.hidden_size, generator=g) * lm.embedding_stats[1]


def test_load_model_leaves_autograd_on(lm32):
    """Loading a model no longer turns gradients off for the whole thread (a notebook's own
    autograd keeps working); reads run under inference mode by themselves."""
    assert torch.is_grad_enabled()


@pytest.mark.parametrize("fmt", ["number", "words"])
def test_torch_objective_is_the_numpy_objective(lm32, fmt):
    """On random prompts, every aggregation and missing rule (in numbers; the words format,
    whose replies are token tries, on one of each), the value the gradient path reports equals
    the numpy objective (float32 model, one candidate per pass in both)."""
    obj = make_objective(lm32, config(format=fmt, train_instruments=["none"] if fmt == "words"
                                      else ["paraphrase"]))
    p = prompts(lm32, 1)[0]
    combos = ([(a, m) for a in ("pooled", "mean", "worst") for m in ("renormalise", "neutral")]
              if fmt == "number" else [("worst", "neutral")])
    for aggregate, missing in combos:
        obj.aggregate, obj.missing = aggregate, missing
        want = float(obj(p[None])[0])
        got, grad = obj.value_and_grad(p, temperature=0.0)
        assert got == pytest.approx(want, abs=1e-6), (aggregate, missing)
        assert grad.shape == p.shape and torch.isfinite(grad).all()
        if aggregate == "worst":  # the smooth maximum changes the step, not the loss
            assert obj.value_and_grad(p, temperature=2.0)[0] == pytest.approx(want, abs=1e-6)


def test_gradient_matches_finite_differences_and_chunks_agree(lm32):
    """The directional derivative of the objective (L2 loss, smooth) matches central finite
    differences, and back-propagating 7 prompts at a time gives the one-graph gradient."""
    obj = make_objective(lm32, config(format="number", loss="l2", objective="pooled",
                                      min_mass=None, train_instruments=["none"]))
    p = prompts(lm32, 1, seed=1)[0]
    value, grad = obj.value_and_grad(p)
    chunked_value, chunked = obj.value_and_grad(p, chunk=7)
    assert chunked_value == value
    torch.testing.assert_close(chunked, grad, rtol=1e-3, atol=1e-4 * grad.abs().max().item())
    d = torch.randn(p.shape, generator=torch.Generator().manual_seed(2))
    d = d / d.norm() * lm32.embedding_stats[1] * 5
    eps = 0.1
    fd = (obj((p + eps * d)[None])[0] - obj((p - eps * d)[None])[0]) / (2 * eps)
    assert float((grad * d).sum()) == pytest.approx(fd, rel=0.02)


def test_adam_lowers_the_loss_and_resumes_to_the_same_prompt(lm32, tmp_path):
    """A short Adam run lowers its training objective; stopped after two steps and resumed, it
    ends with the prompt, history and budget of the uninterrupted run. The budget counts
    forward-equivalents: each step costs its counted forward + backward."""
    cfg = dict(budget=10, tokens=3, train_instruments=["none"])
    whole = tune(lm32, config(**cfg), tmp_path / "whole", check=False)
    losses = [h["best_loss"] for h in whole.history]
    assert losses[-1] < losses[0]
    cost = whole.history[0]["evaluations"]
    assert 1.5 < cost <= 3.5  # forward + backward, counted (not timed)
    assert len(whole.history) == int(10 // cost)

    def stop(p):
        if p.step == 2:
            raise KeyboardInterrupt

    with pytest.raises(Interrupted):
        tune(lm32, config(**cfg), tmp_path / "cut", check=False, on_progress=stop)
    resumed = tune(lm32, config(**cfg), tmp_path / "cut", resume=True, check=False)
    assert [h["best_loss"] for h in resumed.history] == losses
    assert resumed.evaluations == whole.evaluations
    torch.testing.assert_close(resumed.prompt.embeddings, whole.prompt.embeddings, rtol=0, atol=0)


def test_a_step_that_does_not_fit_names_the_chunk_that_does(lm32, monkeypatch):
    """Under a small memory limit a one-graph step is refused before it starts, naming the
    largest --grad-chunk that fits; with that chunk the run is accepted."""
    cfg = config(format="words")
    monkeypatch.setenv("CULTURETUNE_MEMORY_LIMIT", "400MiB")
    with pytest.raises(CultureTuneError, match=r"--grad-chunk (\d+) fits") as info:
        limits.check_tune(lm32, cfg)
    chunk = int(info.value.args[0].split("--grad-chunk ")[1].split()[0])
    limits.check_tune(lm32, config(format="words", grad_chunk=chunk))


@pytest.mark.parametrize(
    "args,message",
    [
        (["--reading", "said"], "said reading has none"),
        (["--subspace", "64"], "subspace"),
        (["--lr", "0"], "--lr must be a positive"),
        (["--temperature", "-1"], "--temperature"),
        (["--grad-chunk", "0"], "--grad-chunk"),
        (["--workers", "2"], "--workers"),
    ],
)
def test_what_adam_cannot_take_is_one_error_line(run_cli, tmp_path, args, message):
    code, out, err = run_cli(["tune", "--country", "China", "--optimizer", "adam",
                              "--out", str(tmp_path / "r"), *args])
    assert code != 0 and not out
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[-1].startswith("error:") and message in err, err
    assert "Traceback" not in err and not (tmp_path / "r").exists()



def test_a_target_from_a_lead_in_is_a_point_of_the_search_space(lm32, tmp_path):
    """--target-from-lead plants the model's own indices with the text's embeddings in the soft
    prompt's place: a tuned prompt equal to those embeddings scores 0 on the training survey,
    and the two ways of planting a target are refused together."""
    from culturetune.instrument.targets import Target
    from culturetune.reading.administer import run_survey
    from culturetune.reading.survey import Survey
    from culturetune.tuning.objective import planted_target
    from culturetune.tuning.softprompt import initial_prompt

    planted = Target("planted", None, {}, "measured when the run starts")
    text = "I pick the option of least importance or strongest disagreement:\n"
    cfg = TuneConfig(target=planted, target_lead=text, tokens=4, format="number").validate()
    target = planted_target(lm32, cfg)
    soft = initial_prompt(lm32, 4, "text", text)
    survey = Survey(lm32, orders=cfg.orders, format="number")
    tuned = run_survey(survey, soft=soft, target=target, constants=cfg.constants)
    assert tuned.loss.value == pytest.approx(0, abs=1e-9)
    assert run_survey(survey, target=target, constants=cfg.constants).loss.value > 0.1
    with pytest.raises(CultureTuneError, match="give one of them"):
        TuneConfig(target=planted, target_lead=text, target_system="Disagree.").validate()


@pytest.mark.parametrize(
    "args,optimizer,budget",
    [
        ([], "adam", 60),                                    # the default: Adam, 60 fe
        (["--reading", "said"], "pso", 640),                 # no gradient: the search's default
        (["--optimizer", "de", "--budget", "32"], "de", 32),  # named: as named
    ],
)
def test_the_default_optimizer_is_adam_where_it_can_run(run_cli, tmp_path, monkeypatch, args,
                                                        optimizer, budget):
    """``--optimizer auto`` (the default) resolves before the model loads, and the run folder's
    default name says what it resolved to."""
    from culturetune import cli

    seen = {}

    class Loaded(Exception):
        pass

    def fake_run(lm, config, folder, *a):
        seen.update(optimizer=config.optimizer, budget=config.budget, folder=folder)
        raise Loaded

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(cli.common, "load_lm", lambda *a, **k: None)
    monkeypatch.setattr(cli.tune, "_run_tuning", fake_run)
    with pytest.raises(Loaded):
        cli.main(["tune", "--country", "China", *args])
    assert seen == {"optimizer": optimizer, "budget": budget,
                    "folder": f"runs/chi-{optimizer}-s0"}


@pytest.mark.parametrize("fmt", ["number", "words"])
def test_an_objective_reads_each_wording_as_its_survey_reads_it_alone(lm, fmt):
    """The objective over two wordings reads each prompt in the batch its survey reads it in
    alone, so what a run scores is what ``survey --prompt`` reads, bit for bit, in the model's
    own dtype (bf16 where the CPU runs it: there a score depends on its batch's padding); its
    gradient runs through the same joined scorer."""
    import numpy as np

    from culturetune.reading.survey import Survey, joint_scorer, read_many

    surveys = [Survey(lm, w, orders="both", format=fmt) for w in ("vsm2013", "paraphrase")]
    soft = prompts(lm, 3, seed=4)
    for joint, survey in zip(read_many(surveys, soft), surveys, strict=True):
        alone = survey.read(soft)
        assert np.array_equal(joint.by_order, alone.by_order)
        assert np.array_equal(joint.mass, alone.mass) and np.array_equal(joint.said, alone.said)
    scorer = joint_scorer(surveys)
    assert len(scorer) == sum(s.n_prompts for s in surveys)
    assert len(scorer.blocks) == sum(len(s.scorer.blocks) for s in surveys)
