"""Stage ``media_pairs``: the top-k media pairs of each caption pair. See docs/MEDIA.md.

Unit: caption pairs. Every (media of caption 1, media of caption 2) combination of the capped,
embedded media (``media_embeddings``, :mod:`covr_datagen.pipeline.stages.media_embed`) is scored by cosine
similarity and the ``media.top_k`` best are written (``rank`` 0 = best). Drop reason:
``no_usable_media`` (a side has no embedded media, or the only combinations pair a media item
with itself). Info counters: ``media_pairs`` (rows written) and ``combinations_capped``
(combinations left out by the cap).

Text-only mode (``media.enabled = false``, ``--no-media``): ``media_embed`` is not in the stage
list (see :func:`media_stages`); ``media_pairs`` picks ``top_k`` combinations per caption pair by a
seeded hash (``media.seed``) and writes ``sim_media`` as null.

Descriptions (``corpus.description_col``): the written rows get ``description1``/``description2``
from ``records.description`` by a keyed join (:class:`AttachDescriptions`): only the media ids
of the picked rows meet the records that have a description, so a description travels once per
caption pair that uses its media item and is never broadcast to every worker.
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from covr_datagen.filters.base import Drop
from covr_datagen.pipeline.config import Config, MediaConfig
from covr_datagen.pipeline.core.accounting import KEPT, REJECTS_TAG, CountInput, Drops, counter, info_counter
from covr_datagen.pipeline.core.stage import RunFacts, Stage, StageContext
from covr_datagen.pipeline.core.tables import WriteRejects, WriteTable
from covr_datagen.pipeline.media.topk import capped, referenced_media, seeded_pairs, top_k_pairs
from covr_datagen.pipeline.stages.media_embed import MediaEmbedStage
from covr_datagen.schemas import MEDIA_PAIRS

PAIRS_STAGE = "media_pairs"
NO_USABLE_MEDIA = "no_usable_media"


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
        self._drops = Drops(PAIRS_STAGE)
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
            yield self._drops.reject(Drop(NO_USABLE_MEDIA, why), pair["pair_id"], pair)
            return
        self._kept.inc()
        self._written.inc(len(picks))
        yield from media_pair_rows(pair, picks, self.kind)


def _descriptions_per_pair(element):
    """``(media_id, {ref: [pair ids], desc: [description]})`` -> ``(pair_id, (media_id,
    description))`` for each pair using a media item that has a description."""
    media_id, groups = element
    descriptions = list(groups["desc"])
    if not descriptions:
        return
    for pair_id in sorted(set(groups["ref"])):
        yield pair_id, (media_id, descriptions[0])


def _with_descriptions(element):
    """``(pair_id, {rows: [media pair rows], desc: [(media_id, description)]})`` -> the rows
    with ``description1``/``description2`` (null for media items without one)."""
    _, groups = element
    described = dict(groups["desc"])
    for row in groups["rows"]:
        yield {**row, "description1": described.get(row["media_id1"]),
               "description2": described.get(row["media_id2"])}


class AttachDescriptions(beam.PTransform):
    """Media pair rows -> the same rows with the descriptions of their two media items, joined
    on media id with ``records`` rows ``{media_id, description}``."""

    def __init__(self, records):
        super().__init__()
        self.records = records

    def expand(self, rows):
        refs = rows | "MediaRefs" >> beam.FlatMap(
            lambda r: [(r["media_id1"], r["pair_id"]), (r["media_id2"], r["pair_id"])])
        descriptions = (self.records
                        | "Described" >> beam.Filter(lambda r: r["description"] is not None)
                        | "DescKey" >> beam.Map(lambda r: (r["media_id"], r["description"])))
        per_pair = ({"ref": refs, "desc": descriptions} | "JoinDescriptions" >> beam.CoGroupByKey()
                    | "DescPerPair" >> beam.FlatMap(_descriptions_per_pair))
        return ({"rows": rows | "RowKey" >> beam.Map(lambda r: (r["pair_id"], r)), "desc": per_pair}
                | "JoinRows" >> beam.CoGroupByKey()
                | "Attach" >> beam.FlatMap(_with_descriptions))


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
    inputs = ("caption_pairs",)
    outputs = ("media_pairs",)
    config_sections = ("media",)

    def inputs_for(self, config: Config, facts: RunFacts) -> tuple[str, ...]:
        """``media_embeddings`` too, unless in text-only mode; ``records`` when the corpus has
        descriptions (``corpus.description_col``)."""
        return (self.inputs + (("media_embeddings",) if config.media.enabled else ())
                + (("records",) if config.corpus.description_col else ()))

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        cfg = ctx.config.media
        kind = ctx.facts.media_kind
        cap = cfg.max_media_per_caption
        pairs = (ctx.read(p, "caption_pairs")
                 | "CountInput" >> beam.ParDo(CountInput(PAIRS_STAGE, "caption pairs")))
        if cfg.enabled:
            refs = pairs | "Refs" >> beam.FlatMap(
                lambda r: [(m, r["pair_id"]) for m in referenced_media(r, cap)])
            embs = (ctx.read(p, "media_embeddings", label="Read media_embeddings")
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
        rows = results.rows
        if ctx.config.corpus.description_col:
            records = ctx.read(p, "records", label="Read records",
                               columns=["media_id", "description"])
            rows = rows | "Descriptions" >> AttachDescriptions(records)
        _ = rows | "WriteMediaPairs" >> WriteTable(ctx, "media_pairs", MEDIA_PAIRS)
        _ = results[REJECTS_TAG] | "WriteRejects" >> WriteRejects(ctx)


def media_stages(config: Config) -> list[Stage]:
    """The media stages for ``config``: both, or only ``media_pairs`` in text-only mode."""
    if config.media.enabled:
        return [MediaEmbedStage(), MediaPairStage()]
    return [MediaPairStage()]
