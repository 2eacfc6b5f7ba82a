"""faiss miner (the paper's method): embed every distinct caption, search the ``k`` nearest
neighbours, keep neighbour pairs that differ by exactly one word (by 1..``mining.max_word_diff``
words, or within that token edit distance with ``mining.allow_length_change``: the same rule
as the exact miner, :func:`covr_datagen.pipeline.mining.exact.pair_row`).

Embedding runs in parallel Beam workers, in hash buckets of caption ids that write their vectors
to scratch files (:class:`covr_datagen.pipeline.text.vectors.EmbedToVectorFiles`, as the similarity filter
does), so vectors never travel through a shuffle. The search needs every vector in one index, so
one worker gathers the captions' ids and words (a ``ToList``: the one global step of this miner,
as in the paper's single-GPU search) and loads every vector file once all are written (their
per-bucket summaries are a side input). Index: exact inner product
(``IndexFlatIP``) below ``flat_max`` captions, else an inverted file (``IndexIVFFlat``,
``nlist = 4*sqrt(n)``, ``nprobe`` probes), which keeps the raw float32 vectors
(2M x 384 x 4 B = 3 GB) and searches in minutes on CPU.

Counting unit: distinct unordered neighbour pairs. Those that are not one-word pairs are dropped
as ``not_one_word`` (``not_within_word_diff`` for multi-word rules; counted, not written row by
row: there are ~k per caption). Kept pairs carry
``sim_txt`` = cosine of the two caption embeddings.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Iterator

import apache_beam as beam
import numpy as np

from covr_datagen.pipeline.config import MiningConfig, TextEncoderConfig
from covr_datagen.pipeline.core.accounting import INPUT, KEPT, Drops, counter
from covr_datagen.pipeline.mining.exact import pair_row
from covr_datagen.pipeline.mining.masked_keys import WordIds
from covr_datagen.pipeline.text.vectors import EmbedToVectorFiles, load_sorted_vectors

#: faiss index types (``mining.index``); auto = flat below ``flat_max`` captions, else ivf
INDEX_TYPES = ("flat", "ivf", "auto")


def build_index(vectors: np.ndarray, index: str = "auto", nprobe: int = 16, flat_max: int = 200_000):
    """A faiss inner-product index over L2-normalised ``vectors`` (see module docstring)."""
    import faiss

    n, d = vectors.shape
    kind = index if index != "auto" else ("flat" if n <= flat_max else "ivf")
    if kind == "flat":
        idx = faiss.IndexFlatIP(d)
    elif kind == "ivf":
        nlist = max(1, min(n // 39, int(4 * math.sqrt(n))))
        quantizer = faiss.IndexFlatIP(d)
        idx = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)
        train = vectors[rng.choice(n, size=min(n, nlist * 64), replace=False)]
        idx.train(train)
        idx.nprobe = nprobe
    else:
        raise ValueError(f"unknown faiss index type {index!r}; use {', '.join(INDEX_TYPES)}")
    idx.add(vectors)
    return idx


def candidate_pairs(neighbours: np.ndarray, rows: slice = slice(None)) -> np.ndarray:
    """Distinct unordered pairs ``(i, j)``, ``i < j``, from the neighbour lists of ``rows`` of a
    ``(n, k)`` neighbour matrix (self and ``-1`` entries skipped).

    Each pair belongs to exactly one row, so the rows can be taken a chunk at a time and no pair
    comes out twice: pair ``(i, j)`` comes from row ``i`` when ``j`` is in ``i``'s list, else
    from row ``j``. Memory is that of the chunk, not of all ``n * k`` candidates.
    """
    n = len(neighbours)
    first = rows.indices(n)[0]
    block = np.sort(neighbours[rows], axis=1)
    repeated = np.zeros(block.shape, dtype=bool)  # a row may list a neighbour twice
    repeated[:, 1:] = block[:, 1:] == block[:, :-1]
    own = np.repeat(np.arange(first, first + len(block), dtype=np.int64), block.shape[1])
    other = block.reshape(-1).astype(np.int64)
    valid = (other >= 0) & (other != own) & ~repeated.reshape(-1)
    own, other = own[valid], other[valid]
    # a backward pair (other < own) is the other row's unless own is missing from that row's list
    backward = np.flatnonzero(other < own)
    listed = (neighbours[other[backward]] == own[backward, None]).any(axis=1)
    keep = np.ones(len(own), dtype=bool)
    keep[backward[listed]] = False
    own, other = own[keep], other[keep]
    return np.stack([np.minimum(own, other), np.maximum(own, other)], axis=1)


class WordDiffPrecheck:
    """Vectorised pre-check of candidate pairs against a word-id table: True where the two
    captions have equal length and differ in at most ``max_diff`` positions, or (with
    ``allow_length_change``) lengths at most ``max_diff`` apart; :func:`pair_row` decides."""

    def __init__(self, token_lists: list[list[str]], max_diff: int = 1,
                 allow_length_change: bool = False):
        word_ids = WordIds()
        self.max_diff, self.allow_length_change = max_diff, allow_length_change
        self.lengths = np.array([len(t) for t in token_lists], dtype=np.int64)
        max_len = int(self.lengths.max()) if len(self.lengths) else 0
        self.table = np.zeros((len(token_lists), max(max_len, 1)), dtype=np.uint64)
        for row, tokens in enumerate(token_lists):
            self.table[row, :len(tokens)] = [word_ids(w) for w in tokens]

    def mask(self, pairs: np.ndarray, chunk: int = 1_000_000) -> np.ndarray:
        """One bool per row of ``pairs`` (``(m, 2)`` caption indices), ``chunk`` pairs at a time."""
        gap = np.abs(self.lengths[pairs[:, 0]] - self.lengths[pairs[:, 1]])
        out = (gap > 0) & (gap <= self.max_diff) if self.allow_length_change else np.zeros(
            len(pairs), dtype=bool)
        idx = np.flatnonzero(gap == 0)
        for s in range(0, len(idx), chunk):
            part = idx[s:s + chunk]
            differ = (self.table[pairs[part, 0]] != self.table[pairs[part, 1]]).sum(axis=1)
            out[part] = differ <= self.max_diff
        return out


#: the one-word pre-check (``max_diff`` 1) under its earlier name
OneWordPrecheck = WordDiffPrecheck


def _gathered(row: dict) -> tuple:
    """What the search keeps of a caption row."""
    return (row["caption_id"], row["normalized"], row["caption"], list(row["media_ids"]))


class SearchAndPair(beam.DoFn):
    """All captions (one list of :func:`_gathered` tuples) + their vector files -> index, kNN
    search, one-word pairs.

    Memory: the vectors, the index while searching, an int32 ``(n, k+1)`` neighbour table and
    the masked-key table stay for the whole step; candidate pairs exist only for ``PAIR_ROWS``
    captions at a time (all of them at once took ~14 GB at 820k captions).
    """

    #: captions per faiss search call / per chunk of candidate pairs
    SEARCH_ROWS = 65536
    PAIR_ROWS = 8192

    def __init__(self, stage: str, cfg: MiningConfig, folder: str):
        self.stage = stage
        self.cfg = cfg
        self.folder = folder
        #: neighbour pairs that are not pairs of the rule (one name per rule, counted only)
        self.drop_reason = "not_one_word" if cfg.max_word_diff == 1 and not cfg.allow_length_change \
            else "not_within_word_diff"

    def setup(self):
        self._input = counter(self.stage, INPUT)
        self._kept = counter(self.stage, KEPT)
        self._drops = Drops(self.stage)

    def process(self, items: list, summaries: list) -> Iterator[dict]:
        if not items:
            return
        items.sort(key=lambda it: it[0])
        ids, vectors = load_sorted_vectors(self.folder, summaries)
        if ids.tolist() != [it[0] for it in items]:
            raise RuntimeError(f"{len(items):,} captions but {len(ids):,} vectors in {self.folder}, "
                               "or their ids differ")
        start = time.monotonic()
        neighbours = self._search(vectors, start)
        cfg = self.cfg
        precheck = WordDiffPrecheck([it[1].split(" ") for it in items], cfg.max_word_diff,
                                    cfg.allow_length_change)
        for s in range(0, len(items), self.PAIR_ROWS):
            pairs = candidate_pairs(neighbours, slice(s, s + self.PAIR_ROWS))
            kept = 0
            for i, j in pairs[precheck.mask(pairs)]:
                (cid1, norm1, cap1, media1), (cid2, norm2, cap2, media2) = items[i], items[j]
                row = pair_row(cid1, cid2, norm1, norm2, cap1, cap2, media1, media2,
                               float(np.dot(vectors[i], vectors[j])), cfg.max_word_diff,
                               cfg.allow_length_change)
                if row is not None:
                    kept += 1
                    yield row
            self._input.inc(len(pairs))
            self._kept.inc(kept)
            self._drops.count(self.drop_reason, len(pairs) - kept)
            if (s // self.PAIR_ROWS) % 16 == 15 or s + self.PAIR_ROWS >= len(items):
                print(f"  [{self.stage}] paired {min(s + self.PAIR_ROWS, len(items)):,}/"
                      f"{len(items):,} captions' neighbours ({time.monotonic() - start:.0f}s)",
                      file=sys.stderr, flush=True)

    def _search(self, vectors: np.ndarray, start: float) -> np.ndarray:
        """The ``k`` nearest neighbours of every vector (itself included), as int32 indices."""
        index = build_index(vectors, self.cfg.index, self.cfg.nprobe)
        n = len(vectors)
        k = min(self.cfg.k + 1, n)
        neighbours = np.empty((n, k), dtype=np.int32)
        for s in range(0, n, self.SEARCH_ROWS):
            neighbours[s:s + self.SEARCH_ROWS] = index.search(vectors[s:s + self.SEARCH_ROWS], k)[1]
            print(f"  [{self.stage}] searched {min(s + self.SEARCH_ROWS, n):,}/{n:,} captions "
                  f"({time.monotonic() - start:.0f}s)", file=sys.stderr, flush=True)
        return neighbours


class MineKnn(beam.PTransform):
    """captions -> (caption pair rows, rejects [always empty: drops are counted only]).
    Vector files go to ``folder`` (scratch: the stage's staging folder)."""

    def __init__(self, stage: str, cfg: MiningConfig, encoder_cfg: TextEncoderConfig, folder: str):
        super().__init__()
        self.stage, self.cfg, self.encoder_cfg, self.folder = stage, cfg, encoder_cfg, folder

    def expand(self, captions):
        summaries = (captions
                     | "WithText" >> beam.Map(lambda row: (row["caption_id"], row["normalized"]))
                     | "Embed" >> EmbedToVectorFiles(self.encoder_cfg, self.folder, self.stage))
        pairs = (captions
                 | "Slim" >> beam.Map(_gathered)
                 | "Gather" >> beam.combiners.ToList()
                 | "Search" >> beam.ParDo(SearchAndPair(self.stage, self.cfg, self.folder),
                                          summaries=beam.pvalue.AsList(summaries)))
        rejects = captions.pipeline | "NoRejects" >> beam.Create([])
        return pairs, rejects
