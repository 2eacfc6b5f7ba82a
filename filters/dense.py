"""Filters on dense modification texts (``edit_dense``, written when ``mtg.mode`` is ``dense``).

Dense texts describe every change from query to target in a sentence or three (Dense-WebVid-CoVR,
BSE-CoVR ICCV 2025: ~31 words on average). Besides the degenerate-text checks shared with the
one-word texts (:class:`covr_datagen.filters.degenerate.DegenerateTextFilter` with
``key="edit_dense"``), three checks, one reason each:

* :class:`DenseLengthFilter`: ``dense_too_short`` / ``dense_too_long`` (words);
* :class:`RepetitiveTextFilter`: ``dense_repetitive`` (a word n-gram repeated, as when a language
  model loops, or too few distinct words);
* :class:`ConsistencyFilter`: ``dense_inconsistent``: the text's embedding is too far from the
  target's description (its caption when the corpus has no descriptions), as when the text was
  written for another target or invents changes. Threshold: docs/CALIBRATION.md.

Words are the lower-cased runs of letters, digits and apostrophes (:func:`words`).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Mapping, Sequence

import numpy as np

from covr_datagen.filters.base import Drop, Filter

#: the column dense texts are read from
DENSE_KEY = "edit_dense"
#: where the consistency check finds the target's text: its description, else its caption
TARGET_KEYS = ("description2", "txt2")

_WORD = re.compile(r"[\w']+")


def words(text: str | None) -> list[str]:
    """The lower-cased words of ``text`` (runs of letters, digits and apostrophes)."""
    return _WORD.findall((text or "").lower())


class DenseLengthFilter(Filter):
    """Keep texts of ``min_words`` to ``max_words`` words (both inclusive)."""

    name = "dense_length"

    def __init__(self, min_words: int, max_words: int, key: str = DENSE_KEY):
        if min_words > max_words:
            raise ValueError(f"min_words ({min_words}) must not exceed max_words ({max_words})")
        self.min_words = min_words
        self.max_words = max_words
        self.key = key

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        n = len(words(item.get(self.key)))
        if n < self.min_words:
            return self.drop(f"{n} words < {self.min_words}", "dense_too_short")
        if n > self.max_words:
            return self.drop(f"{n} words > {self.max_words}", "dense_too_long")
        return None


class RepetitiveTextFilter(Filter):
    """Drop texts in which a word ``ngram`` occurs more than ``max_ngram_repeats`` times, or whose
    distinct words are fewer than ``min_distinct_ratio`` of their words."""

    name = "dense_repetitive"

    def __init__(self, ngram: int, max_ngram_repeats: int, min_distinct_ratio: float,
                 key: str = DENSE_KEY):
        self.ngram = ngram
        self.max_ngram_repeats = max_ngram_repeats
        self.min_distinct_ratio = min_distinct_ratio
        self.key = key

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        tokens = words(item.get(self.key))
        if not tokens:
            return None  # nothing repeats; empty texts are the degenerate filter's
        grams = Counter(tuple(tokens[i:i + self.ngram]) for i in range(len(tokens) - self.ngram + 1))
        if grams:
            gram, times = grams.most_common(1)[0]
            if times > self.max_ngram_repeats:
                return self.drop(f"{' '.join(gram)!r} {times} times > {self.max_ngram_repeats}")
        ratio = len(set(tokens)) / len(tokens)
        if ratio < self.min_distinct_ratio:
            return self.drop(f"distinct words {ratio:.2f} of {len(tokens)} < {self.min_distinct_ratio}")
        return None


def target_text(item: Mapping[str, Any]) -> str:
    """The target's description, else its caption (the first non-blank of :data:`TARGET_KEYS`)."""
    for key in TARGET_KEYS:
        value = item.get(key)
        if value and value.strip():
            return value
    raise ValueError(f"item {item.get('triplet_id')!r} has neither {' nor '.join(TARGET_KEYS)}")


class ConsistencyFilter(Filter):
    """Drop texts whose cosine with the target's text (:func:`target_text`) is below
    ``min_consistency``, both embedded by the configured text encoder.

    ``encoder`` is a :class:`covr_datagen.pipeline.text.encoders.TextEncoderSpec`; its model is
    loaded in :meth:`setup`, once per worker process (as the similarity pair filter's), and each
    batch of texts is embedded in one call.
    """

    name = "dense_inconsistent"

    def __init__(self, encoder, min_consistency: float, key: str = DENSE_KEY):
        from covr_datagen.pipeline.core.models import SharedModel

        self.encoder = encoder.identity
        self.min_consistency = min_consistency
        self.key = key
        self._model = SharedModel(encoder)
        self._encoder = None

    def setup(self) -> None:
        self._encoder = self._model.acquire()

    def similarities(self, items: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Cosine of each item's text with its target's text. Each distinct string is embedded
        once per call (a caption pair's text is shared by its media pairs, a target by many)."""
        if self._encoder is None:
            self.setup()
        texts = [item.get(self.key) or "" for item in items]
        targets = [target_text(item) for item in items]
        distinct = list(dict.fromkeys(texts + targets))
        row = {text: i for i, text in enumerate(distinct)}
        vectors = self._encoder.encode(distinct)
        return np.einsum("ij,ij->i", vectors[[row[t] for t in texts]], vectors[[row[t] for t in targets]])

    def check_batch(self, items: Sequence[Mapping[str, Any]]) -> list[Drop | None]:
        if not items:
            return []
        return [None if sim >= self.min_consistency
                else self.drop(f"similarity to the target {sim:.4f} < {self.min_consistency}")
                for sim in self.similarities(items)]

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        return self.check_batch([item])[0]
