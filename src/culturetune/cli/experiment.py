"""``culturetune experiment`` and ``report``: the reference study end to end
(:mod:`culturetune.experiment.grid`), and its report rewritten from ``results.json`` without the
model.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

import typer

from culturetune.cli import common
from culturetune.cli.app import command
from culturetune.cli.common import print_json, status
from culturetune.cli.options import (
    AdapterOpt,
    CpusPerWorkerOpt,
    DataOpt,
    DeviceOpt,
    Dtype,
    DtypeOpt,
    Executor,
    FormatName,
    GpusPerWorkerOpt,
    JsonOpt,
    ModelOpt,
    OrderSet,
    RayAddressOpt,
    ThreadsOpt,
    TrustOpt,
    TuneOrders,
)
from culturetune.core import inputs
from culturetune.core.errors import CultureTuneError, Interrupted
from culturetune.report.console import say, stdout


def _choice(flag: str, help: str) -> Any:
    """A case-insensitive choice option whose default is said in its help."""
    return typer.Option(flag, help=help, case_sensitive=False, show_default=False)


@command()
def experiment(
    ctx: typer.Context,
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
        _choice("--orders", "Option orders of tuned methods named without their own "
                "(default: both)."),
    ] = None,
    calibrate: Annotated[
        bool | None,
        typer.Option("--calibrate/--no-calibrate", help="Tune methods named without -cal on "
                     "calibrated answers too (default: no).", show_default=False),
    ] = None,
    bench_orders: Annotated[
        OrderSet | None,
        _choice("--bench-orders", "Option orders of CulturalBench letter scoring "
                "(default: cyclic)."),
    ] = None,
    format: Annotated[
        FormatName | None,
        _choice("--format", "Answer format of every cell: number, letter, words, or "
                "auto (default): the format in which `culturetune check-model` says the "
                "model answers by content, else the one where it comes closest. Each cell "
                "is also read in the other formats."),
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
    adapter: AdapterOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = Dtype.auto,
    trust_remote_code: TrustOpt = False,
    threads: ThreadsOpt = None,
    executor: Annotated[
        Executor,
        typer.Option("--executor", help="local: the cells one after another in this process; "
                     "ray: on Ray workers that each load the model (see --ray-address).",
                     case_sensitive=False, rich_help_panel="Ray"),
    ] = Executor.local,
    ray_address: RayAddressOpt = None,
    workers: Annotated[
        int | None,
        typer.Option("--workers", help="Ray workers (default: as many as the cluster's CPUs, or "
                     "GPUs, hold; at most one per cell).", show_default=False,
                     rich_help_panel="Ray"),
    ] = None,
    cpus_per_worker: CpusPerWorkerOpt = 1.0,
    gpus_per_worker: GpusPerWorkerOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The reference study end to end: countries x methods x seeds, report and figures."""
    from culturetune.experiment.config import ExperimentConfig
    from culturetune.experiment.folder import check_experiment
    from culturetune.experiment.grid import run_experiment
    from culturetune.report import write_report
    from culturetune.tuning import runfolder

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
                       ("bench_orders", bench_orders and str(bench_orders)),
                       ("format", format and str(format))):
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
    inputs.check_model_name(cfg.model)
    adapter = common.check_adapter(adapter)
    ray = _ray_settings(ctx, str(executor), ray_address, workers, cpus_per_worker,
                        gpus_per_worker, threads, cfg.model, device, str(dtype), trust_remote_code)
    _check_bench_data(cfg)
    progress = None if as_json else status
    with runfolder.claim(out):
        check_experiment(out)
        try:
            if adapter is not None:  # every cell and worker loads the merged folder
                from culturetune.model.loading import merge_adapter as merge

                common.status(f"merging the LoRA in {adapter} into {cfg.model} ...")
                cfg.model = str(merge(cfg.model, adapter, trust_remote_code=trust_remote_code))
                if ray is not None:
                    ray.model = cfg.model
            if ray is None:
                lm = common.load_lm(cfg.model, device, str(dtype), trust_remote_code, threads)
                results = run_experiment(lm, cfg, out, progress=progress,
                                         report=write_report)
            else:
                from culturetune.experiment.executors import RayCluster, RayExecutor

                with RayCluster(ray) as cluster:
                    results = run_experiment(None, cfg, out, progress=progress,
                                             executor=RayExecutor(cluster), report=write_report)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted; finished cells are kept in {out}: run the same "
                              "command again to resume") from None
    if as_json:
        print_json(results)
    else:
        say(stdout(), f"results.json, report.md, report.html and figures written to {out}")


def _ray_settings(ctx: typer.Context, executor: str, address: str | None, workers: int | None,
                  cpus: float, gpus: float | None, threads: int | None, model: str | None,
                  device: str, dtype: str, trust: bool) -> Any:
    """The Ray settings of ``--executor ray`` (checked, Ray importable), else ``None``; Ray
    options given with ``--executor local`` are an error."""
    from culturetune.experiment import executors

    settings = executors.RaySettings(
        address=address, workers=workers, cpus_per_worker=cpus, gpus_per_worker=gpus,
        threads=threads, model=model, device=device, dtype=dtype, trust_remote_code=trust,
    ).validate()
    if executor != "ray":
        given = [f"--{n.replace('_', '-')}" for n in ("ray_address", "workers", "cpus_per_worker",
                                                       "gpus_per_worker")
                 if getattr(ctx.get_parameter_source(n), "name", None) == "COMMANDLINE"]
        if given:
            raise CultureTuneError(f"{', '.join(given)} only with --executor ray (add it to "
                                   "run the grid on Ray)")
        return None
    executors.require_ray()
    return settings


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
    from culturetune.report import load_results
    from culturetune.tuning import runfolder

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

    from culturetune.core.files import WriteError, error_code, os_cause, temp_folder
    from culturetune.report import write_report

    scratch = temp_folder(out, ".report-")
    try:
        try:
            written = write_report(results, scratch)
        except WriteError as exc:
            raise exc.moved(scratch, out) from exc
        except (KeyError, TypeError, ValueError, IndexError, AttributeError,
                ZeroDivisionError) as exc:
            raise CultureTuneError(
                f"{source} cannot be rendered ({type(exc).__name__}: {exc}); it is not a "
                "results.json as culturetune writes it: run the experiment again") from None
        for path in sorted(scratch.rglob("*")):
            if path.is_file():
                target = out / path.relative_to(scratch)
                try:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(path, target)
                except OSError as exc:
                    raise WriteError(target, os_cause(exc), error_code(exc)) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {k: out / Path(v).relative_to(scratch) if isinstance(v, Path) else v
            for k, v in written.items()}
