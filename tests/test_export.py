"""pipeline.export: the CoVR trainer CSV, read back the way the trainer reads it, and the split."""

from __future__ import annotations

import ast
import json

import pandas as pd
import pyarrow.dataset as pads
import pytest
from conftest import triplet_row, write_run

from pipeline.cli import main as cli_main
from pipeline.export import COVR_COLUMNS, export_covr_csv, scores_literal, split_targets, trainer_id_ok
from schemas import TRIPLETS


def webvid_id(i: int) -> str:
    return f"{1000 + i // 5:06d}_{1000 + i // 5 + 49:06d}/{20000 + i}"


def make_rows() -> list[dict]:
    """24 triplets over 12 targets (2 each); one row with scores, one with null sim_txt, one
    caption with a comma, a quote and a line break."""
    rows = []
    for i in range(24):
        rows.append(triplet_row(webvid_id(100 + i), webvid_id(i // 2), sim_txt=0.5 + i / 100,
                                triplet_id=f"t{i:02d}"))
    rows[0]["scores"] = [0.25, 0.5, 0.125]
    rows[1]["sim_txt"] = None
    rows[2]["txt1"] = 'A "red", shiny\ncar'
    return rows


@pytest.fixture
def run(tmp_path):
    return write_run(tmp_path / "run", {"triplets": (make_rows(), TRIPLETS)},
                     stages=[{"name": "triplets", "input": 24, "kept": 24, "dropped": {}}])


def read_like_trainer(path) -> pd.DataFrame:
    """What src/data/webvid_covr.py does with the annotation file (minus the media look-ups)."""
    df = pd.read_csv(path)
    df["int1"] = df["pth1"].apply(lambda x: int(x.replace("/", "0")))
    df["int2"] = df["pth2"].apply(lambda x: int(x.replace("/", "0")))
    assert df["int1"].nunique() == df["pth1"].nunique()
    assert df["int2"].nunique() == df["pth2"].nunique()
    df["scores"] = df["scores"].apply(lambda s: ast.literal_eval(str(s)))
    return df


def test_csv_reads_back_like_the_trainer(run, tmp_path):
    out = tmp_path / "covr.csv"
    summary = export_covr_csv(run, out)
    df = read_like_trainer(out)
    assert list(df.columns[:7]) == list(COVR_COLUMNS)
    assert set(TRIPLETS.names) <= set(df.columns)
    assert len(df) == 24
    by_id = df.set_index("triplet_id")
    assert by_id.loc["t00", "scores"] == [0.25, 0.5, 0.125]
    assert by_id.loc["t05", "scores"] == []
    assert pd.isna(by_id.loc["t01", "sim_txt"])
    assert by_id.loc["t03", "sim_txt"] == pytest.approx(0.53, abs=1e-6)
    assert by_id.loc["t02", "txt1"] == 'A "red", shiny\ncar'
    per_target = df.groupby("pth2").size()
    assert len(per_target) == 12 and set(per_target) == {2}
    expected = {(r["pth1"], r["pth2"], r["edit"]) for r in make_rows()}
    assert set(zip(df["pth1"], df["pth2"], df["edit"])) == expected
    assert summary["files"]["all"] == {"path": str(out), "rows": 24, "targets": 12}
    assert summary["ids_not_trainer_compatible"] == 0
    assert json.loads((tmp_path / "covr.export.json").read_text())["files"]["all"]["rows"] == 24


def test_split_by_target_with_seed(run, tmp_path):
    out = tmp_path / "covr.csv"
    assert cli_main(["export", "--run", str(run.root), "--format", "covr-csv", "--out", str(out),
                     "--split-val", "0.25", "--seed", "7"]) == 0
    train = read_like_trainer(tmp_path / "covr_train.csv")
    val = read_like_trainer(tmp_path / "covr_val.csv")
    assert not out.exists()
    assert len(train) + len(val) == 24
    assert val["pth2"].nunique() == 3 and train["pth2"].nunique() == 9
    assert set(train["pth2"]).isdisjoint(val["pth2"])
    assert set(train["triplet_id"]) | set(val["triplet_id"]) == {f"t{i:02d}" for i in range(24)}
    # same seed, same split; the split depends on the seed
    targets = [webvid_id(i) for i in range(12)]
    assert split_targets(targets, 0.25, 7) == set(val["pth2"])
    assert any(split_targets(targets, 0.25, s) != set(val["pth2"]) for s in range(8, 12))


def test_split_edges_and_helpers():
    assert split_targets(["a"], 0.5, 0) == set()
    assert len(split_targets(["a", "b"], 0.01, 0)) == 1
    assert len(split_targets(["a", "b", "c"], 0.99, 0)) == 2
    assert split_targets(["a", "b"], 0.0, 0) == set()
    with pytest.raises(ValueError):
        split_targets(["a"], 1.0, 0)
    assert scores_literal([]) == "[]" and scores_literal(None) == "[]"
    assert ast.literal_eval(scores_literal([0.1, 1.0])) == [0.1, 1.0]
    assert trainer_id_ok("022601_022650/1012345")
    assert not trainer_id_ok("1012345") and not trainer_id_ok("img/abc.jpg") and not trainer_id_ok("a/b/1")


def test_non_trainer_ids_are_reported_and_missing_runs_fail(tmp_path, capsys):
    rows = [triplet_row("images/cat.jpg", "images/dog.jpg", media_kind="image")]
    run = write_run(tmp_path / "run", {"triplets": (rows, TRIPLETS)})
    assert cli_main(["export", "--run", str(run.root), "--out", str(tmp_path / "x.csv")]) == 0
    assert "2 media ids are not" in capsys.readouterr().out
    empty = write_run(tmp_path / "empty", {})
    assert cli_main(["export", "--run", str(empty.root), "--out", str(tmp_path / "y.csv")]) == 2
    assert "no triplets found" in capsys.readouterr().err
    # a triplets stage that kept nothing exports a header-only file
    zero = write_run(tmp_path / "zero", {}, stages=[{"name": "triplets", "input": 3, "kept": 0,
                                                     "dropped": {"negative_sentiment": 3}}])
    assert cli_main(["export", "--run", str(zero.root), "--out", str(tmp_path / "z.csv")]) == 0
    assert list(pd.read_csv(tmp_path / "z.csv").columns[:7]) == list(COVR_COLUMNS)


def _media_pair(pair: str, txt1: str, txt2: str, w1: str, w2: str, m1: str, m2: str) -> dict:
    return {"pair_id": pair, "caption_id1": pair[:4], "caption_id2": pair[-4:], "txt1": txt1,
            "txt2": txt2, "word1": w1, "word2": w2, "sim_txt": 0.8, "media_id1": m1,
            "media_id2": m2, "sim_media": 0.6, "rank": 0, "media_kind": "video"}


@pytest.mark.slow
def test_stage_triplets_load_with_datasets_and_pyarrow(tmp_path):
    """Triplets written by the real ``TripletStage`` (rules engine): both readers, the schema and
    the file metadata; then the export of them read back like the trainer."""
    datasets = pytest.importorskip("datasets")
    from conftest import write_table

    from pipeline.config import Config
    from pipeline.rundir import RunDir
    from pipeline.stage_runner import run_stages
    from pipeline.stages.triplets import TripletStage
    from schemas import MEDIA_PAIRS

    run = RunDir(tmp_path / "run")
    pairs = [_media_pair("aaaa-bbbb", "Black bird on a branch", "Black bear on a branch", "bird",
                         "bear", webvid_id(1), webvid_id(2)),
             _media_pair("aaaa-bbbb", "Black bird on a branch", "Black bear on a branch", "bird",
                         "bear", webvid_id(3), webvid_id(2)),
             _media_pair("cccc-dddd", "Dandelion field at sunset", "Rice field at sunset",
                         "dandelion", "rice", webvid_id(4), webvid_id(5))]
    write_table(run.table("media_pairs"), pairs, MEDIA_PAIRS)
    run_stages([TripletStage()], run, Config(), corpus_path=None, corpus_fingerprint="fp-test",
               extra_ctx={"corpus_name": "toy", "corpus_fingerprint": "fp-test",
                          "media_kind": "video"})
    files = sorted(str(p) for p in run.table("triplets").glob("*.parquet"))
    assert files
    ds = pads.dataset(files, format="parquet")
    assert ds.schema.remove_metadata().equals(TRIPLETS)
    meta = ds.schema.metadata
    for key in (b"covr_datagen.version", b"covr_datagen.config_hash"):
        assert meta.get(key), key
    assert meta[b"covr_datagen.corpus_fingerprint"] == b"fp-test"
    table = ds.to_table()
    assert table.num_rows == 6  # 3 media pairs x 2 directions
    hf = datasets.load_dataset("parquet", data_files=files, split="train",
                               cache_dir=str(tmp_path / "hf_cache"))
    assert hf.num_rows == table.num_rows
    assert hf.column_names == TRIPLETS.names
    assert sorted(hf["triplet_id"]) == sorted(table["triplet_id"].to_pylist())
    assert hf[0]["scores"] == []

    summary = export_covr_csv(run, tmp_path / "toy.csv", split_val=0.25, seed=0)
    parts = [read_like_trainer(tmp_path / f"toy_{s}.csv") for s in ("train", "val")]
    assert sum(len(p) for p in parts) == 6 == sum(f["rows"] for f in summary["files"].values())
    assert set(parts[0]["pth2"]).isdisjoint(parts[1]["pth2"])
    assert all(s == [] for p in parts for s in p["scores"])
    assert summary["ids_not_trainer_compatible"] == 0
