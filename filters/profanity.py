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

Review (as the paper did by hand for its ~2k flags): better-profanity flags many harmless
captions ("paddy field", "pot", "slope", "god", "stroke"). Each build lists the captions it
flagged in ``RUN/profanity_review.csv`` (caption id, caption, matched word, records, decision);
a decisions file (that CSV with its ``decision`` column filled: ``keep`` or ``drop``) given to
the next build keeps or drops each flagged caption (:func:`read_decisions`). A flagged caption
without a decision is dropped, as before review.
"""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping, Sequence

from covr_datagen.filters.base import Drop, Filter


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


KEEP, DROP = "keep", "drop"
DECISIONS = (KEEP, DROP)


def read_decisions(path: str | Path) -> dict[str, str]:
    """``{caption_id: "keep" | "drop"}`` from a review CSV (columns ``caption_id`` and
    ``decision``; others ignored). Empty decisions are left out (not reviewed); any other value,
    a missing column or a caption id given two different decisions is a ``ValueError`` naming
    the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"profanity decisions file {path} not found")
    decisions: dict[str, str] = {}
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = {"caption_id", "decision"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"profanity decisions file {path} lacks column(s) "
                             f"{', '.join(sorted(missing))} (write it from RUN/profanity_review.csv)")
        for row in reader:
            where = f"{path}:{reader.line_num}"
            cid = (row.get("caption_id") or "").strip()
            decision = (row.get("decision") or "").strip().lower()
            if not decision:
                continue
            if decision not in DECISIONS or not cid:
                raise ValueError(f"{where}: decision must be keep, drop or empty, with a "
                                 f"caption_id; got {row.get('decision')!r} for {cid!r}")
            if decisions.setdefault(cid, decision) != decision:
                raise ValueError(f"{where}: caption {cid} has both keep and drop decisions")
    return decisions


class ProfanityFilter(Filter):
    """Drop captions that better-profanity flags, unless a review decided to keep them
    (``decisions``: caption id -> keep | drop, :func:`read_decisions`)."""

    name = "profanity"

    def __init__(self, allow: Sequence[str] = (), caption_key: str = "caption",
                 decisions: Mapping[str, str] | None = None, id_key: str = "caption_id"):
        self.allow = list(allow)
        self.caption_key = caption_key
        self.id_key = id_key
        self._decisions = dict(decisions or {})
        self._checker = None

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "reviewed": len(self._decisions)}

    def decision(self, caption_id: str) -> str:
        """``keep``, ``drop`` or ``""`` (not reviewed) for a flagged caption."""
        return self._decisions.get(caption_id, "")

    def is_flagged(self, text: str) -> bool:
        """Whether better-profanity flags ``text`` (whatever the review decided)."""
        if self._checker is None:
            self.setup()
        return self._screen.may_match(text) and self._checker.contains_profanity(text)

    def matched_words(self, text: str) -> list[str]:
        """The words of ``text`` better-profanity censors (to show reviewers why it flagged)."""
        if self._checker is None:
            self.setup()
        words, censored = text.split(), self._checker.censor(text, "*").split()
        if len(words) != len(censored):  # a multi-word match changed the word count
            return [" ".join(w for w, c in zip(words, censored) if w != c) or text]
        return [re.sub(r"^\W+|\W+$", "", w) or w for w, c in zip(words, censored)
                if w != c and "*" in c]

    def setup(self) -> None:
        if self._checker is None:
            from better_profanity import Profanity

            checker = Profanity()
            checker.load_censor_words(whitelist_words=list(self.allow))
            self._screen = SkeletonScreen(checker)
            checker.CENSOR_WORDSET = IndexedWordSet(checker.CENSOR_WORDSET)
            self._checker = checker

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        text = item[self.caption_key]
        if not self.is_flagged(text):
            return None
        decision = self.decision(item.get(self.id_key) or "")
        if decision == KEEP:
            return None
        matched = ", ".join(self.matched_words(text))
        return self.drop(f"flagged by better-profanity (matched {matched}); "
                         + ("dropped after review" if decision == DROP else "not reviewed"))
