"""Train the respondent: a LoRA adapter (PEFT) on the frozen bundled model that answers
Likert-type items by their content (:mod:`culturetune.respondent.data`).

The loss is the cross-entropy of the reply (the shown number of the content-correct option,
then the end of turn) given the chat-rendered prompt, exactly as culturetune's survey renders
an item. Held-out statements (never trained on) measure accuracy on the way; the model check
(:mod:`culturetune.reading.check`, on the VSM 2013, which the data never shows) is measured at a few
points of the curve and at the end.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from culturetune.respondent import data

#: The LoRA's target modules: attention and two of the MLP projections (Llama-style names).
TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj")
META_FILE = "respondent.json"
CURVE_FILE = "curve.csv"


@dataclass
class TrainConfig:
    """What a respondent run does; everything it depends on is here and in its metadata."""

    steps: int = 1200
    batch: int = 16
    seed: int = 0
    rank: int = 8
    alpha: int = 16
    lr: float = 1e-3
    warmup: int = 50
    eval_every: int = 100
    check_every: int = 300
    held_out: int = 300
    target_modules: tuple[str, ...] = TARGET_MODULES
    #: Which synthetic data (:func:`culturetune.respondent.data.stance`).
    data_version: int = 2
    #: Continue from this respondent folder (its LoRA weights; the data stream moves on).
    init: str | None = None
    #: Stop after this many steps, keeping the learning-rate schedule of ``steps``.
    stop_after: int | None = None

    def validate(self) -> TrainConfig:
        from culturetune.core.errors import CultureTuneError

        for name in ("steps", "batch", "rank", "eval_every", "check_every", "held_out"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise CultureTuneError(f"--{name.replace('_', '-')} must be a whole number of at "
                                       f"least 1, got {value!r}")
        if self.batch > 64:
            raise CultureTuneError(f"--batch {self.batch} is more than 64 examples a step; this "
                                   "would need several GB per step on a CPU: use at most 64")
        if not (0 < self.lr < 1):
            raise CultureTuneError(f"--lr must be between 0 and 1, got {self.lr}")
        if self.data_version not in data.VERSIONS:
            raise CultureTuneError(f"--data-version must be one of {data.VERSIONS}, got "
                                   f"{self.data_version!r}")
        if self.stop_after is not None and not 1 <= self.stop_after <= self.steps:
            raise CultureTuneError(f"--stop-after must be between 1 and --steps ({self.steps})")
        if self.init is not None:
            from culturetune.model.adapters import check_adapter

            check_adapter(self.init, "--init")
            if not (Path(self.init) / META_FILE).is_file():
                raise CultureTuneError(f"--init {self.init} is no respondent folder (it has no "
                                       f"{META_FILE})")
        return self


@dataclass
class TrainResult:
    folder: Path
    config: TrainConfig
    curve: list[dict[str, float]] = field(default_factory=list)
    #: The metadata of the respondent this one continued (``--init``), or ``None``.
    before: dict[str, Any] | None = None
    checks: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0


def _encode(tok: Any, lm: Any, batch: list[data.Example]) -> dict[str, Any]:
    """Token ids, attention mask and labels (reply tokens only) of a batch, right-padded; also
    the position of each reply's first token."""
    import torch

    end = tok.eos_token or ""
    rows, labels, firsts = [], [], []
    for ex in batch:
        text, _ = lm.render(ex.user, ex.system)
        prompt = tok.encode(text, add_special_tokens=False)
        reply = tok.encode(f"{ex.answer}{end}", add_special_tokens=False)
        rows.append(prompt + reply)
        labels.append([-100] * len(prompt) + reply)
        firsts.append(len(prompt) - 1)  # the logits there predict the reply's first token
    width = max(len(r) for r in rows)
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    lab = torch.full((len(rows), width), -100, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, (r, lb) in enumerate(zip(rows, labels, strict=True)):
        ids[i, : len(r)] = torch.tensor(r)
        lab[i, : len(lb)] = torch.tensor(lb)
        mask[i, : len(r)] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": lab,
            "firsts": torch.tensor(firsts)}


