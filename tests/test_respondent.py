"""The respondent's synthetic data: the content-correct answer in every order, the held-out
split, and the bound on how much of it the VSM 2013 wordings (and the check's probe) share."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import numpy as np
import pytest

from culturetune.instrument.vsm import load_instrument
from culturetune.reading.check import HIGH_SYSTEM, LOW_SYSTEM
from culturetune.respondent import data, overlap

if TYPE_CHECKING:
    from conftest import Cli

WORDINGS = ("vsm2013", "paraphrase", "paraphrase2")


def _options(user: str) -> list[str]:
    return [m.group(1) for m in re.finditer(r"^\d\. (.+)$", user, flags=re.M)]


def _scale_of(labels: list[str]) -> tuple[str, tuple[str, ...]]:
    for name, (label_sets, _) in data.SCALES.items():
        for labels_set in label_sets:
            if sorted(labels_set) == sorted(labels):
                return name, labels_set
    raise AssertionError(f"no scale has the options {labels}")


def test_the_answer_is_the_shown_number_of_the_content_correct_option() -> None:
    """Reading an example back from its text: the option at the answer's shown number is the
    one the stance level points to (the agreeing pole for level 1), turned round for a negated
    statement; so an answer by position is right only by chance."""
    train, _ = data.split(0)
    examples = data.examples(2000, 3, train)
    positions = []
    for ex in examples:
        shown = _options(ex.user)
        assert len(shown) == 5 and ex.user.count("\n") >= 7
        _, pole_first = _scale_of(shown)
        negated = any(f.split("{act}")[0] in ex.user for f in data.NEGATED)
        content = 6 - ex.level if negated else ex.level
        assert shown[ex.answer - 1] == pole_first[content - 1], ex
        positions.append(ex.answer)
    counts = np.bincount(positions, minlength=6)[1:] / len(positions)
    assert counts.min() > 0.15 and counts.max() < 0.25  # every shown number about as often


def test_pairs_differ_only_in_the_stance_direction() -> None:
    """Version 4's pairs: the same question, options and order; levels L and 6 - L; each answer
    is the content-correct option (read back from the text), so the two point to opposite
    options of the scale."""
    train, _ = data.split(0)
    rng = np.random.default_rng(4)
    paired = 0
    for _ in range(300):
        a, b = data.make_pair(rng, train)
        for ex in (a, b):
            shown = _options(ex.user)
            _, pole_first = _scale_of(shown)
            negated = any(f.split("{act}")[0] in ex.user for f in data.NEGATED)
            assert shown[ex.answer - 1] == pole_first[(6 - ex.level if negated else ex.level) - 1]
        if a.level != 3:
            paired += 1
            assert a.user == b.user and a.level + b.level == 6 and a.system != b.system
            assert a.answer != b.answer
    assert paired > 200


def test_stances_decide_levels_and_no_stance_is_the_middle() -> None:
    train, _ = data.split(0)
    examples = data.examples(3000, 1, train)
    assert {e.level for e in examples} == {1, 2, 3, 4, 5}
    assert all(e.level == 3 for e in examples if e.system is None)
    for e in examples:
        topic, _, pro, con = data.STATEMENTS[e.statement]
        if e.system is None or e.system in {t for ts in data.GENERIC.values() for t in ts}:
            continue
        if e.level in (1, 2):
            assert e.system.startswith(pro)
        elif e.level in (4, 5):
            assert e.system.startswith(con)
        else:
            assert pro not in e.system and con not in e.system


def test_held_out_statements_are_never_trained_on_and_runs_are_seeded() -> None:
    train, held = data.split(0)
    assert set(train).isdisjoint(held) and len(train) + len(held) == len(data.STATEMENTS)
    assert {e.statement for e in data.examples(500, 0, train)} <= set(train)
    assert data.examples(50, 9, train) == data.examples(50, 9, train)
    assert data.examples(50, 9, train) != data.examples(50, 10, train)


def _vsm_texts() -> list[str]:
    texts = []
    for name in WORDINGS:
        for item in load_instrument(name).items:
            texts += [item.text] + ([item.stem] if item.stem else [])
    return texts


def test_no_vsm_item_or_rewording_of_one_is_in_the_data() -> None:
    """Every statement, stance and question shares at most half of its content words with any
    item text or lead-in of the three bundled VSM wordings (either way round for the
    statements and stances); the probe's two system prompts are not in the data either."""
    vsm = _vsm_texts()
    parts = [p for s in data.STATEMENTS for p in s[1:]]
    share, mine, theirs = overlap.max_overlap(parts, vsm)
    assert share <= data.MAX_SHARED, (mine, theirs)
    texts = data.all_texts()
    worst = max((overlap.shared_share(t, v), t, v) for t in texts for v in vsm)
    assert worst[0] <= data.MAX_SHARED, worst
    share, mine, theirs = overlap.max_overlap(texts, [HIGH_SYSTEM, LOW_SYSTEM])
    assert share <= data.MAX_SHARED, (mine, theirs)
    lowered = [v.lower() for v in vsm]
    for t in texts:
        assert t.lower() not in lowered


