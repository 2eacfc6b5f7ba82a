"""Masked keys and deletion keys: 64-bit keys under which captions that may form a pair meet.

Masked keys (pairs of equal length): for a caption of ``L`` words and ``mining.max_word_diff``
``k``, one key per set ``W`` of ``w = wildcard_count(L, k)`` positions, identifying the word
sequence with the positions of ``W`` wildcarded (``C(L, w)`` keys; ``k = 1``: one per word). Two
captions of equal length differing in a set ``D`` of ``1..w`` positions share every key whose
``W`` contains ``D`` (one key when ``|D| = w``); the miner forms the pair only in the group whose
``W`` is :func:`canonical_mask`'s choice for ``D`` (``D`` filled up with the smallest positions
outside it), so every pair comes out once. Hash collisions are verified against the words and
counted by the miner.

Keys are a polynomial hash over per-word 64-bit ids (blake2b of the word, so identical on every
worker), computed with numpy for a whole batch of captions: ``key_W = H(caption) + sum over i in
W of (WILD - w_i) * P**(L-1-i) + L * LEN_SALT`` modulo 2**64, followed by a splitmix64
finaliser (for ``k = 1`` exactly the keys of one-word mining).

Deletion keys (pairs of different lengths, ``mining.allow_length_change``): one key per word
sequence left after deleting ``0..min(k, L-1)`` words (SymSpell's deletion neighbourhood). Two
captions within token edit distance ``k`` that keep a token in common share a deletion key; the
converse does not hold, so the miner verifies the edit distance.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from itertools import combinations
from math import comb
from typing import NamedTuple, Sequence

import numpy as np

_P = np.uint64(0x9E3779B97F4A7C15)
_WILD = np.uint64(0xD6E8FEB86659FD93)
_LEN_SALT = np.uint64(0xA0761D6478BD642F)
_DELETION_SALT = np.uint64(0x8EBC6AF09C88C6E3)
_MAX_WORDS = 512
#: captions are keyed on their first this many words
MAX_KEY_WORDS = _MAX_WORDS
#: with ``k >= 2``, captions longer than this get one-word keys only (C(L, k) grows too fast)
MAX_MULTI_WORDS = 64
#: key combinations computed per numpy step (bounds the temporary arrays)
_COMBOS_PER_STEP = 256


def _powers(n: int) -> np.ndarray:
    out = np.ones(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for i in range(1, n):
            out[i] = out[i - 1] * _P
    return out


_POW = _powers(_MAX_WORDS)


def splitmix64(x: np.ndarray) -> np.ndarray:
    """Avalanche finaliser (uniform buckets from structured keys)."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


class WordIds:
    """Memoised deterministic 64-bit id per word."""

    def __init__(self) -> None:
        self._ids: dict[str, int] = {}

    def __call__(self, word: str) -> int:
        wid = self._ids.get(word)
        if wid is None:
            wid = int.from_bytes(hashlib.blake2b(word.encode("utf-8"), digest_size=8).digest(),
                                 "little")
            if len(self._ids) < 5_000_000:
                self._ids[word] = wid
        return wid


def wildcard_count(length: int, max_diff: int) -> int:
    """Wildcards per masked key of a caption of ``length`` words: ``max_diff``, but fewer than
    the length (a multi-word pair shares a word) and one for one-word captions and captions
    longer than :data:`MAX_MULTI_WORDS`."""
    if length > MAX_MULTI_WORDS:
        return 1
    return min(max_diff, max(length - 1, 1))


def keys_per_caption(length: int, max_diff: int, allow_length_change: bool = False) -> int:
    """How many keys a caption of ``length`` words emits (masked keys, plus deletion keys)."""
    length = min(length, _MAX_WORDS)
    if length == 0:
        return 0
    count = comb(length, wildcard_count(length, max_diff))
    if allow_length_change:
        count += deletion_count(length, max_diff)
    return count


def deletion_count(length: int, max_diff: int) -> int:
    """Deletion keys of a caption of ``length`` words (0 above :data:`MAX_MULTI_WORDS`)."""
    if length > MAX_MULTI_WORDS:
        return 0
    return sum(comb(length, j) for j in range(min(max_diff, length - 1) + 1))


@lru_cache(maxsize=1024)
def _combos(length: int, size: int) -> np.ndarray:
    """All ``size``-subsets of ``range(length)`` in lexicographic order, ``(c, size)`` int64."""
    return np.array(list(combinations(range(length), size)), dtype=np.int64).reshape(-1, size)


def canonical_mask(positions: np.ndarray, differs: np.ndarray) -> np.ndarray:
    """Whether a key group's wildcard set is the one chosen for the pair: per row, ``positions``
    (the group's ``w`` wildcarded positions, ascending) and ``differs`` (which of them differ
    between the two captions). The chosen set is the differing positions ``D`` filled up with the
    smallest positions outside ``D``: true iff every position below the largest non-differing
    wildcard is either differing or wildcarded."""
    same = ~differs & (positions >= 0)  # -1: padding of captions with fewer wildcards
    top = np.where(same, positions, -1).max(axis=1)
    below = (differs & (positions < top[:, None])).sum(axis=1)
    return (top < 0) | (top + 1 - below == same.sum(axis=1))


