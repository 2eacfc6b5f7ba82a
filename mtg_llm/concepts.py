"""Does a modification text name the new concept of a caption pair?

The new concept is the word that caption2 has in place of caption1's (``dog`` -> ``horse``: the
new concept is ``horse``). A text names it when one of its words is that word or an inflection
of it: ``horses``, ``dancing`` for ``dance``, ``men`` for ``man``. The inflection rule is crude
on purpose (suffix stripping plus a short list of irregular forms): it is used to measure texts,
not to rewrite them, and it is the same rule the training data guard applies.

Multi-word pairs (``mining.max_word_diff`` > 1): the new concept is every content word (not a
function word, :data:`covr_datagen.filters.function_words.FUNCTION_WORDS`) caption2 has in place of
or in addition to caption1's, and a text names it when it names any of them. When every new word
is a function word, those words are the concept; a pair that only deletes words has no new
concept, and any text counts as naming it (there is nothing to name, so nothing to sample again).
"""

from __future__ import annotations

from covr_datagen.filters.function_words import FUNCTION_WORDS
from covr_datagen.pipeline.mining import MAX_WORD_DIFF
from covr_datagen.pipeline.text.normalize import one_word_difference, tokenize, word_changes

#: inflections suffix stripping cannot reach
IRREGULAR_FORMS: frozenset[frozenset[str]] = frozenset(frozenset(p) for p in (
    ("man", "men"), ("woman", "women"), ("child", "children"), ("person", "people"),
    ("mouse", "mice"), ("foot", "feet"), ("tooth", "teeth"), ("goose", "geese"), ("ox", "oxen"),
    ("leaf", "leaves"), ("wolf", "wolves"), ("knife", "knives"), ("shelf", "shelves"),
    ("run", "ran"), ("swim", "swam"), ("sing", "sang"), ("eat", "ate"), ("fly", "flew"),
    ("sit", "sat"), ("ride", "rode"), ("drive", "drove"), ("fall", "fell"), ("burn", "burnt"),
))
#: endings removed (one at a time, each only when 3 letters stay)
ENDINGS = ("ies", "ied", "ing", "est", "es", "ed", "er", "en", "s")
#: first words of a text that removes something instead of describing the target
REMOVAL_VERBS = frozenset({"remove", "delete", "erase", "drop"})


def word_stems(word: str) -> set[str]:
    """Crude stems: without a possessive ``'s`` and at most one ending of :data:`ENDINGS`,
    then without a final ``e``/``y``/``i`` and one of a final doubled consonant (4+ letters)."""
    word = word.removesuffix("'s")
    candidates = {word}
    candidates.update(word[:-len(end)] for end in ENDINGS
                      if word.endswith(end) and len(word) - len(end) >= 3)
    stems = set()
    for stem in candidates:
        if len(stem) >= 4 and stem[-1] in "eyi":
            stem = stem[:-1]
        if len(stem) >= 4 and stem[-1] == stem[-2] and stem[-1] not in "aeiou":
            stem = stem[:-1]
        stems.add(stem)
    return stems


def is_inflection(word: str, other: str) -> bool:
    """``other`` is ``word`` or one of its inflections (``dog``/``dogs``, ``dive``/``diving``)."""
    return (word == other or frozenset((word, other)) in IRREGULAR_FORMS
            or bool(word_stems(word) & word_stems(other)))


def new_words(caption1: str, caption2: str) -> list[str]:
    """The new concept: caption2's differing word of a one-word pair; the new content words of a
    multi-word pair (see the module docstring); else every word of caption2 that caption1 lacks
    (captions further apart than any mining rule)."""
    w1, w2 = tokenize(caption1), tokenize(caption2)
    pos = one_word_difference(w1, w2)
    if pos is not None:
        return [w2[pos]]
    changes = word_changes(w1, w2, MAX_WORD_DIFF, allow_length_change=True)
    if changes is not None:
        content = [w for w in changes.added if w not in FUNCTION_WORDS]
        return content or list(changes.added)
    return [w for w in w2 if w not in set(w1)]


def names_new_concept(text: str, caption1: str, caption2: str) -> bool:
    """Whether ``text`` names the new concept of ``caption1`` -> ``caption2`` (true when a
    multi-word pair only deletes words: there is nothing new to name)."""
    new = new_words(caption1, caption2)
    if not new and word_changes(tokenize(caption1), tokenize(caption2), MAX_WORD_DIFF, True):
        return True
    words = tokenize(text)
    return any(is_inflection(n, w) for n in new for w in words)


def is_removal(text: str) -> bool:
    """Whether ``text`` starts with a removal verb ("Remove the hat")."""
    words = tokenize(text)
    return bool(words) and words[0] in REMOVAL_VERBS
