"""The soft prompt: a few virtual-token embeddings placed in the model's input.

A tuned prompt is a folder: ``adapter_model.safetensors`` (tensor ``prompt_embeddings``,
``[virtual tokens, hidden]``) and ``adapter_config.json`` in PEFT's prompt-tuning format, so that
PEFT can load a ``prefix``-placed prompt (its base model named as PEFT's Auto classes can load it:
see :func:`culturetune.model.loading.peft_base_model`), plus ``culturetune.json`` with everything
else (the model as culturetune names it among them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from culturetune.core import inputs
from culturetune.core.choices import INITS
from culturetune.core.errors import CultureTuneError
from culturetune.core.files import read_json, write_files
from culturetune.model.loading import LoadedModel, peft_base_model
from culturetune.reading.prompts import check_placement

#: ``lead``: the soft prompt starts as the last tokens of this text, which ends where a reply
#: begins, so that an answer-placed prompt (between the assistant header and the reply) starts
#: by leading into the answer instead of derailing it.
LEAD_TEXT = "Sure, I can answer that. Here is my answer:\n"


def resolve_init(init: str, placement: str, fmt: str) -> str:
    """``auto``: ``lead`` for an answer-placed prompt read in the words format (random vocabulary
    rows there leave no probability on the options' words: Qwen2.5-Coder-0.5B's option mass fell
    from 0.61 to 0.000 under every vocab, random or cut-text start, and stayed 0.70 under the lead
    text), ``vocab`` otherwise (the start every earlier run used)."""
    if init != "auto":
        return init
    return "lead" if placement == "answer" and fmt == "words" else "vocab"

ADAPTER_FILE = "adapter_model.safetensors"
CONFIG_FILE = "adapter_config.json"
META_FILE = "culturetune.json"
TENSOR_NAME = "prompt_embeddings"


@dataclass
class SoftPrompt:
    """Virtual-token embeddings ``[tokens, hidden]`` (float32) and where they go in the input."""

    embeddings: torch.Tensor
    placement: str = "answer"
    model: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_placement(self.placement)
        if self.embeddings.dim() != 2:
            raise CultureTuneError("a soft prompt must be a [tokens, hidden] matrix")
        self.embeddings = self.embeddings.detach().float().cpu().contiguous()

    @property
    def tokens(self) -> int:
        return int(self.embeddings.shape[0])

    @property
    def hidden(self) -> int:
        return int(self.embeddings.shape[1])

    def check_hidden_size(self, lm: LoadedModel) -> None:
        """Refuse to apply a prompt made for a model of another hidden size."""
        if self.hidden != lm.hidden_size:
            raise CultureTuneError(
                f"this prompt has hidden size {self.hidden} (made for {self.model or 'unknown'}), "
                f"but model {lm.name} has {lm.hidden_size}; tune a prompt for this model or pass "
                f"--model {self.model}"
            )

    def save(self, folder: str | Path, lm: LoadedModel | None = None) -> Path:
        """Write the PEFT-compatible adapter files and ``culturetune.json``: all three or, where
        one cannot be written (:class:`~culturetune.core.files.WriteError`), none."""
        from peft import PromptTuningConfig
        from safetensors.torch import save_file

        folder = Path(folder)
        config = lm.model.config if lm is not None else None
        peft_config = PromptTuningConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=self.tokens,
            token_dim=self.hidden,
            num_transformer_submodules=1,
            num_attention_heads=getattr(config, "num_attention_heads", None),
            num_layers=getattr(config, "num_hidden_layers", None),
            base_model_name_or_path=peft_base_model(self.model) if self.model else None,
            inference_mode=True,
        )
        meta = {
            **self.meta,
            "model": self.model,
            "placement": self.placement,
            "tokens": self.tokens,
            "hidden": self.hidden,
        }
        config_text = json.dumps(peft_config.to_dict(), indent=2, default=str)
        write_files([
            (folder / ADAPTER_FILE,
             lambda tmp: save_file({TENSOR_NAME: self.embeddings}, tmp, metadata={"format": "pt"})),
            (folder / CONFIG_FILE, lambda tmp: Path(tmp).write_text(config_text, encoding="utf-8")),
            (folder / META_FILE, lambda tmp: Path(tmp).write_text(
                json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")),
        ])
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SoftPrompt:
        """Read a prompt folder written by :meth:`save`, with clear errors for broken ones."""
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        folder = inputs.check_path(folder, "--prompt")
        if inputs.is_file(folder):
            raise CultureTuneError(f"--prompt {folder} is a file; give the prompt's folder")
        if not inputs.is_dir(folder):
            raise CultureTuneError(f"prompt folder {folder} not found")
        path = folder / ADAPTER_FILE
        if not path.exists():
            raise CultureTuneError(f"{folder} is not a prompt folder: {ADAPTER_FILE} is missing")
        try:
            with safe_open(str(path), framework="pt") as fh:
                if TENSOR_NAME in fh.keys():
                    inputs.check_prompt_shape(fh.get_slice(TENSOR_NAME).get_shape(), path)
            tensors = load_file(path)
        except (SafetensorError, OSError, ValueError) as exc:
            raise CultureTuneError(
                f"{path} is corrupt or not a safetensors file ({exc}); tune the prompt again"
            ) from exc
        if TENSOR_NAME not in tensors or tensors[TENSOR_NAME].dim() != 2:
            raise CultureTuneError(f"{path} has no [tokens, hidden] tensor {TENSOR_NAME!r}")
        meta: dict[str, Any] = {}
        if (folder / META_FILE).exists():
            meta = inputs.check_prompt_meta(read_json(folder / META_FILE), folder, META_FILE)
        placement = meta.get("placement", "prefix")
        emb = tensors[TENSOR_NAME]
        if meta.get("hidden") not in (None, emb.shape[1]):
            raise CultureTuneError(
                f"{folder}: {META_FILE} says hidden size {meta['hidden']} but "
                f"the tensor has {emb.shape[1]}; the folder is inconsistent"
            )
        inputs.check_prompt_values(emb.float(), folder)
        return cls(embeddings=emb, placement=placement, model=meta.get("model", ""), meta=meta)


def initial_prompt(
    lm: LoadedModel, tokens: int, init: str = "random", text: str | None = None, seed: int = 0
) -> torch.Tensor:
    """A starting prompt ``[tokens, hidden]``.

    ``random``: Gaussian at the embedding table's mean and scale; ``vocab``: rows of the embedding
    table sampled at random; ``text``: the embeddings of a text's tokens (repeated or cut to fit);
    ``lead``: the last ``tokens`` tokens of :data:`LEAD_TEXT` (a lead-in that ends where the
    answer starts).
    """
    if tokens < 1:
        raise CultureTuneError("--tokens must be at least 1")
    weight = lm.model.get_input_embeddings().weight.detach().float().cpu()
    gen = torch.Generator().manual_seed(seed)
    if init == "random":
        mean, std = lm.embedding_stats
        return mean + std * torch.randn(tokens, weight.shape[1], generator=gen)
    if init == "vocab":
        rows = torch.randint(0, weight.shape[0], (tokens,), generator=gen)
        return weight[rows].clone()
    if init == "lead":
        ids = lm.tokenizer.encode(LEAD_TEXT, add_special_tokens=False)
        ids = (ids * (tokens // len(ids) + 1))[-tokens:]
        return weight[torch.tensor(ids)].clone()
    if init == "text":
        if not text:
            raise CultureTuneError("--init text needs --init-text TEXT (e.g. a persona sentence)")
        ids = lm.tokenizer.encode(text, add_special_tokens=False)
        if not ids:
            raise CultureTuneError("--init-text encodes to no tokens")
        ids = (ids * (tokens // len(ids) + 1))[:tokens]
        return weight[torch.tensor(ids)].clone()
    raise CultureTuneError(f"unknown --init {init!r}; use one of {', '.join(INITS[:-1])} "
                           "(auto is resolved by the run)")
