"""Synthetic Likert items for the respondent: its own statements, scales and stances.

Each example is one survey question on an everyday topic, its five options listed in a random
order and numbered, and a respondent's stance in the system prompt. The stance decides the
content-correct option: a stance that matches the statement gives the agreeing (important,
frequent, likely) end, one that contradicts it the other end, an unrelated or undecided one the
middle, with mild stances on the steps between. Negated statements turn the answer around, so
that the stance's words alone do not give the answer. The reply is the shown number of that
option, so that only an answer by content is correct in every order.

None of these texts is a VSM 2013 item or a rewording of one:
:func:`~culturetune.respondent.overlap.max_overlap` measures the share of content words any text
here shares with any item of the bundled wordings, and the tests hold it under
:data:`MAX_SHARED`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The bound on shared content words (with any VSM 2013 item, stem or probe prompt).
MAX_SHARED = 0.5

#: (topic, act, pro stance, con stance). ``act`` completes "How often do you ...".
STATEMENTS: tuple[tuple[str, str, str, str], ...] = (
    ("cooking", "cook dinner from fresh ingredients",
     "You love cooking and find ready meals dull.",
     "You find cooking tedious and prefer ready meals."),
    ("cooking", "try recipes from faraway cuisines",
     "You are curious about food from other parts of the world.",
     "You stick to the dishes you grew up with."),
    ("cooking", "grow vegetables in a garden or on a balcony",
     "You enjoy gardening and like eating what you grow.",
     "You have no patience for gardening and buy all your vegetables."),
    ("sport", "go running before breakfast",
     "You are an early riser who loves exercise.",
     "You hate exercise and sleep as late as you can."),
    ("sport", "watch football matches on television",
     "You are a passionate football fan.",
     "You find football boring and never follow it."),
    ("sport", "swim in cold lakes or the sea",
     "You love cold water and swim outdoors all year.",
     "You dislike cold water and avoid swimming outdoors."),
    ("travel", "take long trips by train",
     "You love train journeys and the views from the window.",
     "You find train journeys slow and tiresome."),
    ("travel", "spend holidays in big cities",
     "You enjoy museums, crowds and the bustle of cities.",
     "You avoid cities and seek quiet places on holiday."),
    ("travel", "go camping in a tent",
     "You adore camping and sleeping under the stars.",
     "You cannot stand camping and insist on a comfortable hotel."),
    ("reading", "read novels in bed at night",
     "You are a keen reader of fiction.",
     "You rarely read books and find novels boring."),
    ("reading", "read the newspaper in the morning",
     "You follow the news closely every day.",
     "You ignore the news and never read newspapers."),
    ("reading", "borrow books from the public library",
     "You are a regular visitor of libraries.",
     "You never set foot in a library."),
    ("technology", "buy the newest mobile phone when it comes out",
     "You are fascinated by new gadgets.",
     "You use old devices until they break."),
    ("technology", "post photos on social media",
     "You like sharing moments of your day online.",
     "You dislike social media and keep your life offline."),
    ("technology", "play video games in the evening",
     "You are an enthusiastic gamer.",
     "You think video games are a waste of time."),
    ("music", "sing in a choir",
     "You love singing together with other people.",
     "You are shy about singing and never sing in public."),
    ("music", "listen to classical music",
     "You are devoted to classical music.",
     "You find classical music dull."),
    ("music", "go to loud concerts",
     "You love live bands and loud music.",
     "You find loud concerts unbearable."),
    ("pets", "walk a dog in the park",
     "You are a dog lover.",
     "You are afraid of dogs and keep away from them."),
    ("pets", "keep cats at home",
     "You adore cats.",
     "You are allergic to cats and dislike them."),
    ("housekeeping", "clean and tidy your home",
     "You are very neat and cannot bear a messy room.",
     "You do not mind mess and rarely tidy up."),
    ("housekeeping", "redecorate your rooms",
     "You enjoy changing furniture and painting walls.",
     "You like your rooms to stay exactly as they are."),
    ("housekeeping", "repair broken things yourself",
     "You are handy and enjoy fixing things.",
     "You are clumsy with tools and hire a handyman."),
    ("shopping", "buy clothes online",
     "You prefer shopping online for clothes.",
     "You only buy clothes in shops where you can try them on."),
    ("shopping", "compare prices in several shops before buying",
     "You always look for the best price.",
     "You buy the first thing you like without comparing."),
    ("shopping", "shop at the weekly farmers' market",
     "You love fresh produce from local farmers.",
     "You find markets crowded and go to the supermarket."),
    ("nature", "walk in the forest",
     "You feel at peace among trees.",
     "You find forests gloomy and stay in town."),
    ("nature", "watch birds with binoculars",
     "You are an eager birdwatcher.",
     "You have no interest in birds."),
    ("transport", "ride a bicycle to get around",
     "You cycle everywhere and love it.",
     "You never ride a bicycle and find it unsafe."),
    ("transport", "drive a car on long journeys",
     "You enjoy driving for hours on open roads.",
     "You dislike driving and avoid cars."),
    ("learning", "learn a foreign language",
     "You love learning new languages.",
     "You have no interest in foreign languages."),
    ("learning", "take evening classes",
     "You like studying new subjects after hours.",
     "You want nothing to do with classes once the day is over."),
    ("learning", "solve crossword puzzles",
     "You enjoy word puzzles and riddles.",
     "You find puzzles frustrating."),
    ("arts", "visit art galleries",
     "You are passionate about painting and sculpture.",
     "You find art galleries boring."),
    ("arts", "paint or draw pictures",
     "You love drawing and painting.",
     "You think you cannot draw and never try."),
    ("arts", "go to the theatre",
     "You are a devoted theatre goer.",
     "You find plays long and tedious."),
    ("food", "eat spicy food",
     "You love hot chilli and spices.",
     "You cannot tolerate spicy food."),
    ("food", "drink coffee in the afternoon",
     "You are a coffee lover.",
     "You dislike coffee and never drink it."),
    ("food", "eat sweets and desserts",
     "You have a sweet tooth.",
     "You avoid sugar and dislike desserts."),
    ("weather", "spend sunny afternoons on the beach",
     "You love sunbathing by the sea.",
     "You avoid the sun and dislike beaches."),
    ("weather", "go out walking in the rain",
     "You enjoy walking in the rain.",
     "You stay indoors whenever it rains."),
    ("weather", "ski in the mountains in winter",
     "You are a keen skier.",
     "You hate snow and cold mountains."),
    ("celebrations", "throw big birthday parties",
     "You love celebrating birthdays with many guests.",
     "You prefer to let your birthday pass quietly."),
    ("celebrations", "dance at weddings",
     "You are always first on the dance floor.",
     "You never dance, not even at weddings."),
    ("neighbours", "chat with your neighbours",
     "You are on friendly terms with everyone in your street.",
     "You keep to yourself and hardly know your neighbours."),
    ("neighbours", "volunteer for events in your neighbourhood",
     "You eagerly help organise local events.",
     "You stay away from local events."),
    ("mornings", "get up before sunrise",
     "You are an early bird.",
     "You are a night owl who sleeps until late."),
    ("mornings", "eat a large breakfast",
     "You never skip a big breakfast.",
     "You never eat anything in the morning."),
    ("writing", "write letters by hand",
     "You enjoy handwriting letters and cards.",
     "You find handwriting slow and only type."),
    ("writing", "keep a diary",
     "You write in your diary every evening.",
     "You have never seen the point of a diary."),
    ("games", "play chess",
     "You are a chess enthusiast.",
     "You find chess slow and dull."),
    ("games", "play cards with relatives",
     "You love card games at family gatherings.",
     "You never play card games."),
    ("cinema", "watch horror films",
     "You love being scared by horror films.",
     "You cannot watch horror films at all."),
    ("cinema", "go to the cinema",
     "You go to see every new film.",
     "You never go to the cinema."),
    ("photography", "take photographs of landscapes",
     "You are an enthusiastic landscape photographer.",
     "You never bother taking photographs."),
    ("fashion", "wear bright colours",
     "You love bold, bright clothes.",
     "You only wear grey and black."),
    ("fashion", "change your hairstyle",
     "You like trying new hairstyles.",
     "You have kept the same hairstyle for years."),
    ("water", "go sailing on a boat",
     "You are happiest on a sailing boat.",
     "You get seasick and avoid boats."),
    ("water", "go fishing by a river",
     "You find fishing relaxing.",
     "You find fishing boring."),
    ("crafts", "knit or sew your own clothes",
     "You love knitting and sewing.",
     "You have no interest in needlework."),
    ("crafts", "build furniture from wood",
     "You enjoy woodworking.",
     "You have never touched a saw and never want to."),
    ("plants", "keep many house plants",
     "Your home is full of plants that you care for.",
     "You dislike house plants."),
    ("sleep", "take a nap after lunch",
     "You love an afternoon nap.",
     "You never sleep during the day."),
    ("history", "visit castles and old ruins",
     "You are fascinated by history and old buildings.",
     "You find old ruins uninteresting."),
)

#: Five-point scales, their agreeing (important, frequent, likely) pole first. Each has
#: several label sets and question forms; ``{act}`` is a statement's act.
SCALES: dict[str, tuple[tuple[tuple[str, ...], ...], tuple[str, ...]]] = {
    "frequency": (
        (("always", "often", "sometimes", "rarely", "never"),
         ("very often", "often", "sometimes", "seldom", "never"),
         ("always", "usually", "sometimes", "seldom", "never"),
         ("every day", "every week", "every month", "once a year", "never")),
        ("How often do you {act}?", "How frequently would you {act}?",
         "In a typical month, how often do you {act}?"),
    ),
    "importance": (
        (("extremely important", "very important", "moderately important",
          "slightly important", "not important at all"),
         ("of utmost importance", "very important", "of moderate importance",
          "of little importance", "of very little or no importance"),
         ("essential", "important", "neither important nor unimportant", "unimportant",
          "completely unimportant")),
        ("How important is it to you to {act}?", "How much does it matter to you to {act}?"),
    ),
    "agreement": (
        (("strongly agree", "agree", "neither agree nor disagree", "disagree",
          "strongly disagree"),
         ("strongly agree", "agree", "undecided", "disagree", "strongly disagree"),
         ("completely agree", "mostly agree", "unsure", "mostly disagree",
          "completely disagree")),
        ("How much do you agree with this statement? \"I like to {act}.\"",
         "Do you agree or disagree: \"I enjoy it when I {act}.\""),
    ),
    "likelihood": (
        (("very likely", "likely", "not sure", "unlikely", "very unlikely"),
         ("almost certain", "probable", "fifty-fifty", "improbable", "almost impossible")),
        ("How likely is it that you will {act} next month?",
         "How likely are you to {act} this year?"),
    ),
    "liking": (
        (("love it", "like it", "neutral", "dislike it", "hate it"),
         ("very good", "good", "fair", "poor", "very poor")),
        ("How do you feel about the chance to {act}?",
         "How would you rate the idea to {act}?"),
    ),
}

#: Agreement questions phrased against the act: the stance's answer turns around.
NEGATED = ("How much do you agree with this statement? \"I would never {act}.\"",
           "Do you agree or disagree: \"I avoid having to {act}.\"")

#: Instructions after the options (the survey's own first; the format, not an item).
INSTRUCTIONS = ("Answer with the number of one option only (1-5).",
                "Reply with the number of your answer.",
                "Give only the number (1-5) of the option you choose.")

#: Stance strengths: content level (1 = agreeing pole) given a matching stance.
_STRONG = ("You feel very strongly about this.", "Nothing could change your mind on this.")
_MILD = ("You feel this only mildly.", "You lean this way, but not strongly.")
_UNDECIDED = ("You have no opinion at all about {topic}.",
              "You are undecided about anything to do with {topic}.")
#: Stances about the scale itself, whatever the item: instructions that name an end of every
#: scale (worded apart from check.HIGH_SYSTEM / LOW_SYSTEM; the tests bound the overlap).
GENERIC = {
    1: ("You are an enthusiast: every answer you give sits at the top end of the scale.",
        "You answer every survey question with the most positive option there is.",
        "Pick the reply that says yes the most: full agreement, top priority, all the time, "
        "certainly.",
        "In this survey you go for the maximum every time: agree completely, essential, "
        "constantly, sure to happen.",
        "Your rule for each question: select the most favourable option offered.",
        "Respond as someone who totally agrees with everything and finds everything vital."),
    5: ("You are a sceptic: every answer you give sits at the bottom end of the scale.",
        "You answer every survey question with the most negative option there is.",
        "Pick the reply that says no the most: full rejection, no priority, not once, "
        "impossible.",
        "In this survey you go for the minimum every time: reject completely, worthless, "
        "never, sure not to happen.",
        "Your rule for each question: select the least favourable option offered.",
        "Respond as someone who totally rejects everything and finds nothing worthwhile."),
    3: ("You always give the answer in the middle of the scale.",
        "Your rule for each question: select the option halfway between the two ends."),
}


@dataclass(frozen=True)
class Example:
    """One synthetic item: system prompt (or None), user message, the content level (1-5, 1 =
    the agreeing pole) and the shown number of the correct option."""

    system: str | None
    user: str
    level: int
    answer: int
    statement: int


def split(seed: int = 0, held_out: float = 0.15) -> tuple[list[int], list[int]]:
    """Statement indices for training and for held-out evaluation (whole statements held out)."""
    order = np.random.default_rng(seed + 1000).permutation(len(STATEMENTS))
    n = max(1, round(held_out * len(STATEMENTS)))
    return sorted(int(i) for i in order[n:]), sorted(int(i) for i in order[:n])


#: Version 1 of the data drew only these stances about the scale (12 % of examples).
GENERIC_V1 = {1: GENERIC[1][:2], 5: GENERIC[5][:2], 3: GENERIC[3][:1]}
#: Share of the examples (version 2, version 3) whose stance is about the scale.
GENERIC_SHARE = {2: 0.3, 3: 0.4, 4: 0.4}
#: Version 4 is version 3's items in pairs that differ only in the stance's direction.
VERSIONS = (1, 2, 3, 4)
#: Version 3's lead-ins before a question, as survey batteries print them (half the examples).
LEAD_INS = ("Think about the way you spend an ordinary week.",
            "The next questions are about your habits and tastes.",
            "Please consider each activity below and say what you think of it.",
            "Here is one more question about daily routines.")


def stance(rng: np.random.Generator, statement: int, level: int,
           pool: list[int], version: int = 2) -> str | None:
    """A system prompt whose content-correct answer is ``level`` on ``statement``'s act.

    Version 1 (the respondent's first stage): 12 % of stances about the scale, two wordings
    each way. Version 2: 30 %, six wordings each way, drawn before the rest."""
    topic, _, pro, con = STATEMENTS[statement]
    if version >= 2 and rng.random() < GENERIC_SHARE[version] and level in GENERIC:
        return str(rng.choice(GENERIC[level]))
    kind = rng.random()
    if version == 1 and kind < 0.12 and level in GENERIC_V1:
        return str(rng.choice(GENERIC_V1[level]))
    if version >= 3 and level == 3:  # no stance on another topic: those taught "middle" to
        kind = min(kind, 0.64)       # any stance the model could not relate to the item
    if level == 3:
        if kind < 0.35:
            return None
        if kind < 0.65:
            return str(rng.choice(_UNDECIDED)).format(topic=topic)
        others = [i for i in pool if STATEMENTS[i][0] != topic]
        other = STATEMENTS[int(rng.choice(others))]
        return str(rng.choice((other[2], other[3])))  # a stance on something else
    base = pro if level < 3 else con
    extra = _STRONG if level in (1, 5) else _MILD
    return f"{base} {rng.choice(extra)}"


def make_example(rng: np.random.Generator, pool: list[int], version: int = 2) -> Example:
    """One example on a statement from ``pool``, options in a random order (a quarter printed
    pole first, a quarter reversed)."""
    return _make(rng, pool, version)[0]


def make_pair(rng: np.random.Generator, pool: list[int], version: int = 4) -> list[Example]:
    """Two examples that differ only in the stance's direction (version 4): the same question,
    options and order, a stance one way and one the other (level ``6 - level``), so that the
    direction is the only thing that tells their answers apart. A middle example (level 3) comes
    with an unrelated second one."""
    a, order, content = _make(rng, pool, version)
    if a.level == 3:
        return [a, _make(rng, pool, version)[0]]
    level = 6 - a.level
    system = stance(rng, a.statement, level, pool, version)
    answer = int(np.flatnonzero(order == (6 - content) - 1)[0]) + 1
    return [a, Example(system, a.user, level, answer, a.statement)]


def _make(rng: np.random.Generator, pool: list[int],
          version: int) -> tuple[Example, np.ndarray, int]:
    statement = int(rng.choice(pool))
    act = STATEMENTS[statement][1]
    scale = str(rng.choice(list(SCALES)))
    label_sets, forms = SCALES[scale]
    labels = label_sets[int(rng.integers(len(label_sets)))]
    level = int(rng.integers(1, 6))
    system = stance(rng, statement, level, pool, version)
    negated = scale == "agreement" and rng.random() < 0.35
    question = str(rng.choice(NEGATED if negated else forms)).format(act=act)
    content = 6 - level if negated else level  # the option (1-based) the stance points to
    u = rng.random()
    order = (np.arange(5) if u < 0.25 else np.arange(5)[::-1] if u < 0.5
             else rng.permutation(5))
    if rng.random() < 0.5:  # the scale printed from its other pole half of the time
        labels = labels[::-1]
        content = 6 - content
    shown = [labels[k] for k in order]
    if version >= 3 and rng.random() < 0.5:
        question = f"{rng.choice(LEAD_INS)}\n{question}"
    lines = [question, ""] + [f"{i}. {label}" for i, label in enumerate(shown, 1)]
    lines += ["", str(rng.choice(INSTRUCTIONS))]
    answer = int(np.flatnonzero(order == content - 1)[0]) + 1
    return Example(system, "\n".join(lines), level, answer, statement), order, content


def examples(n: int, seed: int, pool: list[int], version: int = 2) -> list[Example]:
    """``n`` examples drawn with ``seed`` from the statements in ``pool``."""
    rng = np.random.default_rng(seed)
    return [make_example(rng, pool, version) for _ in range(n)]


def all_texts() -> list[str]:
    """Every statement, question form and stance text the generator can use (for the overlap
    bound)."""
    texts = []
    for topic, act, pro, con in STATEMENTS:
        texts += [pro, con] + [f.format(act=act) for _, forms in SCALES.values() for f in forms]
        texts += [f.format(act=act) for f in NEGATED]
        texts += [u.format(topic=topic) for u in _UNDECIDED]
    texts += [t for ts in GENERIC.values() for t in ts] + list(LEAD_INS)
    return texts
