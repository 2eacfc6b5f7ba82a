"""Parallel Parquet reading: one Beam work item per row group.

``beam.io.ReadFromParquet`` starts from a single impulse, and Beam's local multi-process runner
runs everything fused after it in one worker until the first shuffle. Planning the row groups
up front (:func:`plan_parquet`, metadata only) and reshuffling the plan spreads the reading, and
the per-row steps fused after it, over all workers.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems


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
