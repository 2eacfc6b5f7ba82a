"""Stage ``read``: corpus file -> ``records`` table (one valid row per media item) + rejects."""

from __future__ import annotations

import apache_beam as beam

from pipeline.readers import ReadCorpus
from pipeline.stages.base import Stage, StageContext, WriteRejects, WriteTable
from schemas import RECORDS


class ReadStage(Stage):
    """Parse the corpus; bad rows become rejects (see :mod:`pipeline.readers` for reasons)."""

    name = "read"
    outputs = ("records",)
    config_sections = ("corpus",)

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        if not ctx.corpus_path:
            raise ValueError("the read stage needs a corpus path (--corpus)")
        scratch = ctx.staging / "_parsed_units"
        scratch.mkdir(parents=True, exist_ok=True)
        records, rejects = p | "ReadCorpus" >> ReadCorpus(ctx.corpus_path, ctx.config.corpus,
                                                          str(scratch), self.name)
        records | "WriteRecords" >> WriteTable(ctx, "records", RECORDS)
        rejects | "WriteRejects" >> WriteRejects(ctx)
