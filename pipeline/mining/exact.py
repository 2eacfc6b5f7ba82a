"""Exact caption-pair miner: group captions by masked keys with Beam ``GroupByKey``.

Captions meet under masked keys (:mod:`covr_datagen.pipeline.mining.masked_keys`: one per word
for one-word pairs, ``C(L, w)`` for ``mining.max_word_diff`` ``k >= 2``, each with the
wildcarded positions and their word ids) and, with ``mining.allow_length_change``, deletion
keys. One-word mining spreads its keys over ``num_buckets`` shuffle buckets; every bucket is
grouped once (GroupByKey) and sorted with numpy. With ``k >= 2`` or length changes the captions
are grouped by length window instead (:class:`PairsInLengthWindow`: the captions of ``base``
words, plus those of ``base + 1..base + k`` words for length changes) and each window makes its
keys in memory: keys never cross the shuffle (``C(L, k)`` keys per caption through it took over
14 GiB at 100k captions for ``k = 3``). Captions sharing a key are paired: in a masked-key group,
a pair is formed only when the group's wildcard set is the canonical one for the positions where
the two captions differ, so each pair comes from one group; in a deletion-key group, only a
``base``-word caption and a longer one are paired, and a pair met under several keys is kept
once. A key shared by more than ``max_group_size`` captions (a "hot key", e.g.
"<*> background") keeps only its first ``max_group_size`` captions (by caption id); the pairs
this removes are counted as ``hot_key_cap`` and one reject row per capped key records its size.
Candidate pairs are then joined with their captions (two CoGroupByKeys on caption id, entered
only by captions that are in some candidate pair: their ids travel as one sorted array, a side
input) and verified word by word: a masked-key pair that fails (a 64-bit hash collision) is
dropped as ``hash_collision``; a deletion-key pair whose token edit distance exceeds ``k``
(sharing a deletion key does not bound it) is counted as ``not_within_edit_distance`` (counted
only, no reject rows).

Counting unit: candidate pairs: pairs formed in a masked-key group, distinct pairs of a
window's deletion-key groups, and pairs a cap did not form. With ``k >= 2`` a pair the cap
removed from one group may still be formed from another of its keys; it is then counted in both
places.
"""

from __future__ import annotations

from typing import Any, Iterator

import apache_beam as beam
import numpy as np

from covr_datagen.filters.base import Drop
from covr_datagen.pipeline.core.accounting import INPUT, KEPT, REJECTS_TAG, Drops, Progress, counter
from covr_datagen.pipeline.mining.masked_keys import (
    MAX_KEY_WORDS,
    WordIds,
    canonical_mask,
    deletion_keys,
    masked_keys,
)
from covr_datagen.pipeline.text.normalize import word_changes

#: candidate position of a deletion-key pair (its first change is known only after verification)
LENGTH_CHANGE = -1


class EmitMaskedKeys(beam.DoFn):
    """Batch of caption rows -> ``(bucket, (keys, caption_ids, positions, word_ids))`` numpy
    arrays: the one-word masked keys (see :mod:`covr_datagen.pipeline.mining.masked_keys`)."""

    def __init__(self, num_buckets: int):
        self.num_buckets = num_buckets

    def setup(self):
        self._word_ids = WordIds()

    def process(self, batch: list[dict]) -> Iterator[tuple[int, tuple]]:
        tokens = [row["normalized"].split(" ") for row in batch]
        ids = np.fromiter((int(row["caption_id"], 16) for row in batch), dtype=np.uint64,
                          count=len(batch))
        masked = masked_keys(tokens, self._word_ids)
        columns = (masked.keys, ids[masked.caption], masked.positions, masked.word_ids)
        buckets = (masked.keys % np.uint64(self.num_buckets)).astype(np.int64)
        order = np.argsort(buckets, kind="stable")
        buckets = buckets[order]
        columns = tuple(c[order] for c in columns)
        bounds = np.flatnonzero(np.diff(buckets)) + 1
        for at, part in zip(np.split(buckets, bounds), zip(*(np.split(c, bounds) for c in columns))):
            if len(at):
                yield int(at[0]), part


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and size of each run of equal values of sorted ``keys``."""
    starts = np.concatenate([[0], np.flatnonzero(np.diff(keys)) + 1]).astype(np.int64)
    return starts, np.diff(np.concatenate([starts, [len(keys)]]))


def _member_pairs(starts: np.ndarray, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(a, b)``, ``a < b``, of every pair of rows inside each group."""
    firsts, seconds = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for size in np.unique(sizes[sizes > 1]):
        at = starts[sizes == size]
        i, j = np.triu_indices(int(size), 1)
        firsts.append((at[:, None] + i).reshape(-1))
        seconds.append((at[:, None] + j).reshape(-1))
    return np.concatenate(firsts), np.concatenate(seconds)


