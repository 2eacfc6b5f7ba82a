"""Stage ``read``: corpus file -> ``records`` table (one valid row per media item) + rejects."""

from __future__ import annotations

import apache_beam as beam

from pipeline.readers import CONTINUATION_LINES, LINES, ReadCorpus
from pipeline.stages.base import Stage, StageContext, WriteRejects, WriteTable
from schemas import RECORDS


class ReadStage(Stage):
    """Parse the corpus; bad rows become rejects (see :mod:`pipeline.readers` for reasons).

    Besides ``input == kept + dropped``, every line of a text corpus must be accounted for:
    ``lines`` (counted by the planner) ``== input + continuation_lines`` (counted by the parser
    from the records it found), so lines lost between planning and parsing fail the stage."""

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

    def count_problem(self, input_count: int, info: dict[str, int]) -> str | None:
        if LINES not in info:  # Parquet: rows, no lines
            return None
        found = input_count + info.get(CONTINUATION_LINES, 0)
        if info[LINES] != found:
            return (f"{info[LINES]} corpus lines but {input_count} records + "
                    f"{info.get(CONTINUATION_LINES, 0)} continuation lines = {found}")
        return None