def _digit_ids(tok: Any) -> list[int]:
    ids = [tok.encode(str(k), add_special_tokens=False) for k in range(1, 6)]
    if any(len(i) != 1 for i in ids):
        from culturetune.core.errors import CultureTuneError

        raise CultureTuneError("the respondent needs a tokenizer with one token per digit 1-5")
    return [i[0] for i in ids]


def accuracy(model: Any, tok: Any, lm: Any, examples: list[data.Example],
             batch: int = 32) -> dict[str, float]:
    """Share of ``examples`` whose most likely digit (1-5) at the reply is the correct shown
    number, overall and by content level."""
    import torch

    digits = torch.tensor(_digit_ids(tok))
    right = np.zeros(len(examples), dtype=bool)
    with torch.no_grad():
        for a in range(0, len(examples), batch):
            enc = _encode(tok, lm, examples[a:a + batch])
            logits = model(input_ids=enc["input_ids"],
                           attention_mask=enc["attention_mask"]).logits
            at = logits[torch.arange(len(enc["firsts"])), enc["firsts"]][:, digits]
            pick = at.argmax(-1).numpy() + 1
            right[a:a + batch] = pick == np.array([e.answer for e in examples[a:a + batch]])
    levels = np.array([e.level for e in examples])
    out = {"accuracy": float(right.mean())}
    for lv in range(1, 6):
        out[f"level{lv}"] = float(right[levels == lv].mean()) if (levels == lv).any() else math.nan
    return out


