"""Caption normalisation: the one rule that decides what a "word" is, used by every stage.

The rule (``tokenize``):

1. Unicode NFKC normalisation (full-width letters, ligatures, compatibility forms fold to their
   plain form), then ``str.casefold`` (case-insensitive comparison, also for non-ASCII letters).
2. Typographic apostrophes (’ ‘ ʼ ′) become ``'``; unicode dashes (‐ ‑ ‒ – —) become ``-``.
3. A word is a maximal run of letters or digits (any script; underscore is not a letter),
   optionally joined by a single ``'`` or ``-`` between two letter/digit runs, or by ``.`` or
   ``,`` between two digits: ``close-up``, ``woman's``, ``3.5`` and ``10,000`` are one word
   each, while ``red,blue`` and ``U.S.`` are two (``red blue``, ``u s``).
4. Everything else is punctuation or space and separates words: ``"Woman, smiling!"`` is
   ``["woman", "smiling"]``; a trailing ``'s`` stays with its word, a leading or trailing
   hyphen or apostrophe is dropped (``'90s`` -> ``90s``).

``normalize(caption)`` is the words joined by single spaces; two captions "differ by exactly one
word" when their word lists have equal length and differ at exactly one position.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "′": "'", "`": "'"})
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−"})
_WORD = re.compile(r"[^\W_]+(?:(?:['\-]|(?<=\d)[.,](?=\d))[^\W_]+)*")


def tokenize(caption: str) -> list[str]:
    """Split a caption into normalised words (see the module docstring for the exact rule)."""
    if caption.isascii():  # NFKC and the dash table leave ASCII as it is; casefold is lower
        return _WORD.findall(caption.lower().replace("`", "'"))
    text = unicodedata.normalize("NFKC", caption).casefold()
    text = text.translate(_APOSTROPHES).translate(_DASHES)
    return _WORD.findall(text)


def normalize(caption: str) -> str:
    """The normalised caption: its words joined by single spaces."""
    return " ".join(tokenize(caption))


def caption_id(normalized: str) -> str:
    """Stable 16-hex-digit id of a normalised caption (same on every worker and run)."""
    return hashlib.blake2b(normalized.encode("utf-8"), digest_size=8).hexdigest()


def one_word_difference(words1: list[str], words2: list[str]) -> int | None:
    """Index of the single differing word, or ``None`` unless exactly one position differs."""
    if len(words1) != len(words2):
        return None
    diff = None
    for i, (a, b) in enumerate(zip(words1, words2)):
        if a != b:
            if diff is not None:
                return None
            diff = i
    return diff