class MaskedKeys(NamedTuple):
    """Masked keys of a batch, one row per key: ``caption`` (index in the batch), ``positions``
    (wildcarded positions, ascending, ``-1`` padding up to ``k``) and ``word_ids`` (ids of the
    words at those positions, 0 padding)."""

    keys: np.ndarray
    caption: np.ndarray
    positions: np.ndarray
    word_ids: np.ndarray


class DeletionKeys(NamedTuple):
    """Deletion keys of a batch, one row per (key, caption): ``length`` is the caption's."""

    keys: np.ndarray
    caption: np.ndarray
    length: np.ndarray


def _id_matrix(token_lists: Sequence[Sequence[str]], rows: np.ndarray, length: int,
               word_ids: WordIds) -> np.ndarray:
    return np.fromiter((word_ids(w) for r in rows for w in token_lists[r][:length]),
                       dtype=np.uint64, count=len(rows) * length).reshape(len(rows), length)


def _by_length(token_lists: Sequence[Sequence[str]]) -> dict[int, np.ndarray]:
    lengths = np.fromiter((min(len(t), _MAX_WORDS) for t in token_lists), dtype=np.int64,
                          count=len(token_lists))
    return {int(n): np.flatnonzero(lengths == n) for n in np.unique(lengths) if n > 0}


def masked_keys(token_lists: Sequence[Sequence[str]], word_ids: WordIds,
                max_diff: int = 1) -> MaskedKeys:
    """Masked keys of every caption of a batch (see the module docstring). Captions longer than
    512 words are keyed on their first 512 words."""
    parts: list[tuple[np.ndarray, ...]] = []
    for length, rows in _by_length(token_lists).items():
        ids = _id_matrix(token_lists, rows, length, word_ids)
        weights = _POW[length - 1 - np.arange(length)]
        with np.errstate(over="ignore"):
            wild_terms = (_WILD - ids) * weights
            base = (ids * weights).sum(axis=1) + np.uint64(length) * _LEN_SALT
        combos = _combos(length, wildcard_count(length, max_diff))
        for s in range(0, len(combos), _COMBOS_PER_STEP):
            part = combos[s:s + _COMBOS_PER_STEP]
            with np.errstate(over="ignore"):
                keys = base[:, None] + wild_terms[:, part].sum(axis=2)
            n_keys = keys.size
            positions = np.full((n_keys, max_diff), -1, dtype=np.int16)
            positions[:, :part.shape[1]] = np.tile(part, (len(rows), 1))
            wids = np.zeros((n_keys, max_diff), dtype=np.uint64)
            wids[:, :part.shape[1]] = ids[:, part].reshape(n_keys, part.shape[1])
            parts.append((keys.reshape(-1), np.repeat(rows, len(part)), positions, wids))
    if not parts:
        return MaskedKeys(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64),
                          np.zeros((0, max_diff), dtype=np.int16),
                          np.zeros((0, max_diff), dtype=np.uint64))
    keys, caption, positions, wids = (np.concatenate(col) for col in zip(*parts))
    return MaskedKeys(splitmix64(keys), caption, positions, wids)


def deletion_keys(token_lists: Sequence[Sequence[str]], word_ids: WordIds,
                  max_diff: int, longest: int = _MAX_WORDS) -> DeletionKeys:
    """Deletion keys of every caption of a batch (see the module docstring), only for variants
    of at most ``longest`` words; a caption with a repeated word may give one key twice (the
    miner drops repeats). None for captions longer than :data:`MAX_MULTI_WORDS`."""
    parts: list[tuple[np.ndarray, ...]] = []
    for length, rows in _by_length(token_lists).items():
        if length > MAX_MULTI_WORDS:
            continue
        ids = _id_matrix(token_lists, rows, length, word_ids)
        for deleted in range(max(length - longest, 0), min(max_diff, length - 1) + 1):
            kept_len = length - deleted
            weights = _POW[kept_len - 1 - np.arange(kept_len)]
            combos = _combos(length, kept_len)
            for s in range(0, len(combos), _COMBOS_PER_STEP):
                part = combos[s:s + _COMBOS_PER_STEP]
                with np.errstate(over="ignore"):
                    keys = ((ids[:, part] * weights).sum(axis=2)
                            + np.uint64(kept_len) * _LEN_SALT + _DELETION_SALT)
                parts.append((keys.reshape(-1), np.repeat(rows, len(part)),
                              np.full(keys.size, length, dtype=np.int16)))
    if not parts:
        return DeletionKeys(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64),
                            np.zeros(0, dtype=np.int16))
    keys, caption, length = (np.concatenate(col) for col in zip(*parts))
    return DeletionKeys(splitmix64(keys), caption, length)
