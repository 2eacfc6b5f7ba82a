"""The CoVR-BLIP-2 trainer's reading rules, re-implemented for contract tests of our exports.

Mirrors what github.com/lucas-ventura/CoVR does with an annotation file (``src/data/utils.py``
``id2int``/``pre_caption``, ``src/data/webvid_covr.py`` ``WebVidCoVRDataset.__init__`` and
``__getitem__``, ``src/test/blip2/utils.py`` / ``webvid_covr.py`` id tensors), minus model and
decoding. :func:`read_like_trainer` raises where the trainer raises (or would silently evaluate
the wrong ids), so a test that calls it fails when an export breaks the contract.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

#: target frames the trainer weights (``n_embs``; CoVR's embedding tools sample 15)
TRAINER_FRAMES = 15


def id2int(media_id: str) -> int:
    """``src/data/utils.py``: ``int(re.sub(r"\\D", "0", id))``."""
    return int(re.sub(r"\D", "0", media_id))


def pre_caption(caption, max_words: int = 30) -> str:
    """``src/data/utils.py`` ``pre_caption`` (raises on NaN, as the trainer does)."""
    caption = re.sub(r"([.!\"()*#:;~])", " ", caption.lower())
    caption = re.sub(r"\s{2,}", " ", caption).rstrip("\n").strip(" ")
    return " ".join(caption.split(" ")[:max_words])


def fake_embeddings(media_dir: Path, emb_dir: Path, frames: int = TRAINER_FRAMES) -> int:
    """What ``tools/embs/save_blip2_embs_vids.py`` leaves: ``{emb_dir}/{folder}/{stem}.pth`` with
    one row per sampled frame (``min(frames, frame count)``) for each video found as
    ``{media_dir}/*/*.mp4`` (zeros; only the shape matters)."""
    import decord

    count = 0
    for video in Path(media_dir).glob("*/*.mp4"):
        target = Path(emb_dir) / video.parent.name / f"{video.stem}.pth"
        target.parent.mkdir(parents=True, exist_ok=True)
        rows = min(frames, len(decord.VideoReader(str(video), num_threads=1)))
        torch.save(torch.zeros(rows, 4), target)
        count += 1
    return count


@dataclass
class TrainerView:
    """The annotation as the trainer holds it after ``__init__``."""

    df: pd.DataFrame  # sorted by pth2, with path1/path2/int1/int2
    target_txts: list  # item order (pth2 in file order, distinct)
    pairid2ref: dict
    pairid2tar: dict


def read_like_trainer(csv: Path, media_dir: Path, emb_dir: Path, split: str,
                      allow_missing: bool = False) -> TrainerView:
    """Load ``csv`` with ``WebVidCoVRDataset``'s rules and check every item like the evaluators.

    Raises ``AssertionError`` / ``ValueError`` (also the int64 overflow of ``torch.tensor``)
    where the trainer would fail, and ``AssertionError`` where it would
    silently use wrong reference/target ids or fall back from the paper's frame weighting. Rows
    whose media is missing fail too, unless ``allow_missing`` (then, outside ``test``, they are
    dropped as the trainer drops them)."""
    df = pd.read_csv(csv)
    id2vid = {p.parent.stem + "/" + p.stem: p for p in Path(media_dir).glob("*/*.mp4")}
    id2emb = {p.parent.stem + "/" + p.stem: p for p in Path(emb_dir).glob("*/*.pth")}
    assert id2vid, f"No videos found in {media_dir}"
    assert id2emb, f"No embeddings found in {emb_dir}"
    df["path1"] = df["pth1"].apply(lambda x: id2vid.get(x))
    df["path2"] = df["pth2"].apply(lambda x: id2emb.get(x))
    missing = df["path1"].isna() | df["path2"].isna()
    if split == "test" and missing.any():
        raise ValueError(f"Missing {int(missing.sum())} pth1/pth2 in test split")
    assert allow_missing or not missing.any(), f"{int(missing.sum())} rows would be dropped as missing"
    df = df[~missing].reset_index(drop=True)
    target_txts = list(df["pth2"].unique())
    df = df.sort_values("pth2").reset_index(drop=True)
    df["int1"] = df["pth1"].apply(id2int)
    df["int2"] = df["pth2"].apply(id2int)
    assert df["int1"].nunique() == df["pth1"].nunique(), "int1 is not unique"
    assert df["int2"].nunique() == df["pth2"].nunique(), "int2 is not unique"
    view = TrainerView(df, target_txts, df["int1"].to_dict(), df["int2"].to_dict())
    if split == "test":
        assert len(target_txts) == df.shape[0], "Test split should have one caption per row"
    by_target = df.set_index("pth2", drop=False)
    for pair_id, target in enumerate(target_txts):
        ann = by_target.loc[[target]].iloc[0]
        pre_caption(ann["edit"])
        assert isinstance(ann["txt2"], str), f"{target}: txt2 reads as {ann['txt2']!r}"
        scores = ast.literal_eval(str(ann["scores"]))
        frames = len(torch.load(ann["path2"], weights_only=True))
        assert scores == [] or len(scores) == frames, f"{target}: {len(scores)} scores, {frames} frames"
        if split != "train":  # the evaluators' position lookups must name this item's media
            assert view.pairid2tar[pair_id] == id2int(target), f"item {pair_id}: wrong target id"
            assert view.pairid2ref[pair_id] == id2int(ann["pth1"]), f"item {pair_id}: wrong ref id"
    for ids in (view.pairid2ref, view.pairid2tar):
        torch.tensor(list(ids.values()), dtype=torch.long)  # the evaluators' id tensors
    return view
