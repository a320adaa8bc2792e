"""``culturetune respondent train``: train the positive control, a LoRA on the bundled model
that answers Likert items by content (:mod:`culturetune.respondent`)."""

from __future__ import annotations

from typing import Annotated

import typer

from culturetune.cli.app import app, interruptible
from culturetune.cli.common import print_json, status
from culturetune.cli.options import JsonOpt, ThreadsOpt
from culturetune.core.errors import CultureTuneError, Interrupted

respondent_app = typer.Typer(help="The respondent: a positive control that answers by content.",
                             no_args_is_help=True)
app.add_typer(respondent_app, name="respondent")


@respondent_app.command("train")
@interruptible
def train(
    out: Annotated[str, typer.Option("--out", help="Folder for the adapter, its metadata "
                                     "(respondent.json) and its learning curve (curve.csv).")],
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 1200,
    batch: Annotated[int, typer.Option(help="Synthetic items a step.")] = 16,
    seed: Annotated[int, typer.Option(help="Seed of the data, the split and the LoRA.")] = 0,
    rank: Annotated[int, typer.Option(help="LoRA rank.")] = 8,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, cosine).")] = 1e-3,
    eval_every: Annotated[int, typer.Option(help="Held-out accuracy every N steps.")] = 100,
    check_every: Annotated[int, typer.Option(help="Model check every N steps.")] = 300,
    data_version: Annotated[int, typer.Option(help="Synthetic data version (1: the first "
                                              "stage's; 2: more stances about the scale).")] = 2,
    init: Annotated[str | None, typer.Option(help="Continue from this respondent folder.",
                                             show_default=False)] = None,
    stop_after: Annotated[int | None, typer.Option(
        help="Stop after N steps, keeping the learning-rate schedule of --steps.",
        show_default=False)] = None,
    threads: ThreadsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train a respondent LoRA on the bundled model (CPU, about an hour at the defaults)."""
    from pathlib import Path

    from culturetune.respondent.train import TrainConfig
    from culturetune.respondent.train import train as run

    config = TrainConfig(steps=steps, batch=batch, seed=seed, rank=rank, lr=lr,
                         eval_every=eval_every, check_every=check_every,
                         data_version=data_version, init=init, stop_after=stop_after).validate()
    folder = Path(out).expanduser()
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise CultureTuneError(f"--out {out} is not an empty folder; choose a new one")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        result = run(folder, config, log=status)
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted; the adapter of the last evaluation is in {out}") from None
    last = result.curve[-1]
    if as_json:
        print_json({"folder": str(folder), "curve": result.curve, "checks": result.checks,
                    "seconds": result.seconds})
        return
    check = result.checks[-1] if result.checks else {}
    print(f"respondent in {folder}: held-out accuracy {last['accuracy']:.3f} after "
          f"{last['step']} steps ({result.seconds:.0f} s); model check: "
          f"{check.get('verdict', 'not measured')}")
