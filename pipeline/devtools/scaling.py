"""Find the steps of a Beam pipeline that funnel data through one worker.

Two patterns serialise a Beam pipeline: a global combine (``CombineGlobally``, ``ToList``...)
and a side input (every worker receives the whole side PCollection). :func:`single_worker_steps`
lists both for a constructed pipeline, so a test can pin down which stages have them and why:
the Parquet sink's own bookkeeping (one element per output shard) is expected; data-sized ones
are not, except the faiss miner's deliberate gather of all embeddings into one index.
"""

from __future__ import annotations

from dataclasses import dataclass

import apache_beam as beam
from apache_beam.pipeline import PipelineVisitor


@dataclass(frozen=True)
class SerialStep:
    """A transform that brings a whole PCollection to one place."""

    label: str  # full label, e.g. "MineKnn/Gather"
    kind: str  # "global_combine" | "side_input"


class _Finder(PipelineVisitor):
    def __init__(self) -> None:
        self.steps: list[SerialStep] = []

    def _check(self, node) -> None:
        if isinstance(node.transform, beam.CombineGlobally):
            self.steps.append(SerialStep(node.full_label, "global_combine"))
        if getattr(node, "side_inputs", None):
            self.steps.append(SerialStep(node.full_label, "side_input"))

    def enter_composite_transform(self, node) -> None:
        self._check(node)

    def visit_transform(self, node) -> None:
        self._check(node)


#: label fragments of transforms whose serial steps are sized by the number of output shards
SINK_BOOKKEEPING = ("/Parquet/", "WriteRejects/", "/Write/WriteImpl")


def single_worker_steps(pipeline: beam.Pipeline, include_sinks: bool = False) -> list[SerialStep]:
    """Global combines and side inputs of ``pipeline`` (sink bookkeeping left out by default)."""
    finder = _Finder()
    pipeline.visit(finder)
    steps = finder.steps
    if not include_sinks:
        steps = [s for s in steps if not any(frag in s.label for frag in SINK_BOOKKEEPING)]
    return steps
