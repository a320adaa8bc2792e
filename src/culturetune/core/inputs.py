"""Checks on what a user typed or pointed at, made before any model loads.

Every check raises :class:`CultureTuneError` saying what was wrong and what to do. The limits
below (documented in docs/limits.md) keep a typo from asking for days of work or
all the memory; the model-dependent limits (context length, memory) are in ``limits.py``.
User files are read here too: a size cap, BOM-aware decoding, no binary files, JSON with
duplicate keys or absurd nesting refused.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from culturetune.core import registry
from culturetune.core.errors import CultureTuneError
from culturetune.core.ggufheader import check_gguf

if TYPE_CHECKING:
    import torch

MAX_BUDGET = 10_000_000
MAX_POPULATION = 100_000
MAX_SEEDS = 1_000
MAX_SEED = 2**31 - 1
#: Virtual tokens a prompt file may hold before the model's own limits are even looked at.
MAX_PROMPT_TOKENS = 1_048_576
MAX_HIDDEN = 1_048_576
MAX_NEW_TOKENS = 65_536
MAX_SUBSPACE = 100_000_000
#: Target scores and index constants: Hofstede's published scores lie in 0..120 and a VSM 2013
#: index reaches at most about 300 away from its constant, so anything outside is a typo.
SCORE_LIMIT = 1000.0
#: User text files (targets, configs, responses).
MAX_TEXT_BYTES = 64 * 2**20
DEVICES_HELP = "use auto, cpu, cuda, cuda:N or mps"
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


# --------------------------------------------------------------------------- numbers


def check_count(value: Any, option: str, low: int = 1, high: int | None = None) -> int:
    """A whole number in ``low..high`` (``option`` names it in the error)."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CultureTuneError(f"{option} must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        upper = f" and at most {high:,}" if high is not None else ""
        raise CultureTuneError(f"{option} must be at least {low}{upper}, got {value:,}")
    return value


def check_seed(value: Any, option: str = "--seed") -> int:
    return check_count(value, option, 0, MAX_SEED)


def parse_subspace(value: int | str | None, option: str = "--subspace") -> int | None:
    """A subspace dimension: ``full`` (any case) is the whole matrix (``None``); other text is
    read as a positive dimension; a number or ``None`` is returned as given (range-checked by
    the settings' own checks)."""
    if not isinstance(value, str):
        return value
    if value.strip().lower() == "full":
        return None
    if value.strip().lower() == "auto":
        return "auto"  # type: ignore[return-value]  # resolved by the optimizer (TuneConfig)
    try:
        dim = int(value)
    except ValueError:
        raise CultureTuneError(
            f"{option} takes a dimension such as 64 or 'full', not {value!r}") from None
    if dim < 1:
        raise CultureTuneError(f"{option} must be a positive dimension or 'full'")
    return dim


