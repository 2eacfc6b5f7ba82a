"""The real Beam pipeline end to end: manifest reconciliation, one-word pairs, atomic commits,
checkpoint skipping."""

import json

import pytest

from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.commands.demo import demo_corpus_path
from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.run.build import BuildRequest, run_build
from covr_datagen.pipeline.text.normalize import one_word_difference, tokenize
from tests.helpers import WEBVID_VAL

CAPTION_STAGES = ["read", "caption_filters", "mine", "pair_filters"]


def assert_reconciles(manifest: dict) -> None:
    for stage in manifest["stages"]:
        assert stage["input"] == stage["kept"] + sum(stage["dropped"].values()), stage


def assert_one_word_pairs(run: RunDir, table: str) -> list[dict]:
    pairs = run.read_table(table).to_pylist()
    for p in pairs:
        w1, w2 = tokenize(p["txt1"]), tokenize(p["txt2"])
        pos = one_word_difference(w1, w2)
        assert pos == p["position"], p
        assert (w1[pos], w2[pos]) == (p["word1"], p["word2"])
    return pairs


@pytest.mark.slow
def test_webvid_val_sample(tmp_path):
    if not WEBVID_VAL.exists():
        pytest.skip("WebVid-10M val sample (../shared/data) not present")
    run = RunDir(tmp_path / "run")
    run_build(BuildRequest(str(WEBVID_VAL), str(run.root), until="pair_filters"), Config())
    manifest = run.read_manifest()
    assert [s["name"] for s in manifest["stages"]] == CAPTION_STAGES
    assert_reconciles(manifest)
    read = manifest["stages"][0]
    assert read["input"] == 5000 and read["kept"] == 5000  # 500 captions contain newlines
    mined = assert_one_word_pairs(run, "mined_pairs")
    kept = assert_one_word_pairs(run, "caption_pairs")
    assert len(mined) >= 10 and 0 < len(kept) < len(mined)
    assert all(p["sim_txt"] is not None for p in kept)
    assert manifest["versions"]["apache-beam"]
    assert manifest["config"]["mining"]["method"] == "exact"


def test_demo_corpus_through_the_cli(tmp_path, capsys):
    out = tmp_path / "demo"
    rc = cli_main(["build", "--corpus", demo_corpus_path(), "--format", "webvid", "--out",
                   str(out), "--until", "pair_filters"])
    assert rc == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert_reconciles(manifest)
    dropped = {s["name"]: s["dropped"] for s in manifest["stages"]}
    assert set(dropped["read"]) == {"bad_column_count", "duplicate_id", "empty_caption"}
    assert {"template", "profanity", "too_few_words"} <= set(dropped["caption_filters"])
    assert {"digit", "oov"} <= set(dropped["pair_filters"])
    pairs = assert_one_word_pairs(RunDir(out), "caption_pairs")
    texts = {frozenset((p["txt1"].rstrip(". "), p["txt2"].rstrip(". "))) for p in pairs}
    assert frozenset(("Young woman smiling in the park", "Old woman smiling in the park")) in texts
    # a second run skips every stage and leaves the tables as they were
    before = RunDir(out).read_table("caption_pairs").sort_by("pair_id")
    assert cli_main(["build", "--corpus", demo_corpus_path(), "--format", "webvid", "--out",
                     str(out), "--until", "pair_filters"]) == 0
    assert "up to date" in capsys.readouterr().err
    manifest = json.loads((out / "manifest.json").read_text())
    assert all(s.get("skipped") for s in manifest["stages"])
    assert RunDir(out).read_table("caption_pairs").sort_by("pair_id").equals(before)


def test_demo_stops_after_until(tmp_path):
    """``demo --until`` is ``build --until``: the demo used to ignore it and build everything."""
    out = tmp_path / "demo"
    assert cli_main(["demo", "--out", str(out), "--no-media", "--mtg-engine", "rules",
                     "--until", "mine"]) == 0
    names = [s["name"] for s in json.loads((out / "manifest.json").read_text())["stages"]]
    assert names[-1] == "mine" and "triplets" not in names


