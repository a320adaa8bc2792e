"""``culturetune tune``: learn a soft prompt for a target, or resume a run. The command checks
every option (and, with ``--resume``, the run's saved settings) before the model loads, then runs
the library's :func:`culturetune.tuning.search.tune` with a progress bar on stderr.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from culturetune.cli import common
from culturetune.cli.app import command
from culturetune.cli.common import print_json, resolve_target
from culturetune.cli.options import (
    DEFAULT_FORMAT,
    DEFAULT_MISSING,
    DEFAULT_OBJECTIVE,
    DEFAULT_OPTIMIZER,
    DEFAULT_TUNE_ORDERS,
    AdapterOpt,
    CalibrateOpt,
    ConstantOpt,
    CpusPerWorkerOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    FormatOpt,
    GpusPerWorkerOpt,
    Init,
    JsonOpt,
    LossKind,
    LossOpt,
    MissingOpt,
    ModelOpt,
    ObjectiveName,
    Optimizer,
    Placement,
    RayAddressOpt,
    ReadingName,
    TargetOpt,
    ThreadsOpt,
    TrustOpt,
    TuneOrders,
)
from culturetune.core import defaults, inputs
from culturetune.core.choices import GRADIENT_OPTIMIZERS
from culturetune.core.errors import CultureTuneError, Interrupted
from culturetune.core.progress import Heartbeat
from culturetune.instrument.targets import Target
from culturetune.instrument.vsm import instrument_key, parse_constants
from culturetune.report.console import print_tune_result

if TYPE_CHECKING:
    from culturetune.model.loading import LoadedModel
    from culturetune.tuning.config import TuneConfig


@command()
def tune(
    ctx: typer.Context,
    country: TargetOpt = None,
    target_from_system: Annotated[
        str | None,
        typer.Option("--target-from-system", help="A planted target (a positive control): the "
                     "model's own indices under this system prompt, read as the run reads "
                     "(its instrument, orders and format); the run then tunes toward them "
                     "without it.", show_default=False, rich_help_panel="Scoring"),
    ] = None,
    target_from_lead: Annotated[
        str | None,
        typer.Option("--target-from-lead", help="A planted target inside the search space: "
                     "the model's own indices with this text's token embeddings (cut or "
                     "repeated to --tokens) in the soft prompt's place; one prompt of the "
                     "space reaches it exactly.", show_default=False, rich_help_panel="Scoring"),
    ] = None,
    model: ModelOpt = None,
    adapter: AdapterOpt = None,
    tokens: Annotated[int, typer.Option(help="Virtual tokens in the soft prompt.")] = 5,
    placement: Annotated[
        Placement,
        typer.Option(help="answer: right before the answer (fastest); system: after the system "
                     "turn; prefix: before all input, as PEFT does.", case_sensitive=False),
    ] = Placement.answer,
    init: Annotated[
        Init,
        typer.Option(help="random: Gaussian at the embedding scale; text: embeddings of "
                     "--init-text; vocab: sampled vocabulary rows; lead: a lead-in that ends "
                     "where the answer starts ('... Here is my answer:\\n'); auto: lead for "
                     "the answer placement in the words format (random rows there leave no "
                     "probability on the options' words), else vocab.", case_sensitive=False),
    ] = Init.auto,
    init_text: Annotated[str | None, typer.Option(help="Text for --init text.")] = None,
    subspace: Annotated[
        str, typer.Option(help="Search a random subspace of this dimension, or 'full' (auto: "
                          "64 for a derivative-free optimizer, full for adam).")
    ] = "auto",
    optimizer: Annotated[
        Optimizer,
        typer.Option(help="auto: adam, or pso where adam cannot run (--reading said, "
                     "--workers/--ray-address); adam: Adam on the objective's gradient (the "
                     "expected reading); de: Differential Evolution; cma: CMA-ES; pso: particle "
                     "swarm; random: random search.", case_sensitive=False),
    ] = DEFAULT_OPTIMIZER,
    budget: Annotated[
        int | None, typer.Option(help="Forward-equivalents in all: one is one candidate's "
                                 "forward pass over the training prompts (a derivative-free "
                                 "evaluation); an adam step costs its counted forward + "
                                 f"backward. Default: {defaults.GRADIENT_BUDGET} for adam, "
                                 f"{defaults.BUDGET} for a derivative-free optimizer.")
    ] = None,
    population: Annotated[int, typer.Option(help="Candidates per optimizer step "
                                            "(derivative-free optimizers).")] = 16,
    lr: Annotated[float, typer.Option(help="adam: learning rate, a share of the embedding "
                                      "table's standard deviation per step.")
                  ] = defaults.LEARNING_RATE,
    temperature: Annotated[float, typer.Option(help="adam on --objective worst: smooth-maximum "
                                               "temperature in index points for the gradient "
                                               "(0: the worst view alone).")
                           ] = defaults.TEMPERATURE,
    grad_chunk: Annotated[int | None, typer.Option(help="adam: prompts per backward pass "
                                                   "(bounds a step's memory; default: all).")
                          ] = None,
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
    train_instrument: Annotated[
        list[str] | None,
        typer.Option("--train-instrument", help="Also tune on this wording (paraphrase, "
                     "paraphrase2 or an instrument .json file; repeatable; 'none': --instrument "
                     "alone); the held-out checks leave out every wording tuned on.",
                     show_default=False,
                     rich_help_panel="Objective"),
    ] = None,
    objective: Annotated[
        ObjectiveName,
        typer.Option(help="How the training views (each wording x each order) combine: pooled "
                     "(loss of the averaged answers), mean (mean of each view's loss), worst "
                     "(the largest view loss).", case_sensitive=False,
                     rich_help_panel="Objective"),
    ] = DEFAULT_OBJECTIVE,
    reading: Annotated[
        ReadingName,
        typer.Option(help="What the objective reads: expected (next-token probabilities) or "
                     "said (the option the greedy reply names, by its label or its words; a "
                     "non-option reads as 3).",
                     case_sensitive=False, rich_help_panel="Objective"),
    ] = ReadingName.expected,
    missing: MissingOpt = DEFAULT_MISSING,
    format: FormatOpt = DEFAULT_FORMAT,
    min_mass: Annotated[
        float | None,
        typer.Option("--min-mass", help="Option-mass floor: candidates that leave less than "
                     "this share of the plain model's probability on the answer options are "
                     "penalised (e.g. 0.5; 0: no floor).", show_default=False,
                     rich_help_panel="Objective"),
    ] = defaults.MIN_MASS,
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
    workers: Annotated[
        int, typer.Option("--workers", help="Score each step's candidates on this many Ray "
                          "workers (each holds the model; the optimizer stays here). 1: in "
                          "this process, unless --ray-address is given.",
                          rich_help_panel="Ray"),
    ] = 1,
    ray_address: RayAddressOpt = None,
    cpus_per_worker: CpusPerWorkerOpt = 1.0,
    gpus_per_worker: GpusPerWorkerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Learn a soft prompt that moves the model's indices to a country (or custom target)."""
    from culturetune.model.loading import DEFAULT_MODEL
    from culturetune.tuning.config import resolve_optimizer
    from culturetune.tuning.search import runfolder

    # 1. every option checked before anything is read or loaded
    model, adapter, device = common.check_model_options(model, adapter, device)
    if resume is not None and adapter is not None:
        raise CultureTuneError("--resume keeps the run's model (with its adapter merged); leave "
                               "--adapter out")
    time_limit = inputs.check_time_limit(time_limit)
    ray = _ray_settings(workers, ray_address, cpus_per_worker, gpus_per_worker, threads, device,
                        str(dtype), trust_remote_code)
    planted = target_from_system or target_from_lead
    if country is not None and planted is not None:
        raise CultureTuneError("--country names a target and --target-from-system/--target-from-"
                               "lead plant one; give only one of them")
    if resume is None and country is None and planted is None:
        raise CultureTuneError("say which culture to tune for: --country NAME (or --target "
                               "PDI=..,IDV=..), or --resume DIR to continue a run")
    settings = dict(
        tokens=tokens, placement=str(placement), init=str(init), init_text=init_text,
        optimizer=resolve_optimizer(str(optimizer), str(reading), ray is not None),
        budget=budget, population=population, seed=seed,
        loss=str(loss), orders=str(orders), calibrate=calibrate, objective=str(objective),
        reading=str(reading), missing=str(missing), min_mass=min_mass, format=str(format),
        lr=lr, temperature=temperature, grad_chunk=grad_chunk,
    )
    if ray is not None and settings["optimizer"] in GRADIENT_OPTIMIZERS:
        _no_ray_for(settings["optimizer"])
    # 2. the run's settings: new ones, or (in the claimed folder) the saved ones
    if resume is not None:
        folder = str(runfolder.check_run(resume))
        if out is not None and not runfolder.same_folder(out, folder):
            raise CultureTuneError("--resume continues the run in its own folder; leave --out "
                                   "out (or give the same folder)")
    else:
        settings["target_lead"] = target_from_lead
        config, folder = _new_run(country, target_from_system, subspace, constant, instrument,
                                  validate_instrument, train_instrument, settings, out)
    with runfolder.claim(folder, "--resume" if resume else "--out"):  # "in use" comes first
        if resume is not None:
            asked = {k: v for k, v in settings.items() if k in _given(ctx, *settings)}
            asked.update(_given_values(
                ctx, country=lambda: resolve_target(country).to_dict(),
                subspace=lambda: inputs.parse_subspace(subspace),
                constant=lambda: parse_constants(constant), model=lambda: model,
                instrument=lambda: instrument_key(instrument),
                validate_instrument=lambda: [instrument_key(p)
                                             for p in validate_instrument or []],
                train_instrument=lambda: [instrument_key(p) for p in train_instrument or []]))
            config = _resume_config(folder, asked)
            model = model or (config.model if config.model != DEFAULT_MODEL else None)
        else:
            runfolder.check_new_run(folder)
        # 3. the run
        result = _tune_in(folder, config, model, adapter, ray, resume is not None, time_limit,
                          as_json, device, str(dtype), trust_remote_code, threads)
    # 4. what it prints
    _print_result(result, as_json)


