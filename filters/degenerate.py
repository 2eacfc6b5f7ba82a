"""Degenerate modification texts: empty, several lines, too long, or a copy of a caption."""

from __future__ import annotations

from typing import Any, Mapping

from covr_datagen.filters.base import Drop, Filter


class DegenerateTextFilter(Filter):
    """Drop unusable generated texts, each case with its own reason:

    ``empty_text`` (nothing but whitespace), ``multiline_text`` (a line break inside),
    ``long_text`` (more than ``max_chars`` characters), ``text_is_caption`` (the text equals the
    query or target caption, compared after the pipeline's caption normalisation).
    ``reason_prefix`` tells the texts of another column apart in the counts (``dense_`` for
    ``edit_dense``: ``dense_empty_text``, ...).
    """

    name = "degenerate"

    def __init__(self, max_chars: int = 200, key: str = "edit",
                 caption_keys: tuple[str, ...] = ("txt1", "txt2"), reason_prefix: str = ""):
        self.max_chars = max_chars
        self.key = key
        self.caption_keys = caption_keys
        self.reason_prefix = reason_prefix

    def drop(self, detail: str = "", reason: str | None = None) -> Drop:
        return super().drop(detail, self.reason_prefix + (reason or self.name))

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        from covr_datagen.pipeline.text.normalize import normalize

        text = item.get(self.key) or ""
        stripped = text.strip()
        if not stripped:
            return self.drop("empty text", "empty_text")
        if "\n" in stripped or "\r" in stripped:
            return self.drop(f"{stripped.count(chr(10)) + 1} lines", "multiline_text")
        if len(stripped) > self.max_chars:
            return self.drop(f"{len(stripped)} characters > {self.max_chars}", "long_text")
        norm = normalize(stripped)
        for key in self.caption_keys:
            caption = item.get(key) or ""
            if norm and norm == normalize(caption):
                return self.drop(f"identical to {key}", "text_is_caption")
        return None
