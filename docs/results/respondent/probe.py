"""What a respondent puts on each shown number (1-5) for a few VSM 2013 items and one synthetic
item, with no system prompt, with the model check's two probe prompts and with a stance.

    python docs/results/respondent/probe.py [ADAPTER_DIR]   # default: stage 3's adapter

Shows whether a stance moves the answer toward the end of the scale it asks for (by content) or
only toward an end of the list (by position).
"""

from __future__ import annotations

import sys

import torch

from culturetune.instrument.vsm import load_instrument
from culturetune.model.loading import load_model
from culturetune.reading.check import HIGH_SYSTEM, LOW_SYSTEM
from culturetune.reading.prompts import item_prompt

SYSTEMS = {"no system prompt": None, "asked to agree": HIGH_SYSTEM,
           "asked to disagree": LOW_SYSTEM,
           "a stance": "You love your work and your family above everything."}


def main(argv: list[str]) -> None:
    adapter = argv[0] if argv else "docs/results/respondent/stage3"
    lm = load_model(dtype="bfloat16", adapter=adapter)
    tok = lm.tokenizer
    digits = [tok.encode(str(k), add_special_tokens=False)[0] for k in range(1, 6)]

    def probs(user: str, system: str | None) -> str:
        text, _ = lm.render(user, system)
        ids = tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        with torch.no_grad():
            p = lm.model(ids).logits[0, -1].float().softmax(-1)
        return " ".join(f"{float(p[d]):.2f}" for d in digits)

    inst = load_instrument("vsm2013")
    items = [(f"VSM item {i + 1}", item_prompt(inst.items[i]), inst.items[i].options)
             for i in (0, 14, 23)]
    items.append(("synthetic", "How often do you go to the cinema?\n\n1. always\n2. usually\n"
                  "3. sometimes\n4. seldom\n5. never\n\nAnswer with the number of one option "
                  "only (1-5).", ("always", "usually", "sometimes", "seldom", "never")))
    print("| item (options printed pole first) | system prompt | P(1) P(2) P(3) P(4) P(5) |")
    print("|---|---|---|")
    for name, user, options in items:
        for label, system in SYSTEMS.items():
            print(f"| {name} ({options[0]} … {options[-1]}) | {label} | {probs(user, system)} |")


if __name__ == "__main__":
    main(sys.argv[1:])
