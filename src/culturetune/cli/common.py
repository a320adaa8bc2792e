"""What the commands share around the library: status lines and JSON on the right streams,
loading a model quietly, and turning options into library values (targets, system prompts,
option orders, prompt folders checked against the model). Heavy imports (torch, transformers)
happen inside the functions that need them, so that ``countries`` and ``score`` start fast.
"""

from __future__ import annotations

import functools
import inspect
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from culturetune.cli.options import DeviceOpt, Dtype, DtypeOpt, ThreadsOpt, TrustOpt
from culturetune.core.errors import CultureTuneError
from culturetune.instrument.targets import Target

if TYPE_CHECKING:
    from culturetune.model.loading import LoadedModel


def status(message: str) -> None:
    """A progress line for humans on stderr (stdout stays clean for ``--json``), written in one
    call so that a line from the progress heartbeat's thread never splits another."""
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def print_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout (non-finite numbers become ``null``)."""
    sys.stdout.write(json.dumps(_finite(data), indent=2, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Mapping):
        return {str(k): _finite(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_finite(v) for v in x]
    return x


def quiet_transformers() -> None:
    """Silence transformers' and the hub's progress bars and warnings."""
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
    # The GGUF dequantization bar is a plain tqdm that ignores the switch above.
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:  # pragma: no cover
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is not None and not getattr(bar, "_culturetune_quiet", False):
        quiet = functools.partial(bar, disable=True)
        quiet._culturetune_quiet = True  # type: ignore[attr-defined]
        gguf_utils.tqdm = quiet


@dataclass(frozen=True)
class LoadOptions:
    """How a model loads: ``--device``, ``--dtype``, ``--trust-remote-code``, ``--threads``."""

    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    threads: int | None = None


#: A command's ``load`` default (replaced by the options' own defaults).
DEFAULT_LOAD = LoadOptions()
#: The options :func:`with_load_options` declares, in the order ``--help`` lists them.
_LOAD_OPTIONS = (("device", DeviceOpt, "auto"), ("dtype", DtypeOpt, Dtype.auto),
                 ("trust_remote_code", TrustOpt, False), ("threads", ThreadsOpt, None))


def with_load_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Declare the options of :class:`LoadOptions` once for a command: they take the place of its
    ``load`` parameter (so ``--help`` lists them there) and reach it as one ``LoadOptions``."""
    sig = inspect.signature(fn, eval_str=True)
    params: list[inspect.Parameter] = []
    for p in sig.parameters.values():
        if p.name != "load":
            params.append(p)
            continue
        params += [inspect.Parameter(name, p.kind, default=default, annotation=annotation)
                   for name, annotation, default in _LOAD_OPTIONS]

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device, dtype, trust, threads = (kwargs.pop(name) for name, _, _ in _LOAD_OPTIONS)
        return fn(*args, load=LoadOptions(device, str(dtype), trust, threads), **kwargs)

    wrapper.__signature__ = sig.replace(parameters=params)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    return wrapper


def model_loader(model: str | None, adapter: str | None,
                 load: LoadOptions) -> Callable[[], LoadedModel]:
    """The model options checked before any model loads (:func:`check_model_options`); returns
    the call that loads the model (:func:`load_lm`)."""
    model, adapter, device = check_model_options(model, adapter, load.device)
    return functools.partial(load_lm, model, device, load.dtype, load.trust_remote_code,
                             load.threads, adapter)


def check_model_options(model: str | None, adapter: str | None,
                        device: str | None) -> tuple[str | None, str | None, str]:
    """``--model``, ``--adapter`` and ``--device`` checked before any model loads (the other model
    options, ``--dtype``, ``--trust-remote-code`` and ``--threads``, are checked as it loads):
    ``(model, adapter, device)`` as the loader takes them."""
    from culturetune.core import inputs

    model, device = inputs.check_model_name(model), inputs.check_device(device)
    return model, check_adapter(adapter), device


def check_adapter(adapter: str | None) -> str | None:
    """``--adapter``: a PEFT LoRA folder, checked before any model loads."""
    if adapter is None:
        return None
    from culturetune.model.adapters import check_adapter as check

    return str(check(adapter))


def load_lm(
    model: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    threads: int | None = None,
    adapter: str | None = None,
) -> LoadedModel:
    """Load a model quietly, with one status line on stderr before and after (``adapter``: a
    PEFT LoRA folder merged into it)."""
    from culturetune.model.loading import DEFAULT_MODEL, load_model

    if threads is not None:
        import torch

        if threads < 1:
            raise CultureTuneError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    else:
        busy_hint()
    quiet_transformers()
    name = model or DEFAULT_MODEL
    status(f"loading {name}{f' with the LoRA in {adapter}' if adapter else ''} ...")
    start = time.perf_counter()
    lm = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                    adapter=adapter, progress=status)
    status(f"loaded {lm.name} on {lm.device} ({lm.dtype}) in {time.perf_counter() - start:.1f} s")
    return lm


