"""Answer formats: the option words as the reply (token tries scored in one forward pass, equal to
a brute-force forward), the greedy path, matching a generated reply to an option's words, the
model check in every format, ``--format auto`` and the inputs each format refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from synthetic import by_content, by_format, by_position, install

from culturetune.core.errors import CultureTuneError
from culturetune.instrument import formats
from culturetune.instrument.vsm import load_instrument
from culturetune.model.engine import PromptScorer, split_tokens
from culturetune.model.replies import OFF, ReplySet, SharedStart, Trie
from culturetune.reading.answers import NO_ANSWER
from culturetune.reading.check import check_formats, choose_format, content_format, run_check
from culturetune.reading.prompts import check_instrument_format, item_prompt, word_forms
from culturetune.reading.survey import Survey

IMPORTANCE = ["of utmost importance", "very important", "of moderate importance",
              "of little importance", "of very little or no importance"]


# --------------------------------------------------------------------------- formats, no model


def test_each_format_lists_the_options_its_own_way() -> None:
    item = load_instrument().items[0]
    order = (4, 3, 2, 1, 0)
    number = item_prompt(item, order, fmt="number").splitlines()
    letter = item_prompt(item, order, fmt="letter").splitlines()
    words = item_prompt(item, order, fmt="words").splitlines()
    assert "1. of very little or no importance" in number and number[-1].endswith("(1-5).")
    assert "A. of very little or no importance" in letter and letter[-1].endswith("(A-E).")
    assert words[-7:-2] == IMPORTANCE[::-1]  # the words alone, in the view's order
    assert words[-1] == "Answer with the exact words of one option only."


@pytest.mark.parametrize(("reply", "want"), [
    ("of moderate importance", 2),
    ("Of Moderate Importance.", 2),
    ("- of little importance", 3),
    ('"very important"', 1),
    ("3. of moderate importance", 2),
    ("of very little or no importance, because", 4),
    ("moderate importance", 2),  # a run of words found in exactly one option
    ("importance", None),  # in four options: no answer
    ("I'm glad you asked for a job that is of utmost importance.", None),
    ("", None),
])
def test_a_reply_is_matched_to_an_options_words(reply: str, want: int | None) -> None:
    assert formats.match_words(reply, IMPORTANCE) == want


def test_labels_are_matched_in_number_and_letter_replies() -> None:
    assert formats.match_label("3", "number", 5) == 2
    assert formats.match_label("Answer: 6", "number", 5) is None
    assert formats.match_label("B. agree", "letter", 5) == 1
    assert formats.match_label("(e)", "letter", 5) == 4
    assert formats.match_label("F", "letter", 5) is None


@pytest.mark.parametrize(("options", "says"), [
    (["agree", "Agree", "x", "y", "z"], "the same words"),
    (["agree", "agree strongly", "x", "y", "z"], "is the start of option 2"),
    (["agree", "  ", "x", "y", "z"], "no words"),
    (["agree", "!!", "x", "y", "z"], "no words"),
    (["a" * 300, "b", "x", "y", "z"], "characters"),
])
def test_options_the_words_format_cannot_tell_apart_are_refused(options, says) -> None:
    with pytest.raises(CultureTuneError, match=says):
        formats.check_option_words("m01", options)


def test_an_instrument_with_its_own_number_instruction_needs_one_per_format(tmp_path) -> None:
    data = load_instrument().to_dict()
    data["instruction"] = "Antworten Sie nur mit der Nummer einer Option (1-5)."
    path = tmp_path / "de.json"
    path.write_text(json.dumps(data))
    inst = load_instrument(str(path))
    check_instrument_format(inst, "number")
    with pytest.raises(CultureTuneError, match='"instructions": {"words"'):
        check_instrument_format(inst, "words")
    data["instructions"] = {"words": "Antworten Sie mit den Worten einer Option."}
    path.write_text(json.dumps(data))
    inst = load_instrument(str(path))
    check_instrument_format(inst, "words")
    assert item_prompt(inst.items[0], fmt="words",
                       instruction=inst.instructions["words"]).endswith("einer Option.")


def test_a_trie_shares_leading_tokens_and_keeps_every_form() -> None:
    trie = Trie.build([[[1, 2, 3]], [[1, 2, 4]], [[5]], [[1, 6], [7]]])
    assert trie.token == [1, 2, 3, 4, 5, 6, 7]  # "1 2" is shared by the first two options
    assert trie.internal == [0, 1]
    assert trie.paths == [[[0, 1, 2]], [[0, 1, 3]], [[4]], [[0, 5], [6]]]
    with pytest.raises(ValueError, match="in common"):
        Trie.build([[[1, 2]], [[1, 2]]])
    replies = ReplySet([[[[1, 2, 3]], [[1, 2, 4]], [[5]], [[1, 6], [7]]]])
    # node log-probabilities: the sequence is the sum, the forms add up as probabilities
    node = torch.log(torch.tensor([[[0.5, 0.4, 0.3, 0.6, 0.1, 0.2, 0.05]]]))
    got = replies.option_logprobs(node).exp()[0, 0]
    want = [0.5 * 0.4 * 0.3, 0.5 * 0.4 * 0.6, 0.1, 0.5 * 0.2 + 0.05]
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)
    # the greedy path: slot 0 says 1, slot 1 (after 1) says 2, slot 2 (after 1 2) says 4
    assert replies.greedy(np.array([[[1, 2, 4]]]))[0, 0] == 1
    assert replies.greedy(np.array([[[7, 0, 0]]]))[0, 0] == 3  # a one-token form
    assert replies.greedy(np.array([[[1, 9, 0]]]))[0, 0] == OFF  # leaves the trie after "1"


# --------------------------------------------------------------------------- the engine


def _segments(lm, users, placement):
    texts, splits = [], []
    for u in users:
        text, at = lm.render(u, "Answer briefly.")
        texts.append(text)
        splits.append({"prefix": 0, "system": at, "answer": len(text)}[placement])
    return split_tokens(lm, texts, splits)


@pytest.mark.model
@pytest.mark.parametrize("placement", ["answer", "system", "prefix"])
def test_option_words_equal_a_brute_force_forward(lm32, placement) -> None:
    """Every option's log-probability as the whole reply, from the trie under a tree mask,
    equals a plain forward over the prompt, the soft prompt and that option's tokens."""
    tok = lm32.tokenizer
    inst = load_instrument()
    items = [inst.items[0], inst.items[14], inst.items[22]]  # importance, frequency, agreement
    users = [item_prompt(it, (4, 3, 2, 1, 0) if k % 2 else None, fmt="words")
             for k, it in enumerate(items)]
    shown = [list(it.options)[::-1] if k % 2 else list(it.options) for k, it in enumerate(items)]
    seqs = [[tok.encode(o, add_special_tokens=False) for o in s] for s in shown]
    segs = _segments(lm32, users, placement)
    replies = ReplySet([[[ids] for ids in s] for s in seqs], pad=tok.pad_token_id or 0)
    assert replies.n_internal >= 4  # "of", "of very", ... are shared, scored once
    scorer = PromptScorer(lm32, segs, replies=replies)
    g = torch.Generator().manual_seed(0)
    soft = torch.randn(2, 3, lm32.hidden_size, generator=g) * lm32.embedding_stats[1]
    got, _ = scorer.reply_scores(soft)
    embed = lm32.model.get_input_embeddings()
    for c in range(2):
        for i in range(len(users)):
            pre, post = segs.pre[i], segs.post[i]
            for o, ids in enumerate(seqs[i]):
                parts = [embed(torch.tensor(x)) for x in (pre,) if x]
                parts += [soft[c]] + [embed(torch.tensor(x)) for x in (post, ids) if x]
                logits = lm32.model(inputs_embeds=torch.cat(parts)[None]).logits[0]
                logp = logits.float().log_softmax(-1)
                start = len(pre) + 3 + len(post) - 1
                want = sum(float(logp[start + j, t]) for j, t in enumerate(ids))
                assert abs(float(got[c, i, o]) - want) < 1e-3, (placement, c, i, o)


