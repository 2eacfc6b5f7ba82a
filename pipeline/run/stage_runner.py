"""Run stages one after another as separate Beam pipelines, with checkpoints and a manifest.

For each stage: compute its key (hash of its config sections and of the upstream stage's key);
skip it when a checkpoint with the same key exists and its tables are present; otherwise check
that the tables it declares as inputs are committed, build and run its pipeline into a staging
folder, read its counters, check that
``input == kept + sum(dropped)``, commit the outputs atomically and record the stage in
``manifest.json``.

A stage whose counts do not add up commits nothing. It is run again from its (committed)
inputs up to ``stage_retries`` times — Beam's local multi-process runner has been seen to lose
elements at 2M captions (docs/BENCHMARKS.md) — and every failed attempt is printed and kept in
the manifest entry as ``failed_attempts``; when the retries are used up the build stops.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import shutil
import sys
import time
from dataclasses import dataclass, field
from importlib import metadata
from typing import Callable, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from covr_datagen.pipeline.config import Config, validate_config
from covr_datagen.pipeline.core.accounting import DROPPED_PREFIX, INFO_PREFIX, INPUT, KEPT, iter_counts
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts, Stage, StageContext

log = logging.getLogger("covr_datagen")

_VERSIONED = [
    "covr-datagen", "apache-beam", "pyarrow", "numpy", "faiss-cpu", "torch", "sentence-transformers",
    "open-clip-torch", "transformers", "peft", "decord", "pyenchant", "wordfreq", "better-profanity",
    "textblob",
]


class ReconciliationError(RuntimeError):
    """A stage's counts do not add up: input != kept + dropped."""


