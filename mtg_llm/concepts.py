"""Does a modification text name the new concept of a caption pair?

The new concept is the word that caption2 has in place of caption1's (``dog`` -> ``horse``: the
new concept is ``horse``). A text names it when one of its words is that word or an inflection
of it: ``horses``, ``dancing`` for ``dance``, ``men`` for ``man``. The inflection rule is crude
on purpose (suffix stripping plus a short list of irregular forms): it is used to measure texts,
not to rewrite them, and it is the same rule the training data guard applies.
"""

from __future__ import annotations

from covr_datagen.pipeline.text.normalize import one_word_difference, tokenize

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
    """The new concept: caption2's differing word of a one-word pair, else every word of
    caption2 that caption1 lacks (pairs that differ in more than one place)."""
    w1, w2 = tokenize(caption1), tokenize(caption2)
    pos = one_word_difference(w1, w2)
    if pos is not None:
        return [w2[pos]]
    return [w for w in w2 if w not in set(w1)]


def names_new_concept(text: str, caption1: str, caption2: str) -> bool:
    """Whether ``text`` names the new concept of ``caption1`` -> ``caption2``."""
    words = tokenize(text)
    return any(is_inflection(new, w) for new in new_words(caption1, caption2) for w in words)


def is_removal(text: str) -> bool:
    """Whether ``text`` starts with a removal verb ("Remove the hat")."""
    words = tokenize(text)
    return bool(words) and words[0] in REMOVAL_VERBS