@pytest.mark.model
def test_the_greedy_path_spells_the_option_greedy_decoding_says(lm32) -> None:
    """An option made of the model's own greedy continuation is what the greedy path says;
    without it among the options, the path leaves the trie."""
    from culturetune.model.generate import generate

    tok = lm32.tokenizer
    users = ["Name a colour.", "Say hello."]
    segs = _segments(lm32, users, "answer")
    said = generate(lm32, segs, max_new_tokens=3)
    greedy = [tok.encode(t, add_special_tokens=False)[:3] for t in said]
    other = [tok.encode(w, add_special_tokens=False) for w in ("zebra crossing", "quantum")]
    options = [[[greedy[i]], [other[0]], [other[1]]] for i in range(2)]
    scorer = PromptScorer(lm32, segs, replies=ReplySet(options, pad=tok.pad_token_id or 0))
    logp, path = scorer.reply_scores(None)
    assert path[0].tolist() == [0, 0]
    assert (logp[0, :, 0] > logp[0, :, 1]).all()
    without = [[[other[0]], [other[1]], [tok.encode("maybe", add_special_tokens=False)]]] * 2
    scorer = PromptScorer(lm32, segs, replies=ReplySet(without, pad=tok.pad_token_id or 0))
    assert (scorer.reply_scores(None)[1] == OFF).all()