def _new_run(country: str | None, target_from_system: str | None, subspace: str,
             constant: str | None, instrument: str, validate_instrument: list[str] | None,
             train_instrument: list[str] | None, settings: dict[str, Any],
             out: str | None) -> tuple[TuneConfig, str]:
    """A new run's checked settings and its folder (``--out``, or
    ``runs/<country>-<optimizer>-s<seed>``)."""
    from culturetune.tuning.config import TuneConfig

    target = (resolve_target(country) if country is not None else
              Target("planted", None, {}, "measured when the run starts"))
    config = TuneConfig(
        target=target, subspace=inputs.parse_subspace(subspace),
        constants=parse_constants(constant), instrument=instrument,
        validate_instruments=list(validate_instrument or []),
        train_instruments=(list(train_instrument) if train_instrument
                           else list(defaults.TRAIN_INSTRUMENTS)),
        target_system=target_from_system, **settings,
    ).validate()
    slug = "".join(ch if ch.isalnum() else "-" for ch in (target.code or target.name))
    slug = slug.strip("-").lower()[:60] or "custom"
    return config, (out if out is not None
                    else f"runs/{slug}-{config.optimizer}-s{config.seed}")


def _tune_in(folder: str, config: TuneConfig, model: str | None, adapter: str | None, ray: Any,
             resume: bool, time_limit: float | None, quiet: bool, device: str, dtype: str,
             trust_remote_code: bool, threads: int | None) -> Any:
    """Run the tuning in the claimed ``folder``: the adapter merged first (every worker loads the
    merged folder like any model), the Ray scorer up before the model loads here; Ctrl-C says
    how to continue."""
    from culturetune.model.loading import DEFAULT_MODEL
    from culturetune.model.loading import merge_adapter as merge
    from culturetune.tuning.search import RUN_FILE

    if ray is not None and config.optimizer in GRADIENT_OPTIMIZERS:
        _no_ray_for(config.optimizer)
    try:
        if adapter is not None:
            common.status(f"merging the LoRA in {adapter} into {model or DEFAULT_MODEL} ...")
            model = str(merge(model, adapter, trust_remote_code=trust_remote_code))
        with _scorer(ray, model, config) as evaluate:
            lm = common.load_lm(model, device, dtype, trust_remote_code, threads)
            return _run_tuning(lm, config, folder, resume, time_limit, quiet, evaluate)
    except KeyboardInterrupt:
        if (Path(folder) / RUN_FILE).exists():
            raise Interrupted(f"interrupted; the run is saved in {folder}: continue it with "
                              f"`culturetune tune --resume {folder}`") from None
        raise Interrupted("interrupted before the first step; nothing was saved: run the same "
                          "command again") from None


