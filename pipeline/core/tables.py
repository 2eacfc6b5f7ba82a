"""Run tables in Parquet: reading them in parallel, writing a stage's tables and rejects.

Reading: ``beam.io.ReadFromParquet`` starts from a single impulse, and Beam's local multi-process runner
runs everything fused after it in one worker until the first shuffle. Planning the row groups
up front (:func:`plan_parquet`, metadata only) and reshuffling the plan spreads the reading, and
the per-row steps fused after it, over all workers.

Writing: :class:`WriteTable` conforms dict rows to a schema of :mod:`schemas` and writes them
into the stage's staging folder; the runner commits the folder when the stage's counts add up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator, Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.schemas import REJECTS

if TYPE_CHECKING:
    from covr_datagen.pipeline.core.stage import StageContext


def plan_parquet(path: str) -> list[tuple[str, int, int]]:
    """``(file, row_group, first_row)`` for every row group of the Parquet file(s) at ``path``."""
    import pyarrow.parquet as pq

    files = sorted(m.path for m in FileSystems.match([path])[0].metadata_list) if any(
        ch in path for ch in "*?[") else [path]
    out, row = [], 0
    for f in files:
        with FileSystems.open(f) as fh:
            meta = pq.ParquetFile(fh).metadata
        for rg in range(meta.num_row_groups):
            out.append((f, rg, row))
            row += meta.row_group(rg).num_rows
    return out


def row_group_rows(item: tuple[str, int, int],
                   columns: Sequence[str] | None = None) -> Iterator[tuple[int, dict]]:
    """``(row_number, dict)`` for every row of one planned row group ``(file, row_group, first_row)``
    (only ``columns`` when given: converting columns nobody reads to Python costs)."""
    import pyarrow.parquet as pq

    path, rg, first = item
    with FileSystems.open(path) as fh:
        table = pq.ParquetFile(fh).read_row_group(rg, columns=list(columns) if columns else None)
    for offset, row in enumerate(table.to_pylist()):
        yield first + offset, row


class ReadParquetRowGroup(beam.DoFn):
    """Emit ``(row_number, dict)`` for every row of one Parquet row group."""

    def __init__(self, columns: Sequence[str] | None = None):
        self.columns = columns

    def process(self, item: tuple[str, int, int]) -> Iterator[tuple[int, dict]]:
        yield from row_group_rows(item, self.columns)


class ReadParquetRows(beam.PTransform):
    """``(row_number, dict)`` for every row of the Parquet file(s) at ``path``, read in parallel
    (only ``columns`` when given)."""

    def __init__(self, path: str, columns: Sequence[str] | None = None):
        super().__init__()
        self.path = path
        self.columns = list(columns) if columns else None

    def expand(self, pbegin):
        return (pbegin
                | "PlanRowGroups" >> beam.Create(plan_parquet(self.path))
                | "SpreadRowGroups" >> beam.Reshuffle()
                | "ReadRowGroups" >> beam.ParDo(ReadParquetRowGroup(self.columns)))


def read_table(p: beam.Pipeline, run: RunDir, table: str, label: str | None = None,
               columns: Sequence[str] | None = None):
    """Read a committed table of the run directory as dict rows (only ``columns`` when given),
    spread over the workers by Parquet row group."""
    if not run.has_table(table):
        raise FileNotFoundError(
            f"stage input table {table!r} is missing from {run.root}; run the earlier stages first"
        )
    return (p | (label or f"Read {table}") >> ReadParquetRows(run.table_glob(table), columns)
            | f"{label or table} rows" >> beam.Values())


class WriteTable(beam.PTransform):
    """Write dict rows to ``<staging>/<table>/part-*.parquet`` with a schema from :mod:`schemas`.

    Rows are conformed to the schema first (extra keys dropped, missing nullable ones filled).
    """

    def __init__(self, ctx: StageContext, table: str, schema: pa.Schema, num_shards: int = 0):
        super().__init__(label=None)
        self.prefix = ctx.output_prefix(table)
        self.schema = schema
        self.num_shards = num_shards

    def expand(self, rows):
        from covr_datagen.schemas import Conformer

        return (
            rows
            | "Conform" >> beam.Map(Conformer(self.schema))
            | "Parquet" >> beam.io.WriteToParquet(
                self.prefix, self.schema, file_name_suffix=".parquet", num_shards=self.num_shards
            )
        )


class WriteRejects(WriteTable):
    """Write reject rows of a stage (``<staging>/rejects/part-*.parquet``)."""

    def __init__(self, ctx: StageContext):
        super().__init__(ctx, "rejects", REJECTS)


def file_metadata(ctx: StageContext) -> dict[str, str]:
    """Key/value metadata stamped into Parquet files of final tables (schema-level metadata)."""
    from importlib import metadata as _md

    try:
        version = _md.version("covr-datagen")
    except _md.PackageNotFoundError:  # running from a source tree without install
        version = "unknown"
    return {
        "covr_datagen.version": version,
        "covr_datagen.config_hash": ctx.config.hash(),
        "covr_datagen.corpus_fingerprint": ctx.facts.corpus_fingerprint,
        "covr_datagen.corpus": ctx.facts.corpus_name,
        "covr_datagen.media_kind": ctx.facts.media_kind,
    }
