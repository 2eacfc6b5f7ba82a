"""What every stage shares: the :class:`Stage` contract, counting with Beam metrics, the filter
step (keep, or drop with a reason), and table/rejects writers.

A stage is one Beam pipeline: it reads committed tables of the run directory (or the corpus),
and writes its own tables plus its rejects into a staging folder. Counts are Beam counters in the
stage's namespace: ``input``, ``kept`` and ``dropped:<reason>``. After the pipeline finishes the
runner checks ``input == kept + sum(dropped)`` and records the numbers in the manifest.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import apache_beam as beam
import pyarrow as pa
from apache_beam.metrics import Metrics

from filters.base import Drop, Filter, apply_filters, setup_all
from pipeline.config import Config
from pipeline.rundir import RunDir
from schemas import REJECTS

log = logging.getLogger("covr_datagen")

INPUT = "input"
KEPT = "kept"
DROPPED_PREFIX = "dropped:"
#: counters with this prefix are informational (e.g. pairs removed by a cap inside a kept item);
#: they are recorded in the manifest entry's "info" and are not part of the reconciliation
INFO_PREFIX = "info:"
REJECTS_TAG = "rejects"


@dataclass
class StageContext:
    """What a stage needs to build its pipeline."""

    run: RunDir
    staging: Path
    config: Config
    corpus_path: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def output_prefix(self, table: str) -> str:
        """File prefix for a table written by this stage (inside the staging folder)."""
        return str(self.staging / table / "part")


class Stage:
    """One step of ``build``. Subclasses set the class attributes and implement :meth:`build`."""

    #: stage name: manifest entry, metrics namespace, checkpoint file, rejects folder
    name: str = "stage"
    #: tables this stage writes (folders of the run directory)
    outputs: tuple[str, ...] = ()
    #: config sections whose values change this stage's output
    config_sections: tuple[str, ...] = ()

    def build(self, p: beam.Pipeline, ctx: StageContext) -> None:
        """Add this stage's transforms to ``p``; write outputs with :class:`WriteTable`."""
        raise NotImplementedError

    def key_extra(self, config: Config) -> str:
        """Identity of inputs other than config and upstream tables (e.g. a side file's hash)."""
        return ""

    def after_commit(self, run: RunDir, config: Config) -> None:
        """Side effects once the stage's outputs are committed (e.g. filling a shared cache)."""

    def count_problem(self, input_count: int, info: dict[str, int]) -> str | None:
        """What is wrong with the stage's counts beyond ``input == kept + dropped`` (checked by
        the runner like that one), or ``None``."""
        return None


# --- counting -----------------------------------------------------------------------------------
def counter(stage: str, name: str):
    """A Beam counter in the stage's namespace."""
    return Metrics.counter(stage, name)


def drop_counter(stage: str, reason: str):
    """Counter of items dropped with ``reason`` (one per reason, reconciled against input)."""
    return Metrics.counter(stage, DROPPED_PREFIX + reason)


def info_counter(stage: str, name: str):
    """Informational counter, recorded under the stage's ``info`` in the manifest."""
    return Metrics.counter(stage, INFO_PREFIX + name)


def file_metadata(ctx: "StageContext") -> dict[str, str]:
    """Key/value metadata stamped into Parquet files of final tables (schema-level metadata)."""
    from importlib import metadata as _md

    try:
        version = _md.version("covr-datagen")
    except _md.PackageNotFoundError:  # running from a source tree without install
        version = "unknown"
    return {
        "covr_datagen.version": version,
        "covr_datagen.config_hash": ctx.config.hash(),
        "covr_datagen.corpus_fingerprint": str(ctx.extra.get("corpus_fingerprint", "")),
        "covr_datagen.corpus": str(ctx.extra.get("corpus_name", "")),
        "covr_datagen.media_kind": str(ctx.extra.get("media_kind", "")),
    }


