"""pipeline.products.export: the CoVR trainer CSV read back the way the trainer reads it, trainer ids, the
held-out split and rows pandas would break (contract tests on real builds: test_trainer_contract.py)."""

from __future__ import annotations

import ast
import json

import pandas as pd
import pyarrow.dataset as pads
import pytest
import yaml

from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.products.export import COVR_COLUMNS, export_covr_csv
from covr_datagen.pipeline.products.heldout import parse_split
from covr_datagen.pipeline.products.trainer_ids import id_problem, id_problems, renumbered_ids, trainer_int
from covr_datagen.schemas import RECORDS, TRIPLETS
from tests.covr_trainer import id2int, pre_caption
from tests.helpers import triplet_row, write_run


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


def read_csv_like_trainer(path) -> pd.DataFrame:
    """The annotation file read with pandas, ids numbered and ``scores`` parsed as the trainer does
    (the full contract with media folders is ``covr_trainer.read_like_trainer``)."""
    df = pd.read_csv(path)
    for side in ("1", "2"):
        df[f"int{side}"] = df[f"pth{side}"].apply(id2int)
        assert df[f"int{side}"].nunique() == df[f"pth{side}"].nunique()
    df["scores"] = df["scores"].apply(lambda s: ast.literal_eval(str(s)))
    return df


def test_csv_reads_back_like_the_trainer(run, tmp_path):
    out = tmp_path / "covr.csv"
    summary = export_covr_csv(run, out)
    df = read_csv_like_trainer(out)
    assert list(df.columns[:9]) == list(COVR_COLUMNS) + ["media_id1", "media_id2"]
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
    assert summary["rows_with_scores"] == 1
    assert json.loads((tmp_path / "covr.export.json").read_text())["files"]["all"]["rows"] == 24


def connected_rows() -> list[dict]:
    """60 triplets: 20 caption pairs, each with 3 media pairs among 4 videos, in both directions
    for half of them; media shared between caption pairs, so holding out needs removals."""
    rows = []
    for pair in range(20):
        for k in range(3):
            q, t = webvid_id(pair * 2 + k), webvid_id(pair * 2 + k + 1)
            direction = "forward" if (pair + k) % 2 else "backward"
            rows.append(triplet_row(q, t, pair_id=f"P{pair:02d}", direction=direction,
                                    triplet_id=f"P{pair:02d}-{k}", sim_media=0.5 + k / 10))
    return rows