def test_a_failing_stage_commits_nothing(tmp_path, monkeypatch):
    """A stage that crashes mid-run leaves no table, no checkpoint, and earlier stages intact."""
    from covr_datagen.filters.digits import DigitFilter

    run = RunDir(tmp_path / "run")
    req = BuildRequest(demo_corpus_path(), str(run.root), until="pair_filters")
    run_build(BuildRequest(demo_corpus_path(), str(run.root), until="mine"), Config())
    mined_before = run.read_table("mined_pairs").num_rows

    def boom(self, item):
        raise RuntimeError("simulated worker crash")

    monkeypatch.setattr(DigitFilter, "check", boom)
    with pytest.raises(Exception, match="simulated worker crash"):
        run_build(req, Config())
    assert not run.table("caption_pairs").exists()
    assert run.read_checkpoint("pair_filters") is None
    assert run.read_table("mined_pairs").num_rows == mined_before
    assert [s["name"] for s in run.read_manifest()["stages"]] == CAPTION_STAGES[:3]
    monkeypatch.undo()
    reports = run_build(req, Config())
    assert [r.skipped for r in reports] == [True, True, True, False]
    assert run.has_table("caption_pairs")


def test_config_change_recomputes_downstream_only(tmp_path):
    run = RunDir(tmp_path / "run")
    req = BuildRequest(demo_corpus_path(), str(run.root), until="pair_filters")
    run_build(req, Config())
    config = Config()
    config.pair_filters.sim_min = 0.3
    reports = run_build(req, config)
    assert [r.skipped for r in reports] == [True, True, True, False]
    config.caption_filters.min_words = 3
    reports = run_build(req, config)
    assert [r.skipped for r in reports] == [True, False, False, False]


def test_new_code_version_recomputes_every_stage(tmp_path, monkeypatch):
    run = RunDir(tmp_path / "run")
    req = BuildRequest(demo_corpus_path(), str(run.root), until="mine")
    run_build(req, Config())
    assert [r.skipped for r in run_build(req, Config())] == [True, True, True]
    monkeypatch.setattr("covr_datagen.pipeline.run.stage_runner.code_version", lambda: "999.0")
    assert [r.skipped for r in run_build(req, Config())] == [False, False, False]


def test_metadata_r18_drops_mature_records(tmp_path):
    """r18 from a CleanVid-style map joins on the full or the bare (videoid) media id."""
    corpus = tmp_path / "c.csv"
    corpus.write_text("videoid,page_dir,name\n"
                      "1,p1,Young woman smiling\n2,p1,Old woman smiling\n"
                      "3,p2,Young man smiling\n4,p2,Old man smiling\n5,p3,Young girl smiling\n")
    metadata = tmp_path / "meta.csv"
    metadata.write_text("id,author,categories,r18\n"
                        "1,a,x,1\n"          # bare match -> mature
                        "p2/3,a,x,true\n"    # full match -> mature
                        "p9/4,a,x,1\np8/4,a,x,0\n"  # two ids end in /4: ambiguous, unknown
                        "2,b,y,0\n")         # 5 is missing
    config = Config()
    config.caption_filters.metadata = str(metadata)
    run = RunDir(tmp_path / "run")
    run_build(BuildRequest(str(corpus), str(run.root), until="caption_filters"), config)
    stage = run.read_manifest()["stages"][1]
    assert stage["dropped"]["mature"] == 2
    assert stage["info"]["metadata_full"] == 1 and stage["info"]["metadata_bare"] == 2
    assert stage["info"]["metadata_ambiguous"] == 1 and stage["info"]["metadata_missing"] == 1
    kept = {m for row in run.read_table("captions").to_pylist() for m in row["media_ids"]}
    assert kept == {"p1/2", "p2/4", "p3/5"}
    # changing the metadata file's content re-runs the stage
    metadata.write_text("id,r18\n1,0\n")
    reports = run_build(BuildRequest(str(corpus), str(run.root), until="caption_filters"), config)
    assert [r.skipped for r in reports] == [True, False]
    assert "mature" not in run.read_manifest()["stages"][1]["dropped"]
