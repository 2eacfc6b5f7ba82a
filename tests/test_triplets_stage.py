"""``TripletStage`` end to end with ``run_stages`` on a hand-written ``media_pairs`` table."""

import json

import pyarrow.parquet as pq
import pytest

from covr_datagen.pipeline.config import Config, MtgConfig
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts
from covr_datagen.pipeline.run.stage_runner import run_stages
from covr_datagen.pipeline.stages.triplets import TripletStage, triplet_id
from covr_datagen.schemas import MEDIA_PAIRS
from tests.helpers import write_table


def _media_pair(pair_id, txt1, txt2, w1, w2, m1, m2, rank, kind="video"):
    return {"pair_id": pair_id, "caption_id1": pair_id[:4], "caption_id2": pair_id[-4:],
            "txt1": txt1, "txt2": txt2, "word1": w1, "word2": w2, "sim_txt": 0.8,
            "media_id1": m1, "media_id2": m2, "sim_media": 0.5 - rank / 10, "rank": rank,
            "media_kind": kind}


ROWS = [  # pair A: 3 media pairs; pair B: 1 (image); pair C: no differing words (bad input)
    _media_pair("aaaa-bbbb", "Black bird", "black bear", "bird", "bear", "v/1", "v/2", 0),
    _media_pair("aaaa-bbbb", "Black bird", "black bear", "bird", "bear", "v/1", "v/3", 1),
    _media_pair("aaaa-bbbb", "Black bird", "black bear", "bird", "bear", "v/4", "v/2", 2),
    _media_pair("cccc-dddd", "Dandelion field", "Rice field", "dandelion", "rice", "i/1", "i/2",
                0, "image"),
    _media_pair("eeee-ffff", "Happy woman", "Running woman", "", "", "v/8", "v/9", 0),
]


def _run(tmp_path, config, rows=ROWS):
    run = RunDir(tmp_path / "run")
    write_table(run.table("media_pairs"), rows, MEDIA_PAIRS)
    (report,) = run_stages([TripletStage()], run, config, RunFacts("test", corpus_name="toy"))
    triplets = run.read_table("triplets").to_pylist()
    rejects = run.read_table("rejects/triplets").to_pylist() if run.has_table("rejects/triplets") \
        else []
    return run, report, triplets, rejects


def test_rules_engine_both_directions_one_text_per_pair_and_direction(tmp_path):
    config = Config()
    config.mtg.engine = "rules"
    config.mtg.seed = 4
    run, report, triplets, rejects = _run(tmp_path, config)
    assert report.input == 10  # 5 media pairs x 2 directions
    assert report.dropped == {"generation_error": 2}
    assert report.kept == len(triplets) == 8
    assert [r["reason"] for r in rejects] == ["generation_error"] * 2
    assert all("differing words" in r["detail"] for r in rejects)
    assert {json.loads(r["record"])["pair_id"] for r in rejects} == {"eeee-ffff"}

    by_key = {}
    for t in triplets:
        by_key.setdefault((t["pair_id"], t["direction"]), set()).add(t["edit"])
        assert t["triplet_id"] == triplet_id(t["pair_id"], t["pth1"], t["pth2"], t["direction"])
        assert (t["engine"], t["model"], t["seed"], t["corpus"]) == ("rules", "rules", 4, "toy")
        assert t["scores"] == []
    assert all(len(texts) == 1 for texts in by_key.values())  # shared by the media pairs
    assert len(by_key) == 4
    assert len({t["triplet_id"] for t in triplets}) == 8

    fwd = next(t for t in triplets if t["pth1"] == "v/1" and t["pth2"] == "v/3")
    back = next(t for t in triplets if t["pth1"] == "v/3" and t["pth2"] == "v/1")
    assert (fwd["direction"], fwd["txt1"], fwd["word1"], fwd["word2"]) == \
        ("forward", "Black bird", "bird", "bear")
    assert (back["direction"], back["txt1"], back["txt2"], back["word1"], back["word2"]) == \
        ("backward", "black bear", "Black bird", "bear", "bird")
    assert "bird" in fwd["edit"] or "bear" in fwd["edit"]
    img = [t for t in triplets if t["pair_id"] == "cccc-dddd"]
    assert {t["media_kind"] for t in img} == {"image"}

    meta = pq.read_schema(next(run.table("triplets").glob("*.parquet"))).metadata
    assert meta[b"covr_datagen.corpus"] == b"toy"
    manifest = json.loads(run.manifest_path.read_text())
    assert manifest["stages"][0]["dropped"] == {"generation_error": 2}


def test_forward_only_and_text_filters_reconcile(tmp_path):
    config = Config()
    config.mtg.engine = "rules"
    config.mtg.both_directions = False
    config.mtg.max_chars = 12  # "Add bear" fits; longer templates are dropped as long_text
    config.mtg.min_polarity = 0.5  # every neutral text that survives is "negative" now
    _, report, triplets, rejects = _run(tmp_path, config)
    assert report.input == 5
    assert triplets == []
    assert report.kept == 0
    assert sum(report.dropped.values()) == 5
    assert report.dropped["generation_error"] == 1
    assert set(report.dropped) <= {"generation_error", "long_text", "negative_sentiment"}
    assert len(rejects) == 5
    assert {r["reason"] for r in rejects} == set(report.dropped)


@pytest.mark.slow
def test_hf_engine_with_tiny_llama(tmp_path):
    from covr_datagen.pipeline.devtools.tiny_llm import make_tiny_llm

    tiny = str(make_tiny_llm(tmp_path / "tiny"))
    config = Config()
    config.mtg.engine = "hf"
    config.mtg.base_model = tiny
    config.mtg.adapter = None
    config.mtg.device = "cpu"
    config.mtg.max_new_tokens = 8
    config.mtg.seed = 9
    config.mtg.min_polarity = -1.0  # random weights: keep every non-degenerate text (polarity >= -1)
    _, report, triplets, rejects = _run(tmp_path, config)
    assert report.input == 10
    assert report.kept + sum(report.dropped.values()) == 10
    assert "generation_error" not in report.dropped  # LLM engines need no differing words
    assert set(report.dropped) <= {"empty_text", "text_is_caption"}
    assert triplets and len(triplets) == report.kept and len(rejects) == 10 - report.kept
    for t in triplets:
        assert (t["engine"], t["model"], t["seed"]) == ("hf", tiny, 9)
        assert t["edit"] and "\n" not in t["edit"]
    by_key = {}
    for t in triplets:
        by_key.setdefault((t["pair_id"], t["direction"]), set()).add(t["edit"])
    assert all(len(texts) == 1 for texts in by_key.values())


def test_rules_output_is_identical_across_runs(tmp_path):
    def rows(sub):
        _, _, triplets, _ = _run(tmp_path / sub, Config(mtg=MtgConfig(engine="rules")))
        return sorted((t["triplet_id"], t["edit"]) for t in triplets)

    assert rows("a") == rows("b")
