"""The ``culturetune`` command line: a thin layer that parses options, calls the library and
prints a rich table (or JSON with ``--json``).

Options shared by several commands are ``Annotated`` aliases (``ModelOpt``, ``JsonOpt``,
``TargetOpt``, ...) and the work around them is small helpers (``load_lm``, ``resolve_target``,
``system_prompt``, ``print_json``, ``indices_table``) so that new commands reuse them. Heavy
imports (torch, transformers) happen inside the commands that need a model, so ``countries`` and
``score`` start fast.
"""

from __future__ import annotations

import functools
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from culturetune import __version__, defaults, inputs
from culturetune.errors import CultureTuneError, Interrupted
from culturetune.targets import (
    LOSS_KINDS,
    TABLE_SOURCE,
    Loss,
    Target,
    country_table,
    lookup_country,
)
from culturetune.views import ORDER_SETS
from culturetune.vsm import DIMENSION_NAMES, DIMENSIONS, instrument_key, parse_constants

if TYPE_CHECKING:
    from culturetune.models import LoadedModel
    from culturetune.survey import SurveyResult

#: Same as ``culturetune.survey.ANSWER_MODES`` (kept here so that the CLI imports no torch;
#: a test checks that they agree).
ANSWER_MODES: tuple[str, ...] = ("expected", "argmax", "generate")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
MISSING = "—"
_TABLE_STYLE: dict[str, Any] = {
    "box": box.SIMPLE_HEAD, "pad_edge": False, "collapse_padding": True, "show_edge": False
}

# Choices as enums (typer shows them in --help and rejects anything else as a usage error).
Answers = StrEnum("Answers", {m: m for m in ANSWER_MODES})
Dtype = StrEnum("Dtype", {d: d for d in DTYPES})
LossKind = StrEnum("LossKind", {k: k for k in LOSS_KINDS})
OrderSet = StrEnum("OrderSet", {n: n for n in ORDER_SETS})

