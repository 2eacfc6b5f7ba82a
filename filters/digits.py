"""Pairs whose differing word is a number (mostly dates and clip numbers in stock footage).
Multi-word pairs are dropped when any changed word contains a digit."""

from __future__ import annotations

from typing import Any, Mapping

from covr_datagen.filters.base import Drop, Filter, changed_words


class DigitFilter(Filter):
    """Drop a caption pair when any differing word contains a digit."""

    name = "digit"

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        for key in ("word1", "word2"):
            for word in changed_words(item, key):
                if any(ch.isdigit() for ch in word):
                    return self.drop(f"{key} {word!r} contains a digit")
        return None
