"""Per-frame ``scores`` of triplets: how well each sampled target frame matches the modification text.

The CoVR-BLIP-2 trainer pools a target's frame embeddings with weights ``softmax(scores / 0.1)``
when a row's ``scores`` has one value per frame of the target's embedding file (CoVR's embedding
tools sample 15 frames uniformly), and falls back to a plain mean otherwise. CoVR computes these
scores with ``tools/embs/get_scores.py`` as frame-to-text similarities; we compute them while
building, with the media encoder's own text tower:

* for each distinct target (``pth2``) of the kept triplets, the ``media.score_frames`` frames of
  :func:`pipeline.media.frames.read_sampled_frames` (CoVR's sampling) are decoded and embedded with
  the image tower;
* each triplet's ``edit`` is embedded with the text tower;
* ``scores[i]`` = cosine similarity of frame ``i`` and the text (both L2-normalised), in frame
  order, rounded to 4 decimals like CoVR's tool: values in [-1, 1], CLIP's usually 0.1-0.4.

Only for videos and encoders with a text tower (``open_clip:...``); otherwise
:class:`AttachFrameScores` passes triplets through untouched (``scores`` stays empty). Nothing is
dropped: a target whose frames cannot be decoded keeps empty scores, counted in the triplets stage's
info counter ``unscored_triplets`` (``scored_triplets`` counts the others).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np

from covr_datagen.pipeline.config import MediaConfig
from covr_datagen.pipeline.core.accounting import info_counter
from covr_datagen.pipeline.core.models import SharedModel
from covr_datagen.pipeline.core.stage import StageContext
from covr_datagen.pipeline.media.encoders import MediaEncoderSpec

STAGE = "triplets"


def scoring_enabled(cfg: MediaConfig, kind: str) -> bool:
    """Whether frame scores are computed: media on, videos, ``score_frames > 0``, a text tower."""
    return (cfg.enabled and kind == "video" and cfg.score_frames > 0
            and MediaEncoderSpec.parse(cfg.encoder).has_text_tower)


def frame_scores_key(cfg: MediaConfig) -> str:
    """The settings that shape ``scores``, for the triplets stage's checkpoint key."""
    return "|".join(str(v) for v in (cfg.enabled, cfg.encoder, cfg.score_frames, cfg.media_root,
                                     cfg.path_template))


def frame_text_scores(frames: np.ndarray, texts: np.ndarray) -> list[list[float]]:
    """``(f, d)`` frame and ``(t, d)`` text vectors (L2-normalised) -> per text, ``f`` cosines
    rounded to 4 decimals."""
    return np.round(texts @ frames.T, 4).astype(np.float32).tolist()


class ScoreTarget(beam.DoFn):
    """``(pth2, {triplet: [rows], record: [records]})`` -> the rows with ``scores`` filled."""

    def __init__(self, cfg: MediaConfig, kind: str, encoder: MediaEncoderSpec):
        self.cfg, self.kind = cfg, kind
        self.model = SharedModel(encoder)  # one model per worker process

    def setup(self):
        self._encoder = self.model.acquire()
        self._scored = info_counter(STAGE, "scored_triplets")
        self._unscored = info_counter(STAGE, "unscored_triplets")

    def _frame_vectors(self, records: list) -> np.ndarray | None:
        from covr_datagen.pipeline.media.frames import MediaError, read_sampled_frames
        from covr_datagen.pipeline.media.resolve import resolve_media_path

        if not records:
            return None
        record = min(records, key=lambda r: r["row"])
        path = resolve_media_path(record, self.cfg.media_root, self.kind, self.cfg.path_template)
        try:
            frames, _ = read_sampled_frames(path, self.cfg.score_frames)
        except MediaError:
            return None
        return self._encoder.encode([self._encoder.prepare(f) for f in frames])

    def process(self, element):
        _, groups = element
        rows = list(groups["triplet"])
        if not rows:
            return
        vectors = self._frame_vectors(list(groups["record"]))
        if vectors is None:
            self._unscored.inc(len(rows))
            yield from rows
            return
        texts = self._encoder.encode_text([r["edit"] for r in rows])
        self._scored.inc(len(rows))
        for row, scores in zip(rows, frame_text_scores(vectors, texts)):
            yield {**row, "scores": scores}


class AttachFrameScores(beam.PTransform):
    """Kept triplets -> the same triplets with per-frame ``scores`` (see the module docstring)."""

    def __init__(self, ctx: StageContext):
        super().__init__()
        self.ctx = ctx

    def expand(self, triplets):
        cfg = self.ctx.config.media
        self.kind = self.ctx.facts.media_kind
        if not scoring_enabled(cfg, self.kind):
            return triplets
        encoder = MediaEncoderSpec.parse(cfg.encoder, cfg.device)
        records = (self.ctx.read(triplets.pipeline, "records", label="Read records")
                   | "RecordKey" >> beam.Map(lambda r: (r["media_id"], r)))
        return ({"triplet": triplets | "TargetKey" >> beam.Map(lambda r: (r["pth2"], r)),
                 "record": records}
                | "JoinTargets" >> beam.CoGroupByKey()
                | "Score" >> beam.ParDo(ScoreTarget(cfg, self.kind, encoder)))