def test_the_overlap_measure_catches_a_rewording() -> None:
    item = load_instrument("vsm2013").items[0].text
    rewording = "have enough time for your personal and home life"
    assert overlap.max_overlap([rewording], [item])[0] > 0.5
    assert overlap.shared_share("", item) == 0.0


@pytest.mark.parametrize("bad", [{"steps": 0}, {"batch": 65}, {"lr": 2.0}, {"rank": -1}])
def test_train_settings_are_checked(bad) -> None:
    from culturetune.core.errors import CultureTuneError
    from culturetune.respondent.train import TrainConfig

    with pytest.raises(CultureTuneError):
        TrainConfig(**bad).validate()


@pytest.mark.model
def test_training_writes_a_loadable_adapter_and_continues_from_it(tmp_path, monkeypatch) -> None:
    """Two steps, then two more from the first folder: each folder is a PEFT LoRA that
    ``--adapter`` merges, with its learning curve, its model checks and the stages so far; the
    continued run draws new data (not the first stage's again)."""
    import json

    from culturetune.model.adapters import check_adapter
    from culturetune.respondent.train import CURVE_FILE, META_FILE, TrainConfig, train

    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path / "cache"))
    small = {"steps": 2, "batch": 2, "eval_every": 1, "check_every": 2, "held_out": 4}
    first = train(tmp_path / "a", TrainConfig(**small), log=lambda _: None)
    assert [r["step"] for r in first.curve] == [0, 1, 2] and len(first.checks) == 2
    check_adapter(tmp_path / "a")
    meta = json.loads((tmp_path / "a" / META_FILE).read_text())
    assert meta["steps_total"] == 2 and meta["examples_seen"] == 4 and len(meta["stages"]) == 1
    # step 0 is the bundled model itself (a fresh LoRA adds zero): its known verdict
    assert meta["checks"][0]["step"] == 0
    assert meta["checks"][0]["verdict"] == "answers by position"
    assert meta["checks"][0]["content_agreement"] == 0.0
    assert (tmp_path / "a" / CURVE_FILE).read_text().startswith("step,seconds,train_loss")
    import shutil

    import torch
    from safetensors.torch import load_file, save_file

    # continue from a copy of "a" whose lora_B weights are all 0.05 (a fresh LoRA starts at 0):
    # two warm-up steps (learning rate below 1e-4) cannot move them far from 0.05
    shutil.copytree(tmp_path / "a", tmp_path / "c")
    weights = load_file(str(tmp_path / "c" / "adapter_model.safetensors"))
    save_file({k: torch.full_like(v, 0.05) if "lora_B" in k else v for k, v in weights.items()},
              str(tmp_path / "c" / "adapter_model.safetensors"))
    second = train(tmp_path / "b", TrainConfig(**small, init=str(tmp_path / "c")),
                   log=lambda _: None)
    meta = json.loads((tmp_path / "b" / META_FILE).read_text())
    assert meta["steps_total"] == 4 and meta["examples_seen"] == 8 and len(meta["stages"]) == 2
    assert meta["stages"][0]["config"]["init"] is None and len(second.curve) == 3
    b = load_file(str(tmp_path / "b" / "adapter_model.safetensors"))
    assert b.keys() == weights.keys()
    for k, v in b.items():
        if "lora_B" in k:
            assert (v.float() - 0.05).abs().max() < 0.01, k


def test_the_train_command_refuses_a_used_folder_and_a_bad_init(tmp_path, run_cli: Cli) -> None:
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("x")
    for args, needle in ((["--out", str(tmp_path / "used")], "not an empty folder"),
                         (["--out", str(tmp_path / "n"), "--init", str(tmp_path)],
                          "no adapter_model.safetensors"),
                         (["--out", str(tmp_path / "n"), "--stop-after", "9", "--steps", "3"],
                          "--stop-after"),
                         (["--out", str(tmp_path / "n"), "--data-version", "7"],
                          "--data-version")):
        code, _, err = run_cli(["respondent", "train", *args])
        assert code == 2 and needle in err and "Traceback" not in err, err
