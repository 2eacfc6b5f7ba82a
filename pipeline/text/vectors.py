"""Caption vectors shared through files instead of shuffles.

The similarity filter needs one embedding per distinct caption and a dot product per pair.
Shuffling the vectors to the pairs (joins by caption id) moved ~2 GB through Beam's local
runner at 2M captions and held it in the runner's memory. Here the vectors never enter a
PCollection:

1. :class:`EmbedToVectorFiles` groups ``(caption_id, text)`` by a stable hash of the id into
   ``text_encoder.embed_buckets`` buckets, embeds each bucket's distinct captions (sorted by id,
   so which texts share a batch never depends on runner timing) and writes them as two ``.npy``
   files under a scratch folder (the stage's staging folder, removed when the stage commits).
   It emits one small summary per bucket.
2. :class:`CaptionVectors` reads a bucket's files on first use (memory-mapped when local) and
   looks captions up by binary search; :func:`AttachCosine` uses it for ``sim_txt`` per pair,
   taking the summaries as a side input, so every file exists before a pair is scored and a
   caption missing from its bucket is a loud error.

Files are written atomically (:mod:`pipeline.core.scratch`), so a retried bundle rewrites the same
bucket deterministically and a reader never sees half a file.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from covr_datagen.pipeline.core.accounting import Progress
from covr_datagen.pipeline.core.grouping import GroupByKeyInBuckets, key_bucket
from covr_datagen.pipeline.core.models import SharedModel
from covr_datagen.pipeline.core.scratch import read_npy, write_npy
from covr_datagen.pipeline.text.encoders import TextEncoderSpec


def bucket_paths(folder: str, bucket: int) -> tuple[str, str]:
    """``(ids file, vectors file)`` of one bucket."""
    stem = FileSystems.join(folder, f"bucket-{bucket:05d}")
    return stem + ".ids.npy", stem + ".vecs.npy"


class EmbedBucketToFiles(beam.DoFn):
    """``(bucket, [(caption_id, text), ...])`` -> embed the distinct captions, write the bucket's
    files, emit ``(bucket, number of captions)``. The encoder is loaded once per worker."""

    def __init__(self, encoder: TextEncoderSpec, folder: str, stage: str = "embed"):
        self.model = SharedModel(encoder)
        self.folder = folder
        self.stage = stage

    def setup(self):
        self._encoder = self.model.acquire()
        self._progress = Progress(self.stage, "captions")

    def process(self, element: tuple[int, Iterable[tuple[str, str]]]) -> Iterator[tuple[int, int]]:
        bucket, entries = element
        texts: dict[str, str] = {}
        for cid, text in entries:
            if texts.setdefault(cid, text) != text:
                raise RuntimeError(f"caption {cid} has two texts: {texts[cid]!r} and {text!r}")
        ids = sorted(texts)
        vectors = self._encoder.encode([texts[cid] for cid in ids], on_batch=self._progress.tick)
        if len(vectors) != len(ids):
            raise RuntimeError(f"text encoder returned {len(vectors)} vectors for {len(ids)} texts")
        ids_path, vecs_path = bucket_paths(self.folder, bucket)
        write_npy(vecs_path, np.ascontiguousarray(vectors, dtype=np.float32))
        write_npy(ids_path, np.array(ids, dtype=str))
        yield bucket, len(ids)


class EmbedToVectorFiles(beam.PTransform):
    """``(caption_id, text)`` (duplicates allowed) -> vector files under ``folder``; the output is
    one ``(bucket, captions)`` summary per non-empty bucket."""

    def __init__(self, encoder_cfg, folder: str, stage: str = "embed"):
        super().__init__()
        self.encoder_cfg = encoder_cfg
        self.folder = folder
        self.stage = stage

    def expand(self, keyed_texts):
        buckets = max(1, int(self.encoder_cfg.embed_buckets))
        return (keyed_texts
                | "ToBucket" >> beam.Map(lambda kv: (key_bucket(kv[0], buckets), kv))
                | "GroupBuckets" >> GroupByKeyInBuckets(buckets)
                | "EmbedBucket" >> beam.ParDo(EmbedBucketToFiles(
                    TextEncoderSpec.from_config(self.encoder_cfg), self.folder, self.stage)))


class CaptionVectors:
    """Look up caption vectors written by :class:`EmbedToVectorFiles` (buckets loaded lazily)."""

    def __init__(self, folder: str, buckets: int):
        self.folder = folder
        self.buckets = buckets
        self._loaded: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def _bucket(self, bucket: int) -> tuple[np.ndarray, np.ndarray]:
        if bucket not in self._loaded:
            ids_path, vecs_path = bucket_paths(self.folder, bucket)
            ids, vecs = np.asarray(read_npy(ids_path)), read_npy(vecs_path)
            if len(ids) != len(vecs):
                raise RuntimeError(f"{ids_path}: {len(ids)} ids but {len(vecs)} vectors")
            self._loaded[bucket] = (ids, vecs)
        return self._loaded[bucket]

    def vector(self, caption_id: str) -> np.ndarray:
        """The caption's vector; a caption that was not embedded is an error."""
        ids, vecs = self._bucket(key_bucket(caption_id, self.buckets))
        at = int(np.searchsorted(ids, caption_id))
        if at >= len(ids) or ids[at] != caption_id:
            raise RuntimeError(f"caption {caption_id} has no vector in {self.folder}")
        return vecs[at]


def load_sorted_vectors(folder: str, summaries: Iterable[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Every vector the buckets in ``summaries`` (``(bucket, captions)``) wrote, as
    ``(caption ids, vectors)`` sorted by caption id; vectors are filled into one array, bucket by
    bucket, so memory is one copy of them (plus a memory-mapped bucket at a time)."""
    parts = []
    for bucket, count in sorted(summaries):
        ids_path, vecs_path = bucket_paths(folder, bucket)
        ids = np.asarray(read_npy(ids_path))
        if len(ids) != count:
            raise RuntimeError(f"{ids_path}: {len(ids)} ids, but its bucket embedded {count}")
        parts.append((ids, vecs_path))
    if not parts:
        return np.zeros(0, dtype=str), np.zeros((0, 0), dtype=np.float32)
    all_ids = np.concatenate([ids for ids, _ in parts])
    order = np.argsort(all_ids, kind="stable")
    slot = np.empty(len(order), dtype=np.int64)
    slot[order] = np.arange(len(order))
    vectors = None
    offset = 0
    for ids, vecs_path in parts:
        vecs = read_npy(vecs_path)
        if len(vecs) != len(ids):
            raise RuntimeError(f"{vecs_path}: {len(vecs)} vectors for {len(ids)} ids")
        if vectors is None:
            vectors = np.empty((len(all_ids), vecs.shape[1]), dtype=np.float32)
        vectors[slot[offset:offset + len(ids)]] = vecs
        offset += len(ids)
    return all_ids[order], vectors


class AttachCosine(beam.DoFn):
    """Pair row -> the same row with ``sim_txt`` = cosine of its captions' vectors.

    ``summaries`` (side input: the ``(bucket, captions)`` output of :class:`EmbedToVectorFiles`)
    makes the runner finish every vector file before the first pair is scored.
    """

    def __init__(self, folder: str, buckets: int):
        self.folder = folder
        self.buckets = buckets

    def setup(self):
        self._vectors = CaptionVectors(self.folder, self.buckets)

    def process(self, row: dict, summaries: list) -> Iterator[dict]:
        v1 = self._vectors.vector(row["caption_id1"])
        v2 = self._vectors.vector(row["caption_id2"])
        yield {**row, "sim_txt": float(np.dot(v1, v2))}
