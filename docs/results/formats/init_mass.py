"""Option mass in the words format under different starts of an answer-placed soft prompt.

    python docs/results/formats/init_mass.py --model qwen2.5-coder-0.5b

An answer-placed prompt sits between the assistant header and the reply. Prints the plain
model's option mass (the probability that the reply is one option's words, mean over the 24
items in both orders) and the mass under each start: two vocabulary samples, a Gaussian, and
text starts (``text``: the text's tokens repeated or cut to the prompt's length; ``lead``: the
last tokens of culturetune's lead-in). This is what chose ``--init auto``.
"""

from __future__ import annotations

import argparse

from culturetune.model.loading import load_model
from culturetune.reading.survey import Survey
from culturetune.tuning.softprompt import initial_prompt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--tokens", type=int, default=5)
    args = ap.parse_args()
    lm = load_model(args.model)
    survey = Survey(lm, "vsm2013", orders="both", format="words")
    print(f"{lm.name}, words format, {args.tokens} virtual tokens, answer placement")
    print(f"plain model: option mass {survey.read(None).mass.mean():.3f}")
    starts = {"vocab, seed 0": ("vocab", None, 0), "vocab, seed 1": ("vocab", None, 1),
              "random": ("random", None, 0), "text 'Answer:\\n'": ("text", "Answer:\n", 0),
              "text 'The answer:\\n\\n'": ("text", "The answer:\n\n", 0),
              "lead": ("lead", None, 0)}
    for name, (init, text, seed) in starts.items():
        soft = initial_prompt(lm, args.tokens, init, text, seed)
        r = survey.read(soft[None])
        print(f"{name:24s} option mass {r.mass.mean():.3f}, greedy reply spells an option on "
              f"{(r.said[0] >= 0).mean():.0%} of prompts")


if __name__ == "__main__":
    main()
