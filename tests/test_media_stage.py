"""media_embed + media_pairs end to end through ``run_stages`` on hand-written ``records`` and
``caption_pairs`` tables, with real mp4s / jpgs (one corrupt, one empty, one missing)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts
from covr_datagen.pipeline.devtools.synthetic_media import (
    caption_image,
    clip_frames,
    overwrite_bytes,
    write_jpg,
    write_mp4,
)
from covr_datagen.pipeline.run.stage_runner import run_stages
from covr_datagen.pipeline.stages.media_embed import MediaEmbedStage
from covr_datagen.pipeline.stages.media_pairs import MediaPairStage, media_stages
from covr_datagen.schemas import CAPTION_PAIRS, RECORDS
from tests.helpers import write_table

RED, BLUE, TREE = "a red car on a road", "a blue car on a road", "green trees in a quiet park"


def _record(i: int, media_id: str, caption: str, **extra) -> dict:
    page, _, vid = media_id.partition("/")
    return {"row": i, "media_id": media_id, "caption": caption, "normalized": caption.lower(),
            "caption_id": caption.replace(" ", "_"), "page_dir": page or None,
            "videoid": vid or None, **extra}


def _pair(pair_id: str, cap1: str, cap2: str, ids1: list[str], ids2: list[str]) -> dict:
    return {"pair_id": pair_id, "caption_id1": cap1, "caption_id2": cap2, "txt1": cap1,
            "txt2": cap2, "word1": "w1", "word2": "w2", "position": 1, "sim_txt": 0.8,
            "media_ids1": ids1, "media_ids2": ids2}


def _prepare(root: Path, records: list[dict], pairs: list[dict]) -> RunDir:
    run = RunDir(root / "run")
    write_table(run.table("records"), records, RECORDS)
    write_table(run.table("caption_pairs"), pairs, CAPTION_PAIRS)
    return run


def _run(run: RunDir, config: Config, kind: str = "video", stages=None):
    stages = stages if stages is not None else media_stages(config)
    return {r.name: r for r in run_stages(stages, run, config,
                                          RunFacts("test", media_kind=kind))}


def _rows(run: RunDir, table: str) -> list[dict]:
    return run.read_table(table).to_pylist()


@pytest.fixture
def video_corpus(tmp_path):
    """Caption pair P1 (RED: v1 red, v2 tree-looking) x (BLUE: v3 = red content, v4 blue,
    v5 corrupt, v6 missing, v7 empty); P2 (TREE: v8) x (a caption whose only media has no
    record); v1 is referenced by both pairs."""
    media = tmp_path / "media"
    write_mp4(str(media / "p/v1.mp4"), clip_frames(RED))
    write_mp4(str(media / "p/v2.mp4"), clip_frames(TREE))
    write_mp4(str(media / "p/v3.mp4"), clip_frames(RED))
    write_mp4(str(media / "p/v4.mp4"), clip_frames(BLUE))
    (media / "p/v5.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 4)
    (media / "p/v7.mp4").write_bytes(b"")
    write_mp4(str(media / "q/v8.mp4"), clip_frames(TREE))
    records = [_record(0, "p/v1", RED), _record(1, "p/v2", RED), _record(2, "p/v3", BLUE),
               _record(3, "p/v4", BLUE), _record(4, "p/v5", BLUE), _record(5, "p/v6", BLUE),
               _record(6, "p/v7", BLUE), _record(7, "q/v8", TREE)]
    pairs = [_pair("P1", RED, BLUE, ["p/v1", "p/v2"], ["p/v3", "p/v4", "p/v5", "p/v6", "p/v7"]),
             _pair("P2", TREE, "ghost", ["q/v8"], ["x/gone"]),
             _pair("P3", TREE, RED, ["q/v8"], ["p/v1"])]
    run = _prepare(tmp_path, records, pairs)
    config = Config()
    config.media.media_root = str(media)
    config.media.cache_dir = str(tmp_path / "cache")
    config.media.top_k = 3
    return run, config


def test_video_end_to_end_with_bad_media_and_cache(video_corpus, tmp_path):
    run, config = video_corpus
    reports = _run(run, config)
    embed = reports["media_embed"]
    # 9 distinct referenced ids: v1..v8 and x/gone
    assert embed.dropped == {"corrupt_video": 1, "empty_video": 1, "missing_file": 1,
                             "no_record": 1}
    assert (embed.input, embed.kept) == (9, 5)
    assert embed.info.get("cache_hits", 0) == 0
    emb = {r["media_id"]: r for r in _rows(run, "media_embeddings")}
    assert set(emb) == {"p/v1", "p/v2", "p/v3", "p/v4", "q/v8"}
    assert all(r["frame_index"] == 8 for r in emb.values())  # 16 frames -> frame 8

    rejects = {r["item_id"]: r for r in _rows(run, "rejects/media_embed")}
    assert rejects["p/v5"]["reason"] == "corrupt_video"
    assert rejects["p/v6"]["reason"] == "missing_file"
    assert json.loads(rejects["p/v6"]["record"])["resolved_path"].endswith("p/v6.mp4")
    assert rejects["x/gone"]["reason"] == "no_record"

    pairs = reports["media_pairs"]
    assert (pairs.input, pairs.kept, pairs.dropped) == (3, 2, {"no_usable_media": 1})
    rows = sorted(_rows(run, "media_pairs"), key=lambda r: (r["pair_id"], r["rank"]))
    p1 = [r for r in rows if r["pair_id"] == "P1"]
    assert len(p1) == 3 == config.media.top_k  # 2 x 2 usable combinations capped to k=3
    # identical content first, then the one-cell difference, then the unrelated clip
    assert [(r["media_id1"], r["media_id2"]) for r in p1[:2]] == [("p/v1", "p/v3"),
                                                                  ("p/v1", "p/v4")]
    assert p1[2]["media_id1"] == "p/v2"
    assert p1[0]["sim_media"] > 0.99 and p1[0]["sim_media"] > p1[1]["sim_media"] > p1[2]["sim_media"]
    assert [r["rank"] for r in p1] == [0, 1, 2]
    assert {r["media_kind"] for r in rows} == {"video"}
    assert pairs.info["media_pairs"] == len(rows) == 4
    assert _rows(run, "rejects/media_pairs")[0]["item_id"] == "P2"

    # a second corpus sharing the cache: nothing is embedded twice
    run2 = RunDir(tmp_path / "run2")
    write_table(run2.table("records"), _rows(run, "records"), RECORDS)
    write_table(run2.table("caption_pairs"), _rows(run, "caption_pairs"), CAPTION_PAIRS)
    shards = sorted(Path(config.media.cache_dir).rglob("shard-*.parquet"))
    again = _run(run2, config)
    assert again["media_embed"].info["cache_hits"] == 5
    assert again["media_embed"].kept == 5
    assert sorted(Path(config.media.cache_dir).rglob("shard-*.parquet")) == shards
    assert sorted(_rows(run2, "media_pairs"), key=lambda r: (r["pair_id"], r["rank"])) == rows
    manifest = json.loads(run2.manifest_path.read_text())
    assert [s["name"] for s in manifest["stages"]] == ["media_embed", "media_pairs"]
    assert manifest["stages"][0]["info"] == {"cache_hits": 5}


def test_a_partly_overwritten_clip_is_a_corrupt_video_reject(video_corpus):
    """Issue #16 item 5: v4 with the middle 30% of its bytes overwritten is rejected as
    corrupt_video by the stream check (decord alone often returns a frame for such a clip, and
    not the same answer on every read: tests/test_media_units.py, docs/MEDIA.md)."""
    run, config = video_corpus
    overwrite_bytes(str(Path(config.media.media_root) / "p/v4.mp4"), 0.35, 0.65, seed=4)
    embed = _run(run, config, stages=[MediaEmbedStage()])["media_embed"]
    assert embed.dropped["corrupt_video"] == 2  # v4 and the unreadable v5
    assert embed.input == embed.kept + sum(embed.dropped.values())
    assert "p/v4" not in {r["media_id"] for r in _rows(run, "media_embeddings")}
    rejects = {r["item_id"]: r for r in _rows(run, "rejects/media_embed")}
    assert rejects["p/v4"]["reason"] == "corrupt_video"
    assert "stream check" in rejects["p/v4"]["detail"]


def test_keyframe_rule_records_its_frame_and_keeps_its_own_cache(video_corpus, tmp_path):
    import decord

    from covr_datagen.pipeline.media.frames import nearest_keyframe

    run, config = video_corpus
    _run(run, config, stages=[MediaEmbedStage()])  # middle frames fill the cache first
    config.media.frame = "keyframe"
    run2 = RunDir(tmp_path / "run2")
    write_table(run2.table("records"), _rows(run, "records"), RECORDS)
    write_table(run2.table("caption_pairs"), _rows(run, "caption_pairs"), CAPTION_PAIRS)
    embed = _run(run2, config, stages=[MediaEmbedStage()])["media_embed"]
    assert embed.kept == 5 and embed.info.get("cache_hits", 0) == 0  # not the middle frames' cache
    reader = decord.VideoReader(config.media.media_root + "/p/v1.mp4")
    expected = nearest_keyframe(reader.get_key_indices(), len(reader))
    assert expected != 8  # this clip's keyframes are not at its middle frame
    assert {r["frame_index"] for r in _rows(run2, "media_embeddings")} == {expected}
    config.media.frame = "first"
    with pytest.raises(ValueError, match="media.frame: 'first' is not one of"):
        _run(run2, config, stages=[MediaEmbedStage()])


def test_cap_bounds_the_work_and_is_counted(video_corpus):
    run, config = video_corpus
    config.media.max_media_per_caption = 2
    reports = _run(run, config)
    # P1: 2 x 5 combinations, capped to 2 x 2 (v3, v4): 6 left out; P2, P3: 1 x 1
    assert reports["media_pairs"].info["combinations_capped"] == 6
    assert reports["media_embed"].input == 6  # v5..v7 are never looked at
    assert len([r for r in _rows(run, "media_pairs") if r["pair_id"] == "P1"]) == 3


def test_no_media_mode_is_seeded_and_null(video_corpus):
    run, config = video_corpus
    config.media.enabled = False
    config.media.media_root = "/nonexistent"  # nothing is read
    assert [s.name for s in media_stages(config)] == ["media_pairs"]
    reports = _run(run, config)
    assert (reports["media_pairs"].input, reports["media_pairs"].kept) == (3, 3)
    rows = _rows(run, "media_pairs")
    assert all(r["sim_media"] is None for r in rows)
    assert len([r for r in rows if r["pair_id"] == "P1"]) == 3
    first = sorted((r["pair_id"], r["rank"], r["media_id1"], r["media_id2"]) for r in rows)
    assert _run(run, config, stages=[MediaPairStage()])["media_pairs"].skipped  # up to date
    run_stages([MediaPairStage()], run, config, RunFacts("test"), force=True)
    again = sorted((r["pair_id"], r["rank"], r["media_id1"], r["media_id2"])
                   for r in _rows(run, "media_pairs"))
    assert again == first
    with pytest.raises(ValueError, match="no-media"):
        _run(run, config, stages=[MediaEmbedStage()])


def test_images_with_tiny_open_clip(tmp_path):
    from covr_datagen.pipeline.devtools.tiny_clip import build_tiny_open_clip

    media = tmp_path / "imgs"
    write_jpg(str(media / "i1.jpg"), caption_image(RED, 48, 64))
    write_jpg(str(media / "i2.jpg"), caption_image(RED, 48, 64))
    write_jpg(str(media / "i3.jpg"), caption_image("fireworks above a dark city skyline", 48, 64))
    (media / "i4.jpg").write_text("not an image")
    records = [_record(0, "i1", RED), _record(1, "i2", BLUE), _record(2, "i3", BLUE),
               _record(3, "i4", BLUE), _record(4, "i5", BLUE)]
    run = _prepare(tmp_path, records, [_pair("P", RED, BLUE, ["i1"], ["i2", "i3", "i4", "i5"])])
    config = Config()
    config.media.media_root = str(media)
    config.media.cache_dir = str(tmp_path / "cache")
    config.media.encoder = build_tiny_open_clip(tmp_path / "clip")
    reports = _run(run, config, kind="image")
    assert reports["media_embed"].dropped == {"unreadable_image": 1, "missing_file": 1}
    emb = _rows(run, "media_embeddings")
    assert {len(r["embedding"]) for r in emb} == {16}
    assert {r["frame_index"] for r in emb} == {None}
    rows = sorted(_rows(run, "media_pairs"), key=lambda r: r["rank"])
    assert [(r["media_id1"], r["media_id2"], r["media_kind"]) for r in rows] == [
        ("i1", "i2", "image"), ("i1", "i3", "image")]
    assert rows[0]["sim_media"] > rows[1]["sim_media"]