def test_heldout_split_is_disjoint_by_media_and_caption_pair(tmp_path, capsys):
    rows = connected_rows()
    run = write_run(tmp_path / "run", {"triplets": (rows, TRIPLETS)})
    out = tmp_path / "covr.csv"
    assert cli_main(["export", "--run", str(run.root), "--out", str(out),
                     "--split", "val=0.1,test=0.1", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    parts = {s: read_csv_like_trainer(tmp_path / f"covr_{s}.csv") for s in ("train", "val", "test")}
    summary = json.loads((tmp_path / "covr.export.json").read_text())
    assert not out.exists() and "left out:" in printed
    assert printed.count("scores are empty in every row") == 1
    media = {s: set(p["pth1"]) | set(p["pth2"]) for s, p in parts.items()}
    pairs = {s: set(p["pair_id"]) for s, p in parts.items()}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert media[a].isdisjoint(media[b]) and pairs[a].isdisjoint(pairs[b]), (a, b)
    for name in ("val", "test"):
        held = parts[name]
        assert len(held) == held["pth2"].nunique() == summary["split"]["targets_found"][name] > 0
        assert list(held["pth2"]) == sorted(held["pth2"])
        # the representative of a target is its best media pair
        best = {}
        for r in rows:
            if r["pth2"] in set(held["pth2"]):
                best[r["pth2"]] = max(best.get(r["pth2"], -1), r["sim_media"])
        assert all(abs(best[t] - s) < 1e-6 for t, s in zip(held["pth2"], held["sim_media"]))
    removed = sum(summary["dropped"].values())
    assert sum(len(p) for p in parts.values()) + removed == len(rows)
    assert len(parts["train"]) > 0
    # same seed, same split; another seed, another one
    again = export_covr_csv(run, tmp_path / "again.csv", split={"val": 0.1, "test": 0.1}, seed=3)
    assert pd.read_csv(tmp_path / "again_val.csv")["triplet_id"].tolist() == \
        parts["val"]["triplet_id"].tolist()
    assert again["dropped"] == summary["dropped"]


#: keys of the trainer's configs/data/webvid-covr.yaml and configs/test/webvid-covr.yaml entries
TRAINER_DATA_KEYS = {"dataname", "_target_", "image_size", "iterate", "vid_query_method", "vid_frames",
                     "emb_pool", "n_embs", "si_tc_weight", "batch_size", "num_workers", "annotation",
                     "vid_dirs", "emb_dirs"}
TRAINER_TEST_KEYS = {"dataname", "_target_", "image_size", "vid_query_method", "vid_frames", "emb_pool",
                     "batch_size", "num_workers", "annotation", "vid_dirs", "emb_dirs", "test"}


def test_trainer_configs_follow_the_trainers_schema(run, tmp_path):
    out = tmp_path / "exp" / "ours.csv"
    summary = export_covr_csv(run, out, split={"val": 0.2, "test": 0.2}, media_ids="renumber",
                              media_dir=tmp_path / "media")
    data = yaml.safe_load((tmp_path / "exp" / "ours.data.yaml").read_text())
    assert set(data) == TRAINER_DATA_KEYS
    assert data["_target_"] == "src.data.webvid_covr.WebVidCoVRDataModule"
    assert data["annotation"] == {s: str((tmp_path / "exp" / f"ours_{s}.csv").absolute())
                                  for s in ("train", "val")}
    assert data["vid_dirs"] == {"train": str(tmp_path / "media"), "val": str(tmp_path / "media")}
    assert data["emb_dirs"]["train"] == str(tmp_path / "blip2-vid-embs-large-all")
    assert (data["n_embs"], data["emb_pool"], data["iterate"]) == (15, "query", "pth2")
    test = yaml.safe_load((tmp_path / "exp" / "ours.test.yaml").read_text())
    assert set(test) == {"ours"} and set(test["ours"]) == TRAINER_TEST_KEYS
    assert test["ours"]["annotation"] == str((tmp_path / "exp" / "ours_test.csv").absolute())
    assert summary["trainer_configs"] == {"data": str(tmp_path / "exp" / "ours.data.yaml"),
                                          "test": str(tmp_path / "exp" / "ours.test.yaml")}
    # without a val file the trainer's stock validation set stays
    export_covr_csv(run, tmp_path / "exp" / "all.csv")
    data = yaml.safe_load((tmp_path / "exp" / "all.data.yaml").read_text())
    assert data["annotation"]["val"].endswith("annotation/webvid-covr/webvid8m-covr_val.csv")
    assert not (tmp_path / "exp" / "all.test.yaml").exists()


def test_split_option_errors(run, tmp_path, capsys):
    for spec in ("val=1.2", "train=0.1", "val=x", "val=0.6,test=0.5", ""):
        assert cli_main(["export", "--run", str(run.root), "--out", str(tmp_path / "x.csv"),
                         "--split", spec]) == 2, spec
        assert "--split" in capsys.readouterr().err
    assert parse_split("test=0.05") == {"test": 0.05}


def test_ids_are_validated_with_the_trainers_rule(tmp_path, capsys):
    """Real-length WebVid ids overflow the trainer's int64; ``1_2/3`` and ``102/3`` collide;
    cc3m row numbers have no folder. Each fails with the ids listed; renumbering fixes all."""
    cases = {
        "overflow": ([("006001_006050/21179416", "006001_006050/21179417")], "video",
                     "overflows int64"),
        "collision": ([("1_2/3", "102/3")], "video", "same trainer integer 10203"),
        "cc3m": ([("0", "1")], "image", "not {folder}/{stem}"),
    }
    for name, (pairs, kind, reason) in cases.items():
        rows = [triplet_row(a, b, media_kind=kind) for a, b in pairs]
        run = write_run(tmp_path / name, {"triplets": (rows, TRIPLETS)})
        out = tmp_path / f"{name}.csv"
        assert cli_main(["export", "--run", str(run.root), "--out", str(out)]) == 2, name
        err = capsys.readouterr().err
        assert reason in err and "--media-ids renumber" in err and pairs[0][1] in err, err
        assert not out.exists()
        assert cli_main(["export", "--run", str(run.root), "--out", str(out),
                         "--media-ids", "renumber"]) == 0
        df = pd.read_csv(out)
        ids = set(df["pth1"]) | set(df["pth2"])
        assert not id_problems(ids, kind) and all(isinstance(i, str) for i in ids)
        mapping = pd.read_csv(tmp_path / f"{name}.media_map.csv", dtype=str)
        assert dict(zip(mapping["media_id"], mapping["trainer_id"]))[pairs[0][0]] == df["pth1"][0]
        assert (df["media_id1"].astype(str) == pairs[0][0]).all()
    # image ids with letters are fine for CC-CoIR (numbered by sorted position, not digits)
    assert not id_problems(["cc_3m/abc", "cc_3m/abd"], "image")
    assert id_problems(["cc_3m/abc", "cc_3m/abd"], "video") == {
        "cc_3m/abd": "same trainer integer 300000 as cc_3m/abc"}
    assert id_problem("a.b/1", "video").startswith("folder has a '.'")
    assert id_problem("N/A", "video") == "pandas reads it as NaN"


def test_renumbered_ids_are_unique_and_fit_int64():
    ids = renumbered_ids(f"page{i % 97}/{i}" for i in range(120_000))
    assert len(set(ids.values())) == 120_000
    assert not id_problems(ids.values(), "video")
    assert ids["page0/0"] == "0/000000" and max(trainer_int(t) for t in ids.values()) < 10**15


def test_text_pandas_reads_as_nan_is_left_out_and_captions_are_the_medias_own(tmp_path):
    rows = [triplet_row("p/1", "p/2", edit="N/A", triplet_id="a"),
            triplet_row("p/3", "p/4", triplet_id="b", txt2="Red car"),
            triplet_row("p/5", "p/6", triplet_id="c")]
    records = [{"row": i, "media_id": m, "caption": c, "normalized": c.lower(), "caption_id": c}
               for i, (m, c) in enumerate([("p/4", "Red car."), ("p/6", "None"), ("p/3", "Blue car")])]
    run = write_run(tmp_path / "run", {"triplets": (rows, TRIPLETS), "records": (records, RECORDS)})
    summary = export_covr_csv(run, tmp_path / "x.csv")
    df = read_csv_like_trainer(tmp_path / "x.csv")
    assert summary["dropped"] == {"text_read_as_nan": 2}
    assert df["triplet_id"].tolist() == ["b"]
    assert (df["txt1"][0], df["txt2"][0]) == ("Blue car", "Red car.")  # the media's own captions


def test_missing_runs_fail_and_empty_ones_export_a_header(tmp_path, capsys):
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
    from covr_datagen.pipeline.config import Config, MtgConfig
    from covr_datagen.pipeline.core.rundir import RunDir
    from covr_datagen.pipeline.core.stage import RunFacts
    from covr_datagen.pipeline.run.stage_runner import run_stages
    from covr_datagen.pipeline.stages.triplets import TripletStage
    from covr_datagen.schemas import MEDIA_PAIRS
    from tests.helpers import write_table

    run = RunDir(tmp_path / "run")
    pairs = [_media_pair("aaaa-bbbb", "Black bird on a branch", "Black bear on a branch", "bird",
                         "bear", webvid_id(1), webvid_id(2)),
             _media_pair("aaaa-bbbb", "Black bird on a branch", "Black bear on a branch", "bird",
                         "bear", webvid_id(3), webvid_id(2)),
             _media_pair("cccc-dddd", "Dandelion field at sunset", "Rice field at sunset",
                         "dandelion", "rice", webvid_id(4), webvid_id(5))]
    write_table(run.table("media_pairs"), pairs, MEDIA_PAIRS)
    run_stages([TripletStage()], run, Config(mtg=MtgConfig(engine="rules")),
               RunFacts("fp-test", corpus_name="toy"))
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

    summary = export_covr_csv(run, tmp_path / "toy.csv")
    df = read_csv_like_trainer(tmp_path / "toy.csv")
    assert len(df) == 6 == summary["files"]["all"]["rows"]
    assert all(s == [] for s in df["scores"]) and summary["rows_with_scores"] == 0


def dense_rows() -> list[dict]:
    """The 24 rows of :func:`make_rows`, 20 of them with a dense text (one of 35 words), one with
    a blank one and three without."""
    rows = make_rows()
    for i, row in enumerate(rows[:20]):
        row["edit_dense"] = f"Replace the scene of {row['pth1']} with that of {row['pth2']}, in detail {i}."
    rows[19]["edit_dense"] = " ".join(["word"] * 35)
    rows[20]["edit_dense"] = "   "
    return rows


def test_dense_variant_puts_the_dense_text_in_edit_and_counts_triplets_without_one(tmp_path, capsys):
    run = write_run(tmp_path / "run", {"triplets": (dense_rows(), TRIPLETS)})
    out = tmp_path / "dense.csv"
    assert cli_main(["export", "--run", str(run.root), "--out", str(out), "--variant", "dense"]) == 0
    printed = capsys.readouterr().out
    assert "all: 20 triplets" in printed and "left out: no_dense_text 4" in printed
    assert "1 dense texts have more than 30 words" in printed
    df = read_csv_like_trainer(out)
    assert list(df.columns[:10]) == list(COVR_COLUMNS) + ["media_id1", "media_id2", "edit_short"]
    assert "edit_dense" not in df.columns and "description2" in df.columns
    by_id = {r["triplet_id"]: r for r in dense_rows()}
    for _, row in df.iterrows():
        assert pre_caption(row["edit"])  # the trainer's text cleaning reads every dense text
        assert row["edit"] == by_id[row["triplet_id"]]["edit_dense"]
        assert row["edit_short"] == by_id[row["triplet_id"]]["edit"]
    summary = json.loads((tmp_path / "dense.export.json").read_text())
    assert summary["variant"] == "dense" and summary["columns"] == list(df.columns[:-2])
    assert summary["dropped"] == {"no_dense_text": 4, "text_read_as_nan": 0}
    assert summary["files"]["all"]["rows"] + summary["dropped"]["no_dense_text"] == 24
    assert summary["texts_over_trainer_max_words"] == 1
    # the one-word variant of the same run is unchanged: every row, edit_dense as a column
    edit = export_covr_csv(run, tmp_path / "edit.csv")
    assert edit["variant"] == "edit" and edit["files"]["all"]["rows"] == 24
    assert "edit_dense" in edit["columns"] and "edit_short" not in edit["columns"]


def test_dense_variant_with_held_out_splits(tmp_path):
    rows = connected_rows()
    for row in rows:
        row["edit_dense"] = f"Change {row['txt1']} into {row['txt2']} with every detail described."
    run = write_run(tmp_path / "run", {"triplets": (rows, TRIPLETS)})
    summary = export_covr_csv(run, tmp_path / "d.csv", split={"val": 0.2}, variant="dense")
    val = pd.read_csv(tmp_path / "d_val.csv")
    assert len(val) == summary["files"]["val"]["rows"] > 0
    assert all(text.endswith("every detail described.") for text in val["edit"])


def test_dense_variant_of_a_run_without_dense_texts_is_one_line_and_exit_2(run, tmp_path, capsys):
    out = tmp_path / "dense.csv"
    assert cli_main(["export", "--run", str(run.root), "--out", str(out), "--variant", "dense"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no dense modification texts" in err and "mtg.mode: dense" in err
    assert not out.exists()
    with pytest.raises(SystemExit) as exit_info:  # argparse refuses the choice
        cli_main(["export", "--run", str(run.root), "--out", str(out), "--variant", "long"])
    assert exit_info.value.code == 2 and "--variant" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--variant must be one of edit, dense"):
        export_covr_csv(run, out, variant="long")
