"""Contract tests: exports of real builds read by the CoVR trainer's rules (tests/covr_trainer.py),
for train, validation and test files, with the run's own ids and with renumbered, linked ones."""

from __future__ import annotations

import csv
import re

import pandas as pd
import pytest

from covr_datagen.pipeline.products.export import export_covr_csv
from covr_datagen.pipeline.products.trainer_ids import id_problems, renumbered_ids
from tests.covr_trainer import fake_embeddings, read_like_trainer
from tests.helpers import WEBVID_VAL, reproducible_config

SPLIT = {"val": 0.1, "test": 0.1}


def check_export(run, out, media_dir, emb_dir, **options) -> dict:
    """Export ``run`` with held-out splits and check every file with the trainer's rules."""
    summary = export_covr_csv(run, out, split=SPLIT, seed=0, **options)
    assert fake_embeddings(media_dir, emb_dir) > 0
    for split in ("train", "val", "test"):
        view = read_like_trainer(out.with_name(f"{out.stem}_{split}.csv"), media_dir, emb_dir, split)
        assert len(view.df) == summary["files"][split]["rows"] > 0
    return summary


@pytest.mark.slow
def test_demo_export_meets_the_trainer_contract(demo_run, tmp_path):
    media = demo_run.root / "media"  # the demo's clips are laid out {page_dir}/{videoid}.mp4
    check_export(demo_run, tmp_path / "keep" / "demo.csv", media, tmp_path / "keep" / "embs")
    linked = tmp_path / "renumbered" / "media"
    summary = check_export(demo_run, tmp_path / "renumbered" / "demo.csv", linked,
                           tmp_path / "renumbered" / "embs", media_ids="renumber", link_dir=linked)
    assert summary["media_links"]["missing"] == 0


@pytest.mark.slow
def test_the_contract_catches_files_the_trainer_misreads(demo_run, tmp_path):
    """The contract is not vacuous: a validation file with several unsorted rows per target (the
    old ``--split-val`` output) and an id that overflows int64 are both caught."""
    media, embs = tmp_path / "media", tmp_path / "embs"
    for folder in (demo_run.root / "media").iterdir():  # the demo's clips, in a folder we may add to
        (media / folder.name).parent.mkdir(exist_ok=True)
        (media / folder.name).symlink_to(folder)
    export_covr_csv(demo_run, tmp_path / "all.csv")
    fake_embeddings(media, embs)
    read_like_trainer(tmp_path / "all.csv", media, embs, "train")
    with pytest.raises(AssertionError, match="wrong (target|ref) id"):
        read_like_trainer(tmp_path / "all.csv", media, embs, "val")
    with pytest.raises(AssertionError, match="one caption per row"):
        read_like_trainer(tmp_path / "all.csv", media, embs, "test")
    df = pd.read_csv(tmp_path / "all.csv")
    big = "9" * 12 + "_1/" + "9" * 8
    (media / big.split("/")[0]).mkdir()
    (media / f"{big}.mp4").symlink_to(media / f"{df['pth1'][0]}.mp4")
    df.loc[df["pth1"] == df["pth1"][0], "pth1"] = big
    df.to_csv(tmp_path / "big.csv", index=False)
    with pytest.raises(ValueError, match="Overflow when unpacking long long"):
        read_like_trainer(tmp_path / "big.csv", media, embs, "train")


def long_id_corpus(demo_corpus: str, path) -> None:
    """The demo corpus with real-length WebVid ids (``095201_095250/1023443014``)."""
    with open(demo_corpus, newline="", encoding="utf-8") as src, \
            open(path, "w", newline="", encoding="utf-8") as dst:
        reader = csv.DictReader(src)
        writer = csv.DictWriter(dst, fieldnames=reader.fieldnames)
        writer.writeheader()
        for row in reader:
            if re.fullmatch(r"\d+", row.get("videoid") or ""):
                n = int(row["videoid"])
                row["videoid"] = str(1_020_000_000 + n)
                row["page_dir"] = f"{95201 + n % 7 * 50:06d}_{95250 + n % 7 * 50:06d}"
            writer.writerow(row)


@pytest.mark.slow
def test_webvid_style_corpus_with_real_length_ids(tmp_path):
    from covr_datagen.pipeline.commands.demo import demo_corpus_path, run_demo

    corpus = tmp_path / "webvid.csv"
    long_id_corpus(demo_corpus_path(), corpus)
    config = reproducible_config()
    config.corpus.name = "webvid"
    run = run_demo(tmp_path / "run", config, corpus=str(corpus))
    with pytest.raises(ValueError, match="overflows int64"):
        export_covr_csv(run, tmp_path / "keep.csv")
    linked = tmp_path / "export" / "media"
    summary = check_export(run, tmp_path / "export" / "webvid.csv", linked, tmp_path / "export" / "embs",
                           media_ids="renumber", link_dir=linked)
    assert summary["media_links"]["missing"] == 0
    assert all(len(m) >= 20 for m in pd.read_csv(tmp_path / "export" / "webvid_train.csv")["media_id1"])


def test_webvid10m_ids_need_renumbering():
    """On real WebVid-10M ids (shared data, skipped when absent) the trainer's rule fails and
    renumbered ids pass."""
    if not WEBVID_VAL.exists():
        pytest.skip(f"{WEBVID_VAL} not present (shared data is optional)")
    df = pd.read_csv(WEBVID_VAL, usecols=["videoid", "page_dir"], dtype=str)
    ids = (df["page_dir"] + "/" + df["videoid"]).tolist()
    assert len(id_problems(ids, "video")) > len(ids) // 2
    assert not id_problems(renumbered_ids(ids).values(), "video")
