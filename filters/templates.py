"""Template captions ("Abstract ...", "... background", "... concept ...", "Flag of ...").

The CoVR-2 paper found ~60% of one-word pairs on WebVid2M came from such stock-footage templates
and dropped captions containing these words. A caption is a template when one of its normalised
words is a template word (or its plural with ``-s``/``-es``), or when a template phrase occurs
as a run of consecutive words.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from covr_datagen.filters.base import Drop, Filter
from covr_datagen.pipeline.text.normalize import tokenize


class TemplateFilter(Filter):
    """Drop captions that contain a template word or phrase (paper defaults)."""

    name = "template"

    def __init__(self, words: Sequence[str] = ("abstract", "background", "concept"),
                 phrases: Sequence[str] = ("flag of",), caption_key: str = "caption"):
        self.words = [w.casefold() for w in words]
        self.phrases = [p.casefold() for p in phrases]
        self.caption_key = caption_key
        forms = set()
        for w in self.words:
            forms.update({w, w + "s", w + "es"})
        self._forms = forms
        self._phrase_tokens = [tuple(tokenize(p)) for p in self.phrases]

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        words = item.get("normalized")
        tokens = words.split(" ") if words is not None else tokenize(item[self.caption_key])
        for tok in tokens:
            if tok in self._forms:
                return self.drop(f"template word {tok!r}")
        for phrase in self._phrase_tokens:
            n = len(phrase)
            if n and any(tuple(tokens[i:i + n]) == phrase for i in range(len(tokens) - n + 1)):
                return self.drop(f"template phrase {' '.join(phrase)!r}")
        return None
