"""Top-k media pairs of one caption pair.

Every (media of caption 1, media of caption 2) combination is scored by the cosine of their
L2-normalised frame embeddings; the ``k`` best are kept, ties broken by media ids so the result
never depends on input order. A combination of a media item with itself (one media id listed under
both captions) is never a pair. Each side is first capped to its first ``max_media`` media ids
(sorted), bounding the work for captions shared by very many media.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np


def capped(media_ids: Sequence[str], max_media: int) -> list[str]:
    """The media ids of one caption considered for pairing: distinct, sorted, first ``max_media``."""
    if max_media < 1:
        raise ValueError(f"max_media_per_caption must be >= 1, got {max_media}")
    return sorted(set(media_ids))[:max_media]


def referenced_media(pair: dict, max_media: int) -> list[str]:
    """Media ids of a caption pair that can be scored (each side :func:`capped`)."""
    return sorted(set(capped(pair["media_ids1"], max_media))
                  | set(capped(pair["media_ids2"], max_media)))


def top_k_pairs(ids1: Sequence[str], vecs1: np.ndarray, ids2: Sequence[str], vecs2: np.ndarray,
                k: int) -> list[tuple[str, str, float]]:
    """``(media_id1, media_id2, cosine)`` for the ``k`` most similar combinations, best first."""
    if len(ids1) == 0 or len(ids2) == 0:
        return []
    sims = (np.asarray(vecs1, dtype=np.float32) @ np.asarray(vecs2, dtype=np.float32).T)
    i1, i2 = np.meshgrid(np.arange(len(ids1)), np.arange(len(ids2)), indexing="ij")
    flat_sim, flat1, flat2 = sims.ravel(), i1.ravel(), i2.ravel()
    distinct = np.array([ids1[a] != ids2[b] for a, b in zip(flat1, flat2)], dtype=bool)
    flat_sim, flat1, flat2 = flat_sim[distinct], flat1[distinct], flat2[distinct]
    rank1 = np.argsort(np.argsort(np.asarray(ids1)))[flat1]
    rank2 = np.argsort(np.argsort(np.asarray(ids2)))[flat2]
    order = np.lexsort((rank2, rank1, -flat_sim))[:k]
    return [(ids1[flat1[o]], ids2[flat2[o]], float(flat_sim[o])) for o in order]


def seeded_pairs(pair_id: str, ids1: Sequence[str], ids2: Sequence[str], k: int,
                 seed: int) -> list[tuple[str, str, None]]:
    """Text-only mode: ``k`` combinations chosen by a seeded hash of the ids (similarity null).

    Deterministic for a given seed, independent of input order, and spread over the media of
    both captions rather than biased to the first ids.
    """
    def score(a: str, b: str) -> bytes:
        return hashlib.blake2b(f"{seed}|{pair_id}|{a}|{b}".encode(), digest_size=8).digest()

    combos = sorted((score(a, b), a, b) for a in ids1 for b in ids2 if a != b)[:k]
    return [(a, b, None) for _, a, b in combos]
