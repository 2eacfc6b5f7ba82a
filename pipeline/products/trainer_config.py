"""Hydra configs for the CoVR-BLIP-2 trainer (github.com/lucas-ventura/CoVR) pointing at an export.

:func:`data_config` follows the trainer's ``configs/data/webvid-covr.yaml`` (videos) or
``configs/data/cc-coir.yaml`` (images) and :func:`test_config` its ``configs/test/webvid-covr.yaml``;
the ``${...}`` values are the trainer's own interpolations, left for Hydra to resolve. The media
folder is the one the trainer globs (``{folder}/{stem}.mp4``), the embedding folder the one CoVR's
``tools/embs/save_blip2_embs_vids.py --video_dir MEDIA`` writes (``MEDIA/../blip2-vid-embs-large-all``).
Without a validation file of ours the data config keeps the trainer's stock validation set.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

import yaml

#: CoVR's stock WebVid-CoVR validation set, used when the export has no ``val`` file
STOCK_VAL = {"annotation": "${paths.work_dir}/annotation/webvid-covr/webvid8m-covr_val.csv",
             "media": "${paths.datasets_dir}/WebVid/8M/train",
             "emb": "${paths.datasets_dir}/WebVid/8M/${model.basemodel}-vid-embs-${model.model.vit}-all"}
#: number of target frames the trainer weights (``n_embs``) and CoVR's embedding tools sample
TRAINER_FRAMES = 15


def default_emb_dir(media_dir: str) -> str:
    """Where ``save_blip2_embs_vids.py --video_dir media_dir`` writes its embeddings (next to it)."""
    return posixpath.join(posixpath.dirname(media_dir.rstrip("/")), "blip2-vid-embs-large-all")


def data_config(name: str, kind: str, files: dict[str, str], media_dir: str, emb_dir: str) -> dict:
    """The ``configs/data/<name>.yaml`` mapping for an export with ``files`` (split -> CSV)."""
    common = {"image_size": "${model.ckpt.image_size}",
              "si_tc_weight": "${model.loss_terms.si_tc_weight}",
              "batch_size": "${machine.batch_size}", "num_workers": "${machine.num_workers}"}
    # the trainer's CC-CoIR module validates on a WebVid-CoVR (video) file: keep the stock one
    own_val = "val" in files and kind == "video"
    val = {"annotation": files["val"], "media": media_dir, "emb": emb_dir} if own_val else STOCK_VAL
    annotation = {"train": files["train"], "val": val["annotation"]}
    if kind == "image":
        return {"dataname": name, "_target_": "src.data.cc_coir.CCCoIRDataModule", **common,
                "annotation": annotation,
                "img_dirs": {"train": media_dir, "val": val["media"]},
                "emb_dirs": {"train": emb_dir, "val": val["emb"]}}
    return {"dataname": name, "_target_": "src.data.webvid_covr.WebVidCoVRDataModule", **common,
            "iterate": "pth2", "vid_query_method": "middle", "vid_frames": 1, "emb_pool": "query",
            "n_embs": TRAINER_FRAMES, "annotation": annotation,
            "vid_dirs": {"train": media_dir, "val": val["media"]},
            "emb_dirs": {"train": emb_dir, "val": val["emb"]}}


def test_config(name: str, test_file: str, media_dir: str, emb_dir: str) -> dict:
    """The ``configs/test/<name>.yaml`` mapping for a video export's ``test`` file."""
    return {name.replace("-", "_"): {
        "dataname": name, "_target_": "src.data.webvid_covr.WebVidCoVRTestDataModule",
        "image_size": "${model.ckpt.image_size}", "vid_query_method": "middle", "vid_frames": 1,
        "emb_pool": "query", "batch_size": "${machine.batch_size}",
        "num_workers": "${machine.num_workers}", "annotation": test_file, "vid_dirs": media_dir,
        "emb_dirs": emb_dir,
        "test": {"_target_": "src.test.${model.basemodel}.webvid_covr.TestWebVidCoVR"}}}


def write_yaml(path: Path, data: dict, header: str) -> None:
    """``data`` as YAML under a ``#`` comment header."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    path.write_text(comment + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
