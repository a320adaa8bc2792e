"""The batched scorer against a plain full forward pass (float32, the bundled default model)."""

from __future__ import annotations

import pytest
import torch

from culturetune.instrument.vsm import load_instrument
from culturetune.model.engine import PromptScorer
from culturetune.reading.prompts import PLACEMENTS, item_prompt, prompt_segments
from culturetune.reading.survey import Survey

pytestmark = pytest.mark.model


def full_forward(lm, pre: list[int], soft: torch.Tensor, post: list[int]) -> torch.Tensor:
    """Next-token log-probabilities of one prompt with the soft prompt spliced in, no cache."""
    embed = lm.model.get_input_embeddings()
    parts = [embed(torch.tensor(ids)) for ids in (pre,) if ids] + [soft]
    parts += [embed(torch.tensor(post))] if post else []
    with torch.no_grad():
        logits = lm.model(inputs_embeds=torch.cat(parts)[None]).logits[0, -1]
    return logits.float().log_softmax(-1)


@pytest.mark.parametrize("placement", PLACEMENTS)
@pytest.mark.parametrize("shared", [True, False])
def test_scorer_equals_full_forward(lm32, placement: str, shared: bool) -> None:
    items = load_instrument().items[:3]
    system = "You are a helpful assistant." if placement == "system" else None
    segs = prompt_segments(lm32, [item_prompt(i) for i in items], system, placement)
    scorer = PromptScorer(lm32, segs)
    scorer.shared_attention = shared
    soft = torch.randn(2, 4, lm32.hidden_size, generator=torch.Generator().manual_seed(1)) * 0.05
    with torch.no_grad():
        got, top = scorer.next_token_scores(soft)
    assert got.shape == (2, len(items), lm32.model.config.vocab_size)
    assert torch.equal(top, got.argmax(-1))  # the greedy first token, from the same logits
    assert scorer.shared_attention == shared  # the shared-prefix path ran (no silent fallback)
    for c in range(2):
        for i in range(len(items)):
            want = full_forward(lm32, segs.pre[i], soft[c], segs.post[i])
            torch.testing.assert_close(got[c, i], want, atol=2e-4, rtol=0)


def test_plain_answers_do_not_depend_on_the_placement(lm32) -> None:
    answer, _ = Survey(lm32, placement="answer", orders="shown").option_probs(None)
    for placement in ("prefix", "system"):
        other, _ = Survey(lm32, placement=placement, orders="shown").option_probs(None)
        torch.testing.assert_close(torch.as_tensor(other), torch.as_tensor(answer), atol=1e-5,
                                   rtol=0)


def test_shared_attention_in_bf16_is_close_to_float32(lm32) -> None:
    """The attention dtype a GPU uses (the model's own, here bf16) gives the float32 answers
    within bf16 rounding; the CPU default stays float32."""
    items = load_instrument().items[:3]
    segs = prompt_segments(lm32, [item_prompt(i) for i in items], None, "answer")
    soft = torch.randn(2, 4, lm32.hidden_size, generator=torch.Generator().manual_seed(2)) * 0.05
    ref = PromptScorer(lm32, segs)
    assert ref.attention_dtype == torch.float32  # on the CPU
    low = PromptScorer(lm32, segs, attention_dtype=torch.bfloat16)
    with torch.no_grad():
        want, got = ref.next_token_logprobs(soft), low.next_token_logprobs(soft)
    assert low.shared_attention and low.kv_attn[0][0].dtype == torch.bfloat16
    probs_want, probs_got = want.exp(), got.exp()
    assert float((probs_want - probs_got).abs().max()) < 0.02