@dataclass
class StageReport:
    """One manifest entry."""

    name: str
    input: int
    kept: int
    dropped: dict[str, int]
    seconds: float
    key: str
    info: dict[str, int] = field(default_factory=dict)
    skipped: bool = False
    #: messages of attempts whose counts did not reconcile (rerun; nothing of them committed)
    failed_attempts: list[str] = field(default_factory=list)

    def to_manifest(self) -> dict:
        entry = {"name": self.name, "input": self.input, "kept": self.kept,
                 "dropped": dict(sorted(self.dropped.items())), "seconds": round(self.seconds, 3),
                 "key": self.key, "info": dict(sorted(self.info.items()))}
        if self.failed_attempts:
            entry["failed_attempts"] = list(self.failed_attempts)
        return entry


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the output."""
    out = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return out


def code_version() -> str:
    """Version of the installed covr-datagen (part of every checkpoint key, so an upgrade
    recomputes stages instead of reusing what older code wrote)."""
    try:
        return metadata.version("covr-datagen")
    except metadata.PackageNotFoundError:
        return "unknown"


def stage_key(stage: Stage, config: Config, upstream_key: str, extra: str = "") -> str:
    """Checkpoint key: the stage's name, its config sections, upstream key, any extra input and
    the covr-datagen version."""
    blob = "|".join([stage.name, config.section_hash(*stage.config_sections), upstream_key, extra,
                     code_version()])
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _counts_to_report(stage: Stage, counts: dict[str, int], seconds: float, key: str) -> StageReport:
    dropped = {k[len(DROPPED_PREFIX):]: v for k, v in counts.items() if k.startswith(DROPPED_PREFIX)}
    info = {k[len(INFO_PREFIX):]: v for k, v in counts.items() if k.startswith(INFO_PREFIX)}
    report = StageReport(stage.name, counts.get(INPUT, 0), counts.get(KEPT, 0), dropped, seconds,
                         key, info)
    total = report.kept + sum(dropped.values())
    if report.input != total:
        raise ReconciliationError(
            f"stage {stage.name!r}: input {report.input} != kept {report.kept} + dropped "
            f"{sum(dropped.values())} ({dropped})"
        )
    problem = stage.count_problem(report.input, info)
    if problem:
        raise ReconciliationError(f"stage {stage.name!r}: {problem}")
    return report


def check_inputs(stage: Stage, inputs: Sequence[str], run: RunDir) -> None:
    """Raise ``FileNotFoundError`` (one clear line) unless every table in ``inputs`` (what
    ``stage`` declares it reads) is committed in ``run``."""
    missing = [t for t in inputs if not run.has_table(t)]
    if missing:
        raise FileNotFoundError(f"stage {stage.name!r}: input table(s) {', '.join(missing)} missing "
                                f"from {run.root}; run the earlier stages first")


def run_stage(stage: Stage, facts: RunFacts, run: RunDir, config: Config, key: str,
              beam_args: Sequence[str], failed_attempts: Sequence[str] = ()) -> StageReport:
    """Build and run one stage's pipeline, verify its counts and commit its outputs
    (``failed_attempts``: earlier attempts' reconciliation errors, kept in the checkpoint)."""
    inputs = tuple(stage.inputs_for(config, facts))
    check_inputs(stage, inputs, run)
    staging = run.new_staging(stage.name)
    ctx = StageContext(run=run, staging=staging, config=config, facts=facts, inputs=inputs)
    start = time.monotonic()
    print(f"[{stage.name}] running ...", file=sys.stderr, flush=True)
    options = PipelineOptions(list(beam_args))
    p = beam.Pipeline(options=options)
    stage.build(p, ctx)
    result = p.run()
    result.wait_until_finish()
    seconds = time.monotonic() - start
    try:
        report = _counts_to_report(stage, dict(iter_counts(result, stage.name)), seconds, key)
    except ReconciliationError:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report.failed_attempts = list(failed_attempts)
    checkpoint = report.to_manifest()
    run.commit(stage.name, staging, list(stage.outputs), checkpoint)
    stage.after_commit(run, config)
    dropped = ", ".join(f"{k}={v:,}" for k, v in sorted(report.dropped.items())) or "none"
    print(f"[{stage.name}] input {report.input:,} -> kept {report.kept:,}; dropped: {dropped} "
          f"({seconds:.1f}s)", file=sys.stderr, flush=True)
    return report


def run_stage_with_retries(stage: Stage, facts: RunFacts, run: RunDir, config: Config, key: str,
                           beam_args: Sequence[str], retries: int) -> StageReport:
    """:func:`run_stage`, rerun up to ``retries`` times while its counts do not reconcile."""
    failures: list[str] = []
    while True:
        try:
            return run_stage(stage, facts, run, config, key, beam_args, failures)
        except ReconciliationError as err:
            failures.append(str(err))
            if len(failures) > retries:
                raise
            print(f"[{stage.name}] counts do not reconcile, nothing committed ({err}); "
                  f"running it again (attempt {len(failures) + 1} of {retries + 1})",
                  file=sys.stderr, flush=True)


def run_stages(stages: Sequence[Stage], run: RunDir, config: Config, facts: RunFacts, *,
               beam_args: Sequence[str] = (), force: bool = False, stage_retries: int = 1,
               check_report: Callable[[StageReport], None] | None = None) -> list[StageReport]:
    """Run ``stages`` in order with checkpoint-based skipping; rewrite ``manifest.json`` after each.

    A stage is skipped when its checkpoint key matches and its tables are present; once one stage
    runs, every later stage whose key changed runs too (keys chain through ``upstream_key``).
    A stage whose counts do not reconcile is rerun up to ``stage_retries`` times;
    ``check_report`` sees each stage's report once the manifest has it and may stop the build
    by raising. The whole config is validated first, so a bad value never surfaces after some
    stages ran. The run directory's exclusive lock is held throughout (:meth:`RunDir.lock`).
    """
    validate_config(config)
    with run.lock():
        return _run_stages_locked(stages, run, config, facts, beam_args, force, stage_retries,
                                  check_report)


def _run_stages_locked(stages: Sequence[Stage], run: RunDir, config: Config, facts: RunFacts,
                       beam_args: Sequence[str], force: bool, stage_retries: int,
                       check_report: Callable[[StageReport], None] | None) -> list[StageReport]:
    run.clean_staging()
    reports: list[StageReport] = []
    upstream = facts.corpus_fingerprint
    for stage in stages:
        key = stage_key(stage, config, upstream, stage.key_extra(config))
        checkpoint = run.read_checkpoint(stage.name)
        complete = all(run.table(t).is_dir() for t in stage.outputs)
        if not force and checkpoint and checkpoint.get("key") == key and complete:
            print(f"[{stage.name}] up to date (key {key}), skipped", file=sys.stderr, flush=True)
            report = StageReport(checkpoint["name"], checkpoint["input"], checkpoint["kept"],
                                 checkpoint["dropped"], checkpoint["seconds"], key,
                                 checkpoint.get("info", {}), skipped=True,
                                 failed_attempts=checkpoint.get("failed_attempts", []))
        else:
            report = run_stage_with_retries(stage, facts, run, config, key, beam_args,
                                            stage_retries)
        reports.append(report)
        upstream = key
        _write_manifest(run, config, reports, stages)
        if check_report is not None:
            check_report(report)
    return reports


def _write_manifest(run: RunDir, config: Config, reports: list[StageReport],
                    stages: Sequence[Stage]) -> None:
    entries = [r.to_manifest() | ({"skipped": True} if r.skipped else {}) for r in reports]
    manifest = {
        "stages": entries,
        "config": config.to_dict(),
        "config_hash": config.hash(),
        "versions": versions(),
        "complete": len(reports) == len(stages),
    }
    run.write_manifest(manifest)
