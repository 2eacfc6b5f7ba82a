"""Caption normalisation: the one rule that decides what a "word" is, used by every stage.

The rule (``tokenize``):

1. Unicode NFKC normalisation (full-width letters, ligatures, compatibility forms fold to their
   plain form), then ``str.casefold`` (case-insensitive comparison, also for non-ASCII letters).
2. Typographic apostrophes (’ ‘ ʼ ′) become ``'``; unicode dashes (‐ ‑ ‒ – —) become ``-``.
3. A word is a maximal run of letters, combining marks or digits of any script (Unicode
   categories L, M and N; underscore is not a letter), optionally joined by a single ``'`` or
   ``-`` between two such runs, by a zero-width (non-)joiner inside a word (Persian, Indic
   scripts), or by ``.`` or ``,`` between two digits: ``close-up``, ``woman's``, ``3.5`` and
   ``10,000`` are one word each, while ``red,blue`` and ``U.S.`` are two (``red blue``,
   ``u s``). Marks keep words whole: ``हिंदी``, ``สวัสดี``, ``مُحَمَّد`` are one word each.
   Scripts written without spaces (Thai, Chinese, Japanese) are not segmented further: a run
   without spaces or punctuation is one word.
4. Everything else is punctuation or space and separates words: ``"Woman, smiling!"`` is
   ``["woman", "smiling"]``; a trailing ``'s`` stays with its word, a leading or trailing
   hyphen or apostrophe is dropped (``'90s`` -> ``90s``).

``normalize(caption)`` is the words joined by single spaces; two captions "differ by exactly one
word" when their word lists have equal length and differ at exactly one position
(``one_word_difference``). ``word_changes`` generalises the rule to up to ``k`` changed words
(``mining.max_word_diff``), optionally across lengths (token edit distance).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

import regex

_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "′": "'", "`": "'"})
_DASHES = str.maketrans({c: "-" for c in "‐‑‒–—―−"})
#: the word rule over any script (the ``regex`` package knows Unicode categories, ``re`` does not)
_WORD = regex.compile(
    r"[\p{L}\p{M}\p{N}]+(?:(?:['\-\u200c\u200d]|(?<=\d)[.,](?=\d))[\p{L}\p{M}\p{N}]+)*")
#: the same rule for lower-cased ASCII text, with ``re`` (1.7x faster; tests check they agree)
_ASCII_WORD = re.compile(r"[a-z0-9]+(?:(?:['\-]|(?<=\d)[.,](?=\d))[a-z0-9]+)*")


def tokenize(caption: str) -> list[str]:
    """Split a caption into normalised words (see the module docstring for the exact rule)."""
    if caption.isascii():  # NFKC and the dash table leave ASCII as it is; casefold is lower
        return _ASCII_WORD.findall(caption.lower().replace("`", "'"))
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


@dataclass(frozen=True)
class WordChanges:
    """How caption 1's words become caption 2's: ``removed`` (tokens of caption 1 substituted or
    deleted, in order), ``added`` (tokens of caption 2 substituted or inserted, in order),
    ``position`` (first changed token index in caption 1) and ``count`` (number of token
    changes: differing positions, or the token edit distance between different lengths)."""

    position: int
    removed: tuple[str, ...]
    added: tuple[str, ...]
    count: int


def word_changes(words1: list[str], words2: list[str], max_diff: int = 1,
                 allow_length_change: bool = False) -> WordChanges | None:
    """The changes between two word lists, or ``None`` unless they are a pair of the mining rule:

    * equal length, ``1..max_diff`` differing positions, and at least one shared position
      unless only one position differs (one-word pairs are today's rule, whatever the length);
    * different lengths (only with ``allow_length_change``): token edit distance (Levenshtein)
      ``<= max_diff`` and at least one token kept by the alignment.
    """
    if len(words1) == len(words2):
        diff = [i for i, (a, b) in enumerate(zip(words1, words2)) if a != b]
        if not diff or len(diff) > max_diff or (len(diff) > 1 and len(diff) >= len(words1)):
            return None
        return WordChanges(diff[0], tuple(words1[i] for i in diff), tuple(words2[i] for i in diff),
                           len(diff))
    if not allow_length_change or abs(len(words1) - len(words2)) > max_diff:
        return None
    return _edit_changes(words1, words2, max_diff)


def _edit_changes(words1: list[str], words2: list[str], max_diff: int) -> WordChanges | None:
    """Token Levenshtein alignment of two word lists of different lengths (see
    :func:`word_changes`); ties prefer match, then substitution, deletion, insertion."""
    n, m = len(words1), len(words2)
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        dist[i][0] = i
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            dist[i][j] = min(dist[i - 1][j - 1] + (words1[i - 1] != words2[j - 1]),
                             dist[i - 1][j] + 1, dist[i][j - 1] + 1)
    count = dist[n][m]
    if count > max_diff or count >= max(n, m):  # no token kept: nothing shared
        return None
    removed: list[str] = []
    added: list[str] = []
    changed_at: list[int] = []
    i, j = n, m
    while i or j:
        if i and j and dist[i][j] == dist[i - 1][j - 1] + (words1[i - 1] != words2[j - 1]):
            if words1[i - 1] != words2[j - 1]:
                removed.append(words1[i - 1])
                added.append(words2[j - 1])
                changed_at.append(i - 1)
            i, j = i - 1, j - 1
        elif i and dist[i][j] == dist[i - 1][j] + 1:
            removed.append(words1[i - 1])
            changed_at.append(i - 1)
            i -= 1
        else:
            added.append(words2[j - 1])
            changed_at.append(i)  # inserted before caption 1's token i
            j -= 1
    return WordChanges(min(changed_at), tuple(reversed(removed)), tuple(reversed(added)), count)