@pytest.mark.model
def test_the_number_format_reads_as_before_and_words_reports_its_mass(lm32) -> None:
    """The number format is the words machinery with one-token options: an option's
    probability is what a plain forward over the prompt puts on its label's forms, renormalised
    over the options, mapped back to content order; the mass is what the options hold of the
    whole vocabulary."""
    survey = Survey(lm32, orders="both", format="number")
    number = survey.read()
    words = Survey(lm32, orders="both", format="words").read()
    n_i = len(survey.instrument.items)
    for order, k in ((0, 0), (1, n_i + 3)):  # item 1 printed, item 4 reversed
        ids = survey.segments.pre[k] + survey.segments.post[k]
        with torch.no_grad():
            logits = lm32.model(torch.tensor([ids])).logits[0, -1]
        p = logits.double().softmax(-1)
        shown = np.array([sum(float(p[form[0]]) for form in forms)
                          for forms in survey.reply_options[k]])
        content = np.empty(5)
        content[list(survey.orders[order])] = shown / shown.sum()
        item = k - order * n_i
        np.testing.assert_allclose(number.by_order[0, order, item], content, atol=1e-4)
        assert number.mass[0, order, item] == pytest.approx(shown.sum(), abs=1e-4)
    assert number.mass.mean() > 0.3  # the bundled model says a number
    assert words.mass.mean() < 0.2  # and does not copy an option's words (it chats)


# --------------------------------------------------------------------------- the check


@pytest.mark.model
def test_a_respondent_that_answers_by_words_answers_by_content_in_words_only(
    lm32, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path))
    install(monkeypatch, by_format(by_content(), ("words",)))
    checks = check_formats(lm32)
    assert checks["words"].verdict == "answers by content", checks["words"].summary()
    assert checks["number"].verdict == "answers by position"
    assert checks["letter"].verdict == "answers by position"
    assert content_format(checks) == "words"
    choice = choose_format(lm32, "auto")
    assert choice.format == "words" and "answers by content in the words" in choice.reason
    assert choose_format(lm32, "letter").format == "letter"