def check_time_limit(value: float | None) -> float | None:
    """``--time-limit``: seconds, finite and not negative (left out: no limit)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CultureTuneError(f"--time-limit must be a finite number of seconds, got {value!r}; "
                               "leave it out for no limit")
    if value < 0:
        raise CultureTuneError(f"--time-limit must not be negative, got {value:g}")
    return float(value)


def check_score(value: float, what: str) -> float:
    """A target score or index constant within ±``SCORE_LIMIT``."""
    if not -SCORE_LIMIT <= value <= SCORE_LIMIT:
        raise CultureTuneError(
            f"{what}: {value:g} is outside -{SCORE_LIMIT:g}..{SCORE_LIMIT:g}; Hofstede's scores "
            "lie in 0..120 and a VSM 2013 index reaches at most about 300 away from its constant"
        )
    return value


def check_text(value: str | None, option: str) -> str | None:
    """A text option that, when given, must not be empty."""
    if value is not None and not value.strip():
        raise CultureTuneError(f"{option} is empty; give some text")
    return value


# --------------------------------------------------------------------------- devices and models


def check_device(device: str | None) -> str:
    """``--device``: auto, cpu, cuda, cuda:N (an existing GPU) or mps (where present)."""
    d = "" if device is None else str(device).strip().lower()
    if not d:
        raise CultureTuneError(f"--device is empty; {DEVICES_HELP}")
    if d in ("auto", "cpu"):
        return d
    m = re.fullmatch(r"cuda(?::(\d{1,4}))?", d)
    if m:
        import torch

        if not torch.cuda.is_available():
            raise CultureTuneError(f"--device {d}: no CUDA GPU is available; use --device cpu")
        index = int(m.group(1) or 0)
        if index >= torch.cuda.device_count():
            raise CultureTuneError(f"--device {d}: there are only {torch.cuda.device_count()} "
                                   "CUDA GPU(s) (cuda:0 is the first)")
        return d
    if d == "mps":
        import torch

        if not torch.backends.mps.is_available():
            raise CultureTuneError("--device mps: no Apple GPU (MPS) is available here; "
                                   "use --device cpu")
        return d
    raise CultureTuneError(f"unknown --device {device!r}; {DEVICES_HELP}")


def check_model_name(model: str | None) -> str | None:
    """``--model``: left out (the bundled default), a known model's name (installed; returned as
    :data:`~culturetune.core.registry.KNOWN` spells it), a .gguf file, a model folder or a hub
    id. A known name wins over a folder of that name (give ``./NAME`` for the folder)."""
    if model is None:
        return None
    name = str(model).strip()
    if not name:
        raise CultureTuneError("--model is empty; leave it out for the bundled default model, or "
                               "give a known model (culturetune models), a hub id, a model "
                               "folder or a .gguf file")
    known = registry.lookup(name)
    if known is not None:
        registry.require_installed(known)
        return known.name
    path = check_path(name, "--model").expanduser()
    if name.lower().endswith(".gguf"):
        check_gguf(path)
        return name
    if exists(path):
        if not is_dir(path):
            raise CultureTuneError(f"--model {name}: not a model folder or a .gguf file")
        if not is_file(path / "config.json"):
            raise CultureTuneError(f"--model {name}: the folder has no config.json; give a "
                                   "Hugging Face model folder (config.json + safetensors weights)")
        return name
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise CultureTuneError(f"model folder {name} not found")
    if not _HUB_ID.match(name):
        raise CultureTuneError(f"--model {name!r} is neither a local folder, a .gguf file nor a "
                               "Hugging Face hub id such as 'HuggingFaceTB/SmolLM2-135M-Instruct'")
    return name


# --------------------------------------------------------------------------- paths


def check_path(value: str | Path, option: str) -> Path:
    """A path the operating system can take: not empty, no NUL byte, no over-long name."""
    text = str(value)
    if not text.strip():
        raise CultureTuneError(f"{option} is empty; give a path")
    if "\x00" in text:
        raise CultureTuneError(f"{option}: the path contains a NUL byte")
    path = Path(text)
    too_long = [p for p in path.parts if len(p.encode("utf-8", "surrogateescape")) > 255]
    if too_long or len(text.encode("utf-8", "surrogateescape")) > 4096:
        raise CultureTuneError(f"{option}: file name too long ({_short(text)}); file names are at "
                               "most 255 bytes")
    return path


def _short(text: str, n: int = 60) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def exists(path: Path) -> bool:
    """``Path.exists`` that answers False instead of raising (over-long names, NUL bytes)."""
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except (OSError, ValueError):
        return False


def check_input_file(value: str | Path, what: str, option: str) -> Path:
    """An existing file to read."""
    path = check_path(value, option)
    if is_dir(path):
        raise CultureTuneError(f"{what} {path} is a folder; give a file")
    if not is_file(path):
        raise CultureTuneError(f"{what} not found: {path}")
    return path


# --------------------------------------------------------------------------- reading user files


def read_user_text(path: str | Path, what: str, limit: int | None = None) -> str:
    """A user's text file: UTF-8 (a BOM is fine) or UTF-16 with a BOM; refused when it is
    larger than ``limit`` bytes (default ``MAX_TEXT_BYTES``), binary or in another encoding."""
    path = Path(path)
    limit = MAX_TEXT_BYTES if limit is None else limit
    try:
        size = path.stat().st_size
        if is_dir(path):
            raise CultureTuneError(f"{what} {path} is a folder; give a file")
        if size > limit:
            raise CultureTuneError(f"{what} {path} is too large ({size:,} bytes; at most "
                                   f"{limit:,})")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise CultureTuneError(f"{what} not found: {path}") from None
    except OSError as exc:
        raise CultureTuneError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise CultureTuneError(f"{what} {path} is too large (more than {limit:,} bytes)")
    return decode_text(data, f"{what} {path}")


def decode_text(data: bytes, where: str) -> str:
    """Text from bytes: UTF-16 when it starts with that BOM, else UTF-8 (a BOM is fine)."""
    binary = CultureTuneError(f"{where} looks like a binary file (it holds NUL bytes); give a "
                              "text file")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    elif b"\x00" in data:
        raise binary
    else:
        encoding = "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise CultureTuneError(
            f"{where} is not UTF-8 text (byte {data[exc.start]:#04x} at position {exc.start}); "
            "save it as UTF-8"
        ) from None
    if "\x00" in text:
        raise binary
    return text


def loads_json(text: str, where: str) -> Any:
    """JSON with clear errors: no duplicate keys in an object, no absurd nesting."""

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                raise CultureTuneError(f"{where}: key {k!r} appears twice in one JSON object")
            out[k] = v
        return out

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except RecursionError:
        raise CultureTuneError(f"{where}: JSON nested too deeply to read") from None
    except ValueError as exc:  # JSONDecodeError, and numbers with too many digits
        raise CultureTuneError(f"{where} is not valid JSON ({exc})") from None


def read_user_json(path: str | Path, what: str) -> Any:
    """A user's JSON file, read with :func:`read_user_text` and :func:`loads_json`."""
    return loads_json(read_user_text(path, what), f"{what} {path}")


