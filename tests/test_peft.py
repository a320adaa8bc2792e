"""Saved prompts name a base model that PEFT's Auto classes can load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from culturetune.model.loading import (
    DEFAULT_HUB_ID,
    DEFAULT_MODEL,
    gguf_cache_folder,
    peft_base_model,
)
from culturetune.tuning.softprompt import CONFIG_FILE, META_FILE, SoftPrompt

if TYPE_CHECKING:
    from conftest import Cli

#: Largest gap allowed between PEFT's and ``culturetune survey --prompt``'s answer probabilities
#: and option mass (float32; measured 1.3e-6 and 8.4e-6).
PEFT_TOL = 1e-4

# Run in a fresh interpreter with the hub switched off: load the prompt folder with
# AutoPeftModelForCausalLM alone and read each VSM item's answer as the survey does.
PEFT_SCRIPT = """
import json, sys, torch
from peft import AutoPeftModelForCausalLM
from transformers import AutoTokenizer
from culturetune.model.loading import LoadedModel
from culturetune.reading.prompts import item_prompt, option_token_ids
from culturetune.instrument.vsm import load_instrument

model = AutoPeftModelForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32).eval()
base = model.peft_config["default"].base_model_name_or_path
tok = AutoTokenizer.from_pretrained(base)
render = LoadedModel(None, tok, base, "cpu", "float32").render
groups = option_token_ids(tok)

out = []
for item in load_instrument("vsm2013").items:
    enc = tok(render(item_prompt(item))[0], return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        logp = model(**enc).logits[0, -1].double().log_softmax(-1)
    per = torch.stack([logp[g].logsumexp(-1) for g in groups])
    out.append({"var": item.var, "probs": (per - per.logsumexp(-1)).exp().tolist(),
                "mass": float(per.logsumexp(-1).exp())})
print(json.dumps({"base": base, "items": out}))
"""


def run_json(run_cli: Cli, args: list[str]) -> dict:
    """The command's ``--json`` output; it must succeed."""
    code, out, err = run_cli([*args, "--json"])
    assert code == 0, err
    return json.loads(out)


def test_base_model_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mymodel").mkdir()
    (tmp_path / "tiny.gguf").write_bytes(b"1234")
    assert peft_base_model(DEFAULT_MODEL) == DEFAULT_HUB_ID == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert peft_base_model("HuggingFaceTB/SmolLM2-360M-Instruct") == (
        "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert peft_base_model("mymodel") == str(tmp_path / "mymodel")
    assert peft_base_model("./mymodel/") == str(tmp_path / "mymodel")
    cached = gguf_cache_folder(tmp_path / "tiny.gguf")
    assert cached.parent == tmp_path / "cache" / "models" and cached.name.startswith("tiny-4-")
    assert peft_base_model("tiny.gguf") == str(cached)


def test_saved_config_names_the_hub_id_and_culturetune_json_keeps_the_name(
        tmp_path: Path) -> None:
    prompt = SoftPrompt(torch.zeros(2, 8), "prefix", DEFAULT_MODEL)
    prompt.save(tmp_path / "p")
    config = json.loads((tmp_path / "p" / CONFIG_FILE).read_text())
    assert config["base_model_name_or_path"] == DEFAULT_HUB_ID
    assert config["peft_type"] == "PROMPT_TUNING" and config["num_virtual_tokens"] == 2
    assert json.loads((tmp_path / "p" / META_FILE).read_text())["model"] == DEFAULT_MODEL
    assert SoftPrompt.load(tmp_path / "p").model == DEFAULT_MODEL


@pytest.mark.model
def test_auto_peft_loads_a_prompt_tuned_on_a_local_folder_offline(
        tmp_path: Path, run_cli: Cli) -> None:
    from culturetune.model.loading import bundled_gguf, load_model

    load_model(dtype="float32")  # makes sure the dequantized folder exists
    folder = gguf_cache_folder(bundled_gguf())  # a plain local model folder
    run = str(tmp_path / "run")
    tuned = run_json(run_cli, ["tune", "--model", str(folder), "--country", "China", "--placement",
                               "prefix", "--tokens", "3", "--optimizer", "random", "--population",
                               "2", "--budget", "2", "--dtype", "float32", "--format", "number",
                               "--out", run])
    # The prompt matters: the survey moves with it (so a PEFT that ignored it would not match).
    assert abs(tuned["final"]["loss"]["value"] - tuned["baseline"]["loss"]["value"]) > 0.1
    config = json.loads((Path(run) / CONFIG_FILE).read_text())
    assert config["base_model_name_or_path"] == str(folder.resolve())
    assert json.loads((Path(run) / META_FILE).read_text())["model"] == str(folder)
    # PEFT sees the printed option order only, so compare with that order's reading.
    ours = run_json(run_cli, ["survey", "--model", str(folder), "--prompt", run, "--dtype",
                              "float32", "--orders", "shown", "--format", "number"])

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", PEFT_SCRIPT, run], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    peft = json.loads(done.stdout)
    assert peft["base"] == str(folder.resolve())
    pairs = list(zip(peft["items"], ours["items"], strict=True))
    assert all(a["var"] == b["var"] for a, b in pairs)
    gap = max(abs(p - q) for a, b in pairs for p, q in zip(a["probs"], b["probs"], strict=True))
    mass_gap = max(abs(a["mass"] - b["mass"]) for a, b in pairs)
    assert gap < PEFT_TOL and mass_gap < PEFT_TOL
