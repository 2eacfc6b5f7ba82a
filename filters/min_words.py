"""Captions that are too short to pair meaningfully.

Every single-word caption differs by one word from every other one ("Brain" ~ "Finance"), so on
the WebVid-10M validation sample 210 of its 231 one-word pairs were such pairs (docs/BENCHMARKS.md,
"One-word pairs in real captions").
Captions with fewer than ``min_words`` normalised words are dropped before mining.
"""

from __future__ import annotations

from typing import Any, Mapping

from covr_datagen.filters.base import Drop, Filter


class MinWordsFilter(Filter):
    """Drop captions with fewer than ``min_words`` words."""

    name = "too_few_words"

    def __init__(self, min_words: int = 2):
        if min_words < 1:
            raise ValueError("min_words must be >= 1")
        self.min_words = min_words

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        normalized = item.get("normalized") or ""
        count = len(normalized.split(" ")) if normalized else 0
        if count < self.min_words:
            return self.drop(f"{count} word(s) < {self.min_words}")
        return None
