"""Profanity in captions, decided by better-profanity.

better-profanity's own check scans its ~900-word list linearly for every word of a text (about
8 ms per caption here). Two speed-ups keep its decisions exactly (a test compares both on real
captions):

* :class:`SkeletonScreen` — a necessary condition checked first: better-profanity matches a run
  of up to ``MAX_NUMBER_COMBINATIONS + 1`` consecutive words (split on characters outside its
  ``ALLOWED_CHARACTERS``) against a swear word whose every character may be replaced by one of
  its single-character variants (``@`` for ``a``...). The screen holds every spelling of every
  swear word (separators removed; for the few words with more than 4096 spellings, their
  variant-class "skeleton"), so a caption none of whose word runs is such a spelling cannot be
  flagged and is kept without calling the library; the rest go to the library, which decides.
* :class:`IndexedWordSet` — the library's word list indexed by length and first character, with
  a memo; the library's own ``VaryingString`` comparison still decides every candidate.

Known false positive noted in the paper: the bird "cock"; use ``allow`` to whitelist.
"""

from __future__ import annotations

import math
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


class SkeletonScreen:
    """Cheap necessary condition for better-profanity to flag a text (see module docstring)."""

    #: swear words with more spellings than this are screened by variant class ("skeleton")
    MAX_SPELLINGS = 4096

    def __init__(self, checker: Any):
        import re
        from itertools import product

        variants = {c: tuple(v) for c, v in checker.CHARS_MAPPING.items()}
        if any(len(v) != 1 for vs in variants.values() for v in vs):
            raise ValueError("multi-character variants: the screen is not applicable")
        parent: dict[str, str] = {}

        def find(c: str) -> str:
            while parent.setdefault(c, c) != c:
                c = parent[c]
            return c

        for char, alts in variants.items():
            for alt in alts:
                parent[find(alt)] = find(char)
        self._table = str.maketrans({c: find(c) for c in parent})
        ascii_map = {c: find(c) for c in parent if c.isascii()}
        # the same table for ASCII text as bytes (bytes.translate is ~10x faster than str's)
        self._ascii_table = bytes.maketrans(
            "".join(ascii_map).encode(), "".join(ascii_map.values()).encode()) if all(
            len(v) == 1 and v.isascii() for v in ascii_map.values()) else None
        allowed = "".join(sorted(checker.ALLOWED_CHARACTERS))
        self._words = re.compile("[" + re.escape(allowed) + "]+")
        ascii_allowed = "".join(c for c in allowed if c.isascii())
        self._ascii_words = re.compile("[" + re.escape(ascii_allowed) + "]+")  # same split, faster
        self._window = checker.MAX_NUMBER_COMBINATIONS + 1
        self._spellings: set[str] = set()
        self._skeletons: set[str] = set()
        for vs in checker.CENSOR_WORDSET:
            core = "".join(self._words.findall(str(vs).lower()))
            options = [variants.get(c, (c,)) for c in core]
            if math.prod(len(o) for o in options) <= self.MAX_SPELLINGS:
                self._spellings.update("".join(p) for p in product(*options))
            else:
                self._skeletons.add(core.translate(self._table))
        # every prefix of a spelling / skeleton: a run of words whose concatenation is not one
        # cannot grow into a match, so the scan from that word stops there
        self._prefixes = {s[:k] for s in self._spellings for k in range(1, len(s) + 1)}
        self._skeleton_prefixes = {s[:k] for s in self._skeletons for k in range(1, len(s) + 1)}

    @staticmethod
    def _runs_match(words: list[str], targets: set[str], prefixes: set[str], window: int) -> bool:
        """Whether some run of at most ``window`` consecutive words concatenates to a target."""
        for i in range(len(words)):
            joined = ""
            for word in words[i:i + window]:
                joined += word
                if joined not in prefixes:
                    break
                if joined in targets:
                    return True
        return False

    def may_match(self, text: str) -> bool:
        """False only when better-profanity cannot flag ``text``."""
        text = text.lower()
        words = (self._ascii_words if text.isascii() else self._words).findall(text)
        if self._runs_match(words, self._spellings, self._prefixes, self._window):
            return True
        if not self._skeletons:
            return False
        if self._ascii_table is not None and text.isascii():
            joined = "\n".join(words).encode().translate(self._ascii_table).decode()
            skeleton_words = joined.split("\n")
        else:
            skeleton_words = [w.translate(self._table) for w in words]
        return self._runs_match(skeleton_words, self._skeletons, self._skeleton_prefixes,
                                self._window)


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
            self._screen = SkeletonScreen(checker)
            checker.CENSOR_WORDSET = IndexedWordSet(checker.CENSOR_WORDSET)
            self._checker = checker

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        if self._checker is None:
            self.setup()
        text = item[self.caption_key]
        if self._screen.may_match(text) and self._checker.contains_profanity(text):
            return self.drop("flagged by better-profanity")
        return None
