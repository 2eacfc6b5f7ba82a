"""Media stages: ``media_embed`` (middle-frame embeddings) and ``media_pairs`` (top-k media pairs
of each caption pair). See docs/MEDIA.md.

``media_embed`` — unit: distinct media ids referenced by the caption pairs (each caption's first
``media.max_media_per_caption`` ids, the only ones ever scored). Media ids are joined to their
``records`` rows and to the embedding cache with ``CoGroupByKey``. A cache hit is kept as is
(counted in ``info:cache_hits``); a miss is resolved to a file, its middle frame (or the
keyframe nearest to it, ``media.frame: keyframe``) decoded in a pool
of ``media.decode_workers`` threads inside the DoFn (decord and PIL release the GIL), shrunk to the
encoder's input size, and embedded through Beam ``RunInference`` (model loaded once per worker).
New embeddings go to the cache as atomically renamed Parquet shards. Drop reasons:
``no_record``, ``missing_file``, ``empty_video``, ``corrupt_video``, ``unreadable_image``.
Writes ``media_embeddings`` (this run's ids, hits and new ones).

``media_pairs`` — unit: caption pairs. Every (media of caption 1, media of caption 2)
combination of the capped, embedded media is scored by cosine similarity and the ``media.top_k``
best are written (``rank`` 0 = best). Drop reason: ``no_usable_media`` (a side has no embedded
media, or the only combinations pair a media item with itself). Info counters: ``media_pairs``
(rows written) and ``combinations_capped`` (combinations left out by the cap).

Text-only mode (``media.enabled = false``, ``--no-media``): ``media_embed`` is not in the stage
list (see :func:`media_stages`); ``media_pairs`` picks ``top_k`` combinations per caption pair by a
seeded hash (``media.seed``) and writes ``sim_media`` as null.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import numpy as np

from filters.base import Drop
from pipeline.config import Config, MediaConfig
from pipeline.media.cache import EmbeddingCache, model_key
from pipeline.media.frames import MediaError, check_frame_rule, read_representative_frame
from pipeline.media.resolve import resolve_media_path
from pipeline.media.topk import capped, seeded_pairs, top_k_pairs
from pipeline.stages.base import (
    INPUT,
    KEPT,
    REJECTS_TAG,
    CountInput,
    Stage,
    StageContext,
    WriteRejects,
    WriteTable,
    counter,
    drop_counter,
    info_counter,
    read_table,
    reject_row,
)
from schemas import MEDIA_EMBEDDINGS, MEDIA_PAIRS

EMBED_STAGE = "media_embed"
PAIRS_STAGE = "media_pairs"
NO_RECORD = "no_record"
NO_USABLE_MEDIA = "no_usable_media"
HIT_TAG = "hit"


def media_kind_of(ctx: StageContext) -> str:
    """``video`` or ``image``: the run's media kind (``video`` unless the build says otherwise)."""
    kind = ctx.extra.get("media_kind") or "video"
    if kind not in ("video", "image"):
        raise ValueError(f"media kind must be video or image, got {kind!r}")
    return kind


def encoder_cache(cfg: MediaConfig, ctx: StageContext, kind: str) -> EmbeddingCache:
    """The embedding cache folder of the configured encoder and media kind."""
    from pipeline.media.encoders import make_image_encoder

    identity = make_image_encoder(cfg.encoder, "cpu").identity
    cache_dir = cfg.cache_dir or str(ctx.run.root / "embedding_cache")
    return EmbeddingCache(cache_dir, model_key(identity, kind, cfg.frame))


def referenced_media(row: dict, cap: int) -> list[str]:
    """Media ids of a caption pair that can be scored (each side capped)."""
    return sorted(set(capped(row["media_ids1"], cap)) | set(capped(row["media_ids2"], cap)))


