"""Read the committed tuned prompts again with today's code and count the numbers that moved.

    python docs/results/reread.py [FOLDER ...]   # default: every prompt folder under docs/results

For each prompt folder (``culturetune.json`` + ``adapter_model.safetensors``, as ``tune`` writes
it), reads the prompt on its run's training wording in its run's option orders and answer format
(what ``culturetune survey --prompt FOLDER`` reads, in the dtype the run recorded) and compares
the loss and the six indices with the run's recorded ``final``. Prints one line per folder and
how many numbers moved by more than 0.1 index points (or loss points). Models are loaded once
each; run it alone on the machine.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 0.1


def folders(args: list[str]) -> list[Path]:
    roots = [Path(a) for a in args] or [ROOT / "docs" / "results"]
    found = []
    for root in roots:
        found += [p.parent for p in sorted(root.rglob("adapter_model.safetensors"))
                  if (p.parent / "culturetune.json").exists()]
    return found


def main(args: list[str]) -> int:
    from culturetune.instrument.targets import Target
    from culturetune.model.loading import load_model
    from culturetune.reading.administer import run_survey
    from culturetune.reading.survey import Survey
    from culturetune.tuning.config import TuneConfig
    from culturetune.tuning.softprompt import SoftPrompt

    loaded: dict[tuple[str, str], object] = {}
    moved = total = 0
    for folder in folders(args):
        meta = json.loads((folder / "culturetune.json").read_text())
        config = TuneConfig.from_dict(meta["config"])
        key = (meta.get("model") or config.model, meta.get("dtype") or "auto")
        if key not in loaded:
            loaded.clear()  # one model at a time
            loaded[key] = load_model(key[0] or None, dtype=key[1].replace("torch.", ""))
        lm = loaded[key]
        prompt = SoftPrompt.load(folder)
        survey = Survey(lm, config.instrument, system=config.system, orders=config.orders,
                        calibrate=config.calibrate, placement=prompt.placement,
                        format=config.format)
        target = Target.from_dict(meta["config"]["target"])
        if not target.dimensions:
            target = Target("recorded", None, {d: meta["final"]["indices"][d] - g for d, g in
                                                 meta["final"]["loss"]["gaps"].items()}, "")
        now = run_survey(survey, soft=prompt.embeddings, target=target,
                         constants=config.constants, loss_kind=config.loss,
                         missing=config.missing)
        then = meta["final"]
        pairs = [("loss", then["loss"]["value"], now.loss.value)] + [
            (d, then["indices"][d], now.indices[d]) for d in then["indices"]]
        gaps = [(n, abs(b - a)) for n, a, b in pairs if a is not None and b is not None]
        over = [n for n, g in gaps if g > TOLERANCE]
        moved += len(over)
        total += len(gaps)
        rel = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else folder
        print(f"{rel}: loss {then['loss']['value']:.2f} -> {now.loss.value:.2f}; largest gap "
              f"{max(g for _, g in gaps):.3f}" + (f"; moved > {TOLERANCE}: {', '.join(over)}"
                                                  if over else ""), flush=True)
    print(f"{moved} of {total} numbers moved by more than {TOLERANCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