class PairsInBucket(beam.DoFn):
    """One bucket's keys -> candidate pairs ``(caption_id_a, caption_id_b, position)`` with
    ``a < b``; ``position`` is the first differing position of a masked-key pair, or
    :data:`LENGTH_CHANGE` for a deletion-key pair (:class:`PairsInLengthWindow`)."""

    def __init__(self, stage: str, max_group_size: int):
        self.stage = stage
        self.max_group_size = max_group_size

    def setup(self):
        self._input = counter(self.stage, INPUT)
        self._drops = Drops(self.stage)
        self._progress = Progress(self.stage, "buckets")

    def process(self, element: tuple[int, Any]):
        _, parts = element
        self._progress.tick()
        yield from self._masked_pairs(*(np.concatenate(c) for c in zip(*parts)))

    def _sorted_groups(self, keys: np.ndarray, cids: np.ndarray, *columns: np.ndarray):
        order = np.lexsort((cids, keys))
        keys, cids = keys[order], cids[order]
        columns = tuple(c[order] for c in columns)
        starts, sizes = _groups(keys)
        return keys, cids, columns, starts, sizes

    def _cap(self, keys, cids, starts, sizes, position_of, removed_in):
        """Reject rows for groups over the cap; returns the capped sizes."""
        cap = self.max_group_size
        for start, size in zip(starts[sizes > cap], sizes[sizes > cap]):
            start, size = int(start), int(size)
            removed = removed_in(start, size)
            self._input.inc(removed)
            members = cids[start:start + size]
            yield self._drops.reject(
                Drop("hot_key_cap", f"{size} captions share one masked key; kept the first "
                     f"{cap} by caption id, {removed} pairs not formed"),
                f"{int(keys[start]):016x}",
                {"group_size": size, "position": position_of(start),
                 "example_caption_ids": [f"{int(c):016x}" for c in members[:5]]}, n=removed)

    def _masked_pairs(self, keys, cids, positions, word_ids):
        keys, cids, (positions, word_ids), starts, sizes = self._sorted_groups(
            keys, cids, positions, word_ids)
        yield from self._cap(keys, cids, starts, sizes, lambda at: int(positions[at, 0]),
                             lambda at, size: size * (size - 1) // 2
                             - self.max_group_size * (self.max_group_size - 1) // 2)
        a, b = _member_pairs(starts, np.minimum(sizes, self.max_group_size))
        differs = (word_ids[a] != word_ids[b]) & (positions[a] >= 0)
        keep = differs.any(axis=1) & canonical_mask(positions[a], differs)
        a, b, differs = a[keep], b[keep], differs[keep]
        first = np.where(differs, positions[a], np.iinfo(np.int16).max).min(axis=1)
        self._input.inc(len(a))
        for ca, cb, at in zip(cids[a].tolist(), cids[b].tolist(), first.tolist()):
            yield (ca, cb, at) if ca < cb else (cb, ca, at)

    def _deletion_pairs(self, keys, cids, lengths, base: int):
        """Pairs of a caption of ``base`` words and a longer one that share a deletion key, each
        pair once however many keys it shares."""
        keys, cids, (lengths,), starts, sizes = self._sorted_groups(keys, cids, lengths)
        repeat = np.concatenate([[False], (keys[1:] == keys[:-1]) & (cids[1:] == cids[:-1])])
        if repeat.any():  # a caption with a repeated word meets itself under one key
            keys, cids, lengths = keys[~repeat], cids[~repeat], lengths[~repeat]
            starts, sizes = _groups(keys)

        def across(start: int, size: int) -> int:
            def pairs(n: int) -> int:
                shortest = int((lengths[start:start + n] == base).sum())
                return shortest * (n - shortest)
            return pairs(size) - pairs(self.max_group_size)

        yield from self._cap(keys, cids, starts, sizes, lambda at: LENGTH_CHANGE, across)
        a, b = _member_pairs(starts, np.minimum(sizes, self.max_group_size))
        keep = (lengths[a] == base) != (lengths[b] == base)
        a, b = cids[a[keep]], cids[b[keep]]
        found = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)
        self._input.inc(len(found))
        for ca, cb in found.tolist():
            yield ca, cb, LENGTH_CHANGE


