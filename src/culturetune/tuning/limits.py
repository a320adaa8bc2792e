"""What fits: virtual tokens against the model's context length, and the memory a run needs
against what the device has, checked once the model is loaded and before anything is allocated
or written. A refusal says how many virtual tokens would fit.

The memory estimate is deliberately rough (about 3 copies of the attention scores of one forward
pass, the activations, the search space and the optimizer's record); it exists to refuse requests
that are orders of magnitude too large, not to fine-tune a batch size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from culturetune.core.choices import GRADIENT_OPTIMIZERS
from culturetune.core.errors import CultureTuneError
from culturetune.core.memory import available_bytes

if TYPE_CHECKING:
    from culturetune.model.loading import LoadedModel
    from culturetune.tuning.config import TuneConfig

#: ``Survey``'s rows per forward pass (candidates × items).
ROWS_PER_PASS = 512
#: Tokens a reply's trie adds after the prompt (the options' words, as internal nodes).
REPLY_TOKENS = 8
#: Share of the free memory a run may plan to use.
HEADROOM = 0.9
_GIB = 2**30


def context_length(lm: LoadedModel) -> int | None:
    """The model's longest input in tokens (``None`` when its config does not say)."""
    config = getattr(lm.model, "config", None)
    for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = getattr(config, attr, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _dims(lm: LoadedModel) -> tuple[int, int, int, int]:
    """(attention heads, hidden size, MLP size, vocabulary size)."""
    config = getattr(lm.model, "config", None)
    hidden = lm.hidden_size
    heads = int(getattr(config, "num_attention_heads", None) or max(1, hidden // 64))
    mlp = int(getattr(config, "intermediate_size", None) or 4 * hidden)
    vocab = int(getattr(config, "vocab_size", None) or 50_000)
    return heads, hidden, mlp, vocab


def forward_bytes(lm: LoadedModel, rows: int, own: int, cached: int = 0) -> int:
    """Rough peak memory of one forward pass: ``rows`` sequences of ``own`` new tokens after
    ``cached`` tokens of a shared prefix cache."""
    heads, hidden, mlp, vocab = _dims(lm)
    attention = 3 * rows * heads * own * (cached + own) * 4
    activations = rows * own * (8 * hidden + 3 * mlp) * 4
    logits = 2 * rows * vocab * 4
    return attention + activations + logits


def graph_bytes(lm: LoadedModel, rows: int, own: int, cached: int = 0) -> int:
    """Rough memory of a gradient step's graph: every layer keeps the activations and attention
    weights of ``rows`` sequences of ``own`` tokens after ``cached`` cached ones, and the output
    layer its float32 log-probabilities at each read."""
    heads, hidden, mlp, vocab = _dims(lm)
    layers = int(getattr(getattr(lm.model, "config", None), "num_hidden_layers", None) or 1)
    per_layer = rows * own * (10 * hidden + 4 * mlp) * 4 + 2 * rows * heads * own * (
        cached + own) * 4
    return layers * per_layer + 3 * rows * own * vocab * 4


def prompt_tokens(lm: LoadedModel, users: Sequence[str], system: str | None = None) -> int:
    """Tokens of the longest of these user messages, rendered as the model's chat turn."""
    return max((len(lm.tokenizer.encode(lm.render(u, system)[0], add_special_tokens=False)) + 1
                for u in users), default=0)


def check(
    lm: LoadedModel,
    tokens: int,
    longest: int,
    need: Callable[[int], int],
    what: str,
    hint: str = "",
) -> None:
    """Refuse ``tokens`` virtual tokens when they and the longest prompt (``longest`` tokens)
    exceed the model's context, or when ``need(tokens)`` bytes exceed the free memory."""
    context = context_length(lm)
    if context is not None and tokens + longest > context:
        room = context - longest
        fit = f"at most {room} virtual tokens fit" if room > 0 else "no virtual tokens fit"
        raise CultureTuneError(
            f"{what} does not fit: model {lm.name} reads at most {context} tokens and the "
            f"longest prompt takes {longest} of them, so {fit}{hint}")
    free = available_bytes(lm.device)
    if free is None:
        return
    budget = int(free * HEADROOM)
    wanted = need(tokens)
    if wanted <= budget:
        return
    fit = _largest(need, budget, tokens)
    fits = (f"at most {fit} virtual tokens fit" if fit else
            "not even 1 virtual token fits with these settings")
    raise CultureTuneError(
        f"{what} needs about {wanted / _GIB:.1f} GiB of memory on {lm.device}, but only "
        f"{free / _GIB:.1f} GiB are free: {fits}{hint}")


def _largest(need: Callable[[int], int], budget: int, high: int) -> int:
    """The largest token count ``t < high`` with ``need(t) <= budget`` (0 if none)."""
    low = 0
    while low < high - 1:
        mid = (low + high) // 2
        if need(mid) <= budget:
            low = mid
        else:
            high = mid
    return low if low and need(low) <= budget else 0


def check_prompt(lm: LoadedModel, tokens: int, longest: int, rows: int, what: str) -> None:
    """A soft prompt of ``tokens`` virtual tokens applied to ``rows`` prompts at a time, the
    longest of ``longest`` tokens (survey, chat, CulturalBench)."""
    check(lm, tokens, longest, lambda t: forward_bytes(lm, rows, t + longest), what)


def tune_bytes(lm: LoadedModel, config: TuneConfig, tokens: int, longest: int,
               items: int) -> int:
    """Rough peak memory of a tuning run with ``tokens`` virtual tokens (beyond the model)."""
    size = tokens * lm.hidden_size
    dim = size if config.subspace is None else config.subspace
    pop = config.population
    matrix = 0 if config.subspace is None else 2 * size * dim * 4
    record = 2 * config.budget * dim * 8
    optimizer = 4 * pop * dim * 8 + (3 * dim * dim * 8 if config.optimizer == "cma" else 0)
    candidates = 3 * pop * size * 4
    if config.optimizer in GRADIENT_OPTIMIZERS:
        return 8 * size * 4 + record + step_bytes(lm, config, tokens, longest, items)
    rows = min(pop, max(1, ROWS_PER_PASS // max(items, 1))) * max(items, 1)
    if config.placement == "prefix":
        forward = forward_bytes(lm, rows, tokens + longest)
    else:
        forward = forward_bytes(lm, rows, tokens + (longest if config.placement == "system"
                                                    else 0), longest)
    return matrix + record + optimizer + candidates + forward


def step_bytes(lm: LoadedModel, config: TuneConfig, tokens: int, longest: int, items: int,
               chunk: int | None = None) -> int:
    """Rough peak memory of one gradient step: the graph of ``chunk`` prompts (the run's
    ``grad_chunk``; every training prompt where it has none) beside a forward pass."""
    rows = min(items, chunk or config.grad_chunk or items)
    own = tokens + REPLY_TOKENS + (longest if config.placement != "answer" else 0)
    cached = 0 if config.placement == "prefix" else longest
    return graph_bytes(lm, rows, own, cached) + forward_bytes(lm, rows, own, cached)


def survey_messages(config: TuneConfig) -> list[str]:
    """The user messages of the survey a tuning run administers: every item in every option
    order of the objective (and the content-free questions when it calibrates)."""
    from culturetune.instrument.orders import option_orders
    from culturetune.instrument.vsm import load_instrument
    from culturetune.reading.prompts import CONTENT_FREE, N_OPTIONS, item_prompt

    orders = option_orders(getattr(config, "orders", "shown"), N_OPTIONS)
    users = []
    for wording in getattr(config, "wordings", [config.instrument]):
        inst = load_instrument(wording)
        users += [item_prompt(it, o, inst.instruction) for o in orders for it in inst.items]
        if getattr(config, "calibrate", False):
            formats = list({(it.stem, it.options): it for it in inst.items}.values())
            users += [item_prompt(f, o, inst.instruction, text=t) for o in orders
                      for f in formats for t in inst.content_free or CONTENT_FREE]
    return users


def check_tune(lm: LoadedModel, config: TuneConfig, users: Sequence[str] | None = None) -> None:
    """Refuse a tuning run whose prompt does not fit the context or whose search does not fit
    in memory; ``users`` are the survey's user messages (default: the run's instrument)."""
    users = survey_messages(config) if users is None else users
    size = config.tokens * lm.hidden_size
    if config.subspace is not None and config.subspace > size:
        raise CultureTuneError(
            f"--subspace {config.subspace} is larger than the prompt itself ({config.tokens} × "
            f"{lm.hidden_size} = {size} values); use --subspace full to search the whole matrix "
            "or a smaller dimension")
    longest = prompt_tokens(lm, users, config.system)
    what = f"a soft prompt of {config.tokens} virtual tokens"
    if config.optimizer in GRADIENT_OPTIMIZERS:
        # the context first (the cause, when it binds), then the run without its gradient step,
        # then the step itself (which names the --grad-chunk that fits)
        check(lm, config.tokens, longest,
              lambda t: (tune_bytes(lm, config, t, longest, len(users))
                         - step_bytes(lm, config, t, longest, len(users))), what)
        _check_step(lm, config, longest, len(users))
        return
    hint = (f" (with --population {config.population}, --budget {config.budget} and "
            f"--subspace {config.subspace or 'full'})")
    check(lm, config.tokens, longest,
          lambda t: tune_bytes(lm, config, t, longest, len(users)), what, hint)


def _check_step(lm: LoadedModel, config: TuneConfig, longest: int, items: int) -> None:
    """Refuse a gradient step whose graph does not fit in the free memory, naming the largest
    ``--grad-chunk`` that does (the step's shape is the settings', never the free memory's)."""
    free = available_bytes(lm.device)
    if free is None:
        return
    budget = int(free * HEADROOM)
    rows = min(items, config.grad_chunk or items)
    t = config.tokens
    rest = tune_bytes(lm, config, t, longest, items) - step_bytes(lm, config, t, longest, items)
    wanted = rest + step_bytes(lm, config, t, longest, items)
    if wanted <= budget:
        return
    fit = _largest(lambda c: rest + step_bytes(lm, config, t, longest, items, c), budget, rows)
    fits = (f"--grad-chunk {fit} fits (prompts per backward pass; the loss is the same)" if fit
            else "not even one prompt per backward pass fits: choose a smaller model or fewer "
            "--tokens")
    raise CultureTuneError(
        f"a gradient step over {rows} prompts needs about {wanted / _GIB:.1f} GiB of memory on "
        f"{lm.device}, but only {max(budget, 0) / _GIB:.1f} GiB are free: "
        f"{fits}")

