"""Pairs whose differing word is a function word ("film" -> "at", "on" -> "along").

Such a pair passes the digit, vocabulary and similarity filters (the words are common English,
the captions stay close), but no modification text can describe the change: "Actor at the film
premiere" -> "Actor on the film premiere". A pair is dropped when either differing word is in
the configured list (``pair_filters.function_words``): articles, grammatical prepositions,
conjunctions, pronouns, auxiliaries and determiners. Spatial prepositions whose change is
visible ("under" -> "on", "up" -> "down", "inside" -> "outside") are deliberately not in the
default list.

Multi-word pairs (``mining.max_word_diff`` > 1): a pair is dropped when the changed words of
either caption are all function words ("man in the park" -> "man at a park"), which for a one-word
pair is the rule above. A side without changed words (an insertion or a deletion) does not decide:
"dog running" -> "big dog running" is kept, "dog running" -> "the dog running" is dropped.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from covr_datagen.filters.base import Drop, Filter, changed_words

#: the default word list (compared with the normalised, case-folded differing words)
FUNCTION_WORDS: tuple[str, ...] = (
    # articles and determiners
    "a", "an", "the", "this", "that", "these", "those", "some", "any", "each", "every", "all",
    "both", "either", "neither", "another", "such", "no",
    # grammatical prepositions
    "of", "at", "on", "in", "to", "for", "from", "by", "with", "as", "along", "into", "onto",
    "about", "via", "per", "upon", "among", "amongst", "during", "than", "towards", "toward",
    # conjunctions
    "and", "or", "but", "nor", "so", "yet", "if", "while", "because", "although", "though",
    "whether",
    # pronouns
    "i", "me", "my", "we", "us", "our", "you", "your", "he", "him", "his", "she", "her", "it",
    "its", "they", "them", "their", "who", "whom", "whose", "which", "what", "there", "here",
    # auxiliaries
    "is", "are", "was", "were", "be", "been", "being", "am", "has", "have", "had", "do", "does",
    "did", "will", "would", "can", "could", "shall", "should", "may", "might", "must",
    # particles
    "not", "very", "too", "just",
)


class FunctionWordFilter(Filter):
    """Drop a caption pair when either caption's differing words are all function words."""

    name = "function_word"

    def __init__(self, words: Sequence[str] = FUNCTION_WORDS):
        self.words = sorted({w.casefold() for w in words})
        self._words = frozenset(self.words)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "words": len(self.words)}

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        for key in ("word1", "word2"):
            words = changed_words(item, key)
            if words and all(w.casefold() in self._words for w in words):
                what = "is a function word" if len(words) == 1 else "are all function words"
                return self.drop(f"{key} {item[key]!r} {what}")
        return None