class PairsInLengthWindow(PairsInBucket):
    """The captions of ``base`` words and (``mining.allow_length_change``) of ``base + 1`` to
    ``base + k`` words -> candidate pairs, keyed in memory: with ``k >= 2`` the masked-key pairs
    of the ``base``-word captions (formed as :class:`PairsInBucket` forms them), and the pairs of
    a ``base``-word caption and a longer one sharing a deletion key (variants of at most ``base``
    words). Every pair belongs to the window of its shorter caption, so the shuffle carries each
    caption ``k + 1`` times at most instead of its ``C(L, k)`` keys."""

    def __init__(self, stage: str, max_group_size: int, max_diff: int, allow_length_change: bool):
        super().__init__(stage, max_group_size)
        self.max_diff, self.allow_length_change = max_diff, allow_length_change

    def setup(self):
        super().setup()
        self._word_ids = WordIds()
        self._progress = Progress(self.stage, "length windows")

    def process(self, element: tuple[int, Any]):
        base, items = element
        items = list(items)
        tokens = [norm.split(" ") for _, norm in items]
        cids = np.fromiter((int(cid, 16) for cid, _ in items), dtype=np.uint64, count=len(items))
        lengths = np.fromiter((min(len(t), MAX_KEY_WORDS) for t in tokens), dtype=np.int64,
                              count=len(items))
        self._progress.tick()
        if self.max_diff > 1:
            rows = np.flatnonzero(lengths == base)
            masked = masked_keys([tokens[r] for r in rows], self._word_ids, self.max_diff)
            yield from self._masked_pairs(masked.keys, cids[rows][masked.caption],
                                          masked.positions, masked.word_ids)
        if self.allow_length_change:
            deleted = deletion_keys(tokens, self._word_ids, self.max_diff, longest=base)
            yield from self._deletion_pairs(deleted.keys, cids[deleted.caption],
                                            lengths[deleted.caption], base)


def length_windows(row: dict, max_diff: int, allow_length_change: bool) -> Iterator[tuple]:
    """``(base, (caption_id, normalized))`` for every length window the caption belongs to: its
    own length, and with length changes the ``max_diff`` shorter ones."""
    length = min(row["normalized"].count(" ") + 1, MAX_KEY_WORDS)
    value = (row["caption_id"], row["normalized"])
    reach = max_diff if allow_length_change else 0
    for base in range(length, max(length - reach, 1) - 1, -1):
        yield base, value


def _caption_value(row: dict) -> tuple:
    return (row["normalized"], row["caption"], list(row["media_ids"]))


def _attach_first(element: tuple[str, dict]) -> Iterator[tuple[str, tuple]]:
    cid1, grouped = element
    caps = list(grouped["caption"])
    if not caps:
        raise RuntimeError(f"caption {cid1} of a mined pair is missing from the captions table")
    for cid2, position in grouped["pair"]:
        yield cid2, (cid1, caps[0], position)


class CompletePairs(beam.DoFn):
    """Second join: attach caption 2, verify the pair rule, emit caption-pair rows."""

    def __init__(self, stage: str, max_diff: int = 1, allow_length_change: bool = False):
        self.stage = stage
        self.max_diff, self.allow_length_change = max_diff, allow_length_change

    def setup(self):
        self._kept = counter(self.stage, KEPT)
        self._drops = Drops(self.stage)

    def process(self, element: tuple[str, dict]):
        cid2, grouped = element
        caps = list(grouped["caption"])
        if not caps:
            raise RuntimeError(f"caption {cid2} of a mined pair is missing from the captions table")
        norm2, cap2, media2 = caps[0]
        for cid1, (norm1, cap1, media1), position in grouped["half"]:
            row = pair_row(cid1, cid2, norm1, norm2, cap1, cap2, media1, media2,
                           max_diff=self.max_diff, allow_length_change=self.allow_length_change)
            if position == LENGTH_CHANGE and row is None:
                self._drops.count("not_within_edit_distance")
                continue
            if row is None or (position != LENGTH_CHANGE and row["position"] != position):
                yield self._drops.reject(
                    Drop("hash_collision", "masked keys matched but the words differ elsewhere"),
                    f"{cid1}-{cid2}", {"txt1": norm1, "txt2": norm2})
                continue
            self._kept.inc()
            yield row


def pair_row(cid1: str, cid2: str, norm1: str, norm2: str, cap1: str, cap2: str,
             media1: list, media2: list, sim: float | None = None, max_diff: int = 1,
             allow_length_change: bool = False) -> dict | None:
    """A CAPTION_PAIRS row for two captions (``cid1 < cid2``), or ``None`` if they are not a
    pair of the mining rule (:func:`covr_datagen.pipeline.text.normalize.word_changes`)."""
    changes = word_changes(norm1.split(" "), norm2.split(" "), max_diff, allow_length_change)
    if changes is None:
        return None
    return {
        "pair_id": f"{cid1}-{cid2}", "caption_id1": cid1, "caption_id2": cid2,
        "txt1": cap1, "txt2": cap2, "word1": " ".join(changes.removed),
        "word2": " ".join(changes.added), "position": changes.position, "sim_txt": sim,
        "media_ids1": media1, "media_ids2": media2, "word_diff": changes.count,
    }


