"""A condition of a CulturalBench run: what is applied to the model (a system prompt, persona
prompting, and/or a soft prompt), and the list of conditions a bench compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from culturetune.core.errors import CultureTuneError
from culturetune.model.loading import LoadedModel
from culturetune.reading.administer import PLACEMENTS, persona_prompt


@dataclass
class Condition:
    """What is applied to the model: a system prompt and/or a soft prompt.

    ``persona=True`` uses :func:`culturetune.reading.administer.persona_prompt` of each question's
    country as the system prompt. ``soft`` is a :class:`~culturetune.tuning.softprompt.SoftPrompt`
    (any object with ``embeddings`` ``[tokens, hidden]`` and ``placement`` in prefix/system/answer).
    """

    name: str
    system: str | None = None
    soft: Any = None
    persona: bool = False

    def __post_init__(self) -> None:
        if not str(self.name).strip():
            raise CultureTuneError("a condition needs a name")
        if self.persona and self.system is not None:
            raise CultureTuneError(f"condition {self.name!r}: give either a system prompt or "
                                   "persona=True, not both")
        if self.soft is not None:
            emb = getattr(self.soft, "embeddings", None)
            placement = getattr(self.soft, "placement", None)
            if not isinstance(emb, torch.Tensor) or emb.dim() != 2:
                raise CultureTuneError(f"condition {self.name!r}: the soft prompt needs "
                                       "embeddings of shape [tokens, hidden]")
            if placement not in PLACEMENTS:
                raise CultureTuneError(f"condition {self.name!r}: unknown soft-prompt placement "
                                       f"{placement!r}; use one of {', '.join(PLACEMENTS)}")

    @classmethod
    def plain(cls) -> Condition:
        return cls("plain")

    @classmethod
    def persona_prompted(cls) -> Condition:
        return cls("persona", persona=True)

    def system_for(self, country: str) -> str | None:
        return persona_prompt(country) if self.persona else self.system

    def soft_tensor(self, lm: LoadedModel) -> torch.Tensor | None:
        """The soft prompt as ``[1, tokens, hidden]`` (``None`` without one)."""
        if self.soft is None:
            return None
        emb = self.soft.embeddings
        if int(emb.shape[1]) != lm.hidden_size:
            raise CultureTuneError(
                f"condition {self.name!r}: the soft prompt has hidden size {int(emb.shape[1])} "
                f"but model {lm.name} has {lm.hidden_size}; use a prompt tuned for this model"
            )
        return emb.detach()[None]

    def split_at(self, text: str, user_offset: int) -> int:
        """Character offset in a rendered prompt where the soft prompt goes."""
        placement = None if self.soft is None else self.soft.placement
        return {"prefix": 0, "system": user_offset}.get(placement, len(text))

    def to_dict(self) -> dict[str, Any]:
        soft = None
        if self.soft is not None:
            soft = {"tokens": int(self.soft.embeddings.shape[0]), "placement": self.soft.placement}
        return {"name": self.name, "system": self.system, "persona": self.persona,
                "soft_prompt": soft}


def conditions(persona: bool = False, prompts: Sequence[tuple[str, Any]] = ()) -> list[Condition]:
    """The plain model, persona prompting (when asked) and one condition per soft prompt, given
    as (name, prompt) pairs: a prompt is named by its name (a folder's last part), with ``'``
    added while that name is taken."""
    out = [Condition.plain()] + ([Condition.persona_prompted()] if persona else [])
    names = {"plain", "persona"}
    for name, soft in prompts:
        name = Path(name).name or str(name)
        while name in names:
            name += "'"
        names.add(name)
        out.append(Condition(name, soft=soft))
    return out
