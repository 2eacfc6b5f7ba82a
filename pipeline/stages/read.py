"""Stage ``read``: corpus file -> ``records`` table (one valid row per media item) + rejects."""

from __future__ import annotations

from typing import TYPE_CHECKING

import apache_beam as beam

from covr_datagen.pipeline.core.stage import Stage, StageContext
from covr_datagen.pipeline.core.tables import WriteRejects, WriteTable
from covr_datagen.pipeline.corpus.source import CONTINUATION_LINES, LINES, ReadCorpus
from covr_datagen.schemas import RECORDS

if TYPE_CHECKING:
    from covr_datagen.pipeline.run.stage_runner import StageReport

#: below this fraction of its records kept, the read stage stops the build (``--allow-empty``)
MIN_KEPT_FRACTION = 0.05


class ReadStage(Stage):
    """Parse the corpus; bad rows become rejects (see :mod:`covr_datagen.pipeline.corpus.source` for reasons).

    Besides ``input == kept + dropped``, every line of a text corpus must be accounted for:
    ``lines`` (counted by the planner) ``== input + continuation_lines`` (counted by the parser
    from the records it found), so lines lost between planning and parsing fail the stage."""

    name = "read"
    outputs = ("records",)
    config_sections = ("corpus",)

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        corpus = ctx.facts.corpus_path
        if not corpus:
            raise ValueError("the read stage needs a corpus path (--corpus)")
        scratch = ctx.staging / "_parsed_units"
        scratch.mkdir(parents=True, exist_ok=True)
        records, rejects = p | "ReadCorpus" >> ReadCorpus(corpus, ctx.config.corpus,
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


def refuse_empty_read(report: StageReport) -> None:
    """Stop the build (``ValueError``) when the read stage kept under
    :data:`MIN_KEPT_FRACTION` of the corpus' records: a wrong ``--format`` or column option
    rejects (nearly) every row, and the build would otherwise end with exit 0 and no data."""
    if report.name != ReadStage.name:
        return
    if report.input > 0 and report.kept >= MIN_KEPT_FRACTION * report.input:
        return
    reasons = ", ".join(f"{k} {v:,}" for k, v in sorted(report.dropped.items(),
                                                         key=lambda kv: -kv[1]))
    raise ValueError(f"the read stage kept {report.kept:,} of {report.input:,} records"
                     f"{f' (rejected: {reasons})' if reasons else ''}; is --format right for "
                     "this corpus? See RUN/rejects/read. Stopped after read; pass --allow-empty "
                     "to go on anyway")