app = typer.Typer(
    name="culturetune",
    help="Align a frozen language model with a country's culture: VSM 2013 survey, "
    "soft-prompt tuning, CulturalBench.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# --------------------------------------------------------------------------- shared options

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m",
        help="Hugging Face hub id, local model folder or .gguf file "
        "(default: the bundled SmolLM2-135M-Instruct).",
        show_default=False,
        rich_help_panel="Model",
    ),
]
DeviceOpt = Annotated[
    str,
    typer.Option(help="cpu, cuda, cuda:N or auto (CUDA when present).", rich_help_panel="Model"),
]
DtypeOpt = Annotated[
    Dtype,
    typer.Option(
        help="auto: bf16 on GPUs and on CPUs with AVX512-BF16/AMX, else float32.",
        case_sensitive=False,
        rich_help_panel="Model",
    ),
]
TrustOpt = Annotated[
    bool,
    typer.Option(
        "--trust-remote-code",
        help="Allow a hub model to run custom code from its repository (off by default).",
        rich_help_panel="Model",
    ),
]
ThreadsOpt = Annotated[
    int | None,
    typer.Option(
        "--threads",
        envvar="CULTURETUNE_THREADS",
        help="CPU threads for torch (default: one per core). Running two jobs on one machine? "
        "Give each a share (--threads 1 on 2 cores): threads that outnumber the cores wait on "
        "each other and everything slows down many times over.",
        show_default=False,
        rich_help_panel="Model",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]
TargetOpt = Annotated[
    str | None,
    typer.Option(
        "--country", "--target", "-c",
        help="Target to compare with: a country name/code/alias ('China', 'USA'), scores such "
        "as 'PDI=80,IDV=20' (any subset) or a .json/.csv file of scores. --target is an alias.",
        show_default=False,
        rich_help_panel="Scoring",
    ),
]
ConstantOpt = Annotated[
    str | None,
    typer.Option(
        "--constant",
        help="Constant C added to each index: one number for all ('0') or per index "
        "('PDI=0,IDV=10'; the others stay 50). Default: 50.",
        show_default=False,
        rich_help_panel="Scoring",
    ),
]
LossOpt = Annotated[
    LossKind,
    typer.Option(
        "--loss",
        help="l1: mean |index - target|; l2: root mean square, over the target's dimensions.",
        case_sensitive=False,
        rich_help_panel="Scoring",
    ),
]
InstrumentOpt = Annotated[
    str,
    typer.Option(
        help="vsm2013 (official wording), paraphrase (reworded items, not official) or the path "
        "of an instrument .json file (a translation or rewording; see the README).",
    ),
]
OrdersOpt = Annotated[
    OrderSet | None,
    typer.Option(
        "--orders",
        help="Option orders to ask each item in; answers are mapped back to option order and "
        "averaged: shown (as printed), reversed, both (printed + reversed), cyclic (every "
        "shift: each option once in each position), all (every permutation: 120x the cost). "
        "Default: both.",
        case_sensitive=False,
        show_default=False,
        rich_help_panel="Reading answers",
    ),
]
CalibrateOpt = Annotated[
    bool,
    typer.Option(
        "--calibrate",
        help="Contextual calibration: divide each answer distribution by the one the model "
        "gives content-free questions (N/A, empty, [MASK]) of the same format.",
        rich_help_panel="Reading answers",
    ),
]
PersonaOpt = Annotated[
    str | None,
    typer.Option(
        "--persona",
        help="Persona prompting: a system prompt asking the model to answer as a typical person "
        "from this country (a name, code or alias of the country table).",
        show_default=False,
    ),
]
SystemOpt = Annotated[
    str | None,
    typer.Option("--system", help="A system prompt of your own.", show_default=False),
]


PromptOpt = Annotated[
    str | None,
    typer.Option("--prompt", "-p", help="A tuned prompt folder (from `culturetune tune`).",
                 show_default=False),
]


def stdout() -> Console:
    """Console for results (stdout); created per call so redirected streams are honoured."""
    return Console(highlight=False)


def status(message: str) -> None:
    """A progress line for humans on stderr (stdout stays clean for ``--json``)."""
    print(message, file=sys.stderr, flush=True)


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


def load_lm(
    model: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    trust_remote_code: bool = False,
    threads: int | None = None,
) -> LoadedModel:
    """Load a model quietly, with one status line on stderr before and after."""
    from culturetune.models import DEFAULT_MODEL, load_model

    if threads is not None:
        import torch

        if threads < 1:
            raise CultureTuneError(f"--threads must be at least 1, got {threads}")
        torch.set_num_threads(threads)
    else:
        busy_hint()
    quiet_transformers()
    name = model or DEFAULT_MODEL
    status(f"loading {name} ...")
    start = time.perf_counter()
    lm = load_model(model, device=device, dtype=dtype, trust_remote_code=trust_remote_code)
    status(f"loaded {lm.name} on {lm.device} ({lm.dtype}) in {time.perf_counter() - start:.1f} s")
    return lm


def busy_hint() -> None:
    """Say how to share the CPU when other work already keeps its cores busy: torch's threads
    spin while they wait, so two jobs with a thread per core each run many times slower (about
    10x each on 2 cores; benchmarks/bench_threads.py), against about 2x with a share each."""
    import os

    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return
    if cores <= 8 and load >= max(1.0, cores / 2):
        share = max(1, cores // 2)
        status(f"note: this machine is busy (load {load:.1f} on {cores} cores). If another "
               f"torch job is running, give each --threads {share} (or set "
               "OMP_WAIT_POLICY=PASSIVE): with a thread per core each, both run many times "
               "slower")


def resolve_target(spec: str | None) -> Target | None:
    """The target named by ``--country``/``--target`` (``None`` when not given)."""
    from culturetune.targets import parse_target

    return None if spec is None else parse_target(spec)


def system_prompt(persona: str | None, system: str | None) -> str | None:
    """The system prompt from ``--persona COUNTRY`` or ``--system TEXT`` (not both)."""
    if persona is not None and system is not None:
        raise CultureTuneError(
            "--persona and --system both set a system prompt; give only one of them"
        )
    if persona is not None:
        from culturetune.survey import persona_prompt

        return persona_prompt(lookup_country(persona).name)
    return system


def describe_constants(constants: Mapping[str, float]) -> str:
    """``"C = 50"`` when all indices share a constant, else ``"C: PDI=0, IDV=50, ..."``."""
    values = set(constants.values())
    if len(values) == 1:
        return f"C = {_num(values.pop())}"
    return "C: " + ", ".join(f"{d}={_num(constants[d])}" for d in DIMENSIONS)


def describe_target(target: Target) -> str:
    code = f" ({target.code})" if target.code else ""
    est = f"; estimated: {', '.join(target.estimated)}" if target.estimated else ""
    return f"{target.name}{code}{est}"


def _num(x: float | None, fmt: str = "g") -> str:
    if x is None:
        return MISSING
    return format(x, fmt)


def indices_table(
    indices: Mapping[str, float | None],
    constants: Mapping[str, float],
    target: Target | None = None,
    loss: Loss | None = None,
) -> Table:
    """The six indices, and with a target its scores and the gaps (index - target)."""
    table = Table(
        title=f"Indices ({describe_constants(constants)})", title_justify="left", **_TABLE_STYLE
    )
    table.add_column("dim")
    table.add_column("dimension")
    table.add_column("index", justify="right")
    if target is not None:
        table.add_column("target", justify="right")
        table.add_column("gap", justify="right")
    for d in DIMENSIONS:
        row = [d, DIMENSION_NAMES[d], _num(indices.get(d), ".1f")]
        if target is not None:
            t = target.scores.get(d)
            mark = "*" if d in target.estimated else ""
            row.append(MISSING if t is None else f"{t:g}{mark}")
            gap = loss.gaps.get(d) if loss is not None else None
            row.append(MISSING if gap is None else f"{gap:+.1f}")
        table.add_row(*row)
    return table


def print_loss(
    console: Console, target: Target, loss: Loss | None, uniform: Loss | None = None
) -> None:
    """The loss line: value, kind and the dimensions it used, and the uniform baseline."""
    if loss is None:
        return
    what = "mean |gap|" if loss.kind == "l1" else "root mean square gap"
    say(
        console,
        f"loss ({loss.kind}, {what}) vs {describe_target(target)}: {loss.value:.2f} "
        f"over {', '.join(loss.dimensions)}",
    )
    if uniform is not None:
        diff = loss.value - uniform.value
        where = "below" if diff < 0 else "above" if diff > 0 else "equal to"
        say(console, f"uniform answers (every index = C) would score {uniform.value:.2f}; this "
            f"loss is {abs(diff):.2f} {where} it")
    unused = [d for d in DIMENSIONS if d not in loss.dimensions]
    if unused:
        say(console, f"not used (no target score): {', '.join(unused)}")
    if target.estimated:
        say(console, "* estimate, not a measured score")


def say(console: Console, text: str) -> None:
    """One line of plain text (never read as markup; long lines are not hard-wrapped)."""
    console.print(Text(text), soft_wrap=True)


def _short(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def interruptible(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Ctrl-C inside a command: ``error: interrupted`` and exit status 130."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted("interrupted") from None

    return wrapper


def command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``app.command`` for culturetune: registers the function wrapped by ``interruptible``."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        app.command(*args, **kwargs)(interruptible(fn))
        return fn

    return register


# --------------------------------------------------------------------------- survey


def resolve_orders(orders: Any, reverse_options: bool = False, default: str = "both") -> str:
    """``--orders`` with ``--reverse-options`` as its alias (``--orders reversed``)."""
    chosen = None if orders is None else str(orders)
    if reverse_options:
        if chosen not in (None, "reversed"):
            raise CultureTuneError(f"--reverse-options means --orders reversed; it conflicts "
                                   f"with --orders {chosen}: give one of them")
        return "reversed"
    return chosen or default


@command()
def survey(
    model: ModelOpt = None,
    persona: PersonaOpt = None,
    system: SystemOpt = None,
    country: TargetOpt = None,
    answers: Annotated[
        Answers,
        typer.Option(
            help="expected: probability-weighted mean over options 1-5; argmax: the most "
            "likely option; generate: greedy decoding, first option number parsed.",
            case_sensitive=False,
            rich_help_panel="Reading answers",
        ),
    ] = Answers.expected,
    orders: OrdersOpt = None,
    reverse_options: Annotated[
        bool,
        typer.Option(
            "--reverse-options",
            help="Alias of --orders reversed: the options from 5 to 1 (renumbered), answers "
            "mapped back.",
            rich_help_panel="Reading answers",
        ),
    ] = False,
    calibrate: CalibrateOpt = False,
    instrument: InstrumentOpt = "vsm2013",
    prompt: PromptOpt = None,
    constant: ConstantOpt = None,
    loss: LossOpt = LossKind.l1,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    trust_remote_code: TrustOpt = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Survey a model with the 24 VSM 2013 items: answers, indices, gap and loss vs a target."""
    from culturetune.vsm import load_instrument

    model, device = inputs.check_model(model), inputs.check_device(device)
    constants = parse_constants(constant)
    target = resolve_target(country)
    sys_prompt = system_prompt(persona, system)
    order_set = resolve_orders(orders, reverse_options)
    if calibrate and str(answers) == "generate":
        raise CultureTuneError("--calibrate reweights next-token probabilities; it does not "
                               "apply to --answers generate (use expected or argmax)")
    inst = load_instrument(instrument)
    soft = read_prompt(prompt)
    if order_set == "all":
        status("--orders all asks every item in all 120 option orders (about 120x the time "
               "of one order)")
    lm = load_lm(model, device, str(dtype), trust_remote_code, threads)

    from culturetune.survey import Survey, run_survey

    soft = checked(soft, lm)
    placement = soft.placement if soft is not None else "answer"
    sv = Survey(lm, inst, system=sys_prompt, orders=order_set, calibrate=calibrate,
                placement=placement)
    if soft is not None:
        extra = 8 if str(answers) == "generate" else 0
        fits(lm, soft, prompt, sv.segments, extra)
    result = run_survey(
        sv, answers=str(answers), soft=None if soft is None else soft.embeddings,
        constants=constants, target=target, loss_kind=str(loss), prompt_name=prompt,
    )
    if as_json:
        data = result.to_dict()
        data.update(persona=persona, device=lm.device, dtype=lm.dtype)
        print_json(data)
    else:
        print_survey(result, persona=persona)


#: Up to this many orders the survey table shows each order's item mean in its own column.
ORDER_COLUMNS = 5


def _order_label(order: Sequence[int]) -> str:
    """``"12345"`` for the printed order, ``"54321"`` reversed: option numbers as shown."""
    return "".join(str(i + 1) for i in order)


def describe_orders(result: SurveyResult) -> str:
    n = len(result.order_list)
    shown = ", ".join(_order_label(o) for o in result.order_list[:ORDER_COLUMNS])
    more = "" if n <= ORDER_COLUMNS else f", … ({n} orders)"
    avg = "" if n == 1 else "; answers mapped back to option order and averaged"
    cal = "; calibrated with content-free items" if result.calibrated else ""
    return f"orders {result.orders} ({shown}{more}{avg}){cal}"


def print_survey(result: SurveyResult, persona: str | None = None) -> None:
    """Human-readable survey result: header, per-item answers, indices, loss and notes."""
    con = stdout()
    prompt = f" · prompt {result.prompt}" if result.prompt else ""
    say(
        con,
        f"model {result.model} · instrument {result.instrument} · answers {result.answers} "
        f"· {describe_orders(result)}{prompt}",
    )
    if result.system:
        who = f"persona {persona}: " if persona else "system: "
        say(con, who + result.system)
    generated = result.answers == "generate"
    n_orders = len(result.order_list)
    per_order = 1 < n_orders <= ORDER_COLUMNS
    # On narrow consoles the question column takes what the numbers leave (cut with "…").
    title = "Answers: option probabilities (renormalised over 1-5, option order), mean"
    if n_orders > 1:
        title += (", mean in each order (shown as the option numbers in the order listed)"
                  if per_order else ", lowest-highest mean over the orders")
    table = Table(
        title=title + ", raw option mass",
        title_justify="left",
        expand=con.width <= 120,
        **_TABLE_STYLE,
    )
    table.add_column("item", no_wrap=True)
    table.add_column("question", no_wrap=True, overflow="ellipsis", ratio=1, max_width=60)
    for k in range(1, 6):
        table.add_column(str(k), justify="right", no_wrap=True, min_width=4)
    table.add_column("mean", justify="right", no_wrap=True, min_width=4)
    if per_order:
        for o in result.order_list:
            table.add_column(_order_label(o), justify="right", no_wrap=True)
    elif n_orders > 1:
        table.add_column("range", justify="right", no_wrap=True)
    table.add_column("mass", justify="right", no_wrap=True)
    if generated:
        table.add_column("answer", no_wrap=True, overflow="ellipsis", min_width=10, max_width=16)
    for it in result.items:
        row: list[str | Text] = [it.var, Text(_short(it.text, 200))]
        row += [f"{p:.2f}" for p in it.probs]
        row.append(_num(it.mean, ".2f"))
        if per_order:
            row += [_num(m, ".2f") for m in it.order_means]
        elif n_orders > 1:
            got = [m for m in it.order_means if m is not None]
            row.append(f"{min(got):.2f}-{max(got):.2f}" if got else MISSING)
        row.append(f"{it.mass:.2f}")
        if generated:
            row.append(Text(" | ".join(repr(g)[1:-1] for g in it.generated_by_order or [])))
        table.add_row(*row)
    con.print(table)
    con.print(indices_table(result.indices, result.constants, result.target, result.loss))
    if result.target is not None:
        print_loss(con, result.target, result.loss, result.uniform_loss)
    for note in result.notes:
        say(con, f"note: {note}")


# --------------------------------------------------------------------------- score


@command()
def score(
    responses: Annotated[
        str,
        typer.Argument(
            metavar="RESPONSES.csv",
            help="One row per respondent, columns m01..m24 with answers 1-5 (blank = skipped).",
        ),
    ],
    constant: ConstantOpt = None,
    country: TargetOpt = None,
    loss: LossOpt = LossKind.l1,
    as_json: JsonOpt = False,
) -> None:
    """Score human VSM 2013 answers as the manual does: item means, then the formulas."""
    from culturetune.targets import loss as compute_loss
    from culturetune.vsm import read_responses, score_responses

    constants = parse_constants(constant)
    target = resolve_target(country)
    path = inputs.check_input_file(responses, "responses file", "RESPONSES.csv")
    with inputs.reading(f"responses file {path}"):
        rows = read_responses(path)
    result = score_responses(rows, constants)
    result_loss = compute_loss(result.indices, target, str(loss)) if target else None
    if as_json:
        data = result.to_dict()
        data["target"] = target.to_dict() if target else None
        data["loss"] = result_loss.to_dict() if result_loss else None
        print_json(data)
        return
    con = stdout()
    say(con, f"{responses}: respondents {result.n_respondents}")
    table = Table(title="Item means", title_justify="left", **_TABLE_STYLE)
    table.add_column("item")
    table.add_column("mean", justify="right")
    table.add_column("n", justify="right")
    for var, mean in result.means.items():
        table.add_row(var, f"{mean:.2f}", str(result.counts[var]))
    con.print(table)
    con.print(indices_table(result.indices, result.constants, target, result_loss))
    if target is not None:
        print_loss(con, target, result_loss)


# --------------------------------------------------------------------------- countries


@command()
def countries(
    name: Annotated[
        str | None,
        typer.Argument(help="One country or region (name, code or alias); all when left out."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Hofstede's 2015 country scores (111 rows; Saudi Arabia's estimates marked *)."""
    rows = country_table() if name is None else [lookup_country(name)]
    if as_json:
        print_json(rows[0].to_dict() if name is not None else [t.to_dict() for t in rows])
        return
    con = stdout()
    table = Table(title="Hofstede's country scores", title_justify="left", **_TABLE_STYLE)
    table.add_column("code")
    table.add_column("country")
    for d in DIMENSIONS:
        table.add_column(d, justify="right")
    for t in rows:
        cells = [
            MISSING if t.scores[d] is None else f"{t.scores[d]:g}{'*' if d in t.estimated else ''}"
            for d in DIMENSIONS
        ]
        table.add_row(t.code or "", Text(t.name), *cells)
    con.print(table)
    if name is not None:
        say(con, f"source: {rows[0].source}")
        if rows[0].estimated:
            say(con, f"* estimate, not a measured score: {', '.join(rows[0].estimated)}")
        return
    say(con, f"{len(rows)} countries and regions; {MISSING} = not measured")
    for t in rows:
        if t.estimated:
            say(
                con,
                f"* estimate, not in the 2015 research table: {t.name} "
                f"{', '.join(t.estimated)} (source: culturetune countries {t.code})",
            )
    say(con, f"source: {TABLE_SOURCE}")


# --------------------------------------------------------------------------- tune

OPTIMIZER_NAMES: tuple[str, ...] = ("de", "cma", "pso", "random")
TuneOrders = StrEnum("TuneOrders", {n: n for n in ORDER_SETS if n != "all"})
PLACEMENT_NAMES: tuple[str, ...] = ("answer", "system", "prefix")
INIT_NAMES: tuple[str, ...] = ("random", "text", "vocab")
Optimizer = StrEnum("Optimizer", {n: n for n in OPTIMIZER_NAMES})
Placement = StrEnum("Placement", {n: n for n in PLACEMENT_NAMES})
Init = StrEnum("Init", {n: n for n in INIT_NAMES})
DEFAULT_OPTIMIZER = Optimizer(defaults.OPTIMIZER)
DEFAULT_TUNE_ORDERS = TuneOrders(defaults.ORDERS)
def read_prompt(folder: str | None) -> Any:
    """A prompt folder (``None`` when not given); read before the model so errors come fast."""
    from culturetune.softprompt import SoftPrompt

    return None if folder is None else SoftPrompt.load(folder)


def checked(prompt: Any, lm: LoadedModel) -> Any:
    """The prompt, after checking it fits the loaded model."""
    if prompt is not None:
        prompt.check_model(lm)
    return prompt


def fits(lm: LoadedModel, soft: Any, name: str | None, segments: Any, extra: int = 0) -> None:
    """Refuse a soft prompt that, with these prompts (``extra`` generated tokens after each),
    does not fit the model's context or the memory."""
    from culturetune import limits

    longest = max((len(a) + len(b) for a, b in zip(segments.pre, segments.post, strict=True)),
                  default=0) + extra
    limits.check_prompt(lm, soft.tokens, longest, len(segments),
                        f"prompt {name} ({soft.tokens} virtual tokens)")


def parse_subspace(value: str) -> int | None:
    """``--subspace``: a positive dimension, or ``full`` for the whole matrix."""
    if value.strip().lower() == "full":
        return None
    try:
        dim = int(value)
    except ValueError:
        raise CultureTuneError(
            f"--subspace takes a dimension such as 64 or 'full', not {value!r}") from None
    if dim < 1:
        raise CultureTuneError("--subspace must be a positive dimension or 'full'")
    return dim


@command()
def tune(
    ctx: typer.Context,
    country: TargetOpt = None,
    model: ModelOpt = None,
    tokens: Annotated[int, typer.Option(help="Virtual tokens in the soft prompt.")] = 5,
    placement: Annotated[
        Placement,
        typer.Option(help="answer: right before the answer (fastest); system: after the system "
                     "turn; prefix: before all input, as PEFT does.", case_sensitive=False),
    ] = Placement.answer,
    init: Annotated[
        Init,
        typer.Option(help="random: Gaussian at the embedding scale; text: embeddings of "
                     "--init-text; vocab: sampled vocabulary rows.", case_sensitive=False),
    ] = Init.vocab,
    init_text: Annotated[str | None, typer.Option(help="Text for --init text.")] = None,
    subspace: Annotated[
        str, typer.Option(help="Search a random subspace of this dimension, or 'full'.")
    ] = "64",
    optimizer: Annotated[
        Optimizer,
        typer.Option(help="de: Differential Evolution; cma: CMA-ES; pso: particle swarm; "
                     "random: random search.", case_sensitive=False),
    ] = DEFAULT_OPTIMIZER,
    budget: Annotated[
        int, typer.Option(help="Evaluations (candidate surveys) in all.")
    ] = defaults.BUDGET,
    population: Annotated[int, typer.Option(help="Candidates per optimizer step.")] = 16,
    orders: Annotated[
        TuneOrders,
        typer.Option(help="Option orders the objective reads each item in (answers averaged in "
                     "option order): shown (as printed; a prompt can win by favouring a "
                     "position), reversed, both (printed + reversed; 2x the cost), cyclic (all "
                     "5 shifts; 5x).", case_sensitive=False, rich_help_panel="Reading answers"),
    ] = DEFAULT_TUNE_ORDERS,
    calibrate: CalibrateOpt = False,
    instrument: Annotated[
        str, typer.Option(help="Wording to tune on: vsm2013, paraphrase or an instrument .json "
                          "file.")
    ] = "vsm2013",
    validate_instrument: Annotated[
        list[str] | None,
        typer.Option("--validate-instrument", help="Also check the prompt on this wording (an "
                     "instrument .json file; repeatable). Never tuned on.", show_default=False),
    ] = None,
    time_limit: Annotated[
        float | None, typer.Option(help="Stop after this many seconds (resumable).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same run.")] = 0,
    constant: ConstantOpt = None,
    loss: LossOpt = LossKind.l1,
    out: Annotated[
        str | None, typer.Option(help="Run folder (default: runs/<country>-<optimizer>-s<seed>).")
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="Continue the run in this folder (its settings are kept).")
    ] = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    trust_remote_code: TrustOpt = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn a soft prompt that moves the model's indices to a country (or custom target)."""
    from culturetune import runfolder
    from culturetune.models import DEFAULT_MODEL
    from culturetune.tuning import RUN_FILE, TuneConfig

    model, device = inputs.check_model(model), inputs.check_device(device)
    time_limit = inputs.check_time_limit(time_limit)
    if resume is None and country is None:
        raise CultureTuneError("say which culture to tune for: --country NAME (or --target "
                               "PDI=..,IDV=..), or --resume DIR to continue a run")
    settings = dict(
        tokens=tokens, placement=str(placement), init=str(init), init_text=init_text,
        optimizer=str(optimizer), budget=budget, population=population, seed=seed,
        loss=str(loss), orders=str(orders), calibrate=calibrate,
    )
    if resume is not None:
        folder = str(runfolder.check_run(resume))
        if out is not None and not runfolder.same_folder(out, folder):
            raise CultureTuneError("--resume continues the run in its own folder; leave --out "
                                   "out (or give the same folder)")
    else:
        target = resolve_target(country)
        config = TuneConfig(
            target=target, subspace=parse_subspace(subspace),
            constants=parse_constants(constant), instrument=instrument,
            validate_instruments=list(validate_instrument or []), **settings,
        ).validate()
        slug = "".join(ch if ch.isalnum() else "-" for ch in (target.code or target.name))
        slug = slug.strip("-").lower()[:60] or "custom"
        folder = out if out is not None else f"runs/{slug}-{optimizer}-s{seed}"
    with runfolder.claim(folder, "--resume" if resume else "--out"):  # "in use" comes first
        if resume is not None:
            asked = {k: v for k, v in settings.items() if k in _given(ctx, *settings)}
            asked.update(_given_values(
                ctx, country=lambda: resolve_target(country).to_dict(),
                subspace=lambda: parse_subspace(subspace),
                constant=lambda: parse_constants(constant), model=lambda: model,
                instrument=lambda: instrument_key(instrument),
                validate_instrument=lambda: [instrument_key(p)
                                             for p in validate_instrument or []]))
            config = _resume_config(folder, asked)
            model = model or (config.model if config.model != DEFAULT_MODEL else None)
        else:
            runfolder.check_new_run(folder)
        try:
            lm = load_lm(model, device, str(dtype), trust_remote_code, threads)
            result = _run_tuning(lm, config, folder, resume is not None, time_limit, as_json)
        except KeyboardInterrupt:
            if (Path(folder) / RUN_FILE).exists():
                raise Interrupted(f"interrupted; the run is saved in {folder}: continue it with "
                                  f"`culturetune tune --resume {folder}`") from None
            raise Interrupted("interrupted before the run started; nothing was saved") from None
    if as_json:
        print_json({
            "folder": str(result.folder), "status": result.status,
            "evaluations": result.evaluations, "seconds": result.seconds,
            "config": result.config.to_dict(), "baseline": result.baseline.to_dict(),
            "final": result.final.to_dict(), "uniform": result.baseline.uniform_loss.to_dict(),
            "validity": result.validity.to_dict(), "history": result.history,
        })
        return
    print_tune_result(result)


def print_tune_result(result: Any) -> None:
    """The tuned indices beside plain and uniform, then the validity table and verdict."""
    con = stdout()
    cfg = result.config
    say(con, f"{result.status}: {result.evaluations} evaluations in {result.seconds:.0f} s; "
        f"prompt saved in {result.folder}")
    say(con, f"objective: {cfg.loss} loss on {cfg.instrument.rsplit('/', 1)[-1]}, orders "
        f"{cfg.orders}{', calibrated' if cfg.calibrate else ''}; optimizer {cfg.optimizer}")
    table = Table(title=f"Indices vs {describe_target(cfg.target)}",
                  title_justify="left", **_TABLE_STYLE)
    for col in ("dim", "target", "plain", "uniform", "tuned"):
        table.add_column(col, justify="left" if col == "dim" else "right")
    for d in DIMENSIONS:
        t = cfg.target.scores.get(d)
        table.add_row(d, _num(t), _num(result.baseline.indices[d], ".1f"),
                      _num(cfg.constants[d], ".1f"), _num(result.final.indices[d], ".1f"))
    con.print(table)
    say(con, f"loss ({cfg.loss}): plain {result.baseline.loss.value:.2f} · uniform "
        f"{result.baseline.uniform_loss.value:.2f} · tuned {result.final.loss.value:.2f}")
    print_validity(con, result.validity)
    if result.status == "time-limit":
        say(con, f"budget not reached; continue with: culturetune tune --resume {result.folder}")


def print_validity(con: Console, validity: Any) -> None:
    """Does it hold? The training view and each check: plain, uniform, tuned, share kept."""
    table = Table(title="Does it hold? Loss on views the prompt was not tuned on",
                  title_justify="left", **_TABLE_STYLE)
    for col in ("view", "role", "plain", "uniform", "tuned", "gain kept"):
        table.add_column(col, justify="left" if col in ("view", "role") else "right")
    for row in [validity.training, *validity.checks]:
        role = {"training": "tuned on", "wording": "other wording", "shown": "printed order",
                "reversed": "reversed order"}.get(row.role, row.role)
        kept = "—" if row.kept is None else f"{100 * row.kept:.0f} %"
        table.add_row(row.view, role, _num(row.plain, ".2f"), f"{row.uniform:.2f}",
                      _num(row.tuned, ".2f"), kept if row.role != "training" else "")
    con.print(table)
    gain = validity.gain
    say(con, f"verdict: {validity.verdict.upper()} (training gain {_num(gain, '.2f')}; "
        f"{validity.rule})")
    if validity.verdict in ("collapsed", "partly held", "no gain"):
        say(con, "read the tuned indices with care: they do not hold on every view above")


def _given(ctx: typer.Context, *names: str) -> set[str]:
    """Which of these options of the running command the user typed (not left at default)."""
    typed = {"COMMANDLINE", "ENVIRONMENT", "PROMPT"}
    return {n for n in names if getattr(ctx.get_parameter_source(n), "name", None) in typed}


def _given_values(ctx: typer.Context, **options: Callable[[], Any]) -> dict[str, Any]:
    """``TuneConfig`` fields of the options the user typed (values computed only for those)."""
    fields = {"country": "target", "constant": "constants",
              "validate_instrument": "validate_instruments"}
    return {fields.get(k, k): make() for k, make in options.items() if k in _given(ctx, k)}


def _resume_config(folder: str, asked: dict[str, Any]) -> Any:
    """The saved settings of the run in ``folder`` with the options the user typed checked
    against them (only ``--budget`` may differ); everything is read without the model."""
    from culturetune import runfolder
    from culturetune.tuning import TuneConfig, load_run_config

    runfolder.check_resumable(Path(folder))
    saved = load_run_config(folder).to_dict()
    conflicts = runfolder.resume_conflicts(saved, asked)
    if conflicts:
        raise CultureTuneError(
            f"--resume {folder} keeps the run's settings, but you asked for others "
            f"({'; '.join(conflicts)}); leave those options out to continue the run (only "
            "--budget may change, to extend it), or start a new run with another --out")
    given = TuneConfig.from_dict({**saved, **{k: v for k, v in asked.items() if k != "model"}})
    return runfolder.resumed(Path(folder), given.validate())


def _run_tuning(lm: LoadedModel, config: Any, folder: str, resume: bool,
                time_limit: float | None, quiet: bool) -> Any:
    """Run ``tuning.tune`` with a live progress line on stderr."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from culturetune.tuning import tune as run_tune

    console = Console(stderr=True)
    with Progress(TextColumn("[bold]tuning"), BarColumn(), TextColumn("{task.description}"),
                  TimeRemainingColumn(), console=console, transient=False,
                  disable=quiet) as bar:
        task = bar.add_task("starting", total=config.budget)

        def show(p: Any) -> None:
            bar.update(task, completed=p.evaluations, description=(
                f"step {p.step} · {p.evaluations}/{p.budget} evals · best {p.best_loss:.2f} · "
                f"mean {p.mean_loss:.2f} · {p.rate:.1f} evals/s"))

        return run_tune(lm, config, folder, resume=resume, time_limit=time_limit,
                        on_progress=show)


# --------------------------------------------------------------------------- chat


@command()
def chat(
    message: Annotated[str, typer.Argument(help="What to say to the model.")],
    prompt: PromptOpt = None,
    persona: PersonaOpt = None,
    system: SystemOpt = None,
    model: ModelOpt = None,
    max_new_tokens: Annotated[int, typer.Option(help="Longest reply, in tokens.")] = 128,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    trust_remote_code: TrustOpt = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Talk to the model with a tuned prompt (and/or a system prompt) applied."""
    from culturetune import limits
    from culturetune.engine import generate
    from culturetune.survey import prompt_segments

    model, device = inputs.check_model(model), inputs.check_device(device)
    inputs.check_text(message, "the message")
    inputs.check_count(max_new_tokens, "--max-new-tokens", 1, inputs.MAX_NEW_TOKENS)
    sys_prompt = system_prompt(persona, system)
    soft = read_prompt(prompt)
    lm = load_lm(model, device, str(dtype), trust_remote_code, threads)
    soft = checked(soft, lm)
    placement = soft.placement if soft is not None else "answer"
    segments = prompt_segments(lm, [message], sys_prompt, placement)
    length = len(segments.pre[0]) + len(segments.post[0]) + max_new_tokens
    context = limits.context_length(lm)
    if context is not None and length > context:
        raise CultureTuneError(
            f"the message and --max-new-tokens {max_new_tokens} need {length} tokens, but model "
            f"{lm.name} reads at most {context}; shorten the message or lower --max-new-tokens")
    if soft is not None:
        fits(lm, soft, prompt, segments, max_new_tokens)
    note = None
    if soft is not None and soft.placement == "answer":
        note = (f"{prompt} is an answer-placed prompt: it sits at the start of the model's reply "
                "and was tuned to move survey answers (one digit), not to make a persona for "
                "free text; expect it to distort replies. Prompts meant for chat are tuned with "
                "--placement system or --placement prefix.")
        status(f"note: {note}")
    reply = generate(lm, segments, None if soft is None else soft.embeddings,
                     max_new_tokens=max_new_tokens)[0].strip()
    if as_json:
        print_json({"message": message, "reply": reply, "prompt": prompt, "system": sys_prompt,
                    "note": note})
    else:
        say(stdout(), reply)


# --------------------------------------------------------------------------- bench

Split = StrEnum("Split", {n: n for n in ("easy", "hard")})
Scoring = StrEnum("Scoring", {n: n for n in ("letter", "mc", "cloze", "loglik")})
DataOpt = Annotated[
    str | None,
    typer.Option("--data", help="A local CulturalBench CSV/JSON/JSONL/Parquet file (or a folder "
                 "holding CulturalBench-Easy.* / -Hard.*); default: the Hugging Face hub.",
                 show_default=False),
]


@command()
def bench(
    model: ModelOpt = None,
    country: Annotated[
        list[str] | None,
        typer.Option("--country", "-c", help="A country (repeat for several).",
                     show_default=False),
    ] = None,
    all_countries: Annotated[
        bool, typer.Option("--all-countries", help="Every country in the data.")
    ] = False,
    split: Annotated[Split, typer.Option(case_sensitive=False)] = Split.easy,
    scoring: Annotated[
        Scoring,
        typer.Option(help="letter: next-token probability of A-D after an instruction; mc: "
                     "lm-eval's multiple choice (options shown, letters after 'Answer:' scored "
                     "as continuations); cloze (alias loglik): log-likelihood of each option's "
                     "text after the question alone (and its length-normalised variant).",
                     case_sensitive=False),
    ] = Scoring.letter,
    no_chat_template: Annotated[
        bool, typer.Option("--no-chat-template", help="mc, cloze: score the plain text "
                           "without the model's chat template (lm-eval's default).")
    ] = False,
    data: DataOpt = None,
    limit: Annotated[int | None, typer.Option(help="At most N questions per country.")] = None,
    persona: Annotated[
        bool, typer.Option("--persona", help="Also evaluate persona prompting.")
    ] = False,
    prompt: Annotated[
        list[str] | None,
        typer.Option("--prompt", "-p", help="A tuned prompt folder (repeat for several).",
                     show_default=False),
    ] = None,
    orders: Annotated[
        OrderSet | None,
        typer.Option("--orders", help="Letter scoring: option orders to ask each question in, "
                     "answers mapped back and averaged: shown, reversed, both, cyclic (default: "
                     "each option once under each letter, 4x the cost), all (24 orders).",
                     case_sensitive=False, show_default=False),
    ] = None,
    per_question: Annotated[
        bool, typer.Option("--per-question", help="With --json: every question's answers.")
    ] = False,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    trust_remote_code: TrustOpt = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """CulturalBench accuracy of the plain model, persona prompting and tuned prompts."""
    from pathlib import Path

    from culturetune import limits
    from culturetune.culturalbench import (
        Condition,
        check_scoring,
        format_tables,
        load_culturalbench,
        run_bench,
    )

    model, device = inputs.check_model(model), inputs.check_device(device)
    if not country and not all_countries:
        raise CultureTuneError("say which questions to use: --country NAME (repeatable) or "
                               "--all-countries")
    if country and all_countries:
        raise CultureTuneError("give --country or --all-countries, not both")
    if per_question and not as_json:
        raise CultureTuneError("--per-question adds every question's answers to the JSON "
                               "output; add --json")
    if limit is not None:
        inputs.check_count(limit, "--limit")
    if data is not None:
        inputs.check_path(data, "--data")
    scoring_name = check_scoring(str(scoring), str(split), not no_chat_template)
    if orders is not None and (str(split), scoring_name) != ("easy", "letter"):
        raise CultureTuneError("--orders applies to Easy letter scoring (mc and cloze follow "
                               "lm-evaluation-harness, which shows the options as printed); "
                               "leave it out here")
    order_set = str(orders or defaults.BENCH_ORDERS)
    prompts = [(folder, read_prompt(folder)) for folder in prompt or []]
    status("loading CulturalBench ...")
    questions = load_culturalbench(str(split), data, None if all_countries else country, limit)
    lm = load_lm(model, device, str(dtype), trust_remote_code, threads)
    conditions = [Condition.plain()] + ([Condition.persona_prompted()] if persona else [])
    names = {"plain", "persona"}
    longest = _longest_question(lm, questions, str(split)) if prompts else 0
    for folder, soft in prompts:
        name = Path(folder).name or str(folder)
        while name in names:
            name += "'"
        names.add(name)
        limits.check_prompt(lm, checked(soft, lm).tokens, longest, 32,
                            f"prompt {folder} ({soft.tokens} virtual tokens)")
        conditions.append(Condition(name, soft=soft))

    def show(name: str, done: int, total: int) -> None:
        if not as_json:
            print(f"\r{name}: {done}/{total}", end="" if done < total else "\n",
                  file=sys.stderr, flush=True)

    result = run_bench(lm, questions, conditions, str(split), str(scoring), progress=show,
                       orders=order_set, chat_template=not no_chat_template)
    if as_json:
        print_json(result.to_dict(per_question=per_question))
    else:
        say(stdout(), format_tables(result))


def _longest_question(lm: LoadedModel, questions: Sequence[Any], split: str) -> int:
    """Tokens of the longest CulturalBench prompt, persona system prompt included."""
    from culturetune import limits
    from culturetune.culturalbench import easy_prompt, hard_prompt
    from culturetune.survey import persona_prompt

    if split == "easy":
        users = [easy_prompt(q) for q in questions]
    else:
        users = [hard_prompt(q.question, o) for q in questions for o in q.options]
    return limits.prompt_tokens(lm, users, persona_prompt("the United States of America")) + 16


# --------------------------------------------------------------------------- experiment


@command()
def experiment(
    config: Annotated[
        str | None, typer.Option("--config", help="A JSON file of experiment settings.")
    ] = None,
    countries: Annotated[
        str | None, typer.Option(help="Comma-separated countries (default: Saudi Arabia, "
                                 "U.S.A., China, India).", show_default=False)
    ] = None,
    methods: Annotated[
        str | None, typer.Option(help="Comma-separated: plain, persona and tuned methods "
                                 "<optimizer>[-<orders>][-cal] (optimizers de, cma, pso, random; "
                                 "e.g. pso, pso-shown, pso-cyclic, de-cal). Default: plain, "
                                 "persona, de, cma, pso, random.", show_default=False)
    ] = None,
    orders: Annotated[
        TuneOrders | None,
        typer.Option("--orders", help="Option orders of tuned methods named without their own "
                     "(default: both).", case_sensitive=False, show_default=False),
    ] = None,
    calibrate: Annotated[
        bool | None,
        typer.Option("--calibrate/--no-calibrate", help="Tune methods named without -cal on "
                     "calibrated answers too (default: no).", show_default=False),
    ] = None,
    bench_orders: Annotated[
        OrderSet | None,
        typer.Option("--bench-orders", help="Option orders of CulturalBench letter scoring "
                     "(default: cyclic).", case_sensitive=False, show_default=False),
    ] = None,
    validate_instrument: Annotated[
        list[str] | None,
        typer.Option("--validate-instrument", help="Also read every cell in this wording (an "
                     "instrument .json file; repeatable).", show_default=False),
    ] = None,
    seeds: Annotated[int | None, typer.Option(help="Seeds per tuned method.",
                                              show_default=False)] = None,
    budget: Annotated[int | None, typer.Option(help="Evaluations per tuning run.",
                                               show_default=False)] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="Fewer seeds, methods and evaluations (minutes).")
    ] = False,
    data: DataOpt = None,
    bench_limit: Annotated[
        int | None, typer.Option(help="At most N CulturalBench questions per country.")
    ] = None,
    out: Annotated[str, typer.Option(help="Output folder; finished cells there are kept.")] = (
        "experiment"
    ),
    model: ModelOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    trust_remote_code: TrustOpt = False,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The reference study end to end: countries x methods x seeds, report and figures."""
    from culturetune import runfolder
    from culturetune.experiment import ExperimentConfig, run_experiment

    device = inputs.check_device(device)
    overrides: dict[str, Any] = {}
    if countries is not None:
        overrides["countries"] = [c.strip() for c in countries.split(",") if c.strip()]
    if methods is not None:
        overrides["methods"] = [m.strip() for m in methods.split(",") if m.strip()]
    if validate_instrument:
        overrides["validate_instruments"] = list(validate_instrument)
    for key, value in (("seeds", seeds), ("budget", budget), ("data", data),
                       ("bench_limit", bench_limit), ("model", model),
                       ("orders", orders and str(orders)), ("calibrate", calibrate),
                       ("bench_orders", bench_orders and str(bench_orders))):
        if value is not None:
            overrides[key] = value
    if config is not None and quick:
        raise CultureTuneError("give --config FILE or --quick, not both (put the settings you "
                               "want in the file)")
    if config is not None:
        base = ExperimentConfig.from_file(config).to_dict()
        base.update(overrides)
        cfg = ExperimentConfig.from_dict(base, f"config file {config}")
    elif quick:
        cfg = ExperimentConfig.quick(**overrides)
    else:
        cfg = ExperimentConfig(**overrides).validate()
    inputs.check_model(cfg.model)
    _check_bench_data(cfg)
    with runfolder.claim(out):
        runfolder.check_experiment(out)
        try:
            lm = load_lm(cfg.model, device, str(dtype), trust_remote_code, threads)
            results = run_experiment(lm, cfg, out, progress=None if as_json else status)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; finished cells are kept in {out}: run the same "
                              "command again to resume") from None
    if as_json:
        print_json(results)
    else:
        say(stdout(), f"results.json, report.md, report.html and figures written to {out}")


def _check_bench_data(cfg: Any) -> None:
    """A local CulturalBench file of an experiment, read and checked before the model loads."""
    if cfg.bench_split is None or cfg.data is None:
        return
    from culturetune.culturalbench import load_dataset_table, questions_from_dataset

    inputs.check_path(cfg.data, "--data")
    status("checking CulturalBench data ...")
    table, source = load_dataset_table(cfg.bench_split, cfg.data)
    questions_from_dataset(table, cfg.bench_split, source)


@command()
def report(
    folder: Annotated[str, typer.Argument(help="An experiment's output folder.")] = "experiment",
    as_json: JsonOpt = False,
) -> None:
    """Rewrite an experiment's report and figures from its results.json (no model needed)."""
    from culturetune import runfolder
    from culturetune.report import load_results

    inputs.check_path(folder, "FOLDER")
    results = load_results(folder)
    out = Path(folder).parent if Path(folder).is_file() else Path(folder)
    with runfolder.claim(out, "FOLDER"):
        written = _write_report_whole(results, out, Path(folder))
    files = {"markdown": str(written["markdown"]), "html": str(written["html"])}
    if as_json:
        print_json(files)
    else:
        say(stdout(), f"report.md, report.html and figures written to {out}")


def _write_report_whole(results: dict[str, Any], out: Path, source: Path) -> dict[str, Any]:
    """Write the report into a scratch folder first and move it into place only when all of
    it was written: a results file culturetune cannot render leaves nothing half-written."""
    import shutil
    import tempfile

    from culturetune.report import write_report

    scratch = Path(tempfile.mkdtemp(dir=out, prefix=".report-"))
    try:
        try:
            written = write_report(results, scratch)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError,
                ZeroDivisionError) as exc:
            raise CultureTuneError(
                f"{source} cannot be rendered ({type(exc).__name__}: {exc}); it is not a "
                "results.json as culturetune writes it: run the experiment again") from None
        for path in sorted(scratch.rglob("*")):
            if path.is_file():
                target = out / path.relative_to(scratch)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {k: out / Path(v).relative_to(scratch) if isinstance(v, Path) else v
            for k, v in written.items()}


def _version(value: bool) -> None:
    if value:
        print(f"culturetune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Survey a language model with the VSM 2013 and score it on Hofstede's six dimensions."""


# --------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the app and turn every failure a user can cause into one line
    ``error: <message>`` on stderr with exit status 2, never a traceback: a
    ``CultureTuneError``, a usage error, an operating-system error (a full disk, a folder that
    cannot be written), running out of memory. Ctrl-C exits with 130 (SIGTERM and SIGHUP with
    143 and 129), after the command has saved what it can."""
    received: list[int] = []
    restore = _trap_signals(received)
    try:
        code = app(args=list(argv) if argv is not None else None, prog_name="culturetune",
                   standalone_mode=False)
    except _CLICK_ERRORS as exc:  # usage errors
        ctx, message = getattr(exc, "ctx", None), exc.format_message()
        hint = f" (see `{ctx.command_path} --help`)" if ctx is not None else ""
        code = _fail(f"{message}{hint}", exc.exit_code) if message else exc.exit_code
    except _ABORTS:
        code = _fail("interrupted", 130)
    except CultureTuneError as exc:
        code = _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:  # outside a command (commands handle their own)
        code = _fail("interrupted", 130)
    except OSError as exc:
        code = _fail(_os_error(exc), 2)
    except MemoryError:
        code = _fail("out of memory; use smaller settings (--population, --tokens, --subspace)", 2)
    except RuntimeError as exc:
        if not _out_of_memory(exc):
            raise
        code = _fail(f"out of memory ({_first_line(exc)}); use smaller settings (--population, "
                     "--tokens, --subspace) or another --device", 2)
    finally:
        restore()
    if code == 130 and received:
        code = 128 + received[0]
    sys.exit(code or 0)


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """``name`` from the click that typer uses (typer >= 0.2x vendors its own) and from click."""
    found = []
    for module in ("typer._click.exceptions", "typer.exceptions", "click.exceptions"):
        try:
            cls = getattr(__import__(module, fromlist=[name]), name, None)
        except ImportError:
            continue
        if isinstance(cls, type) and cls not in found:
            found.append(cls)
    return tuple(found)


_CLICK_ERRORS = _click_classes("ClickException")
_ABORTS = _click_classes("Abort")


def _fail(message: str, code: int) -> int:
    print(f"error: {message}", file=sys.stderr, flush=True)
    return code


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def _os_error(exc: OSError) -> str:
    where = f": {exc.filename}" if exc.filename else ""
    return f"{exc.strerror or _first_line(exc)}{where}"


def _out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in text or (
        "can't allocate memory" in text)


def _trap_signals(received: list[int]) -> Callable[[], None]:
    """SIGTERM and SIGHUP stop a command the way Ctrl-C does (work is saved, the exit status
    says which signal it was); returns a function that puts the old handlers back."""

    def stop(signum: int, frame: Any) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    old: dict[int, Any] = {}
    try:
        for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
            if sig is not None:
                old[sig] = signal.signal(sig, stop)
    except ValueError:  # not the main thread: leave the signals alone
        pass

    def restore() -> None:
        for sig, handler in old.items():
            signal.signal(sig, handler)

    return restore


if __name__ == "__main__":  # pragma: no cover
    main()