# --- media_embed ----------------------------------------------------------------------------------
class RouteMedia(beam.DoFn):
    """Joined ``(media_id, {ref, record, cached})`` -> cache hit (``hit``), item to decode (main),
    or reject (``no_record``). Ids no caption pair references are ignored (not stage input)."""

    def __init__(self, media_root: str | None, template: str | None, kind: str, key: str):
        self.media_root, self.template, self.kind, self.key = media_root, template, kind, key

    def setup(self):
        self._input = counter(EMBED_STAGE, INPUT)
        self._kept = counter(EMBED_STAGE, KEPT)
        self._hits = info_counter(EMBED_STAGE, "cache_hits")
        self._no_record = drop_counter(EMBED_STAGE, NO_RECORD)

    def process(self, element):
        media_id, groups = element
        if not list(groups["ref"]):
            return
        self._input.inc()
        cached = list(groups.get("cached", []))
        if cached:
            self._hits.inc()
            self._kept.inc()
            row = min(cached, key=lambda r: (r["frame_index"] is None, r["frame_index"] or 0))
            yield beam.pvalue.TaggedOutput(HIT_TAG, {**row, "model_key": self.key})
            return
        records = sorted(groups["record"], key=lambda r: r["row"])
        if not records:
            self._no_record.inc()
            yield beam.pvalue.TaggedOutput(REJECTS_TAG, reject_row(
                EMBED_STAGE, Drop(NO_RECORD, "media id is in caption_pairs but not in records"),
                media_id, {"media_id": media_id}))
            return
        path = resolve_media_path(records[0], self.media_root, self.kind, self.template)
        yield {"media_id": media_id, "path": path, "record": records[0]}


class DecodeFrames(beam.DoFn):
    """Batches of items to decode -> ``((media_id, frame_index), prepared frame)``; failures go
    to the rejects output with their reason. Decoding runs in a thread pool."""

    def __init__(self, encoder_spec: str, kind: str, workers: int, frame: str = "middle",
                 check_stream: bool = True):
        self.encoder_spec, self.kind, self.workers = encoder_spec, kind, max(1, workers)
        self.frame, self.check_stream = frame, check_stream

    def setup(self):
        from pipeline.media.encoders import make_image_encoder

        self._prepare = make_image_encoder(self.encoder_spec, "cpu").prepare
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="decode")
        self._drops: dict[str, object] = {}

    def _decode(self, item: dict):
        try:
            frame, index = read_representative_frame(item["path"], self.kind, self.frame,
                                                     self.check_stream)
            return self._prepare(frame), index
        except MediaError as exc:
            return exc

    def process(self, batch):
        for item, result in zip(batch, self._pool.map(self._decode, batch)):
            if isinstance(result, MediaError):
                if result.reason not in self._drops:
                    self._drops[result.reason] = drop_counter(EMBED_STAGE, result.reason)
                self._drops[result.reason].inc()
                record = {**item["record"], "resolved_path": item["path"]}
                yield beam.pvalue.TaggedOutput(REJECTS_TAG, reject_row(
                    EMBED_STAGE, Drop(result.reason, result.detail), item["media_id"], record))
            else:
                frame, index = result
                yield (item["media_id"], index), frame

    def teardown(self):
        self._pool.shutdown(wait=True)


class EmbeddingRow(beam.DoFn):
    """RunInference output -> a MEDIA_EMBEDDINGS row (counted as kept)."""

    def __init__(self, key: str):
        self.key = key

    def setup(self):
        self._kept = counter(EMBED_STAGE, KEPT)

    def process(self, element):
        (media_id, index), result = element
        self._kept.inc()
        yield {"media_id": media_id, "model_key": self.key, "frame_index": index,
               "embedding": np.asarray(result.inference, dtype=np.float32).tolist()}


class WriteCacheShards(beam.DoFn):
    """Batches of new embedding rows -> one cache shard each (atomic rename)."""

    def __init__(self, cache_dir: str, key: str):
        self.cache_dir, self.key = cache_dir, key

    def process(self, batch):
        EmbeddingCache(self.cache_dir, self.key).write_shard(list(batch))
        return []