def running_others(samples: int = 5, gap: float = 0.02) -> int | None:
    """How many other threads are running or ready to run right now (the median of a few
    readings of ``/proc/loadavg``'s running count, less this reader); ``None`` where the
    platform has no such file. The load average alone lags a minute behind: it still counts a
    job that has just finished."""
    counts = []
    for i in range(samples):
        try:
            with open("/proc/loadavg", encoding="ascii") as fh:
                running = fh.read().split()[3].split("/")[0]
            counts.append(int(running) - 1)
        except (OSError, IndexError, ValueError):
            return None
        if i + 1 < samples:
            time.sleep(gap)
    return int(statistics.median(counts))


def busy_hint() -> None:
    """Say how to share the CPU when other work already keeps its cores busy: torch's threads
    spin while they wait, so two jobs with a thread per core each run many times slower (about
    10x each on 2 cores; benchmarks/bench_threads.py), against about 2x with a share each.
    Busy means a load average of half the cores or more and, where the platform tells, other
    threads running now (so that a job that has just ended does not count)."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return
    if cores > 8 or load < max(1.0, cores / 2):
        return
    others = running_others()
    if others is not None and others < 1:
        return
    share = max(1, cores // 2)
    status(f"note: this machine is busy (load {load:.1f} on {cores} cores). If another "
           f"torch job is running, give each --threads {share} (or set "
           "OMP_WAIT_POLICY=PASSIVE): with a thread per core each, both run many times "
           "slower")


def resolve_target(spec: str | None) -> Target | None:
    """The target named by ``--country``/``--target`` (``None`` when not given)."""
    from culturetune.instrument.targets import parse_target

    return None if spec is None else parse_target(spec)


def system_prompt(persona: str | None, system: str | None) -> str | None:
    """The system prompt from ``--persona COUNTRY`` or ``--system TEXT`` (not both)."""
    from culturetune.api import system_prompt as choose

    return choose(persona, system, "--")


def resolve_orders(orders: Any, reverse_options: bool = False, default: str = "both") -> str:
    """``--orders`` with ``--reverse-options`` as its alias (``--orders reversed``)."""
    chosen = None if orders is None else str(orders)
    if reverse_options:
        if chosen not in (None, "reversed"):
            raise CultureTuneError(f"--reverse-options means --orders reversed; it conflicts "
                                   f"with --orders {chosen}: give one of them")
        return "reversed"
    return chosen or default


def read_prompt(folder: str | None) -> Any:
    """A prompt folder (``None`` when not given); read before the model so errors come fast."""
    from culturetune.tuning.softprompt import SoftPrompt

    return None if folder is None else SoftPrompt.load(folder)


def checked(prompt: Any, lm: LoadedModel) -> Any:
    """The prompt, after checking it fits the loaded model."""
    if prompt is not None:
        prompt.check_hidden_size(lm)
    return prompt


def fits(lm: LoadedModel, soft: Any, name: str | None, segments: Any, extra: int = 0) -> None:
    """Refuse a soft prompt that, with these prompts (``extra`` generated tokens after each),
    does not fit the model's context or the memory."""
    from culturetune.tuning import limits

    longest = max((len(a) + len(b) for a, b in zip(segments.pre, segments.post, strict=True)),
                  default=0) + extra
    limits.check_prompt(lm, soft.tokens, longest, len(segments),
                        f"prompt {name} ({soft.tokens} virtual tokens)")


def check_format(fmt: Any, instruments: list[str]) -> str:
    """``--format``, checked against the instruments before any model loads (``auto`` is
    resolved once the model is loaded: :func:`answer_format`)."""
    from culturetune.instrument.formats import check_format as check
    from culturetune.instrument.vsm import load_instrument
    from culturetune.reading.prompts import check_instrument_format

    fmt = check(str(fmt))
    if fmt != "auto":
        for name in instruments:
            check_instrument_format(load_instrument(name), fmt)
    return fmt


def answer_format(lm: LoadedModel, requested: str, instrument: str, quiet: bool = False) -> Any:
    """The format to read in (a ``FormatChoice``): ``auto`` from the model check in every format
    (measured where not cached, with progress lines), said in one status line."""
    from culturetune.reading.check import choose_format

    choice = choose_format(lm, requested, instrument, progress=None if quiet else
                           lambda what: status(f"model check: {what} ..."))
    if requested == "auto":
        status(f"format: {choice.format} ({choice.reason})")
    return choice