def train(out: str | Path, config: TrainConfig, *,
          log: Callable[[str], None] = print) -> TrainResult:
    """Train a respondent into ``out`` (adapter, metadata and learning curve)."""
    import torch
    from peft import LoraConfig, get_peft_model

    from culturetune.model.loading import DEFAULT_MODEL, LoadedModel, load_model
    from culturetune.reading.check import run_check

    config.validate()
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    lm = load_model(None, device="cpu", dtype="bfloat16")
    tok = lm.tokenizer
    torch.set_grad_enabled(True)
    before: dict[str, Any] | None = None
    if config.init is not None:
        from peft import PeftModel

        before = json.loads((Path(config.init) / META_FILE).read_text())
        before.setdefault("steps_total", before["steps_done"])
        before.setdefault("stages", [{k: before[k] for k in ("config", "steps_done", "curve",
                                                              "checks")}])
        peft_model = PeftModel.from_pretrained(lm.model, config.init, is_trainable=True)
        for p in peft_model.parameters():  # the adapter was saved in bf16: train in float32
            if p.requires_grad:
                p.data = p.data.float()
    else:
        peft_model = get_peft_model(lm.model, LoraConfig(
            r=config.rank, lora_alpha=config.alpha, lora_dropout=0.0,
            target_modules=list(config.target_modules), task_type="CAUSAL_LM"))
    inner = peft_model.get_base_model()  # the transformers model with the LoRA layers in it
    check_lm = LoadedModel(model=inner, tokenizer=tok, name="respondent (training)",
                           device="cpu", dtype="bfloat16")
    params = [p for p in peft_model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=0.0)

    def lr_at(step: int) -> float:  # linear warmup, cosine decay to a tenth
        if step < config.warmup:
            return (step + 1) / config.warmup
        t = (step - config.warmup) / max(1, config.steps - config.warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    train_pool, held_pool = data.split(config.seed)
    held = data.examples(config.held_out, config.seed + 7, held_pool, config.data_version)
    start = int(before["steps_total"]) if before else 0
    rng = np.random.default_rng(config.seed if start == 0 else [config.seed, start])
    result = TrainResult(folder=folder, config=config, before=before)
    began = time.perf_counter()
    running = []

    def measure(step: int, check: bool) -> None:
        peft_model.eval()
        torch.set_grad_enabled(False)
        row = {"step": step, "seconds": round(time.perf_counter() - began, 1),
               "train_loss": float(np.mean(running)) if running else math.nan,
               **accuracy(inner, tok, lm, held)}
        running.clear()
        result.curve.append(row)
        log(f"step {step}: train loss {row['train_loss']:.3f} · held-out accuracy "
            f"{row['accuracy']:.3f} · {row['seconds']:.0f} s")
        if check:
            c = run_check(check_lm, "vsm2013")
            entry = {"step": step, "verdict": c.verdict,
                     "content_agreement": c.content_agreement,
                     "position_agreement": c.position_agreement,
                     "probe_gaps": {k: v["gap"] for k, v in c.probe.items()},
                     "first_token_match": c.first_token_match, "answered": c.answered}
            result.checks.append(entry)
            log(f"step {step}: model check: {c.summary()}")
        _write_curve(folder, result)
        torch.set_grad_enabled(True)
        peft_model.train()

    measure(0, check=True)
    for step in range(config.stop_after or config.steps):
        if config.data_version >= 4:  # pairs that differ only in the stance's direction
            batch = [e for _ in range((config.batch + 1) // 2)
                     for e in data.make_pair(rng, train_pool, config.data_version)]
            batch = batch[: config.batch]
        else:
            batch = [data.make_example(rng, train_pool, config.data_version)
                     for _ in range(config.batch)]
        enc = _encode(tok, lm, batch)
        for g in opt.param_groups:
            g["lr"] = config.lr * lr_at(step)
        loss = peft_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                          labels=enc["labels"]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        running.append(loss.item())
        done = step + 1
        last = done == (config.stop_after or config.steps)
        if done % config.eval_every == 0 or last:
            measure(done, check=done % config.check_every == 0 or last)
            _save(peft_model, folder, config, result, began, DEFAULT_MODEL)
    result.seconds = round(time.perf_counter() - began, 1)
    _save(peft_model, folder, config, result, began, DEFAULT_MODEL)
    torch.set_grad_enabled(False)
    return result


def _write_curve(folder: Path, result: TrainResult) -> None:
    from culturetune.core.files import write_text

    keys = list(result.curve[0])
    lines = [",".join(keys)] + [",".join(f"{r[k]:.4g}" if isinstance(r[k], float) else str(r[k])
                                         for k in keys) for r in result.curve]
    write_text(folder / CURVE_FILE, "\n".join(lines) + "\n")


def _save(peft_model: Any, folder: Path, config: TrainConfig, result: TrainResult,
          began: float, base: str) -> None:
    """The adapter in PEFT's format (safetensors, weights in bf16 to stay small) and its
    metadata."""
    import torch

    from culturetune.core.files import set_mode, write_json
    from culturetune.core.version import __version__
    from culturetune.model.loading import DEFAULT_HUB_ID

    state = {k: v.detach().to(torch.bfloat16) for k, v in peft_model.state_dict().items()
             if "lora_" in k}
    peft_model.save_pretrained(str(folder), state_dict=state, safe_serialization=True)
    (folder / "README.md").unlink(missing_ok=True)  # PEFT's empty model card
    set_mode(folder / "adapter_model.safetensors")  # follow the umask like culturetune's files
    cfg = json.loads((folder / "adapter_config.json").read_text())
    cfg["base_model_name_or_path"] = DEFAULT_HUB_ID
    write_json(folder / "adapter_config.json", cfg)
    last = result.curve[-1] if result.curve else {}
    prior = result.before or {}
    done = last.get("step", 0)
    write_json(folder / META_FILE, {
        "culturetune": __version__, "base_model": base, "config": asdict(config),
        "steps_done": done, "steps_total": prior.get("steps_total", 0) + done,
        "examples_seen": prior.get("examples_seen", 0) + done * config.batch,
        "stages": [*prior.get("stages", []), {
            "config": asdict(config), "steps_done": done, "curve": result.curve,
            "checks": result.checks}],
        "statements": {"train": len(data.split(config.seed)[0]),
                       "held_out": len(data.split(config.seed)[1])},
        "held_out_accuracy": last.get("accuracy"), "curve": result.curve,
        "checks": result.checks,
        "seconds": round(time.perf_counter() - began, 1),
    })
