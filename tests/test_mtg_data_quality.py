"""Quality guard for the shipped MTG-LLM training set ``mtg_llm/data/mtg_edits.jsonl``.

The rules below are the data card's (``docs/MTG_DATA.md``) promises, checked line by line:

- every line is a JSON object with ``caption1``, ``caption2``, ``edit``, ``category`` (one of
  :data:`CATEGORIES`) and ``source_style`` (``webvid`` or ``cc``);
- the two captions differ by exactly one word under ``pipeline.text.normalize`` and no (caption1,
  caption2) pair appears twice (after normalisation);
- the edit has 1..12 words (>= 80% of edits 3..8), does not start with a removal verb, and names
  the new concept: the caption2 word, or an inflection of it (``mtg_llm.concepts.is_inflection``);
- phrasing variety: no opening pattern (:func:`opening_pattern`) covers more than 15% of edits and
  no whole masked edit (:func:`masked_edit`) more than 5%;
- caption variety: at least 300 distinct caption skeletons (:func:`caption_skeleton`);
- the data card's category and style tables match the file.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from covr_datagen.mtg_llm.concepts import REMOVAL_VERBS, is_inflection
from covr_datagen.pipeline.text.normalize import normalize, one_word_difference, tokenize

DATA = Path(__file__).resolve().parent.parent / "mtg_llm" / "data" / "mtg_edits.jsonl"
CARD = Path(__file__).resolve().parent.parent / "docs" / "MTG_DATA.md"

KEYS = {"caption1", "caption2", "edit", "category", "source_style"}
STYLES = {"webvid", "cc"}
CATEGORIES = (
    "object", "animal", "person", "count", "colour", "material", "weather", "season", "time_of_day",
    "place", "action", "camera", "style", "food", "vehicle", "attribute", "size",
)
MIN_EXAMPLES = 700
MAX_OPENING_SHARE = 0.15
MAX_MASKED_EDIT_SHARE = 0.05
MIN_SKELETONS = 300
MIN_SHORT_EDIT_SHARE = 0.80  # share of edits with 3..8 words
same_concept = is_inflection  # the rule the evaluation uses too (mtg_llm/concepts.py)


def changed_words(caption1: str, caption2: str) -> tuple[str, str] | None:
    """The (old, new) word of a one-word pair, or ``None`` when the captions are no such pair."""
    w1, w2 = tokenize(caption1), tokenize(caption2)
    i = one_word_difference(w1, w2)
    return None if i is None else (w1[i], w2[i])


def masked_tokens(edit: str, old: str, new: str) -> list[str]:
    """The edit's words with the new concept as ``NEW`` and the old one as ``OLD``."""
    return ["NEW" if same_concept(new, t) else "OLD" if same_concept(old, t) else t
            for t in tokenize(edit)]


def opening_pattern(edit: str, old: str, new: str) -> str:
    """The phrasing pattern of an edit: its first two words after masking the concept words.

    "Make it winter" and "Make it a village house" share ``make it``; "Winter instead" is
    ``NEW instead``; masking keeps edits that open with the concept word ("Horses, not dogs",
    "Snow falling now") from counting as distinct patterns just because the words differ."""
    return " ".join(masked_tokens(edit, old, new)[:2])


def masked_edit(edit: str, old: str, new: str) -> str:
    """The whole edit with the concept words masked: the fill-in template it would come from."""
    return " ".join(masked_tokens(edit, old, new))


def caption_skeleton(caption1: str, caption2: str) -> str:
    """The shared caption with the differing word blanked: pairs in both directions share it."""
    w1, w2 = tokenize(caption1), tokenize(caption2)
    return " ".join("_" if a != b else a for a, b in zip(w1, w2))


def edit_problem(obj: dict) -> str | None:
    """Why one example breaks the per-line rules, or ``None`` when it is fine."""
    if not isinstance(obj, dict) or set(obj) != KEYS:
        return f"keys must be exactly {sorted(KEYS)}"
    if not all(isinstance(obj[k], str) and obj[k].strip() for k in KEYS):
        return "every field must be a non-empty string"
    if obj["category"] not in CATEGORIES:
        return f"unknown category {obj['category']!r}"
    if obj["source_style"] not in STYLES:
        return f"unknown source_style {obj['source_style']!r}"
    words = changed_words(obj["caption1"], obj["caption2"])
    if words is None:
        return "captions do not differ by exactly one word"
    old, new = words
    edit_words = tokenize(obj["edit"])
    if not 1 <= len(edit_words) <= 12:
        return f"edit has {len(edit_words)} words (1..12 allowed)"
    if edit_words[0] in REMOVAL_VERBS:
        return "edit starts with a removal verb"
    if not any(same_concept(new, t) for t in edit_words):
        return f"edit does not name the new concept {new!r}"
    return None