class Progress:
    """Throttled progress lines on stderr from inside a worker (every ``every_s`` seconds)."""

    def __init__(self, stage: str, what: str, every_s: float = 10.0):
        self.stage, self.what, self.every_s = stage, what, every_s
        self.count = 0
        self._last = time.monotonic()

    def tick(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            print(f"  [{self.stage}] {self.count:,} {self.what} processed by this worker",
                  file=sys.stderr, flush=True)


class CountInput(beam.DoFn):
    """Pass-through that counts the stage's input items."""

    def __init__(self, stage: str, what: str = "items"):
        self.stage, self.what = stage, what

    def setup(self):
        self._input = counter(self.stage, INPUT)
        self._progress = Progress(self.stage, self.what)

    def process(self, element):
        self._input.inc()
        self._progress.tick()
        yield element


def reject_row(stage: str, drop: Drop, item_id: Any, record: Any) -> dict:
    """A row of the rejects table."""
    return {
        "stage": stage,
        "reason": drop.reason,
        "detail": drop.detail,
        "item_id": str(item_id),
        "record": json.dumps(record, default=str, ensure_ascii=False, sort_keys=True),
    }


class FilterDoFn(beam.DoFn):
    """Apply a list of filters to batches of items: kept items go to the main output, dropped
    ones to the ``rejects`` output as reject rows. Counts ``kept`` and ``dropped:<reason>``.
    Input elements are lists (use ``beam.BatchElements`` before it)."""

    def __init__(self, stage: str, filters: Sequence[Filter], id_key: str, count_kept: bool = True):
        self.stage = stage
        self.filters = list(filters)
        self.id_key = id_key
        self.count_kept = count_kept

    def setup(self):
        setup_all(self.filters)
        self._kept = counter(self.stage, KEPT)
        self._dropped: dict[str, Any] = {}

    def process(self, batch):
        decisions = apply_filters(self.filters, batch)
        for item, decision in zip(batch, decisions):
            if decision is None:
                if self.count_kept:
                    self._kept.inc()
                yield item
            else:
                if decision.reason not in self._dropped:
                    self._dropped[decision.reason] = drop_counter(self.stage, decision.reason)
                self._dropped[decision.reason].inc()
                yield beam.pvalue.TaggedOutput(
                    REJECTS_TAG, reject_row(self.stage, decision, item.get(self.id_key), item)
                )


class ApplyFilters(beam.PTransform):
    """Composite: count input, batch, filter. Returns ``(kept, rejects)`` PCollections.

    A stage chaining several filter steps counts ``input`` in the first and ``kept`` in the last
    (``count_input`` / ``count_kept``), so the stage reconciles as one unit.
    """

    def __init__(self, stage: str, filters: Sequence[Filter], id_key: str,
                 what: str = "items", min_batch: int = 64, max_batch: int = 1024,
                 count_input: bool = True, count_kept: bool = True):
        super().__init__(label=None)
        self.stage, self.filters, self.id_key, self.what = stage, filters, id_key, what
        self.min_batch, self.max_batch = min_batch, max_batch
        self.count_input, self.count_kept = count_input, count_kept

    def expand(self, items):
        if self.count_input:
            items = items | "CountInput" >> beam.ParDo(CountInput(self.stage, self.what))
        results = (
            items
            | "Batch" >> beam.BatchElements(min_batch_size=self.min_batch,
                                            max_batch_size=self.max_batch)
            | "Filter" >> beam.ParDo(FilterDoFn(self.stage, self.filters, self.id_key,
                                                self.count_kept))
            .with_outputs(REJECTS_TAG, main="kept")
        )
        return results.kept, results[REJECTS_TAG]


# --- writing --------------------------------------------------------------------------------------
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
        from schemas import Conformer

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


def read_table(p: beam.Pipeline, run: RunDir, table: str, label: str | None = None,
               columns: Sequence[str] | None = None):
    """Read a committed table of the run directory as dict rows (only ``columns`` when given),
    spread over the workers by Parquet row group (see :mod:`pipeline.parquet_io`)."""
    from pipeline.parquet_io import ReadParquetRows

    if not run.has_table(table):
        raise FileNotFoundError(
            f"stage input table {table!r} is missing from {run.root}; run the earlier stages first"
        )
    return (p | (label or f"Read {table}") >> ReadParquetRows(run.table_glob(table), columns)
            | f"{label or table} rows" >> beam.Values())


def keyed(fn: Callable[[dict], Any]) -> Callable[[dict], tuple[Any, dict]]:
    """``beam.Map(keyed(f))`` turns rows into ``(f(row), row)``."""
    return lambda row: (fn(row), row)


def iter_counts(metrics_result, stage: str) -> Iterable[tuple[str, int]]:
    """(counter name, value) for every counter of ``stage`` in a Beam ``PipelineResult``."""
    from apache_beam.metrics.metric import MetricsFilter

    query = metrics_result.metrics().query(MetricsFilter().with_namespace(stage))
    totals: dict[str, int] = {}
    for c in query["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(value or 0)
    return totals.items()
