"""``build``: the whole pipeline, stage by stage, each stage its own Beam pipeline.

Stages in order (names as in ``manifest.json``):

1. ``read``            corpus -> ``records``
2. ``caption_filters`` records -> ``captions`` (min words, templates, profanity, mature)
3. ``mine``            captions -> ``mined_pairs`` (exact or faiss)
4. ``pair_filters``    mined pairs -> ``caption_pairs`` (digit, out-of-vocabulary, similarity band)
5. ``media_embed``     caption pairs + records -> ``media_embeddings`` (media on only)
   ``media_pairs``     caption pairs (+ embeddings) -> ``media_pairs``
6. ``triplets``        media pairs -> ``triplets`` (MTG-LLM texts, text filters)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from covr_datagen.pipeline.config import Config, validate_config
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts, Stage
from covr_datagen.pipeline.corpus.layout import check_corpus_path, corpus_fingerprint
from covr_datagen.pipeline.run.stage_runner import StageReport, run_stages
from covr_datagen.pipeline.stages.read import refuse_empty_read
from covr_datagen.pipeline.text.encoders import resolve_dtype


def build_stages(config: Config) -> list[Stage]:
    """The ordered stage list for ``config``: the one place the pipeline is assembled."""
    from covr_datagen.pipeline.stages.caption_filters import CaptionFilterStage
    from covr_datagen.pipeline.stages.media_pairs import media_stages
    from covr_datagen.pipeline.stages.mine import MiningStage
    from covr_datagen.pipeline.stages.pair_filters import PairFilterStage
    from covr_datagen.pipeline.stages.read import ReadStage
    from covr_datagen.pipeline.stages.triplets import TripletStage

    return [ReadStage(), CaptionFilterStage(), MiningStage(), PairFilterStage(),
            *media_stages(config), TripletStage()]


def default_media_kind(fmt: str) -> str:
    """Video for WebVid-style corpora, image for Conceptual-Captions-style ones."""
    return "image" if fmt == "cc3m" else "video"


@dataclass
class BuildRequest:
    """Everything ``build`` needs besides the config."""

    corpus: str
    out: str
    beam_args: list[str] = field(default_factory=list)
    force: bool = False
    until: str | None = None
    stage_retries: int = 1  # reruns of a stage whose counts do not reconcile
    allow_empty: bool = False  # go on when the read stage keeps (nearly) no rows


def run_build(req: BuildRequest, config: Config) -> list[StageReport]:
    """Run the stages for ``req`` (skipping up-to-date ones) and return their reports.

    ``req.out`` must be new, empty or one of our run directories, and no other process may be
    writing it (:meth:`RunDir.writing`). Everything a user can get wrong (config values, corpus
    path, run directory) is checked before the first stage runs; the build stops after ``read``
    when it kept (nearly) nothing, unless ``req.allow_empty``."""
    validate_config(config)
    check_corpus_path(req.corpus)
    corpus = req.corpus
    if "://" not in corpus:
        corpus = str(Path(corpus).resolve())
    if config.corpus.name is None:
        config.corpus.name = Path(req.corpus).stem
    if config.corpus.media_kind is None:
        config.corpus.media_kind = default_media_kind(config.corpus.format)
    encoder = config.text_encoder
    encoder.dtype = resolve_dtype(encoder.dtype, encoder.device)
    stages = build_stages(config)
    if req.until is not None:
        names = [s.name for s in stages]
        if req.until not in names:
            raise ValueError(f"--until {req.until!r} is not a stage; stages: {', '.join(names)}")
        stages = stages[: names.index(req.until) + 1]
    facts = RunFacts(corpus_fingerprint(corpus), corpus, config.corpus.name,
                     config.corpus.media_kind)
    run = RunDir(req.out)
    with run.writing():
        return run_stages(stages, run, config, facts, beam_args=req.beam_args, force=req.force,
                          stage_retries=req.stage_retries,
                          check_report=None if req.allow_empty else refuse_empty_read)