def load_examples(path: Path = DATA) -> list[dict]:
    """The data file's lines as objects; a line that is not JSON fails the test naming its number."""
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            pytest.fail(f"{path.name}:{lineno}: not JSON ({exc})")
    return rows


def card_table(card_text: str, heading: str) -> dict[str, int]:
    """The ``| name | count |`` rows of the card's table under ``## heading`` (total row excluded)."""
    section = card_text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*`?([a-z_]+)`?\s*\|\s*(\d+)\s*\|", section, flags=re.M)
    return {name: int(count) for name, count in rows if name != "total"}


@pytest.fixture(scope="module")
def examples() -> list[dict]:
    return load_examples()


def _concepts(examples: list[dict]) -> list[tuple[str, str, str]]:
    """(edit, old word, new word) of each example that passes :func:`edit_problem`."""
    out = []
    for obj in examples:
        if edit_problem(obj) is None:
            old, new = changed_words(obj["caption1"], obj["caption2"])  # type: ignore[misc]
            out.append((obj["edit"], old, new))
    return out


def set_problems(examples: list[dict], min_examples: int = MIN_EXAMPLES,
                 min_skeletons: int = MIN_SKELETONS) -> list[str]:
    """Why the set as a whole breaks the card's rules (size, duplicates, lengths, variety, coverage);
    the per-line rules are :func:`edit_problem`'s."""
    problems = []
    if len(examples) < min_examples:
        problems.append(f"only {len(examples)} examples (at least {min_examples})")
    line_problems = [f"line {i}: {p}" for i, obj in enumerate(examples, 1) if (p := edit_problem(obj))]
    problems += line_problems[:20]
    good = [obj for obj in examples if edit_problem(obj) is None]
    if not good:
        return problems + ["no valid example"]
    pairs = Counter((normalize(o["caption1"]), normalize(o["caption2"])) for o in good)
    problems += [f"pair {p} appears {n} times" for p, n in pairs.items() if n > 1][:20]
    short = sum(3 <= len(tokenize(o["edit"])) <= 8 for o in good) / len(good)
    if short < MIN_SHORT_EDIT_SHARE:
        problems.append(f"only {short:.1%} of edits have 3..8 words")
    concepts = _concepts(good)
    for name, pattern, limit in [("opening", opening_pattern, MAX_OPENING_SHARE),
                                 ("masked edit", masked_edit, MAX_MASKED_EDIT_SHARE)]:
        top, count = Counter(pattern(*c) for c in concepts).most_common(1)[0]
        if count / len(concepts) > limit:
            problems.append(f"{name} {top!r} covers {count / len(concepts):.1%} of edits (max {limit:.0%})")
    skeletons = {caption_skeleton(o["caption1"], o["caption2"]) for o in good}
    if len(skeletons) < min_skeletons:
        problems.append(f"only {len(skeletons)} caption skeletons (at least {min_skeletons})")
    missing = set(CATEGORIES) - {o["category"] for o in good}
    if missing:
        problems.append(f"categories without examples: {sorted(missing)}")
    if STYLES - {o["source_style"] for o in good}:
        problems.append(f"styles without examples: {sorted(STYLES - {o['source_style'] for o in good})}")
    return problems


# ---- the rules themselves: each must reject what it is meant to reject -------------------------

def test_same_concept_accepts_inflections_and_rejects_other_words():
    for a, b in [("dog", "dogs"), ("box", "boxes"), ("running", "run"), ("diving", "dive"),
                 ("cities", "city"), ("painted", "paint"), ("women", "woman"), ("red", "red"),
                 ("dancing", "dances"), ("falls", "falling"), ("glass", "glasses"), ("old", "older"),
                 ("puppy", "puppies"), ("stripes", "striped"), ("leaves", "leaf"),
                 ("whisper", "whispering"), ("istanbul", "istanbul's"), ("wide", "widen"),
                 ("wood", "wooden")]:
        assert same_concept(a, b), (a, b)
    for a, b in [("water", "watermelon"), ("red", "blue"), ("at", "ate"), ("winter", "summer"),
                 ("horse", "house"), ("dog", "dot"),
                 ("bed", "be"), ("four", "fourth")]:
        assert not same_concept(a, b), (a, b)


