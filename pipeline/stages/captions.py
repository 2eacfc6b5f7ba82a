"""Stage ``caption_filters``: records -> caption-level filters -> ``captions`` table.

Counting unit: records (media items). Kept records are grouped by caption id into distinct
captions (the number is recorded as ``info.distinct_captions``); the caption text kept for a
group is the spelling of its smallest media id, so the result does not depend on worker order.
"""

from __future__ import annotations

import apache_beam as beam

from pipeline.filter_sets import caption_filters
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
    """``(caption_id, records)`` -> one CAPTIONS row."""

    def __init__(self, stage: str):
        self.stage = stage

    def setup(self):
        self._distinct = info_counter(self.stage, "distinct_captions")

    def process(self, element):
        cid, records = element
        records = sorted(records, key=lambda r: r["media_id"])
        first = records[0]
        self._distinct.inc()
        yield {
            "caption_id": cid,
            "caption": first["caption"],
            "normalized": first["normalized"],
            "num_words": len(first["normalized"].split(" ")),
            "media_ids": [r["media_id"] for r in records],
        }


class CaptionFilterStage(Stage):
    """Template / profanity / mature / length filters on every record, then distinct captions."""

    name = "caption_filters"
    outputs = ("captions",)
    config_sections = ("caption_filters",)

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        records = read_table(p, ctx.run, "records")
        slim = records | "Slim" >> beam.Map(
            lambda r: {k: r[k] for k in ("row", "media_id", "caption", "normalized", "caption_id",
                                         "mature")})
        kept, rejects = slim | "Filter" >> ApplyFilters(
            self.name, caption_filters(ctx.config.caption_filters), id_key="media_id",
            what="records")
        captions = (kept
                    | "KeyByCaption" >> beam.Map(lambda r: (r["caption_id"], r))
                    | "GroupByCaption" >> beam.GroupByKey()
                    | "Merge" >> beam.ParDo(MergeCaption(self.name)))
        captions | "WriteCaptions" >> WriteTable(ctx, "captions", CAPTIONS)
        rejects | "WriteRejects" >> WriteRejects(ctx)
