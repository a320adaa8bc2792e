"""A positive control on a real model: tuning by the gradient reaches a target that a known text
reaches, on a wording it never saw, and in each option order alone as far as the text itself does.

Qwen2.5-Coder-0.5B-Instruct (which ``make test`` installs) answers in words. Its target is its
own indices with :data:`LEAD`'s token embeddings in the soft prompt's place (answer placement,
one virtual token per token of the text): a point of the search space, so an alignment is known
to exist (``tune --target-from-lead``: the text's indices on the official items, both orders). A
short Adam run from the default start is tuned on the default objective (the official items and
the first paraphrase, each order alone against that target). On the second paraphrase, which no
run tunes on, the target is the text's indices there (both orders, made the same way), and:
- order-balanced, the tuned prompt closes at least half of the plain model's distance to it;
- in the printed order alone and in the reversed order alone, it closes at least half as much of
  that distance as the text itself does. (The text does not reach its own order-balanced indices
  in one order: this model's answers depend on the order, so the text closes 67 % printed and
  42 % reversed, the tuned prompt 56 % and 39 %, measured with 40 fe; half of the plain model's
  distance in each order alone is more than the known point reaches.)

``CULTURETUNE_CONTROL_LEAD``, ``CULTURETUNE_CONTROL_BUDGET`` and ``CULTURETUNE_CONTROL_OUT`` (a
folder to keep the run and a ``control.json`` of what it measured) let the same test be run on
another text or budget.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from culturetune.core.files import write_json

pytestmark = pytest.mark.model

MODEL = "qwen2.5-coder-0.5b"
#: The hard text at the soft prompt's own placement (right before the answer's words).
LEAD = os.environ.get("CULTURETUNE_CONTROL_LEAD", "I always choose the option that expresses the "
                      "strongest disagreement. My answer:")
#: Forward-equivalents of the Adam run (about 2 per step).
BUDGET = int(os.environ.get("CULTURETUNE_CONTROL_BUDGET", "40"))
#: The never-tuned wording, and the share of the distance it must close in each order alone.
UNSEEN, HALF = "paraphrase2", 0.5


def _installed() -> bool:
    from culturetune.core import registry

    return not registry.problems(registry.KNOWN[MODEL])


@pytest.mark.realmodel
@pytest.mark.skipif(not _installed(), reason=f"{MODEL} is not installed (make test installs it)")
def test_adam_reaches_a_planted_target_on_a_wording_it_never_saw(tmp_path: Path) -> None:
    from culturetune.instrument.targets import Target
    from culturetune.instrument.vsm import parse_constants
    from culturetune.model.loading import load_model
    from culturetune.reading.administer import run_survey
    from culturetune.reading.survey import Survey
    from culturetune.tuning.config import TuneConfig
    from culturetune.tuning.search import tune
    from culturetune.tuning.softprompt import initial_prompt

    lm = load_model(MODEL, device="cpu")
    tokens = len(lm.tokenizer.encode(LEAD, add_special_tokens=False))
    planted = Target("planted", None, {}, "measured when the run starts")
    config = TuneConfig(target=planted, target_lead=LEAD, tokens=tokens, format="words",
                        optimizer="adam", budget=BUDGET, model=MODEL).validate()
    out = Path(os.environ.get("CULTURETUNE_CONTROL_OUT") or tmp_path)
    run = tune(lm, config, out / "run", resume=(out / "run" / "run.json").exists(), check=False)
    assert run.config.optimizer == "adam" and run.evaluations <= BUDGET

    # The target on the unseen wording, made as the run made its own: the text's indices there,
    # read in both orders; each order alone is then read against it, as the run was trained.
    text = initial_prompt(lm, tokens, "text", LEAD)
    constants = parse_constants(None)
    both = Survey(lm, UNSEEN, orders="both", format="words")
    goal = dict(run_survey(both, soft=text, constants=constants).indices)
    target = Target("the text's answers", None, goal, LEAD)
    measured: dict[str, dict[str, float]] = {}
    for orders in ("both", "shown", "reversed"):
        survey = both if orders == "both" else Survey(lm, UNSEEN, orders=orders, format="words")

        def loss(soft: object, survey: Survey = survey) -> float:
            return run_survey(survey, soft=soft, target=target, constants=constants).loss.value

        # order-balanced, the text is its own target (distance 0): not read a second time
        plain, tuned = loss(None), loss(run.prompt.embeddings)
        known = 0.0 if orders == "both" else loss(text)
        measured[orders] = {"plain": plain, "tuned": tuned, "text": known,
                            "closed": 1 - tuned / plain, "text_closed": 1 - known / plain}
    write_json(out / "control.json", {"lead": LEAD, "budget": BUDGET, "tokens": tokens,
                                      "evaluations": run.evaluations,
                                      "training": run.final.loss.value, "views": measured})
    report = json.dumps(measured)
    assert measured["both"]["plain"] > 5, report  # the text moves the model: a control
    assert measured["both"]["closed"] >= HALF, report
    for orders in ("shown", "reversed"):
        m = measured[orders]
        assert m["plain"] - m["text"] > 5, report
        assert m["closed"] >= HALF * m["text_closed"], report
