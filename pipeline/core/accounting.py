"""Accounting of a stage: what came in, what was kept, what was dropped and why.

Counts are Beam counters in the stage's namespace: ``input``, ``kept`` and ``dropped:<reason>``
(reconciled by the runner: ``input == kept + sum(dropped)``), plus informational ``info:<name>``
counters that are recorded but not reconciled. Every dropped item is counted and, except where a
stage documents that a drop is counted only, written as a row of the stage's rejects table;
:class:`Drops` is the one way to do both. :class:`ApplyFilters` runs :class:`covr_datagen.filters.base.Filter`
objects and drops through it too.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any, Iterable, Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics

from covr_datagen.filters.base import Drop, Filter, apply_filters, setup_all

INPUT = "input"
KEPT = "kept"
DROPPED_PREFIX = "dropped:"
#: counters with this prefix are informational (e.g. pairs removed by a cap inside a kept item);
#: they are recorded in the manifest entry's "info" and are not part of the reconciliation
INFO_PREFIX = "info:"
REJECTS_TAG = "rejects"


def counter(stage: str, name: str):
    """A Beam counter in the stage's namespace."""
    return Metrics.counter(stage, name)


def info_counter(stage: str, name: str):
    """Informational counter, recorded under the stage's ``info`` in the manifest."""
    return Metrics.counter(stage, INFO_PREFIX + name)


def reject_row(stage: str, drop: Drop, item_id: Any, record: Any) -> dict:
    """A row of the rejects table."""
    return {
        "stage": stage,
        "reason": drop.reason,
        "detail": drop.detail,
        "item_id": str(item_id),
        "record": json.dumps(record, default=str, ensure_ascii=False, sort_keys=True),
    }


class Drops:
    """The drops of one stage: one ``dropped:<reason>`` counter per reason, and reject rows.

    Create it in ``DoFn.setup`` (counters belong to the worker) and use it for every item the
    DoFn drops: ``yield drops.reject(Drop(reason, detail), item_id, record)``.
    """

    def __init__(self, stage: str):
        self.stage = stage
        self._counters: dict[str, Any] = {}

    def count(self, reason: str, n: int = 1) -> None:
        """Count ``n`` items dropped with ``reason`` without writing reject rows (only where the
        stage's docstring says its drops of that reason are counted only)."""
        if reason not in self._counters:
            self._counters[reason] = Metrics.counter(self.stage, DROPPED_PREFIX + reason)
        self._counters[reason].inc(n)

    def reject(self, drop: Drop, item_id: Any, record: Any, n: int = 1) -> beam.pvalue.TaggedOutput:
        """Count the drop (``n`` items: one reject row may stand for several, e.g. the pairs a
        hot-key cap removed) and return its reject row for the ``rejects`` output."""
        self.count(drop.reason, n)
        return beam.pvalue.TaggedOutput(REJECTS_TAG, reject_row(self.stage, drop, item_id, record))


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
        self._drops = Drops(self.stage)

    def process(self, batch):
        decisions = apply_filters(self.filters, batch)
        for item, decision in zip(batch, decisions):
            if decision is None:
                if self.count_kept:
                    self._kept.inc()
                yield item
            else:
                yield self._drops.reject(decision, item.get(self.id_key), item)


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


def iter_counts(metrics_result, stage: str) -> Iterable[tuple[str, int]]:
    """(counter name, value) for every counter of ``stage`` in a Beam ``PipelineResult``."""
    from apache_beam.metrics.metric import MetricsFilter

    query = metrics_result.metrics().query(MetricsFilter().with_namespace(stage))
    totals: dict[str, int] = {}
    for c in query["counters"]:
        value = c.committed if c.committed is not None else c.attempted
        totals[c.key.metric.name] = totals.get(c.key.metric.name, 0) + int(value or 0)
    return totals.items()
