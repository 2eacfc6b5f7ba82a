"""Exact one-word-pair miner: group captions by masked keys with Beam ``GroupByKey``.

Each caption emits one masked key per word (:mod:`covr_datagen.pipeline.mining.masked_keys`). Keys are spread
over ``num_buckets`` shuffle buckets; every bucket is grouped once (GroupByKey) and sorted with
numpy, and captions sharing a key are paired. A key shared by more than ``max_group_size``
captions (a "hot key", e.g. "<*> background") keeps only its first ``max_group_size`` captions
(by caption id); the pairs this removes are counted as ``hot_key_cap`` and one reject row per
capped key records its size. Candidate pairs are then joined with their captions (two
CoGroupByKeys on caption id, entered only by captions that are in some candidate pair: their
ids travel as one sorted array, a side input) and verified word by word; a pair that fails
verification (a 64-bit hash collision) is dropped as ``hash_collision``.

Counting unit: candidate pairs (``n*(n-1)/2`` per key group of ``n`` captions).
"""

from __future__ import annotations

from itertools import combinations
from typing import Any, Iterator

import apache_beam as beam
import numpy as np

from covr_datagen.filters.base import Drop
from covr_datagen.pipeline.core.accounting import INPUT, KEPT, REJECTS_TAG, Drops, Progress, counter
from covr_datagen.pipeline.mining.masked_keys import WordIds, masked_keys
from covr_datagen.pipeline.text.normalize import one_word_difference


class EmitMaskedKeys(beam.DoFn):
    """Batch of caption rows -> ``(bucket, (keys, caption_ids, positions))`` numpy triples."""

    def __init__(self, num_buckets: int):
        self.num_buckets = num_buckets

    def setup(self):
        self._word_ids = WordIds()

    def process(self, batch: list[dict]) -> Iterator[tuple[int, tuple]]:
        tokens = [row["normalized"].split(" ") for row in batch]
        keys, cap, pos = masked_keys(tokens, self._word_ids)
        cids = np.fromiter((int(row["caption_id"], 16) for row in batch), dtype=np.uint64,
                           count=len(batch))[cap]
        buckets = (keys % np.uint64(self.num_buckets)).astype(np.int64)
        order = np.argsort(buckets, kind="stable")
        buckets, keys, cids, pos = buckets[order], keys[order], cids[order], pos[order]
        bounds = np.flatnonzero(np.diff(buckets)) + 1
        for part_b, part_k, part_c, part_p in zip(np.split(buckets, bounds), np.split(keys, bounds),
                                                  np.split(cids, bounds), np.split(pos, bounds)):
            if len(part_b):
                yield int(part_b[0]), (part_k, part_c, part_p)


