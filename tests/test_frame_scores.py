"""Per-frame ``scores`` (covr_datagen.pipeline.stages.frame_scores): CoVR's frame sampling, the real triplets
stage with a tiny random open-clip model on synthetic clips, the pixels encoder, and resumes."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts
from covr_datagen.pipeline.devtools.synthetic_media import clip_frames, write_mp4
from covr_datagen.pipeline.media.frames import read_sampled_frames, sample_frame_indices
from covr_datagen.pipeline.products.export import export_covr_csv
from covr_datagen.pipeline.run.stage_runner import run_stages
from covr_datagen.pipeline.stages.triplets import TripletStage
from covr_datagen.schemas import MEDIA_PAIRS, RECORDS
from tests.covr_trainer import fake_embeddings, read_like_trainer
from tests.helpers import write_table

RED, BLUE, TREE = "dog running on the beach", "cat running on the beach", "horse running on the beach"


def covr_sample_frames(vlen: int, frames_per_video: int = 15) -> list[int]:
    """CoVR's ``src/data/embs.py`` ``sample_frames``, written out independently."""
    k = min(vlen, frames_per_video)
    cuts = [int(x) for x in np.linspace(0, vlen, k + 1)]
    return [(cuts[i] + cuts[i + 1] - 1) // 2 for i in range(k)]


@pytest.mark.parametrize("count", [1, 7, 15, 16, 31, 300, 451])
def test_sampling_matches_covr_embedding_tools(count):
    assert sample_frame_indices(count, 15) == covr_sample_frames(count)
    assert len(sample_frame_indices(count, 15)) == min(count, 15)


def test_sampled_frames_are_decoded_in_order(tmp_path):
    path = str(tmp_path / "v.mp4")
    write_mp4(path, clip_frames(RED, n_frames=40))
    frames, indices = read_sampled_frames(path, 15)
    assert indices == covr_sample_frames(40) and len(frames) == 15
    # the synthetic clip's white bar sweeps left to right: its column grows with the frame index
    bars = [int(np.argmax(f[24, :, :].min(axis=1) > 200)) for f in frames]
    assert bars == sorted(bars) and bars[0] < bars[-1]


def _record(i: int, media_id: str, caption: str) -> dict:
    page, _, vid = media_id.partition("/")
    return {"row": i, "media_id": media_id, "caption": caption, "normalized": caption.lower(),
            "caption_id": caption, "page_dir": page, "videoid": vid}


def _media_pair(pair: str, m1: str, m2: str, txt1: str, txt2: str) -> dict:
    return {"pair_id": pair, "caption_id1": txt1, "caption_id2": txt2, "txt1": txt1, "txt2": txt2,
            "word1": txt1.split()[0], "word2": txt2.split()[0], "sim_txt": 0.8, "media_id1": m1,
            "media_id2": m2, "sim_media": 0.6, "rank": 0, "media_kind": "video"}


@pytest.fixture
def scored_run(tmp_path):
    """Media pairs over three synthetic clips (20, 40 and 9 frames) and one missing file."""
    media = tmp_path / "media"
    write_mp4(str(media / "p/1.mp4"), clip_frames(RED, n_frames=20))
    write_mp4(str(media / "p/2.mp4"), clip_frames(BLUE, n_frames=40))
    write_mp4(str(media / "p/3.mp4"), clip_frames(TREE, n_frames=9))
    run = RunDir(tmp_path / "run")
    write_table(run.table("records"), [_record(0, "p/1", RED), _record(1, "p/2", BLUE),
                                       _record(2, "p/3", TREE), _record(3, "p/4", TREE)], RECORDS)
    write_table(run.table("media_pairs"), [_media_pair("A", "p/1", "p/2", RED, BLUE),
                                           _media_pair("B", "p/1", "p/3", RED, TREE),
                                           _media_pair("C", "p/2", "p/4", BLUE, TREE)], MEDIA_PAIRS)
    config = Config()
    config.mtg.engine = "rules"  # the texts are not what these tests are about
    config.media.media_root = str(media)
    return run, config, media


def _triplets(run, config):
    reports = run_stages([TripletStage()], run, config, RunFacts("t", corpus_name="t"))
    rows = run.read_table("triplets").to_pylist()
    return reports[0], {(r["pth1"], r["pth2"]): r for r in rows}


@pytest.mark.slow
def scoring_facts(report) -> dict:
    """The stage's info counts about frame scores (it also counts texts missing the concept)."""
    return {k: v for k, v in report.info.items() if k.endswith("scored_triplets")}


def test_open_clip_scores_every_sampled_target_frame(scored_run, tmp_path):
    from covr_datagen.pipeline.devtools.tiny_clip import build_tiny_open_clip
    from covr_datagen.pipeline.media.encoders import MediaEncoderSpec

    run, config, media = scored_run
    config.media.encoder = build_tiny_open_clip(tmp_path / "clip")
    report, rows = _triplets(run, config)
    assert report.input == report.kept == 6 and report.dropped == {}, report
    assert scoring_facts(report) == {"scored_triplets": 5, "unscored_triplets": 1}
    assert len(rows[("p/1", "p/2")]["scores"]) == 15  # 40 frames -> the trainer's 15
    assert len(rows[("p/2", "p/1")]["scores"]) == 15  # 20 frames
    assert len(rows[("p/1", "p/3")]["scores"]) == 9   # 9 frames: one score per frame
    assert rows[("p/2", "p/4")]["scores"] == []       # the target's file is missing
    # the values: cosine of each sampled frame (in order) with the edit, to 4 decimals
    encoder = MediaEncoderSpec.parse(config.media.encoder).load()
    row = rows[("p/1", "p/2")]
    frames, _ = read_sampled_frames(str(media / "p/2.mp4"), 15)
    vectors = encoder.encode([encoder.prepare(f) for f in frames])
    expected = vectors @ encoder.encode_text([row["edit"]])[0]
    assert np.allclose(row["scores"], expected, atol=1e-4)
    assert len(set(np.round(row["scores"], 4))) > 1  # frames differ, so do their scores

    # the export meets the trainer's scores length rule (one score per embedded frame)
    summary = export_covr_csv(run, tmp_path / "exp" / "x.csv", link_dir=tmp_path / "exp" / "media")
    assert summary["media_links"]["missing"] == 1  # p/4: the trainer drops its two rows
    fake_embeddings(tmp_path / "exp" / "media", tmp_path / "exp" / "embs")
    view = read_like_trainer(tmp_path / "exp" / "x.csv", tmp_path / "exp" / "media",
                             tmp_path / "exp" / "embs", "train", allow_missing=True)
    assert sorted(view.df["scores"].map(lambda s: len(ast.literal_eval(s)))) == [9, 15, 15, 15]

    # a different frame count is a different output: the stage reruns, not resumes
    config.media.score_frames = 5
    report, rows = _triplets(run, config)
    assert not report.skipped and len(rows[("p/1", "p/2")]["scores"]) == 5


def test_pixels_encoder_leaves_scores_empty(scored_run):
    run, config, _ = scored_run
    report, rows = _triplets(run, config)
    assert report.kept == 6 and scoring_facts(report) == {}
    assert all(r["scores"] == [] for r in rows.values())
