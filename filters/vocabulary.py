"""Pairs whose differing word is out of vocabulary: not an English dictionary word (pyenchant)
or rare (wordfreq Zipf frequency below a threshold).

Hyphenated words are checked as a whole first and accepted when every part is a dictionary word
("close-up"); possessives are checked without their ``'s``. Multi-word pairs
(``mining.max_word_diff`` > 1) are dropped when any changed word is out of vocabulary.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping

from covr_datagen.filters.base import Drop, Filter, changed_words


class OutOfVocabularyFilter(Filter):
    """Drop a caption pair when any differing word is not in the dictionary or is rare."""

    name = "oov"

    def __init__(self, dictionary: str = "en_US", min_zipf: float = 2.5, language: str = "en"):
        self.dictionary = dictionary
        self.min_zipf = min_zipf
        self.language = language
        self._dict = None

    def setup(self) -> None:
        if self._dict is None:
            import enchant

            try:
                self._dict = enchant.Dict(self.dictionary)
            except enchant.errors.DictNotFoundError as exc:
                raise ValueError(
                    f"pyenchant has no {self.dictionary!r} dictionary; install hunspell-en-us "
                    f"(Debian) or set pair_filters.dictionary (available: "
                    f"{sorted(enchant.list_languages())})"
                ) from exc
            self._in_dict = lru_cache(maxsize=200_000)(self._dict.check)

    def _in_dictionary(self, word: str) -> bool:
        base = word[:-2] if word.endswith("'s") else word
        if not base:
            return False
        if self._in_dict(base) or self._in_dict(base.capitalize()):
            return True
        parts = base.split("-")
        return len(parts) > 1 and all(p and self._in_dict(p) for p in parts)

    def reason_for(self, word: str) -> str | None:
        """Why ``word`` is out of vocabulary, or ``None`` if it is a common dictionary word."""
        from wordfreq import zipf_frequency

        if self._dict is None:
            self.setup()
        if not self._in_dictionary(word):
            return f"{word!r} not in {self.dictionary} dictionary"
        zipf = zipf_frequency(word, self.language)
        if zipf < self.min_zipf:
            return f"{word!r} is rare (zipf {zipf:.2f} < {self.min_zipf})"
        return None

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        for key in ("word1", "word2"):
            for word in changed_words(item, key):
                why = self.reason_for(word)
                if why:
                    return self.drop(f"{key} {why}")
        return None