@contextlib.contextmanager
def reading_file(where: str) -> Iterator[None]:
    """Turn parser failures on hostile files (CSV fields past the size limit, nesting, bad
    encodings) into a :class:`CultureTuneError` that names the file."""
    try:
        yield
    except csv.Error as exc:
        raise CultureTuneError(f"{where}: not a readable CSV file ({exc})") from None
    except RecursionError:
        raise CultureTuneError(f"{where}: nested too deeply to read") from None
    except UnicodeError as exc:
        raise CultureTuneError(f"{where} is not UTF-8 text ({exc}); save it as UTF-8") from None


# --------------------------------------------------------------------------- prompt folders


def check_prompt_meta(meta: object, folder: Path, file: str) -> dict[str, Any]:
    """``culturetune.json`` of a prompt folder: an object whose known fields have the right type."""
    where = f"{folder / file}"
    if not isinstance(meta, Mapping):
        raise CultureTuneError(f"{where} must hold a JSON object, not {type(meta).__name__}; "
                               "tune the prompt again or delete the file")
    for key, kind in (("placement", str), ("model", str), ("tokens", int), ("hidden", int)):
        value = meta.get(key)
        if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
            raise CultureTuneError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return dict(meta)


def check_prompt_shape(shape: tuple[int, ...] | list[int], path: Path) -> None:
    """The prompt tensor's shape, read from the file's header before loading it."""
    if len(shape) != 2:
        raise CultureTuneError(f"{path} holds a tensor of shape {list(shape)}; a soft prompt is "
                               "[tokens, hidden]")
    tokens, hidden = shape
    if tokens < 1 or hidden < 1:
        raise CultureTuneError(f"{path} holds an empty prompt (shape {list(shape)})")
    if tokens > MAX_PROMPT_TOKENS or hidden > MAX_HIDDEN:
        raise CultureTuneError(f"{path} holds a prompt of shape {list(shape)}; at most "
                               f"{MAX_PROMPT_TOKENS:,} virtual tokens are read")


