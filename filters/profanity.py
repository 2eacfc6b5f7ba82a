"""Profanity in captions, decided by better-profanity.

better-profanity's own check scans its ~900-word list linearly for every word of a text (about
8 ms per caption here). :class:`IndexedWordSet` replaces that list with an index by length and
first character plus a memo, keeping the library's matching semantics exactly (the library's
``VaryingString`` comparison still decides every candidate); a test compares both on real
captions. Known false positive noted in the paper: the bird "cock"; use ``allow`` to whitelist.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Mapping, Sequence

from filters.base import Drop, Filter


class IndexedWordSet:
    """Drop-in for better-profanity's ``CENSOR_WORDSET`` list: ``s in wordset`` is fast."""

    def __init__(self, varying_strings: Sequence[Any]):
        self._by_len: dict[int, dict[str | None, list[Any]]] = defaultdict(lambda: defaultdict(list))
        for vs in varying_strings:
            first = vs._char_combos[0] if vs._char_combos else ("",)
            keys = [None] if any(len(c) != 1 for c in first) else list(first)
            for length in range(vs._min_len, vs._max_len + 1):
                for key in keys:
                    self._by_len[length][key].append(vs)
        self._memo: dict[str, bool] = {}
        self._size = len(varying_strings)

    def __len__(self) -> int:
        return self._size

    def __contains__(self, text: object) -> bool:
        if not isinstance(text, str):
            return False
        hit = self._memo.get(text)
        if hit is None:
            buckets = self._by_len.get(len(text))
            hit = False
            if buckets:
                candidates = buckets.get(text[:1], []) + buckets.get(None, [])
                hit = any(vs == text for vs in candidates)
            if len(self._memo) < 2_000_000:
                self._memo[text] = hit
        return hit


class ProfanityFilter(Filter):
    """Drop captions that better-profanity flags."""

    name = "profanity"

    def __init__(self, allow: Sequence[str] = (), caption_key: str = "caption"):
        self.allow = list(allow)
        self.caption_key = caption_key
        self._checker = None

    def setup(self) -> None:
        if self._checker is None:
            from better_profanity import Profanity

            checker = Profanity()
            checker.load_censor_words(whitelist_words=list(self.allow))
            checker.CENSOR_WORDSET = IndexedWordSet(checker.CENSOR_WORDSET)
            self._checker = checker

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        if self._checker is None:
            self.setup()
        text = item[self.caption_key]
        if self._checker.contains_profanity(text):
            return self.drop("flagged by better-profanity")
        return None
