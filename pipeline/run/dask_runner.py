"""Beam's ``DaskRunner`` with the translation fixed so that a covr-datagen stage runs correctly on a
dask.distributed cluster.

Beam 2.77's ``apache_beam.runners.dask.dask_runner.DaskRunner`` (with dask 2026.8) builds one
dask bag per *transform* and runs only the last one. ``scripts/repro_dask_multi_output.py`` shows
1-3 in a few lines of Beam; 4 and 5 were checked by hand (``beam.BatchElements`` in batches of
7 delivered 294 of 300 elements; in the pipeline of
``tests/test_dask_runner.py::test_finish_bundle_outputs_and_side_inputs_computed_once`` a
singleton side input's producer ran 6 times):

1. every output of a multi-output ParDo goes into that one bag, so the consumer of a tagged
   output (``.with_outputs(...)``) receives the main output's elements as well;
2. only the graph of the last visited transform is computed: every other sink of the pipeline
   (a stage writes its table *and* its rejects) never runs;
3. ``result.metrics()`` raises ``NotImplementedError`` (no counters, so no reconciliation);
4. elements a DoFn emits in ``finish_bundle`` (``beam.BatchElements``' last batch) are
   collected after the bundle's results were taken, and lost;
5. a side input is recomputed (its whole upstream graph) each time a task reads it;
6. a ``Flatten`` of a multi-output ParDo's output that also feeds a side input came out empty
   (``dask.bag.concat`` only aliases its input partitions; the mining stage's candidate pairs
   met this): here each input partition is copied by a task of its own.

This runner keeps Beam's graph rewrites (``dask_overrides``) and replaces the rest: a ParDo's
bundle function returns ``(tag, value)`` pairs (after ``finish_bundle``) and the bundle's
counter values; each output PCollection gets its own bag filtered by tag; side
inputs are materialised once in the graph; a GroupByKey shuffles by task (right on many
machines, where a disk shuffle is not); a reshuffle spreads its elements over at least twice the
cluster's worker threads (Beam's passes them through); and every leaf of the pipeline is
computed together with the counters, which :meth:`DaskResult.metrics` serves. Only the global
window is supported (the only windowing covr-datagen uses).
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any, Iterable

import apache_beam as beam
from apache_beam import pvalue
from apache_beam.metrics.execution import MetricKey, MetricResult, MetricsContainer
from apache_beam.metrics.metric import MetricResults, MetricsFilter
from apache_beam.metrics.metricbase import MetricName
from apache_beam.pipeline import AppliedPTransform, PipelineVisitor
from apache_beam.runners.common import Receiver
from apache_beam.runners.dask import dask_runner as beam_dask
from apache_beam.runners.dask import overrides as dask_overrides
from apache_beam.runners.dask import transform_evaluator as dask_ops
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.transforms.sideinputs import SideInputMap
from apache_beam.transforms.window import GlobalWindows

#: tag under which a bundle reports its counters (never a user tag: not a string)
_COUNTERS = ("covr_datagen", "counters")
_GLOBAL = GlobalWindows()


class _CollectingReceiver(Receiver):
    """Appends ``(tag, value)`` of every element a DoFn emits on one output."""

    def __init__(self, tag: str | None, out: list):
        super().__init__()
        self.tag, self.out = tag, out

    def receive(self, windowed_value) -> None:
        self.out.append((self.tag, windowed_value.value))


class _Receivers(dict):
    """Receiver per output tag, created on first use, all appending to one list."""

    def __init__(self):
        super().__init__()
        self.out: list = []

    def __missing__(self, tag):
        self[tag] = _CollectingReceiver(tag, self.out)
        return self[tag]


def _side_input_maps(specs: list, values: list[list]) -> list[SideInputMap]:
    windowed = [[dask_ops.get_windowed_value(v, _GLOBAL) for v in vals] for vals in values]
    return [SideInputMap(view_type, options, vals)
            for (view_type, options), vals in zip(specs, windowed)]


def run_bundle(items: Iterable, transform: beam.ParDo, label: str, side_specs: list,
               *side_values: list) -> list:
    """Run ``transform``'s DoFn over one bundle (a dask partition): ``(tag, value)`` of every
    output (main tag ``None``), then ``(_COUNTERS, {(namespace, name): value})``."""
    from apache_beam.runners.common import DoFnContext, DoFnInvoker, DoFnSignature, _OutputHandler
    from apache_beam.runners.worker import statesampler
    from apache_beam.utils.counters import CounterFactory

    receivers = _Receivers()
    handler = _OutputHandler(window_fn=_GLOBAL, main_receivers=receivers[None],
                             tagged_receivers=receivers, per_element_output_counter=None,
                             output_batch_converter=None, process_yields_batches=False,
                             process_batch_yields_elements=False)
    args, kwargs = transform.raw_side_inputs
    invoker = DoFnInvoker.create_invoker(
        DoFnSignature(transform.fn), handler, context=DoFnContext(label, state=None),
        side_inputs=_side_input_maps(side_specs, list(side_values)), input_args=list(args),
        input_kwargs=kwargs, user_state_context=None,
        bundle_finalizer_param=beam.DoFn.BundleFinalizerParam())
    container = MetricsContainer(label)
    sampler = statesampler.StateSampler("", CounterFactory())
    previous = statesampler.get_current_tracker()
    statesampler.set_current_tracker(sampler)
    try:
        with sampler.scoped_state(label, "process", metrics_container=container):
            invoker.invoke_setup()
            invoker.invoke_start_bundle()
            for item in items:
                invoker.invoke_process(dask_ops.get_windowed_value(item, _GLOBAL))
            invoker.invoke_finish_bundle()
            invoker.invoke_teardown()
    finally:
        statesampler.set_current_tracker(previous)
    counts = {(key.metric.namespace, key.metric.name): value
              for key, value in container.get_cumulative().counters.items()}
    return receivers.out + [(_COUNTERS, counts)]


def _has_tag(tag, pair: tuple) -> bool:
    return pair[0] == tag


def _value(pair: tuple):
    return pair[1]


def _concat(parts: list[list]) -> list:
    return [x for part in parts for x in part]


def _flatten(bags: list):
    """One bag of every element of ``bags`` (Beam's ``Flatten``)."""
    import dask.bag as db

    return db.concat([bag.map_partitions(list) for bag in bags])


def _nothing(partition) -> list:
    return []


class _Visitor(PipelineVisitor):
    """Turn each PCollection of a (dask-overridden) pipeline into a dask bag."""

    def __init__(self, bag_kwargs: dict, parallelism: int):
        self.bag_kwargs, self.parallelism = bag_kwargs, parallelism
        self.bags: dict[pvalue.PCollection, Any] = {}
        self.consumed: set[pvalue.PCollection] = set()
        self.counter_bags: list = []

    def visit_transform(self, node: AppliedPTransform) -> None:
        transform = node.transform
        inputs = [self.bags[pc] for pc in node.inputs if isinstance(pc, pvalue.PCollection)]
        self.consumed.update(pc for pc in node.inputs if isinstance(pc, pvalue.PCollection))
        self.consumed.update(si.pvalue for si in node.side_inputs)
        if isinstance(transform, dask_overrides._GroupAlsoByWindow):
            outputs = {None: inputs[0]}  # GroupByKey below already grouped (global window only)
        elif isinstance(transform, beam.ParDo):
            outputs = self._pardo(node, inputs[0])
        elif isinstance(transform, dask_overrides._Create):
            outputs = {None: self._create(transform.values)}
        elif isinstance(transform, dask_overrides._GroupByKeyOnly):
            outputs = {None: inputs[0].groupby(_key, shuffle="tasks").map(_key_and_values)}
        elif isinstance(transform, dask_overrides._Flatten):
            outputs = {None: _flatten(inputs)}
        elif isinstance(transform, dask_overrides._Reshuffle):
            # spread the elements over at least `parallelism` partitions (Beam's: identity)
            bag = inputs[0]
            outputs = {None: bag.repartition(max(bag.npartitions, self.parallelism))}
        else:
            raise NotImplementedError(
                f"covr-datagen's DaskRunner cannot run transform {node.full_label!r} "
                f"({type(transform).__name__})")
        for tag, pcoll in node.outputs.items():
            self.bags[pcoll] = outputs[tag]

    def _create(self, values):
        import dask.bag as db

        npartitions = self.bag_kwargs.get("npartitions")
        size = self.bag_kwargs.get("partition_size") or (None if npartitions else 128)
        return db.from_sequence(list(values), npartitions=npartitions, partition_size=size)

    def _pardo(self, node: AppliedPTransform, bag) -> dict:
        import dask

        side_specs = [(type(si), si._view_options()) for si in node.side_inputs]
        side_values = [dask.delayed(_concat)(self.bags[si.pvalue].to_delayed(optimize_graph=False))
                       for si in node.side_inputs]
        out = bag.map_partitions(run_bundle, node.transform, node.full_label, side_specs,
                                 *side_values)
        self.counter_bags.append(out.filter(partial(_has_tag, _COUNTERS)).map(_value))
        return {tag: out.filter(partial(_has_tag, tag)).map(_value) for tag in node.outputs}

    def leaves(self) -> list:
        """One empty bag per PCollection nothing consumes (computing them runs every sink)."""
        return [bag.map_partitions(_nothing) for pc, bag in self.bags.items()
                if pc not in self.consumed]


def _key(item):
    return item[0]


def _key_and_values(group):
    key, items = group
    return key, [dask_ops.defenestrate(item[1]) for item in items]


class _Counters(MetricResults):
    """Counters summed over every bundle of a run (committed == attempted)."""

    def __init__(self, totals: dict[tuple[str, str], int]):
        self.totals = totals

    def query(self, filter: MetricsFilter | None = None) -> dict[str, list]:
        counters = []
        for (namespace, name), value in sorted(self.totals.items()):
            key = MetricKey("", MetricName(namespace, name))
            if self.matches(filter, key):
                counters.append(MetricResult(key, value, value))
        return {self.COUNTERS: counters, self.DISTRIBUTIONS: [], self.GAUGES: [],
                self.STRINGSETS: [], self.BOUNDED_TRIES: [], self.HISTOGRAMS: []}


@dataclasses.dataclass
class DaskResult(PipelineResult):
    """A submitted pipeline: waits for it, then serves its counters and closes the client."""

    client: Any
    leaves: Any
    counters: Any

    def __post_init__(self):
        super().__init__(PipelineState.RUNNING)
        self._totals: dict[tuple[str, str], int] | None = None

    def wait_until_finish(self, duration=None) -> str:
        if self._totals is not None:
            return self._state
        try:
            self.client.gather(self.leaves)
            totals: dict[tuple[str, str], int] = {}
            for bundle in self.client.gather(self.counters):
                for key, value in bundle.items():
                    totals[key] = totals.get(key, 0) + value
            self._totals = totals
            self._state = PipelineState.DONE
        except BaseException:
            self._state = PipelineState.FAILED
            raise
        finally:
            self.client.close()
        return self._state

    def cancel(self) -> str:
        self.client.cancel([self.leaves, self.counters])
        self.client.close()
        self._state = PipelineState.CANCELLED
        return self._state

    def metrics(self) -> MetricResults:
        if self._totals is None:
            raise RuntimeError("metrics are available once wait_until_finish() returned")
        return _Counters(self._totals)


class DaskRunner(beam_dask.DaskRunner):
    """Runs a batch pipeline on a dask.distributed cluster (``--dask_client_address HOST:PORT``,
    or a local cluster when absent); see the module docstring for what differs from Beam's."""

    def run_pipeline(self, pipeline, options):
        import dask.bag as db
        import distributed

        dask_options = options.view_as(beam_dask.DaskOptions).get_all_options(
            drop_default=True, current_only=True)
        bag_kwargs = beam_dask.DaskOptions._extract_bag_kwargs(dask_options)
        try:
            client = distributed.Client(**dask_options)
        except OSError as exc:  # unreachable or refusing scheduler: a user error, one line
            address = dask_options.get("address") or "a local cluster"
            raise ValueError(f"cannot connect to the dask scheduler at {address}: {exc}") from None
        try:
            pipeline.replace_all(dask_overrides.dask_overrides())
            parallelism = bag_kwargs.get("npartitions") or 2 * max(
                1, sum(client.nthreads().values()))
            visitor = _Visitor(bag_kwargs, parallelism)
            pipeline.visit(visitor)
            leaves = db.concat(visitor.leaves())
            counters = db.concat(visitor.counter_bags or [db.from_sequence([])])
            # one submission: the graphs share their keys, so each bundle runs once
            leaves_future, counters_future = client.compute([leaves, counters])
        except BaseException:
            client.close()
            raise
        return DaskResult(client, leaves_future, counters_future)