def _no_ray_for(optimizer: str) -> None:
    raise CultureTuneError(f"--optimizer {optimizer} takes its gradient steps in this process; "
                           "--workers and --ray-address split a derivative-free population: "
                           "leave them out (an experiment runs adam cells on Ray workers)")


def _print_result(result: Any, as_json: bool) -> None:
    """The run's result: JSON on stdout, or the console summary."""
    if as_json:
        print_json({
            "folder": str(result.folder), "status": result.status,
            "evaluations": result.evaluations, "steps": len(result.history),
            "optimizer": result.config.optimizer, "seconds": result.seconds,
            "config": result.config.to_dict(), "baseline": result.baseline.to_dict(),
            "final": result.final.to_dict(), "uniform": result.baseline.uniform_loss.to_dict(),
            "validity": result.validity.to_dict(), "history": result.history,
            "model_check": (None if result.model_check is None
                            else result.model_check.to_dict()),
        })
        return
    print_tune_result(result)


def _ray_settings(workers: int, address: str | None, cpus: float, gpus: float | None,
                  threads: int | None, device: str, dtype: str, trust: bool) -> Any:
    """The Ray settings of ``--workers N`` (N > 1) or ``--ray-address``, checked, with Ray
    importable; ``None`` to score in this process."""
    from culturetune.experiment import executors

    settings = executors.RaySettings(
        address=address, workers=workers, cpus_per_worker=cpus, gpus_per_worker=gpus,
        threads=threads, device=device, dtype=dtype, trust_remote_code=trust,
    ).validate()
    if settings.workers == 1 and settings.address is None:
        return None
    executors.require_ray()
    return settings


