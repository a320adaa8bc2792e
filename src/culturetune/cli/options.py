"""The command line's options: choices as enums (typer shows them in ``--help`` and rejects
anything else as a usage error) and the options several commands share, as ``Annotated`` aliases
(``ModelOpt``, ``JsonOpt``, ``TargetOpt``, ...). Torch-free.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from culturetune.core import choices, defaults
from culturetune.instrument.orders import ORDER_SETS
from culturetune.instrument.targets import LOSS_KINDS

#: The choice lists the library checks (culturetune.core.choices), under the CLI's names.
ANSWER_MODES: tuple[str, ...] = choices.ANSWER_MODES
MISSING_RULES: tuple[str, ...] = choices.MISSING_RULES
OBJECTIVE_NAMES: tuple[str, ...] = choices.OBJECTIVES
READING_NAMES: tuple[str, ...] = choices.READINGS
DTYPES: tuple[str, ...] = choices.DTYPES
OPTIMIZER_NAMES: tuple[str, ...] = choices.OPTIMIZER_CHOICES
PLACEMENT_NAMES: tuple[str, ...] = choices.PLACEMENTS
INIT_NAMES: tuple[str, ...] = choices.INITS
FORMAT_NAMES: tuple[str, ...] = choices.FORMAT_CHOICES

# Choices as enums (typer shows them in --help and rejects anything else as a usage error).
Answers = StrEnum("Answers", {m: m for m in ANSWER_MODES})
Dtype = StrEnum("Dtype", {d: d for d in DTYPES})
LossKind = StrEnum("LossKind", {k: k for k in LOSS_KINDS})
OrderSet = StrEnum("OrderSet", {n: n for n in ORDER_SETS})

TuneOrders = StrEnum("TuneOrders", {n: n for n in ORDER_SETS if n != "all"})
Optimizer = StrEnum("Optimizer", {n: n for n in OPTIMIZER_NAMES})
Placement = StrEnum("Placement", {n: n for n in PLACEMENT_NAMES})
Init = StrEnum("Init", {n: n for n in INIT_NAMES})
DEFAULT_OPTIMIZER = Optimizer("auto")
DEFAULT_TUNE_ORDERS = TuneOrders(defaults.ORDERS)
Missing = StrEnum("Missing", {n: n for n in MISSING_RULES})
ObjectiveName = StrEnum("ObjectiveName", {n: n for n in OBJECTIVE_NAMES})
ReadingName = StrEnum("ReadingName", {n: n for n in READING_NAMES})
DEFAULT_MISSING = Missing(defaults.MISSING)
DEFAULT_OBJECTIVE = ObjectiveName(defaults.OBJECTIVE)
Split = StrEnum("Split", {n: n for n in choices.BENCH_SPLITS})
FormatName = StrEnum("FormatName", {n: n for n in FORMAT_NAMES})
DEFAULT_FORMAT = FormatName(defaults.FORMAT)
Scoring = StrEnum("Scoring", {n: n for n in choices.BENCH_SCORINGS})

# --------------------------------------------------------------------------- shared options

ModelOpt = Annotated[
    str | None,
    typer.Option(
        "--model", "-m",
        help="A known model (culturetune models: qwen2.5-coder-0.5b, qwen2.5-coder-1.5b), a "
        "Hugging Face hub id, a local model folder or a .gguf file "
        "(default: the bundled SmolLM2-135M-Instruct).",
        show_default=False,
        rich_help_panel="Model",
    ),
]
AdapterOpt = Annotated[
    str | None,
    typer.Option(
        "--adapter",
        help="A PEFT LoRA folder (adapter_config.json + adapter_model.safetensors) merged into "
        "--model, loaded by PEFT; the merged model is cached like a dequantized GGUF.",
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
        help="vsm2013 (official wording), paraphrase, paraphrase2 (reworded items, not "
        "official) or the path "
        "of an instrument .json file (a translation or rewording; see docs/reading.md).",
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


DataOpt = Annotated[
    str | None,
    typer.Option("--data", help="A local CulturalBench CSV/JSON/JSONL/Parquet file (or a folder "
                 "holding CulturalBench-Easy.* / -Hard.*); default: the Hugging Face hub.",
                 show_default=False),
]


# --------------------------------------------------------------------------- Ray

Executor = StrEnum("Executor", {n: n for n in ("local", "ray")})
RayAddressOpt = Annotated[
    str | None,
    typer.Option("--ray-address", help="A running Ray cluster: auto (the one started on this "
                 "machine with `ray start --head`), HOST:PORT or ray://HOST:PORT. Default: start "
                 "a local Ray instance sized to this machine.", show_default=False,
                 rich_help_panel="Ray"),
]
CpusPerWorkerOpt = Annotated[
    float,
    typer.Option("--cpus-per-worker", help="CPUs Ray reserves for each worker (its torch "
                 "threads, unless --threads says otherwise).", rich_help_panel="Ray"),
]
GpusPerWorkerOpt = Annotated[
    float | None,
    typer.Option("--gpus-per-worker", help="GPUs per worker (0.5: two workers share a GPU). "
                 "Default: 1 where the cluster has GPUs, else 0.", show_default=False,
                 rich_help_panel="Ray"),
]

MissingOpt = Annotated[
    Missing,
    typer.Option(
        help="expected reading: what the probability not on the answer options counts as. "
        "renormalise: read the options' share alone; neutral: count the rest as the middle "
        "answer (3), so that silence reads as no opinion.",
        case_sensitive=False,
        rich_help_panel="Reading answers",
    ),
]

FormatOpt = Annotated[
    FormatName,
    typer.Option(
        "--format",
        help="How the model is asked to answer: number (options numbered 1-5, answered by "
        "the number), letter (A-E), words (options listed as words, answered by the option's "
        "own words, scored as the whole reply), or auto: the format in which `culturetune "
        "check-model` says the model answers by content (checked first where not cached), "
        "else the one where it comes closest (the most items with the same option content "
        "in both orders, then the larger instruction-probe gap).",
        case_sensitive=False,
        rich_help_panel="Reading answers",
    ),
]
