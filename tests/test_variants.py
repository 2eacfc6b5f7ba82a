"""pipeline.products.variants on a hand-built metadata table: exact expected subsets and counts."""

from __future__ import annotations

import json

import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.corpus.metadata import load_metadata
from covr_datagen.pipeline.products.variants import VARIANTS, variant_masks
from covr_datagen.schemas import TRIPLETS
from tests.helpers import triplet_row, write_run

# CleanVid-15M map layout, bare video ids except "pA/7" and the ambiguous "pA/8" / "pB/8"
METADATA = """id,description,duration,aspectratio,videourl,author,categories,framerate,r18
1,d,PT1S,16:9,u,alice,"['Animals', 'Nature']",25,0
2,d,PT1S,16:9,u,alice,['Food'],25,0
3,d,PT1S,16:9,u,bob,"['nature', 'City']",25,0
4,d,PT1S,16:9,u,carol,['Sports'],25,0
5,d,PT1S,16:9,u,,['Animals'],25,0
6,d,PT1S,16:9,u,alice,,25,0
pA/7,d,PT1S,16:9,u,bob,['City'],25,1
pA/8,d,PT1S,16:9,u,dan,['Food'],25,0
pB/8,d,PT1S,16:9,u,dan,['Food'],25,0
"""

# name -> (query, target, expected variants)
CASES = {
    "author_only": ("pX/1", "pX/2", {"same_author"}),
    "category_only_case_insensitive": ("pX/1", "pX/3", {"same_category"}),
    "both_full_id_target": ("pX/3", "pA/7", {"same_author", "same_category"}),
    "neither": ("pX/2", "pX/4", set()),
    "query_missing": ("pX/99", "pX/1", set()),
    "target_missing": ("pX/1", "pX/98", set()),
    "query_author_unknown": ("pX/5", "pX/1", {"same_category"}),
    "query_categories_unknown": ("pX/6", "pX/2", {"same_author"}),
    "query_ambiguous": ("pX/8", "pX/4", set()),
}


@pytest.fixture
def run_and_metadata(tmp_path):
    rows = [triplet_row(q, t, triplet_id=name) for name, (q, t, _) in CASES.items()]
    schema = TRIPLETS.with_metadata({"covr_datagen.config_hash": "abc123"})
    run = write_run(tmp_path / "run", {"triplets": (rows, schema)},
                    stages=[{"name": "triplets", "input": 9, "kept": 9, "dropped": {}}])
    meta = tmp_path / "cleanvid_map.csv"
    meta.write_text(METADATA, encoding="utf-8")
    return run, meta


def test_masks_and_counts(run_and_metadata):
    run, meta = run_and_metadata
    triplets = run.read_table("triplets")
    masks, counts = variant_masks(triplets, load_metadata(meta))
    ids = triplets["triplet_id"].to_pylist()
    for variant in ("same_author", "same_category"):
        got = {i for i, keep in zip(ids, masks[variant].to_pylist()) if keep}
        assert got == {n for n, (_, _, exp) in CASES.items() if variant in exp}, variant
    either = {i for i, keep in zip(ids, masks["same_author_or_category"].to_pylist()) if keep}
    assert either == {n for n, (_, _, exp) in CASES.items() if exp}
    assert counts["variants"] == {"same_author": 3, "same_category": 3, "same_author_or_category": 5}
    assert counts["triplets"] == 9
    assert counts["matching"] == {
        "query": {"full": 0, "bare": 7, "ambiguous": 1, "missing": 1},
        "target": {"full": 1, "bare": 7, "ambiguous": 0, "missing": 1},
    }
    assert counts["missing"] == {
        "query": {"record": 2, "author": 1, "categories": 1},
        "target": {"record": 1, "author": 0, "categories": 0},
    }
    assert counts["undecided"] == {"author": 4, "categories": 4}
    assert counts["media_ids"]["distinct"] == 10


def test_cli_writes_variant_tables(run_and_metadata, tmp_path, capsys):
    run, meta = run_and_metadata
    out = tmp_path / "variants"
    assert cli_main(["variants", "--run", str(run.root), "--metadata", str(meta), "--out", str(out)]) == 0
    assert "same_author_or_category" in capsys.readouterr().out
    summary = json.loads((out / "variants.json").read_text())
    assert summary["variants"] == {"same_author": 3, "same_category": 3, "same_author_or_category": 5}
    assert summary["metadata"]["rows"] == 9
    for variant in VARIANTS:
        dataset = pads.dataset(str(out / variant), format="parquet")
        table = dataset.to_table()
        assert table.schema.equals(TRIPLETS, check_metadata=False)
        assert table.num_rows == summary["variants"][variant]
        meta_kv = pq.read_schema(next((out / variant).glob("*.parquet"))).metadata
        assert meta_kv[b"covr_datagen.variant"] == variant.encode()
        assert meta_kv[b"covr_datagen.config_hash"] == b"abc123"
    # re-running replaces the outputs instead of appending to them
    assert cli_main(["variants", "--run", str(run.root), "--metadata", str(meta), "--out", str(out)]) == 0
    assert pads.dataset(str(out / "same_author"), format="parquet").count_rows() == 3


def test_empty_triplets_and_bad_metadata(tmp_path, capsys):
    run = write_run(tmp_path / "run", {}, stages=[{"name": "triplets", "input": 0, "kept": 0,
                                                   "dropped": {}}])
    meta = tmp_path / "m.csv"
    meta.write_text(METADATA, encoding="utf-8")
    out = tmp_path / "v"
    assert cli_main(["variants", "--run", str(run.root), "--metadata", str(meta), "--out", str(out)]) == 0
    assert json.loads((out / "variants.json").read_text())["variants"]["same_author"] == 0
    assert pads.dataset(str(out / "same_category"), format="parquet").count_rows() == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("name,author\nx,y\n", encoding="utf-8")
    assert cli_main(["variants", "--run", str(run.root), "--metadata", str(bad), "--out", str(out)]) == 2
    assert "no id column" in capsys.readouterr().err


def test_a_user_folder_in_the_way_is_never_deleted(run_and_metadata, tmp_path, capsys):
    """Issue #16 item 7: ``--out`` holding a folder named like a variant, with the user's files,
    is refused (one line, exit 2) and nothing of it is deleted."""
    run, meta = run_and_metadata
    out = tmp_path / "v"
    (out / "same_category").mkdir(parents=True)
    (out / "same_category" / "notes.txt").write_text("mine", encoding="utf-8")
    assert cli_main(["variants", "--run", str(run.root), "--metadata", str(meta), "--out",
                     str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "did not write" in err and "notes.txt" in err and len(err.splitlines()) == 1
    assert (out / "same_category" / "notes.txt").read_text(encoding="utf-8") == "mine"