class MediaEmbedStage(Stage):
    """caption_pairs + records -> media_embeddings (see the module docstring)."""

    name = EMBED_STAGE
    outputs = ("media_embeddings",)
    config_sections = ("media",)

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        from apache_beam.ml.inference.base import KeyedModelHandler, RunInference

        from pipeline.media.handler import FrameEmbeddingHandler

        cfg = ctx.config.media
        if not cfg.enabled:
            raise ValueError("media_embed runs only with media enabled (--no-media skips it)")
        kind = media_kind_of(ctx)
        check_frame_rule(cfg.frame)
        cache = encoder_cache(cfg, ctx, kind)
        cap = cfg.max_media_per_caption
        refs = (
            read_table(p, ctx.run, "caption_pairs")
            | "MediaIds" >> beam.FlatMap(lambda r: referenced_media(r, cap))
            | "Distinct" >> beam.Distinct()
            | "RefKey" >> beam.Map(lambda m: (m, True))
        )
        records = (read_table(p, ctx.run, "records", label="Read records")
                   | "RecordKey" >> beam.Map(lambda r: (r["media_id"], r)))
        joined = {"ref": refs, "record": records}
        shards = cache.shard_glob()
        if shards:
            joined["cached"] = (p | "ReadCache" >> beam.io.ReadFromParquet(shards)
                                | "CacheKey" >> beam.Map(lambda r: (r["media_id"], r)))
        routed = (
            joined
            | "Join" >> beam.CoGroupByKey()
            | "Route" >> beam.ParDo(RouteMedia(cfg.media_root, cfg.path_template, kind, cache.key))
            .with_outputs(REJECTS_TAG, HIT_TAG, main="todo")
        )
        decode_batch = max(1, cfg.decode_workers) * 8
        decoded = (
            routed.todo
            | "DecodeBatch" >> beam.BatchElements(min_batch_size=1, max_batch_size=decode_batch)
            | "Decode" >> beam.ParDo(DecodeFrames(cfg.encoder, kind, cfg.decode_workers, cfg.frame,
                                               cfg.check_stream))
            .with_outputs(REJECTS_TAG, main="frames")
        )
        handler = KeyedModelHandler(FrameEmbeddingHandler(cfg.encoder, cfg.device, cfg.batch_size))
        computed = (
            decoded.frames
            | "Embed" >> RunInference(handler)
            | "ToRow" >> beam.ParDo(EmbeddingRow(cache.key))
        )
        _ = (computed
             | "CacheBatch" >> beam.BatchElements(min_batch_size=1, max_batch_size=4096)
             | "WriteCache" >> beam.ParDo(WriteCacheShards(str(cache.folder.parent), cache.key)))
        _ = ((routed[HIT_TAG], computed) | "AllEmbeddings" >> beam.Flatten()
             | "WriteEmbeddings" >> WriteTable(ctx, "media_embeddings", MEDIA_EMBEDDINGS))
        _ = ((routed[REJECTS_TAG], decoded[REJECTS_TAG]) | "AllRejects" >> beam.Flatten()
             | "WriteRejects" >> WriteRejects(ctx))


# --- media_pairs ----------------------------------------------------------------------------------
def media_pair_rows(pair: dict, picks: list, kind: str) -> list[dict]:
    """MEDIA_PAIRS rows of one caption pair from ``(media_id1, media_id2, sim)`` picks, best first."""
    base = {k: pair[k] for k in ("pair_id", "caption_id1", "caption_id2", "txt1", "txt2",
                                 "word1", "word2", "sim_txt")}
    return [{**base, "media_id1": a, "media_id2": b, "sim_media": sim, "rank": rank,
             "media_kind": kind} for rank, (a, b, sim) in enumerate(picks)]


