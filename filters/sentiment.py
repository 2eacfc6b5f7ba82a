"""Negative-sentiment filter on modification texts (CoVR-2, Sec. 3.1: TextBlob polarity)."""

from __future__ import annotations

from typing import Any, Mapping

from covr_datagen.filters.base import Drop, Filter


class NegativeSentimentFilter(Filter):
    """Drop an item whose ``key`` text has TextBlob polarity below ``min_polarity``."""

    name = "negative_sentiment"

    def __init__(self, min_polarity: float = -0.1, key: str = "edit"):
        self.min_polarity = min_polarity
        self.key = key

    def setup(self) -> None:
        from textblob import TextBlob

        self._blob = TextBlob

    def polarity(self, text: str) -> float:
        """TextBlob (pattern lexicon) polarity in [-1, 1]."""
        if not hasattr(self, "_blob"):
            self.setup()
        return float(self._blob(text).sentiment.polarity)

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        score = self.polarity(item.get(self.key) or "")
        if score < self.min_polarity:
            return self.drop(f"polarity {score:.3f} < {self.min_polarity}")
        return None
