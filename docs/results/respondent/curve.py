"""The respondent's learning curve over its training stages: a Markdown table and a plot.

    python docs/results/respondent/curve.py [docs/results/respondent]

Reads ``stage*/respondent.json`` (written by ``culturetune respondent train``); prints one row per
evaluation (total step, stage, data version, training loss, held-out accuracy overall and by
level) and one per model check, and writes ``curve.png`` beside them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def stages(root: Path) -> list[dict]:
    """The stages of the last stage's metadata (each continues the one before)."""
    last = sorted(root.glob("stage*/respondent.json"))[-1]
    return json.loads(last.read_text())["stages"]


def main(argv: list[str]) -> None:
    root = Path(argv[0] if argv else "docs/results/respondent")
    offset, rows, checks = 0, [], []
    for k, stage in enumerate(stages(root), 1):
        version = stage["config"].get("data_version", 1)
        for r in stage["curve"]:
            if r["step"] == 0 and k > 1:
                continue  # the same weights as the last row of the stage before
            rows.append({"total": offset + r["step"], "stage": k, "data": version, **r})
        for c in stage["checks"]:
            if c["step"] == 0 and k > 1:
                continue
            checks.append({"total": offset + c["step"], "stage": k, **c})
        offset += stage["steps_done"]
    print("| step | stage (data) | train loss | held-out accuracy | level 1 | 2 | 3 | 4 | 5 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        loss = "—" if r["train_loss"] != r["train_loss"] else f"{r['train_loss']:.3f}"
        levels = " | ".join(f"{r[f'level{i}']:.2f}" for i in range(1, 6))
        print(f"| {r['total']} | {r['stage']} (v{r['data']}) | {loss} | {r['accuracy']:.3f} | "
              f"{levels} |")
    print("\n| step | model check | same content both orders | same position | probe gap "
          "printed / reversed (needs 1) |")
    print("|---|---|---|---|---|")
    for c in checks:
        gaps = c["probe_gaps"]
        print(f"| {c['total']} | {c['verdict']} | {c['content_agreement']:.0%} | "
              f"{c['position_agreement']:.0%} | {gaps['printed']:+.2f} / {gaps['reversed']:+.2f} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    steps = [r["total"] for r in rows]
    ax.plot(steps, [r["accuracy"] for r in rows], "k-o", label="held-out accuracy")
    for i, style in zip((1, 3, 5), (":", "--", "-."), strict=True):
        ax.plot(steps, [r[f"level{i}"] for r in rows], style, label=f"level {i}")
    ax.axhline(0.2, color="grey", lw=0.8)
    ax.text(steps[-1], 0.21, "chance", ha="right", color="grey")
    offset = 0
    for stage in stages(root)[:-1]:
        offset += stage["steps_done"]
        ax.axvline(offset, color="grey", ls=":", lw=0.8)
    ax.set_xlabel("training step (16 items each)")
    ax.set_ylabel("share of held-out items right")
    ax.set_ylim(0, 1.05)
    ax.set_title("Respondent LoRA: held-out accuracy; no stage passed the model check")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(root / "curve.png", dpi=110)


if __name__ == "__main__":
    main(sys.argv[1:])