class PickMediaPairs(beam.DoFn):
    """Caption pair (with its embedded media, or none in text-only mode) -> its top-k media pair
    rows, or a ``no_usable_media`` reject. Counts kept, drops and the info counters."""

    def __init__(self, cfg: MediaConfig, kind: str):
        self.k, self.cap, self.seed = cfg.top_k, cfg.max_media_per_caption, cfg.seed
        self.enabled, self.kind = cfg.enabled, kind

    def setup(self):
        self._kept = counter(PAIRS_STAGE, KEPT)
        self._dropped = drop_counter(PAIRS_STAGE, NO_USABLE_MEDIA)
        self._written = info_counter(PAIRS_STAGE, "media_pairs")
        self._capped = info_counter(PAIRS_STAGE, "combinations_capped")

    def _picks(self, pair: dict, vectors: dict) -> tuple[list, str]:
        ids1, ids2 = capped(pair["media_ids1"], self.cap), capped(pair["media_ids2"], self.cap)
        if not self.enabled:
            return (seeded_pairs(pair["pair_id"], ids1, ids2, self.k, self.seed),
                    "no combination of two distinct media items")
        use1, use2 = [m for m in ids1 if m in vectors], [m for m in ids2 if m in vectors]
        why = (f"embedded media: caption 1 {len(use1)} of {len(ids1)}, "
               f"caption 2 {len(use2)} of {len(ids2)}")
        if not use1 or not use2:
            return [], why
        vecs1 = np.stack([vectors[m] for m in use1])
        vecs2 = np.stack([vectors[m] for m in use2])
        return top_k_pairs(use1, vecs1, use2, vecs2, self.k), why

    def process(self, element):
        pair, vectors = element
        full = len(set(pair["media_ids1"])) * len(set(pair["media_ids2"]))
        self._capped.inc(full - len(capped(pair["media_ids1"], self.cap))
                         * len(capped(pair["media_ids2"], self.cap)))
        picks, why = self._picks(pair, vectors)
        if not picks:
            self._dropped.inc()
            yield beam.pvalue.TaggedOutput(REJECTS_TAG, reject_row(
                PAIRS_STAGE, Drop(NO_USABLE_MEDIA, why), pair["pair_id"], pair))
            return
        self._kept.inc()
        self._written.inc(len(picks))
        yield from media_pair_rows(pair, picks, self.kind)


def _vectors_per_pair(element):
    """``(media_id, {ref: [pair ids], emb: [vector]})`` -> ``(pair_id, (media_id, vector))``."""
    media_id, groups = element
    embs = list(groups["emb"])
    if not embs:
        return
    vector = np.asarray(embs[0], dtype=np.float32)
    for pair_id in groups["ref"]:
        yield pair_id, (media_id, vector)


class MediaPairStage(Stage):
    """caption_pairs (+ media_embeddings) -> media_pairs (see the module docstring)."""

    name = PAIRS_STAGE
    outputs = ("media_pairs",)
    config_sections = ("media",)

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        cfg = ctx.config.media
        kind = media_kind_of(ctx)
        cap = cfg.max_media_per_caption
        pairs = (read_table(p, ctx.run, "caption_pairs")
                 | "CountInput" >> beam.ParDo(CountInput(PAIRS_STAGE, "caption pairs")))
        if cfg.enabled:
            refs = pairs | "Refs" >> beam.FlatMap(
                lambda r: [(m, r["pair_id"]) for m in referenced_media(r, cap)])
            embs = (read_table(p, ctx.run, "media_embeddings", label="Read media_embeddings")
                    | "EmbKey" >> beam.Map(lambda r: (r["media_id"], r["embedding"])))
            vectors = ({"ref": refs, "emb": embs} | "JoinMedia" >> beam.CoGroupByKey()
                       | "PerPair" >> beam.FlatMap(_vectors_per_pair))
            with_vectors = (
                {"pair": pairs | "PairKey" >> beam.Map(lambda r: (r["pair_id"], r)),
                 "vec": vectors}
                | "JoinPairs" >> beam.CoGroupByKey()
                | "Unpack" >> beam.FlatMap(
                    lambda kv: [(pair, dict(kv[1]["vec"])) for pair in kv[1]["pair"]])
            )
        else:
            with_vectors = pairs | "NoVectors" >> beam.Map(lambda r: (r, {}))
        results = with_vectors | "Pick" >> beam.ParDo(PickMediaPairs(cfg, kind)).with_outputs(
            REJECTS_TAG, main="rows")
        _ = results.rows | "WriteMediaPairs" >> WriteTable(ctx, "media_pairs", MEDIA_PAIRS)
        _ = results[REJECTS_TAG] | "WriteRejects" >> WriteRejects(ctx)


def media_stages(config: Config) -> list[Stage]:
    """The media stages for ``config``: both, or only ``media_pairs`` in text-only mode."""
    if config.media.enabled:
        return [MediaEmbedStage(), MediaPairStage()]
    return [MediaPairStage()]