class SortedIds(beam.CombineFn):
    """Combine integer ids into one sorted, duplicate-free ``uint64`` array."""

    def create_accumulator(self) -> list:
        return []

    def add_input(self, acc: list, ids) -> list:
        acc.extend(ids)
        return acc

    def merge_accumulators(self, accs) -> list:
        return [i for acc in accs for i in acc]

    def compact(self, acc: list) -> list:
        return np.unique(np.asarray(acc, dtype=np.uint64)).tolist()

    def extract_output(self, acc: list) -> np.ndarray:
        return np.unique(np.asarray(acc, dtype=np.uint64))


def in_sorted_ids(row: dict, ids: np.ndarray) -> bool:
    """Whether the row's hex ``caption_id`` is in the sorted array ``ids``."""
    value = np.uint64(int(row["caption_id"], 16))
    at = int(np.searchsorted(ids, value))
    return at < len(ids) and ids[at] == value


class MineExact(beam.PTransform):
    """captions -> (caption pair rows, rejects).

    The input is ``{"keys": rows, "captions": rows}``: two reads of the same captions table,
    the first with only ``caption_id`` and ``normalized`` (for the masked keys). Reading twice
    costs less than one read feeding both branches: the branch that waits for the paired-id
    side input would make the runner hold every caption row until then
    (at 2M captions, 1.6M rows encoded and buffered in the launching process), while a second
    read filters right after reading, so only paired captions are ever encoded.
    """

    def __init__(self, stage: str, max_group_size: int = 200, num_buckets: int = 64,
                 max_diff: int = 1, allow_length_change: bool = False):
        super().__init__()
        if max_group_size < 2:
            raise ValueError("mining.max_group_size must be >= 2")
        self.stage, self.max_group_size, self.num_buckets = stage, max_group_size, num_buckets
        self.max_diff, self.allow_length_change = max_diff, allow_length_change

    def expand(self, inputs):
        for_keys, captions = inputs["keys"], inputs["captions"]
        found = []
        if self.max_diff == 1:
            found.append(for_keys
                         | "BatchCaptions" >> beam.BatchElements(min_batch_size=256,
                                                                 max_batch_size=4096)
                         | "MaskedKeys" >> beam.ParDo(EmitMaskedKeys(self.num_buckets))
                         | "GroupBuckets" >> beam.GroupByKey()
                         | "PairsInBucket" >> beam.ParDo(PairsInBucket(
                             self.stage, self.max_group_size)).with_outputs(REJECTS_TAG, main="pairs"))
        if self.max_diff > 1 or self.allow_length_change:
            found.append(for_keys
                         | "LengthWindows" >> beam.FlatMap(length_windows, self.max_diff,
                                                           self.allow_length_change)
                         | "GroupWindows" >> beam.GroupByKey()
                         | "PairsInLengthWindow" >> beam.ParDo(PairsInLengthWindow(
                             self.stage, self.max_group_size, self.max_diff,
                             self.allow_length_change)).with_outputs(REJECTS_TAG, main="pairs"))
        cands = {"pairs": [f.pairs for f in found] | "Candidates" >> beam.Flatten(),
                 REJECTS_TAG: [f[REJECTS_TAG] for f in found] | "KeyRejects" >> beam.Flatten()}
        # only captions in some candidate pair enter the joins (a fraction of the corpus)
        paired_ids = (cands["pairs"]
                      | "PairCaptionIds" >> beam.Map(lambda t: (t[0], t[1]))
                      | "PairedIds" >> beam.CombineGlobally(SortedIds()))
        caps_kv = (captions
                   | "KeepPaired" >> beam.Filter(in_sorted_ids,
                                                 ids=beam.pvalue.AsSingleton(paired_ids))
                   | "KeyCaptions" >> beam.Map(lambda r: (r["caption_id"], _caption_value(r))))
        by_first = cands["pairs"] | "KeyByFirst" >> beam.Map(
            lambda t: (f"{t[0]:016x}", (f"{t[1]:016x}", t[2])))
        halves = ({"caption": caps_kv, "pair": by_first} | "JoinFirst" >> beam.CoGroupByKey()
                  | "AttachFirst" >> beam.FlatMap(_attach_first))
        done = ({"caption": caps_kv, "half": halves} | "JoinSecond" >> beam.CoGroupByKey()
                | "Complete" >> beam.ParDo(
                    CompletePairs(self.stage, self.max_diff, self.allow_length_change)).with_outputs(
                    REJECTS_TAG, main="pairs"))
        rejects = (cands[REJECTS_TAG], done[REJECTS_TAG]) | "MiningRejects" >> beam.Flatten()
        return done.pairs, rejects
