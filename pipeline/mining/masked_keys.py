"""Masked keys: for a caption of ``L`` words, one 64-bit key per position ``i`` identifying the
word sequence with position ``i`` wildcarded. Two captions differ by exactly one word iff they
have equal length and share the masked key of the differing position (up to hash collisions,
which the miner verifies against the words and counts).

Keys are a polynomial hash over per-word 64-bit ids (blake2b of the word, so identical on every
worker), computed with numpy for a whole batch of captions: ``key_i = H(caption) + (WILD - w_i)
* P**(L-1-i) + L * LEN_SALT`` modulo 2**64, followed by a splitmix64 finaliser.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

_P = np.uint64(0x9E3779B97F4A7C15)
_WILD = np.uint64(0xD6E8FEB86659FD93)
_LEN_SALT = np.uint64(0xA0761D6478BD642F)
_MAX_WORDS = 512


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


def masked_keys(token_lists: Sequence[Sequence[str]], word_ids: WordIds
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keys for every (caption, position) of a batch.

    Returns ``(keys uint64, caption_index int64, position int32)``, one entry per word.
    Captions longer than 512 words are truncated to their first 512 words for keying.
    """
    lengths = np.fromiter((min(len(t), _MAX_WORDS) for t in token_lists), dtype=np.int64,
                          count=len(token_lists))
    total = int(lengths.sum())
    if total == 0:
        empty = np.zeros(0, dtype=np.uint64)
        return empty, np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    ids = np.fromiter((word_ids(w) for t in token_lists for w in t[:_MAX_WORDS]),
                      dtype=np.uint64, count=total)
    cap = np.repeat(np.arange(len(token_lists), dtype=np.int64), lengths)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    pos = (np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)).astype(np.int32)
    exp = np.repeat(lengths, lengths) - 1 - pos
    weights = _POW[exp]
    with np.errstate(over="ignore"):
        terms = ids * weights
        nonempty = lengths > 0
        caption_hash = np.zeros(len(token_lists), dtype=np.uint64)
        caption_hash[nonempty] = np.add.reduceat(terms, starts[nonempty])
        keys = caption_hash[cap] + (_WILD - ids) * weights + lengths[cap].astype(np.uint64) * _LEN_SALT
    return splitmix64(keys), cap, pos