@pytest.mark.model
def test_a_respondent_that_copies_the_first_option_answers_by_position_in_words(
    lm32, monkeypatch, tmp_path
) -> None:
    monkeypatch.setenv("CULTURETUNE_CACHE", str(tmp_path))
    install(monkeypatch, by_position(0))
    check = run_check(lm32, format="words")
    assert check.verdict == "answers by position" and check.format == "words"
    assert check.said["printed"] == [1] * 24 and check.said["reversed"] == [1] * 24
    checks = check_formats(lm32)
    choice = choose_format(lm32, "auto", checks=checks)
    assert choice.format == "number" and "in no format" in choice.reason


@pytest.mark.model
def test_said_words_are_read_from_the_reply_where_the_path_leaves_the_options(
    lm32, monkeypatch
) -> None:
    """A reply that leaves the options' tokens is generated and matched to the words."""
    survey = Survey(lm32, orders="both", format="words")
    monkeypatch.setattr(Survey, "_scores", lambda self, soft: (
        torch.full((1, self.n_prompts, 5), -3.0),
        np.full((1, self.n_prompts), NO_ANSWER)))
    replies = {0: "- Of Moderate Importance", 1: "no idea"}
    monkeypatch.setattr(Survey, "generate", lambda self, soft=None, max_new_tokens=None,
                        which=None: [replies.get(k, "never") for k in which])
    said, texts = survey.said(survey.read())
    assert said[0, 0] == 2  # option 3, "of moderate importance"
    assert said[0, 1] == NO_ANSWER and texts[1] == "no idea"
    # "never" is option 5 of item 15 printed, and option 1 of item 20 (never..always)
    assert said[0, 14] == 4 and said[0, 19] == 0
    # the objective's said reading is the same definition: the path, then the reply matched
    from culturetune.instrument.targets import lookup_country
    from culturetune.instrument.vsm import parse_constants
    from culturetune.reading.administer import run_survey
    from culturetune.tuning.objective import Objective

    constants = parse_constants(None)
    objective = Objective(survey, lookup_country("China"), constants, reading="said")
    shown = run_survey(survey, answers="said", constants=constants)
    got = objective.indices(None)[0]
    assert [round(float(v), 9) for v in got] == [round(shown.indices[d], 9) for d in shown.indices]
    middle = Objective(survey, lookup_country("China"), constants, reading="said")
    monkeypatch.setattr(Survey, "generate", lambda self, soft=None, max_new_tokens=None,
                        which=None: ["no idea" for _ in which])
    assert not np.allclose(middle.indices(None)[0], got)  # the replies moved the indices


@pytest.mark.model
def test_an_option_is_scored_and_said_in_its_capitalised_form_too(lm32) -> None:
    """Each option's words are scored as written and with a capital first letter: an item's
    option mass is the sum over both forms of every option (a plain forward per form), and a
    greedy path that spells the capitalised form says the option."""
    tok = lm32.tokenizer
    survey = Survey(lm32, orders="shown", format="words")
    options = survey.shown[0]
    for text, forms in zip(options, survey.reply_options[0], strict=True):
        assert forms == [tok.encode(text, add_special_tokens=False),
                         tok.encode(text[0].upper() + text[1:], add_special_tokens=False)]
    prompt = survey.segments.pre[0] + survey.segments.post[0]
    total = 0.0
    for forms in survey.reply_options[0]:
        for ids in forms:
            with torch.no_grad():
                logits = lm32.model(torch.tensor([prompt + ids])).logits[0]
            logp = logits.double().log_softmax(-1)
            total += float(sum(logp[len(prompt) - 1 + j, t] for j, t in enumerate(ids)).exp())
    assert survey.read().mass[0, 0, 0] == pytest.approx(total, rel=1e-3)
    replies = ReplySet([survey.reply_options[0]])
    capital = survey.reply_options[0][1][1]  # "Very important"
    top = np.zeros((1, 1, 1 + replies.n_internal), dtype=np.int64)
    slot = 0
    for t in capital:
        top[0, 0, slot] = t
        node = replies._child[0][(slot, t)]
        slot = replies._slot_of[0].get(node, 0)
    assert replies.greedy(top)[0, 0] == 1