@contextmanager
def _scorer(ray: Any, model: str | None, config: Any) -> Iterator[Any]:
    """``None`` (score in this process), or a Ray population scorer whose workers load
    ``model``; Ray is reached (or started) before the model loads here, and stopped after."""
    if ray is None:
        yield None
        return
    from culturetune.experiment.executors import RayCluster, RayPopulation

    ray.model = model
    with RayCluster(ray) as cluster:
        common.status(f"starting {ray.workers} Ray workers (each loads the model) ...")
        yield RayPopulation(cluster.pool(), config)


def _given(ctx: typer.Context, *names: str) -> set[str]:
    """Which of these options of the running command the user typed (not left at default)."""
    typed = {"COMMANDLINE", "ENVIRONMENT", "PROMPT"}
    return {n for n in names if getattr(ctx.get_parameter_source(n), "name", None) in typed}


def _given_values(ctx: typer.Context, **options: Callable[[], Any]) -> dict[str, Any]:
    """``TuneConfig`` fields of the options the user typed (values computed only for those)."""
    fields = {"country": "target", "constant": "constants",
              "validate_instrument": "validate_instruments",
              "train_instrument": "train_instruments"}
    return {fields.get(k, k): make() for k, make in options.items() if k in _given(ctx, k)}


def _resume_config(folder: str, asked: dict[str, Any]) -> Any:
    """The saved settings of the run in ``folder`` with the options the user typed checked
    against them (only ``--budget`` may differ); everything is read without the model."""
    from culturetune.tuning.config import TuneConfig, load_run_config
    from culturetune.tuning.search import runfolder

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


#: Seconds between progress lines when stderr is not a terminal (at most 30 s apart).
LOG_EVERY = 15.0


def _run_tuning(lm: LoadedModel, config: Any, folder: str, resume: bool,
                time_limit: float | None, quiet: bool, evaluate: Any = None) -> Any:
    """Run ``tuning.tune`` with a live progress line on stderr (``evaluate``: a Ray population
    scorer, or ``None`` to score here)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from culturetune.reading.check import check_model
    from culturetune.tuning.search import tune as run_tune

    if config.format == "auto":  # resolved here, so that Ray workers get the format too
        config.format = common.answer_format(lm, "auto", config.instrument, quiet).format
    checked = check_model(lm, config.instrument, format=config.format, progress=None if quiet
                          else lambda what: common.status(f"model check: {what} ..."))
    common.status(f"model check: {checked.summary()}")
    if checked.warning():
        common.status(f"warning: {checked.warning()}; it still runs")
    def line(p: Any) -> str:  # fe: forward-equivalents (a derivative-free evaluation is one)
        spent = f"{p.evaluations:.3f}".rstrip("0").rstrip(".")  # 58.034 (Adam), 640
        return (f"step {p.step} · {spent}/{p.budget} fe · best "
                f"{p.best_loss:.2f} · mean {p.mean_loss:.2f} · {p.rate:.1f} fe/s")

    console = Console(stderr=True)
    if not quiet and not console.is_terminal:  # a file, a pipe, a CI log: whole lines
        with Heartbeat(common.status, LOG_EVERY) as beat:
            beat.update(f"tuning: 0/{config.budget} forward-equivalents "
                        "(the first step is running)", force=True)

            def log(p: Any) -> None:
                beat.update(f"tuning: {line(p)}", force=p.last)

            return run_tune(lm, config, folder, resume=resume, time_limit=time_limit,
                            on_progress=log, evaluate=evaluate, model_check=checked)
    with Progress(TextColumn("[bold]tuning"), BarColumn(), TextColumn("{task.description}"),
                  TimeRemainingColumn(), console=console, transient=False,
                  disable=quiet) as bar:
        task = bar.add_task("starting", total=config.budget)

        def show(p: Any) -> None:
            bar.update(task, completed=p.evaluations, description=line(p))

        return run_tune(lm, config, folder, resume=resume, time_limit=time_limit,
                        on_progress=show, evaluate=evaluate, model_check=checked)
