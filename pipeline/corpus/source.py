"""The corpus as a Beam source (:class:`ReadCorpus`): WebVid CSV, Conceptual-Captions TSV,
generic CSV/JSONL/Parquet, laid out as :func:`covr_datagen.pipeline.corpus.layout.inspect_corpus` found.

Text files are split into record-aligned byte ranges by :func:`plan_text_chunks` (one pass; the
record rule, and what it guarantees for malformed lines, is in :mod:`covr_datagen.pipeline.corpus.records`),
Parquet files into row groups; these read units are spread over the workers. Each record is
parsed by :class:`covr_datagen.pipeline.corpus.fields.RowParser` into a record (schema ``schemas.RECORDS``) or
a reject row with a reason. Duplicate media ids are found by shuffling only ``(media_id, row)`` pairs
(:class:`FindDuplicateRows`): :class:`ParseUnit` parses each unit once and saves its records to
a scratch file in the stage's staging folder (:mod:`covr_datagen.pipeline.core.scratch`);
:class:`EmitUniqueRecords` loads that file, keeps each media id's first row and rejects the
others — whole records are never shuffled (at 2M rows that shuffle held ~7 GB in the local
runner's process), and no row is parsed twice.

Counting: ``input`` is the records found, and for text corpora the manifest's ``info`` also has
``lines`` (lines of the file after any header, counted by the planner), ``multiline_records``
and ``continuation_lines`` (lines after the first of a multi-line record); the read stage
checks ``lines == input + continuation_lines``, so a line cannot vanish without the build
failing.

Reasons: those of :mod:`covr_datagen.pipeline.corpus.fields`, and ``duplicate_id``.
"""

from __future__ import annotations

import bisect
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from covr_datagen.filters.base import Drop
from covr_datagen.pipeline.config import CorpusConfig
from covr_datagen.pipeline.core.accounting import (
    INPUT,
    KEPT,
    REJECTS_TAG,
    Drops,
    Progress,
    counter,
    info_counter,
)
from covr_datagen.pipeline.core.grouping import GroupByKeyInBuckets
from covr_datagen.pipeline.core.scratch import read_objects, write_objects
from covr_datagen.pipeline.core.tables import plan_parquet, row_group_rows
from covr_datagen.pipeline.corpus.fields import RowParser
from covr_datagen.pipeline.corpus.layout import CorpusLayout, inspect_corpus
from covr_datagen.pipeline.corpus.records import (
    RawRecord,
    RecordRule,
    TextChunk,
    plan_text_chunks,
    text_chunk_records,
)

#: ``info`` counters of the read stage: lines found (text corpora), records spanning several
#: lines, and their lines after the first
LINES, MULTILINE_RECORDS, CONTINUATION_LINES = "lines", "multiline_records", "continuation_lines"


def unit_records(unit: Any, rule: RecordRule) -> Iterator[RawRecord]:
    """Records of one read unit: a :class:`TextChunk`, or a Parquet ``(file, row_group,
    first_row)`` (whose rows have no line number and span one row)."""
    if isinstance(unit, TextChunk):
        return text_chunk_records(unit, rule)
    return (RawRecord(row, values, None, 1) for row, values in row_group_rows(unit))


def unit_first_row(unit: Any) -> int:
    """Row number of a read unit's first row."""
    return unit.first_row if isinstance(unit, TextChunk) else unit[2]


class FindDuplicateRows(beam.DoFn):
    """``(media_id, rows)`` -> ``(unit_index, (row, first_row, media_id))`` for every row after
    the first of a media id (the unit is the read unit holding that row)."""

    def __init__(self, first_rows: list[int]):
        self.first_rows = first_rows

    def process(self, element: tuple[str, Any]):
        media_id, rows = element
        rows = sorted(rows)
        for row in rows[1:]:
            yield bisect.bisect_right(self.first_rows, row) - 1, (row, rows[0], media_id)


IDS_TAG = "media_ids"


def unit_records_path(scratch: str, unit_index: int) -> str:
    """Scratch file holding the parsed records of read unit ``unit_index``."""
    return FileSystems.join(scratch, f"unit-{unit_index:06d}.records.pkl")


