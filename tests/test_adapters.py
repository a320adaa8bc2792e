"""``--adapter DIR``: a PEFT LoRA folder checked before any model loads, merged by PEFT's own
code, cached, and read like any model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import torch

from culturetune.core.errors import CultureTuneError
from culturetune.model.adapters import check_adapter, merged_folder

if TYPE_CHECKING:
    from conftest import Cli


def _lora_folder(tmp: Path, **config) -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = {"peft_type": "LORA", "r": 2, "target_modules": ["q_proj"], **config}
    (tmp / "adapter_config.json").write_text(json.dumps(cfg))
    (tmp / "adapter_model.safetensors").write_bytes(b"")
    return tmp


@pytest.mark.parametrize(("make", "needle"), [
    (lambda p: p / "missing", "folder not found"),
    (lambda p: (p / "f.txt").write_text("x") and p / "f.txt", "not a folder"),
    (lambda p: (p / "e").mkdir() or p / "e", "no adapter_model.safetensors"),
    (lambda p: ((p / "b").mkdir(), (p / "b" / "adapter_model.bin").write_bytes(b"x"))
     and p / "b", "pickle"),
    (lambda p: (_lora_folder(p / "j"), (p / "j" / "adapter_config.json").write_text("{"))
     and p / "j", "not valid JSON"),
    (lambda p: _lora_folder(p / "pt", peft_type="PROMPT_TUNING"), "--prompt"),
    (lambda p: (_lora_folder(p / "nc"), (p / "nc" / "adapter_config.json").unlink())
     and p / "nc", "no adapter_config.json"),
])
def test_bad_adapter_folders_are_named_before_any_model_loads(tmp_path, make, needle) -> None:
    with pytest.raises(CultureTuneError) as caught:
        check_adapter(make(tmp_path))
    assert needle in str(caught.value)


def test_a_lora_folder_is_accepted_as_it_is(tmp_path) -> None:
    folder = _lora_folder(tmp_path / "ok")
    assert check_adapter(f"  {folder}  ") == folder
    with pytest.raises(CultureTuneError, match="--adapter is empty"):
        check_adapter("  ")


def test_the_cli_refuses_a_bad_adapter_with_one_line(tmp_path, run_cli: Cli) -> None:
    code, _, err = run_cli(["survey", "--adapter", str(tmp_path / "nope")])
    assert code == 2
    assert err.startswith("error: --adapter") and "Traceback" not in err
    code, _, err = run_cli(["tune", "--resume", str(tmp_path), "--adapter",
                            str(_lora_folder(tmp_path / "a"))])
    assert code == 2 and "leave --adapter out" in err


@pytest.fixture(scope="module")
def random_lora(tmp_path_factory) -> Path:
    """A LoRA on the bundled model with random (non-zero) weights, saved by PEFT."""
    from peft import LoraConfig, get_peft_model

    from culturetune.model.loading import load_model

    torch.manual_seed(0)
    lm = load_model(dtype="float32")
    with torch.enable_grad():
        model = get_peft_model(lm.model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"],
                                                    init_lora_weights=False))
    folder = tmp_path_factory.mktemp("lora")
    model.save_pretrained(str(folder), safe_serialization=True)
    return folder


@pytest.mark.model
def test_an_adapter_is_merged_by_peft_cached_and_changes_the_model(
        random_lora, tmp_path, monkeypatch) -> None:
    """The merged model's logits are PEFT's own (PeftModel on the base) to float32 rounding; they
    differ from the base model's; the merged folder is cached and reused."""
    from peft import PeftModel

    from culturetune.model.loading import load_model

    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path / "cache"))
    merged = load_model(dtype="float32", adapter=random_lora)
    folder = merged_folder("smollm2-135m-instruct", random_lora)
    assert merged.name == str(folder) and (folder / "config.json").is_file()
    assert not list(folder.glob("*.bin"))  # safetensors only
    base = load_model(dtype="float32")
    ids = base.tokenizer("How often do you cook dinner?", return_tensors="pt").input_ids
    with torch.no_grad():
        plain = base.model(ids).logits
        reference = PeftModel.from_pretrained(base.model, str(random_lora))(ids).logits
        ours = merged.model(ids).logits
    assert torch.allclose(ours, reference, atol=1e-3)
    assert (ours - plain).abs().max() > 0.1
    stamp = (folder / "config.json").stat().st_mtime_ns
    load_model(dtype="float32", adapter=random_lora)
    assert (folder / "config.json").stat().st_mtime_ns == stamp


@pytest.mark.model
def test_an_adapter_that_does_not_fit_the_base_is_a_clear_error(tmp_path, monkeypatch) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from culturetune.model.loading import load_model

    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path / "cache"))
    tiny = LlamaForCausalLM(LlamaConfig(hidden_size=32, intermediate_size=64,
                                        num_hidden_layers=1, num_attention_heads=2,
                                        num_key_value_heads=1, vocab_size=64))
    with torch.enable_grad():
        other = get_peft_model(tiny, LoraConfig(r=2, target_modules=["q_proj"]))
    other.save_pretrained(str(tmp_path / "other"), safe_serialization=True)
    with pytest.raises(CultureTuneError) as caught:
        load_model(adapter=tmp_path / "other")
    assert "does not fit" in str(caught.value) and "base model" in str(caught.value)


@pytest.mark.model
def test_survey_reads_a_model_with_an_adapter(random_lora, tmp_path, monkeypatch,
                                              run_cli: Cli) -> None:
    """The survey reads the merged model: its answers in each order are not the base model's."""
    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path / "cache"))
    args = ["survey", "--json", "--format", "number", "--dtype", "float32"]
    code, out, err = run_cli([*args, "--adapter", str(random_lora)])
    assert code == 0, err
    result = json.loads(out)
    assert result["model"].startswith(str(tmp_path / "cache" / "models" / "merged-"))
    code, out, err = run_cli(args)
    assert code == 0, err
    plain = json.loads(out)
    assert plain["model"] == "smollm2-135m-instruct"
    moved = max(abs(a - b) for ours, base in zip(result["items"], plain["items"], strict=True)
                for a, b in zip(ours["order_means"], base["order_means"], strict=True))
    assert moved > 0.05, moved