@pytest.mark.parametrize(("options", "short", "long"), [
    ([[[1, 2]], [[1, 2, 3]], [[4]]], 0, 1),  # option 1's tokens start option 2's
    ([[[1, 2, 3]], [[4]], [[1, 2]]], 2, 0),  # the shorter one comes later
    ([[[5]], [[1], [1, 4]]], 1, 1),  # one option's two forms
])
def test_options_that_start_one_another_in_tokens_are_refused(options, short, long) -> None:
    """With no end-of-reply token the shorter reply's probability would hold the longer one's
    too, and the options are normalised: such options are refused, on the trie alone."""
    with pytest.raises(SharedStart) as caught:
        Trie.build(options)
    assert (caught.value.short, caught.value.long) == (short, long)
    Trie.build([[[1, 2]], [[1, 3]], [[4]]])  # a shared start that ends apart is fine


def test_the_words_format_refuses_options_one_of_which_starts_another_in_tokens() -> None:
    """"good" and "goodish" are two options in words (neither is the other's first word), but a
    tokenizer that spells "goodish" as "good" + "ish" would count the reply "goodish" as
    "good" too: one error names them."""
    from types import SimpleNamespace

    vocab = {"good": [1], "Good": [2], "goodish": [1, 3], "Goodish": [2, 3], "poor": [4],
             "Poor": [5]}
    lm = SimpleNamespace(tokenizer=SimpleNamespace(
        encode=lambda text, add_special_tokens=False: vocab[text]))
    formats.check_option_words("m01", ["good", "goodish", "poor"])  # the words check passes
    with pytest.raises(CultureTuneError) as caught:
        word_forms(lm, ["good", "goodish", "poor"], "m01")
    assert str(caught.value).startswith("item m01: options 'good' and 'goodish' start with the "
                                        "same tokens")
    assert word_forms(lm, ["good", "poor"]) == [[[1], [2]], [[4], [5]]]


@pytest.mark.model
def test_words_needs_a_chat_template(lm32, monkeypatch) -> None:
    monkeypatch.setattr(lm32.tokenizer, "chat_template", None)
    with pytest.raises(CultureTuneError, match="no chat template"):
        Survey(lm32, format="words")
    Survey(lm32, format="number")  # the plain prompt format still takes numbers


# --------------------------------------------------------------------------- memory


@pytest.mark.model
def test_batch_shapes_do_not_move_with_the_free_memory(lm32, monkeypatch) -> None:
    """Under a small memory limit (CULTURETUNE_MEMORY_LIMIT) a forward pass takes the same rows
    and generation the same prompts at once: the shape of the work is the model's and the
    settings', so the numbers are identical, not merely close."""
    from culturetune.model.generate import generate, generation_batch

    survey = Survey(lm32, orders="both", format="words")
    g = torch.Generator().manual_seed(3)
    soft = torch.randn(4, 2, lm32.hidden_size, generator=g) * lm32.embedding_stats[1]
    roomy = survey.read(soft)
    scorer = survey.scorer._scorers[-1]
    wide, batch = scorer.rows_per_pass(2), generation_batch(lm32, 200, 8)
    texts = generate(lm32, survey.segments, None, max_new_tokens=3)[:6]
    monkeypatch.setenv("CULTURETUNE_MEMORY_LIMIT", "96MiB")
    assert scorer.rows_per_pass(2) == wide and generation_batch(lm32, 200, 8) == batch
    tight = Survey(lm32, orders="both", format="words").read(soft)
    np.testing.assert_array_equal(tight.by_order, roomy.by_order)
    np.testing.assert_array_equal(tight.said, roomy.said)
    assert generate(lm32, survey.segments, None, max_new_tokens=3)[:6] == texts