class ParseUnit(beam.DoFn):
    """Pass 1 over one read unit ``(unit_index, unit)``: parse every record once
    (:class:`RowParser`). Bad records go to the ``rejects`` output, ``(media_id, row)`` of every
    good one to the ``media_ids`` output; the records are saved to the unit's scratch file, and
    the main output is ``(unit_index, number of records)`` once that file is complete. Counts the
    unit's lines (as planned) and the lines its records span (see :meth:`ReadStage.count_problem`)."""

    def __init__(self, stage: str, layout: CorpusLayout, scratch: str):
        self.stage = stage
        self.layout = layout
        self.parser = RowParser(layout)
        self.scratch = scratch

    def setup(self):
        self._input = counter(self.stage, INPUT)
        self._drops = Drops(self.stage)
        self._progress = Progress(self.stage, "rows")
        self._lines = info_counter(self.stage, LINES)
        self._multiline = info_counter(self.stage, MULTILINE_RECORDS)
        self._continuation = info_counter(self.stage, CONTINUATION_LINES)

    def process(self, element: tuple[int, Any]):
        index, unit = element
        if isinstance(unit, TextChunk):
            self._lines.inc(unit.lines)
        records = []
        for raw in unit_records(unit, self.layout.rule):
            row = raw.row
            self._input.inc()
            self._progress.tick()
            if raw.lines > 1:
                self._multiline.inc()
                self._continuation.inc(raw.lines - 1)
            record, problem, shown = self.parser.parse(row, raw.data)
            if problem:
                yield self._reject(Drop(*problem), raw, shown)
                continue
            records.append(record)
            yield beam.pvalue.TaggedOutput(IDS_TAG, (record["media_id"], row))
        write_objects(unit_records_path(self.scratch, index), records)
        yield index, len(records)

    def _reject(self, drop: Drop, record: RawRecord, shown: Any) -> beam.pvalue.TaggedOutput:
        """The reject of a record that did not parse: its row, line(s) and raw text."""
        if isinstance(shown, bytes):
            shown = shown.decode("utf-8", errors="replace")
        where = {"row": record.row, "raw": shown}
        if record.line is not None:
            where.update(line=record.line, lines=record.lines)
        return self._drops.reject(drop, record.row, where)


class EmitUniqueRecords(beam.DoFn):
    """Pass 2 over one read unit: load the records :class:`ParseUnit` saved, keep each media id's
    first row, reject the others as ``duplicate_id``."""

    def __init__(self, stage: str, scratch: str):
        self.stage = stage
        self.scratch = scratch

    def setup(self):
        self._kept = counter(self.stage, KEPT)
        self._drops = Drops(self.stage)

    def process(self, element: tuple[int, dict]):
        index, grouped = element
        expected = list(grouped["parsed"])
        if len(expected) != 1:
            raise RuntimeError(f"read unit {index}: {len(expected)} parse results, expected 1")
        records = read_objects(unit_records_path(self.scratch, index))
        if len(records) != expected[0]:
            raise RuntimeError(f"read unit {index}: scratch file has {len(records)} records, "
                               f"the parse pass wrote {expected[0]}")
        duplicates = {row: (first, media_id) for row, first, media_id in grouped["dups"]}
        for record in records:
            row = record["row"]
            if row in duplicates:
                first, media_id = duplicates[row]
                yield self._drops.reject(
                    Drop("duplicate_id", f"media id {media_id!r} first seen at row {first}"),
                    row, record)
                continue
            self._kept.inc()
            yield record


class ReadCorpus(beam.PTransform):
    """Composite source: corpus file -> ``(records, rejects)``."""

    def __init__(self, path: str, cfg: CorpusConfig, scratch: str, stage: str = "read",
                 chunk_bytes: int = 16 << 20):
        """``scratch``: an empty folder every worker can reach (the stage's staging folder)
        where the parse pass leaves each unit's records for the dedup pass."""
        super().__init__()
        self.path = path
        self.cfg = cfg
        self.scratch = scratch
        self.stage = stage
        self.chunk_bytes = chunk_bytes
        self.layout = inspect_corpus(path, cfg)

    def expand(self, pbegin):
        lay = self.layout
        if lay.format == "parquet":
            plan = plan_parquet(self.path)
        else:
            plan = plan_text_chunks(self.path, skip_header=lay.header is not None, rule=lay.rule,
                                    chunk_bytes=self.chunk_bytes)
        units = (pbegin | "PlanUnits" >> beam.Create(list(enumerate(plan)))
                 | "SpreadUnits" >> beam.Reshuffle())
        # pass 1: parse once, reject bad rows, save records; only (media id, row) pairs are shuffled
        parsed = units | "ParseUnits" >> beam.ParDo(
            ParseUnit(self.stage, lay, self.scratch)).with_outputs(
                REJECTS_TAG, IDS_TAG, main="parsed")
        duplicates = (parsed[IDS_TAG]
                      | "GroupByMediaId" >> GroupByKeyInBuckets()
                      | "DuplicateRows" >> beam.ParDo(
                          FindDuplicateRows([unit_first_row(u) for u in plan])))
        # pass 2: each unit's saved records (keyed by the parse result, so the file exists),
        # with the rows to reject as duplicates
        unique = ({"parsed": parsed.parsed, "dups": duplicates}
                  | "UnitsWithDuplicates" >> beam.CoGroupByKey()
                  | "UniqueRecords" >> beam.ParDo(EmitUniqueRecords(self.stage, self.scratch))
                  .with_outputs(REJECTS_TAG, main="records"))
        rejects = (parsed[REJECTS_TAG], unique[REJECTS_TAG]) | "AllRejects" >> beam.Flatten()
        return unique.records, rejects