def test_edit_problem_names_each_broken_rule():
    good = {"caption1": "Dog on the beach", "caption2": "Horse on the beach", "edit": "Swap in a horse",
            "category": "animal", "source_style": "cc"}
    assert edit_problem(good) is None
    cases = {
        "keys must be": {k: v for k, v in good.items() if k != "category"},
        "unknown category": {**good, "category": "misc"},
        "unknown source_style": {**good, "source_style": "laion"},
        "exactly one word": {**good, "caption2": "Brown horse on a beach"},
        "does not name the new concept": {**good, "edit": "Show the dog running"},
        "removal verb": {**good, "edit": "Remove the dog, add a horse"},
        "edit has 13 words": {**good, "edit": "a " * 12 + "horse"},
        "non-empty": {**good, "edit": "  "},
    }
    for expected, obj in cases.items():
        assert expected in (edit_problem(obj) or ""), (expected, obj)


def test_phrasing_pattern_masks_concept_words():
    assert opening_pattern("Make it winter", "summer", "winter") == "make it"
    assert opening_pattern("Horses, not dogs", "dog", "horse") == "NEW not"
    assert opening_pattern("Dogs become horses", "dog", "horse") == "OLD become"
    assert masked_edit("Turn the dog into a horse", "dog", "horse") == "turn the OLD into a NEW"


def test_card_table_reads_counts():
    text = ("# x\n## Categories\n| category | examples |\n|---|---|\n| `animal` | 3 |\n| total | 3 |\n"
            "## Next\n| `dog` | 9 |\n")
    assert card_table(text, "Categories") == {"animal": 3}


def _example(caption1: str, caption2: str, edit: str, category: str = "animal",
             style: str = "cc") -> dict:
    return {"caption1": caption1, "caption2": caption2, "edit": edit, "category": category,
            "source_style": style}


def test_set_problems_reports_each_broken_set_rule():
    openers = ["Show a", "Make it", "Turn into", "Now a", "Swap in", "Put a", "Let a", "Give it", "We see",
               "Only a", "There is", "Bring a", "Try a", "Use a", "Picture a", "Film a", "Draw a"]
    varied = [_example(f"a dog number {i} on the beach", f"a horse number {i} on the beach",
                       f"{openers[i % 17]} horse {i}", category=CATEGORIES[i % 17],
                       style=("cc", "webvid")[i % 2])
              for i in range(34)]  # each opening 2/34 = 5.9%, each masked edit 1/34
    assert set_problems(varied, min_examples=10, min_skeletons=10) == []

    same_opening = [_example(f"a dog number {i} on a beach", f"a horse number {i} on a beach",
                             f"Make it a horse {i}") for i in range(10)]
    problems = " | ".join(set_problems(varied + same_opening, min_examples=10, min_skeletons=10))
    assert "opening 'make it' covers" in problems and "masked edit" not in problems

    templated = [_example(f"a {w} in the snow", "a cat in the snow", "Make it a cat") for w in
                 ["dog", "fox", "owl", "elk", "yak", "emu", "ram", "eel", "hen", "cow"]]
    problems = " | ".join(set_problems(varied + templated, min_examples=10, min_skeletons=10))
    assert "masked edit 'make it a NEW' covers" in problems

    problems = " | ".join(set_problems(varied + varied[:1] + [{"caption1": "x"}], min_skeletons=100))
    assert "only 36 examples" in problems and "appears 2 times" in problems
    assert "line 36: keys must be" in problems and "caption skeletons" in problems

    long_edits = [dict(o, edit=o["edit"] + " on a fine sunny day by the sea") for o in varied]
    assert "have 3..8 words" in " | ".join(set_problems(long_edits, min_examples=10, min_skeletons=10))
    one_category = [dict(o, category="animal", source_style="cc") for o in varied]
    problems = " | ".join(set_problems(one_category, min_examples=10, min_skeletons=10))
    assert "categories without examples" in problems and "styles without examples: ['webvid']" in problems


# ---- the shipped file ----------------------------------------------------------------------------

def test_shipped_file_follows_the_rules(examples):
    problems = set_problems(examples)
    assert not problems, "\n".join(problems)


def test_data_card_counts_match_the_file(examples):
    card = CARD.read_text(encoding="utf-8")
    assert card_table(card, "Categories") == dict(Counter(o["category"] for o in examples))
    assert card_table(card, "Caption styles") == dict(Counter(o["source_style"] for o in examples))
    assert f"{len(examples)} examples" in card