class PairsInBucket(beam.DoFn):
    """One bucket's keys -> candidate pairs ``(caption_id_a, caption_id_b, position)``."""

    def __init__(self, stage: str, max_group_size: int):
        self.stage = stage
        self.max_group_size = max_group_size

    def setup(self):
        self._input = counter(self.stage, INPUT)
        self._drops = Drops(self.stage)
        self._progress = Progress(self.stage, "buckets")

    def process(self, element: tuple[int, Any]):
        _, parts = element
        parts = list(parts)
        keys = np.concatenate([p[0] for p in parts])
        cids = np.concatenate([p[1] for p in parts])
        pos = np.concatenate([p[2] for p in parts])
        order = np.lexsort((cids, keys))
        keys, cids, pos = keys[order], cids[order], pos[order]
        starts = np.concatenate([[0], np.flatnonzero(np.diff(keys)) + 1])
        sizes = np.diff(np.concatenate([starts, [len(keys)]]))
        cap = self.max_group_size
        self._progress.tick()
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1]):
            start, size = int(start), int(size)
            self._input.inc(size * (size - 1) // 2)
            members = cids[start:start + size]
            if size > cap:
                removed = size * (size - 1) // 2 - cap * (cap - 1) // 2
                yield self._drops.reject(
                    Drop("hot_key_cap", f"{size} captions share one masked key; kept the first "
                         f"{cap} by caption id, {removed} pairs not formed"),
                    f"{int(keys[start]):016x}",
                    {"group_size": size, "position": int(pos[start]),
                     "example_caption_ids": [f"{int(c):016x}" for c in members[:5]]}, n=removed)
                members = members[:cap]
            position = int(pos[start])
            for a, b in combinations(members.tolist(), 2):
                yield (a, b, position) if a < b else (b, a, position)


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
    """Second join: attach caption 2, verify the one-word rule, emit caption-pair rows."""

    def __init__(self, stage: str):
        self.stage = stage

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
            row = pair_row(cid1, cid2, norm1, norm2, cap1, cap2, media1, media2)
            if row is None or row["position"] != position:
                yield self._drops.reject(
                    Drop("hash_collision", "masked keys matched but words differ in more than "
                         "one position"), f"{cid1}-{cid2}", {"txt1": norm1, "txt2": norm2})
                continue
            self._kept.inc()
            yield row


def pair_row(cid1: str, cid2: str, norm1: str, norm2: str, cap1: str, cap2: str,
             media1: list, media2: list, sim: float | None = None) -> dict | None:
    """A CAPTION_PAIRS row for two captions (``cid1 < cid2``), or ``None`` if they are not a
    one-word pair."""
    words1, words2 = norm1.split(" "), norm2.split(" ")
    position = one_word_difference(words1, words2)
    if position is None:
        return None
    return {
        "pair_id": f"{cid1}-{cid2}", "caption_id1": cid1, "caption_id2": cid2,
        "txt1": cap1, "txt2": cap2, "word1": words1[position], "word2": words2[position],
        "position": position, "sim_txt": sim, "media_ids1": media1, "media_ids2": media2,
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

    def __init__(self, stage: str, max_group_size: int = 200, num_buckets: int = 64):
        super().__init__()
        if max_group_size < 2:
            raise ValueError("mining.max_group_size must be >= 2")
        self.stage, self.max_group_size, self.num_buckets = stage, max_group_size, num_buckets

    def expand(self, inputs):
        for_keys, captions = inputs["keys"], inputs["captions"]
        keyed = (for_keys
                 | "BatchCaptions" >> beam.BatchElements(min_batch_size=256, max_batch_size=4096)
                 | "MaskedKeys" >> beam.ParDo(EmitMaskedKeys(self.num_buckets))
                 | "GroupBuckets" >> beam.GroupByKey())
        cands = keyed | "PairsInBucket" >> beam.ParDo(
            PairsInBucket(self.stage, self.max_group_size)).with_outputs(REJECTS_TAG, main="pairs")
        # only captions in some candidate pair enter the joins (a fraction of the corpus)
        paired_ids = (cands.pairs
                      | "PairCaptionIds" >> beam.Map(lambda t: (t[0], t[1]))
                      | "PairedIds" >> beam.CombineGlobally(SortedIds()))
        caps_kv = (captions
                   | "KeepPaired" >> beam.Filter(in_sorted_ids,
                                                 ids=beam.pvalue.AsSingleton(paired_ids))
                   | "KeyCaptions" >> beam.Map(lambda r: (r["caption_id"], _caption_value(r))))
        by_first = cands.pairs | "KeyByFirst" >> beam.Map(
            lambda t: (f"{t[0]:016x}", (f"{t[1]:016x}", t[2])))
        halves = ({"caption": caps_kv, "pair": by_first} | "JoinFirst" >> beam.CoGroupByKey()
                  | "AttachFirst" >> beam.FlatMap(_attach_first))
        done = ({"caption": caps_kv, "half": halves} | "JoinSecond" >> beam.CoGroupByKey()
                | "Complete" >> beam.ParDo(CompletePairs(self.stage)).with_outputs(
                    REJECTS_TAG, main="pairs"))
        rejects = (cands[REJECTS_TAG], done[REJECTS_TAG]) | "MiningRejects" >> beam.Flatten()
        return done.pairs, rejects