def check_prompt_values(embeddings: torch.Tensor, folder: Path) -> None:
    """Refuse a prompt whose tensor holds NaN or infinite values (naming the folder)."""
    import torch

    bad = ~torch.isfinite(embeddings)
    if bool(bad.any()):
        row = int(bad.any(-1).nonzero()[0, 0])
        raise CultureTuneError(f"prompt folder {folder}: the tensor holds {int(bad.sum())} NaN or "
                               f"infinite values (first in virtual token {row}); the prompt is "
                               "damaged: tune it again")


# --------------------------------------------------------------------------- settings


class TuneSettings(Protocol):
    """What :func:`check_tune_settings` reads of a ``TuneConfig`` (tuning sits above core)."""

    tokens: int
    budget: int
    population: int
    seed: int
    subspace: int | None
    optimizer: str
    init: str
    init_text: str | None
    scale: float


class ExperimentLimits(Protocol):
    """What :func:`check_experiment_limits` reads of an ``ExperimentConfig``."""

    seeds: int
    budget: int
    population: int
    tokens: int
    subspace: int | None
    methods: list[str]
    model: str | None


def check_tune_settings(config: TuneSettings) -> None:
    """Types and ranges of a ``TuneConfig`` (a hand-edited ``run.json`` included; its
    constants are checked by ``TuneConfig.validate``)."""
    check_count(config.tokens, "--tokens", 1, MAX_PROMPT_TOKENS)
    check_count(config.budget, "--budget", 1, MAX_BUDGET)
    check_count(config.population, "--population", 1, MAX_POPULATION)
    check_seed(config.seed)
    if config.subspace is not None:
        check_count(config.subspace, "--subspace", 1, MAX_SUBSPACE)
    for name in ("model", "instrument", "placement", "init", "loss"):
        value = getattr(config, name, "")
        if not isinstance(value, str):
            raise CultureTuneError(f"setting {name} must be a name, got {value!r}")
    for name in ("init_text", "system"):
        value = getattr(config, name, None)
        if value is not None and not isinstance(value, str):
            raise CultureTuneError(f"setting {name} must be a text, got {value!r}")
    if config.optimizer == "cma" and (config.population < 2 or config.subspace == 1):
        raise CultureTuneError("--optimizer cma needs --population 2 or more and a search space "
                               "of 2 or more dimensions (--subspace)")
    if config.init == "text" and not (config.init_text or "").strip():
        raise CultureTuneError("--init text needs --init-text TEXT (e.g. a persona sentence)")
    if config.init != "text" and config.init_text is not None:
        raise CultureTuneError(f"--init-text is used only with --init text (not --init "
                               f"{config.init}); add --init text or leave --init-text out")
    scale = config.scale
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not (
            math.isfinite(scale) and scale > 0):
        raise CultureTuneError(f"setting scale must be a positive number, got {scale!r}")


def check_known_settings(keys: Iterable[str], known: Sequence[str], source: str) -> None:
    """Refuse settings that are not fields of a config (``known``), naming ``source``: the one
    rule for every config read from a dict or a file."""
    unknown = sorted(k for k in keys if k not in known)
    if unknown:
        raise CultureTuneError(
            f"{source}: unknown setting(s) {', '.join(unknown)}; valid: {', '.join(known)}"
        )


def check_experiment_limits(config: ExperimentLimits) -> None:
    """Upper limits of an ``ExperimentConfig`` (its own ``validate`` checks the rest)."""
    check_count(config.seeds, "seeds", 1, MAX_SEEDS)
    check_count(config.budget, "budget", 1, MAX_BUDGET)
    check_count(config.population, "population", 1, MAX_POPULATION)
    check_count(config.tokens, "tokens", 1, MAX_PROMPT_TOKENS)
    if config.subspace is not None:
        check_count(config.subspace, "subspace", 1, MAX_SUBSPACE)
    if any(m == "cma" or m.startswith("cma-") for m in config.methods) and (
            config.population < 2 or config.subspace == 1):
        raise CultureTuneError("method cma needs population 2 or more and subspace 2 or more")
    if config.model is not None and not str(config.model).strip():
        raise CultureTuneError("model is empty; leave it out (null) for the bundled default")
