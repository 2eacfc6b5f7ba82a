"""The stage contract: a :class:`Stage` declares the run tables it reads and writes and builds
one Beam pipeline from a :class:`StageContext`; :class:`RunFacts` are the facts about the run
that the build decides once (corpus identity, media kind) and every stage may read.

A stage reads committed tables of the run directory (or the corpus) and writes its own tables
plus its rejects into a staging folder; the runner (:mod:`covr_datagen.pipeline.run.stage_runner`) checks that
its declared inputs are committed, runs it, reconciles its counts (:mod:`pipeline.core.accounting`)
and commits its outputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import apache_beam as beam

from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.tables import read_table

MEDIA_KINDS = ("video", "image")


@dataclass(frozen=True)
class RunFacts:
    """What the build knows about the run before any stage runs."""

    #: identity of the corpus' bytes (the first stage's upstream checkpoint key)
    corpus_fingerprint: str
    #: the corpus file; only the ``read`` stage opens it
    corpus_path: str | None = None
    #: corpus name recorded in outputs (``corpus.name`` when empty)
    corpus_name: str = ""
    #: ``video`` or ``image``
    media_kind: str = "video"

    def __post_init__(self):
        if self.media_kind not in MEDIA_KINDS:
            raise ValueError(f"media kind must be video or image, got {self.media_kind!r}")


@dataclass
class StageContext:
    """What a stage needs to build its pipeline."""

    run: RunDir
    staging: Path
    config: Config
    facts: RunFacts
    #: the tables the stage declared (:meth:`Stage.inputs_for`); :meth:`read` opens only those
    inputs: tuple[str, ...] = ()

    def output_prefix(self, table: str) -> str:
        """File prefix for a table written by this stage (inside the staging folder)."""
        return str(self.staging / table / "part")

    def read(self, p: beam.Pipeline, table: str, label: str | None = None,
             columns: Sequence[str] | None = None):
        """Rows of one of the stage's declared input tables (only ``columns`` when given)."""
        if table not in self.inputs:
            raise ValueError(f"table {table!r} is not among the stage's declared inputs "
                             f"{self.inputs}; add it to the stage's ``inputs``")
        return read_table(p, self.run, table, label, columns)


class Stage:
    """One step of ``build``. Subclasses set the class attributes and implement :meth:`build`."""

    #: stage name: manifest entry, metrics namespace, checkpoint file, rejects folder
    name: str = "stage"
    #: committed run tables this stage reads (see :meth:`inputs_for`)
    inputs: tuple[str, ...] = ()
    #: tables this stage writes (folders of the run directory)
    outputs: tuple[str, ...] = ()
    #: config sections whose values change this stage's output
    config_sections: tuple[str, ...] = ()

    def inputs_for(self, config: Config, facts: RunFacts) -> tuple[str, ...]:
        """The tables this run of the stage reads: the runner checks they are committed, and
        ``ctx.read`` opens only these. Default: :attr:`inputs`; a stage whose inputs depend on
        the config (e.g. text-only mode) overrides it."""
        return self.inputs

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
