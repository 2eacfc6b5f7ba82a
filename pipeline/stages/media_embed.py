"""Stage ``media_embed``: middle-frame embeddings of the media the caption pairs reference. See
docs/MEDIA.md; the next stage is :mod:`covr_datagen.pipeline.stages.media_pairs`.

Unit: distinct media ids referenced by the caption pairs (each caption's first
``media.max_media_per_caption`` ids, the only ones ever scored). Media ids are joined to their
``records`` rows and to the embedding cache with ``CoGroupByKey``. A cache hit is kept as is
(counted in ``info:cache_hits``); a miss is resolved to a file, its middle frame (or the
keyframe nearest to it, ``media.frame: keyframe``) decoded in a pool
of ``media.decode_workers`` threads inside the DoFn (decord and PIL release the GIL), shrunk to the
encoder's input size, and embedded in batches of ``media.batch_size`` frames (model loaded once
per worker, :class:`covr_datagen.pipeline.core.models.SharedModel`).
New embeddings go to the cache as atomically renamed Parquet shards. Drop reasons:
``no_record``, ``missing_file``, ``empty_video``, ``corrupt_video``, ``unreadable_image``.
Writes ``media_embeddings`` (this run's ids, hits and new ones).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import numpy as np

from covr_datagen.filters.base import Drop
from covr_datagen.pipeline.config import MediaConfig
from covr_datagen.pipeline.core.accounting import INPUT, KEPT, REJECTS_TAG, Drops, counter, info_counter
from covr_datagen.pipeline.core.models import SharedModel
from covr_datagen.pipeline.core.stage import Stage, StageContext
from covr_datagen.pipeline.core.tables import WriteRejects, WriteTable
from covr_datagen.pipeline.media.cache import EmbeddingCache, model_key
from covr_datagen.pipeline.media.encoders import MediaEncoderSpec
from covr_datagen.pipeline.media.frames import MediaError, check_frame_rule, read_representative_frame
from covr_datagen.pipeline.media.resolve import resolve_media_path
from covr_datagen.pipeline.media.topk import referenced_media
from covr_datagen.schemas import MEDIA_EMBEDDINGS

EMBED_STAGE = "media_embed"
NO_RECORD = "no_record"
HIT_TAG = "hit"


def encoder_cache(cfg: MediaConfig, ctx: StageContext, encoder: MediaEncoderSpec) -> EmbeddingCache:
    """The embedding cache folder of ``encoder`` and the run's media kind."""
    cache_dir = cfg.cache_dir or str(ctx.run.root / "embedding_cache")
    return EmbeddingCache(cache_dir, model_key(encoder.identity, ctx.facts.media_kind, cfg.frame))


class RouteMedia(beam.DoFn):
    """Joined ``(media_id, {ref, record, cached})`` -> cache hit (``hit``), item to decode (main),
    or reject (``no_record``). Ids no caption pair references are ignored (not stage input)."""

    def __init__(self, media_root: str | None, template: str | None, kind: str, key: str):
        self.media_root, self.template, self.kind, self.key = media_root, template, kind, key

    def setup(self):
        self._input = counter(EMBED_STAGE, INPUT)
        self._kept = counter(EMBED_STAGE, KEPT)
        self._hits = info_counter(EMBED_STAGE, "cache_hits")
        self._drops = Drops(EMBED_STAGE)

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
            yield self._drops.reject(Drop(NO_RECORD, "media id is in caption_pairs but not in records"),
                                     media_id, {"media_id": media_id})
            return
        path = resolve_media_path(records[0], self.media_root, self.kind, self.template)
        yield {"media_id": media_id, "path": path, "record": records[0]}


class DecodeFrames(beam.DoFn):
    """Batches of items to decode -> ``((media_id, frame_index), prepared frame)``; failures go
    to the rejects output with their reason. Decoding runs in a thread pool."""

    def __init__(self, encoder: MediaEncoderSpec, kind: str, workers: int, frame: str = "middle",
                 check_stream: bool = True):
        self.encoder, self.kind, self.workers = encoder, kind, max(1, workers)
        self.frame, self.check_stream = frame, check_stream

    def setup(self):
        self._prepare = self.encoder.encoder().prepare  # resizing only: no weights loaded
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="decode")
        self._drops = Drops(EMBED_STAGE)

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
                record = {**item["record"], "resolved_path": item["path"]}
                yield self._drops.reject(Drop(result.reason, result.detail), item["media_id"], record)
            else:
                frame, index = result
                yield (item["media_id"], index), frame

    def teardown(self):
        self._pool.shutdown(wait=True)


class EmbedFrames(beam.DoFn):
    """Batch of ``((media_id, frame_index), prepared frame)`` -> MEDIA_EMBEDDINGS rows (counted
    as kept); the encoder is loaded once per worker process."""

    def __init__(self, encoder: MediaEncoderSpec, key: str):
        self.model = SharedModel(encoder)
        self.key = key

    def setup(self):
        self._encoder = self.model.acquire()
        self._kept = counter(EMBED_STAGE, KEPT)

    def process(self, batch):
        vectors = self._encoder.encode([frame for _, frame in batch])
        for ((media_id, index), _), vector in zip(batch, vectors):
            self._kept.inc()
            yield {"media_id": media_id, "model_key": self.key, "frame_index": index,
                   "embedding": np.asarray(vector, dtype=np.float32).tolist()}


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
    inputs = ("caption_pairs", "records")
    outputs = ("media_embeddings",)
    config_sections = ("media",)

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        cfg = ctx.config.media
        if not cfg.enabled:
            raise ValueError("media_embed runs only with media enabled (--no-media skips it)")
        kind = ctx.facts.media_kind
        check_frame_rule(cfg.frame)
        encoder = MediaEncoderSpec.parse(cfg.encoder, cfg.device)
        cache = encoder_cache(cfg, ctx, encoder)
        cap = cfg.max_media_per_caption
        refs = (
            ctx.read(p, "caption_pairs")
            | "MediaIds" >> beam.FlatMap(lambda r: referenced_media(r, cap))
            | "Distinct" >> beam.Distinct()
            | "RefKey" >> beam.Map(lambda m: (m, True))
        )
        records = (ctx.read(p, "records", label="Read records")
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
            | "Decode" >> beam.ParDo(DecodeFrames(encoder, kind, cfg.decode_workers, cfg.frame,
                                               cfg.check_stream))
            .with_outputs(REJECTS_TAG, main="frames")
        )
        computed = (
            decoded.frames
            | "EmbedBatch" >> beam.BatchElements(min_batch_size=1,
                                                 max_batch_size=max(1, int(cfg.batch_size)))
            | "Embed" >> beam.ParDo(EmbedFrames(encoder, cache.key))
        )
        _ = (computed
             | "CacheBatch" >> beam.BatchElements(min_batch_size=1, max_batch_size=4096)
             | "WriteCache" >> beam.ParDo(WriteCacheShards(str(cache.folder.parent), cache.key)))
        _ = ((routed[HIT_TAG], computed) | "AllEmbeddings" >> beam.Flatten()
             | "WriteEmbeddings" >> WriteTable(ctx, "media_embeddings", MEDIA_EMBEDDINGS))
        _ = ((routed[REJECTS_TAG], decoded[REJECTS_TAG]) | "AllRejects" >> beam.Flatten()
             | "WriteRejects" >> WriteRejects(ctx))
