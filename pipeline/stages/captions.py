"""Stage ``caption_filters``: records -> caption-level filters -> ``captions`` table.

Counting unit: records (media items). Kept records are grouped by caption id into distinct
captions (the number is recorded as ``info.distinct_captions``); the caption text kept for a
group is the spelling of its smallest media id, so the result does not depend on worker order.

With ``caption_filters.metadata`` set, each record's ``mature`` flag is taken from that file's
``r18`` (when the corpus itself has none) through a keyed join: a media id matches a metadata id
equal to it, else the single metadata id with the same part after the last ``/`` (WebVid media
ids are ``page_dir/videoid``, CleanVid ids bare video ids); see :mod:`pipeline.metadata`. How
each record matched is counted as ``info.metadata_full/bare/ambiguous/missing``.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.filter_sets import caption_filters
from pipeline.grouping import GroupByKeyInBuckets
from pipeline.stages.base import (
    ApplyFilters,
    Stage,
    StageContext,
    WriteRejects,
    WriteTable,
    info_counter,
    read_table,
)
from schemas import CAPTIONS


class MergeCaption(beam.DoFn):
    """``(caption_id, [(media_id, caption, normalized), ...])`` -> one CAPTIONS row (tuples,
    not record dicts, go through the shuffle: no column names to encode per row)."""

    def __init__(self, stage: str):
        self.stage = stage

    def setup(self):
        self._distinct = info_counter(self.stage, "distinct_captions")

    def process(self, element):
        cid, records = element
        records = sorted(records, key=lambda r: r[0])
        _, caption, normalized = records[0]
        self._distinct.inc()
        yield {
            "caption_id": cid,
            "caption": caption,
            "normalized": normalized,
            "num_words": len(normalized.split(" ")),
            "media_ids": [r[0] for r in records],
        }


class AttachMetadataFlag(beam.DoFn):
    """``(bare_id, {"rec": records, "meta": (full_id, r18) pairs})`` -> records with ``mature``."""

    def __init__(self, stage: str):
        self.stage = stage

    def setup(self):
        from pipeline.metadata import AMBIGUOUS, BARE, FULL, MISSING

        self._how = {h: info_counter(self.stage, f"metadata_{h}") for h in
                     (FULL, BARE, AMBIGUOUS, MISSING)}
        self._names = (FULL, BARE, AMBIGUOUS, MISSING)

    def process(self, element):
        full, bare, ambiguous, missing = self._names
        _, grouped = element
        meta = dict(grouped["meta"])
        for rec in grouped["rec"]:
            if rec["media_id"] in meta:
                how, flag = full, meta[rec["media_id"]]
            elif len(meta) == 1:
                how, flag = bare, next(iter(meta.values()))
            else:
                how, flag = (ambiguous if meta else missing), None
            self._how[how].inc()
            if rec.get("mature") is None:
                rec = {**rec, "mature": flag}
            yield rec


def join_metadata_flag(p: beam.Pipeline, records, ctx: StageContext, stage: str):
    """Records with ``mature`` filled from ``caption_filters.metadata`` (keyed join, no side input)."""
    import pyarrow.parquet as pq

    from pipeline.metadata import bare_id, load_metadata

    table = load_metadata(ctx.config.caption_filters.metadata).select(["media_id", "r18"])
    folder = ctx.staging / "_metadata_input"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "metadata.parquet")
    meta = (p | "ReadMetadata" >> beam.io.ReadFromParquet(str(folder / "*.parquet"))
            | "KeyMetadata" >> beam.Map(lambda m: (bare_id(m["media_id"]), (m["media_id"], m["r18"]))))
    keyed = records | "KeyRecords" >> beam.Map(lambda r: (bare_id(r["media_id"]), r))
    return ({"rec": keyed, "meta": meta} | "JoinMetadata" >> beam.CoGroupByKey()
            | "AttachFlag" >> beam.ParDo(AttachMetadataFlag(stage)))


class CaptionFilterStage(Stage):
    """Template / profanity / mature / length filters on every record, then distinct captions."""

    name = "caption_filters"
    outputs = ("captions",)
    config_sections = ("caption_filters",)

    def key_extra(self, config) -> str:
        """The metadata file's content is an input too."""
        if not config.caption_filters.metadata:
            return ""
        from pipeline.readers import corpus_fingerprint

        return corpus_fingerprint(config.caption_filters.metadata)

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        slim = read_table(p, ctx.run, "records", columns=(
            "row", "media_id", "caption", "normalized", "caption_id", "mature"))
        if ctx.config.caption_filters.metadata:
            slim = join_metadata_flag(p, slim, ctx, self.name)
        kept, rejects = slim | "Filter" >> ApplyFilters(
            self.name, caption_filters(ctx.config.caption_filters), id_key="media_id",
            what="records")
        captions = (kept
                    | "KeyByCaption" >> beam.Map(
                        lambda r: (r["caption_id"], (r["media_id"], r["caption"], r["normalized"])))
                    | "GroupByCaption" >> GroupByKeyInBuckets()
                    | "Merge" >> beam.ParDo(MergeCaption(self.name)))
        captions | "WriteCaptions" >> WriteTable(ctx, "captions", CAPTIONS)
        rejects | "WriteRejects" >> WriteRejects(ctx)
