"""The function-word pair filter: unit decisions, config wiring, and the stage's manifest/rejects."""

import json

import pyarrow.parquet as pq
import pytest

from covr_datagen.filters.function_words import FUNCTION_WORDS, FunctionWordFilter
from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.config import PairFilterConfig
from covr_datagen.pipeline.filter_sets import cheap_pair_filters
from covr_datagen.pipeline.text.normalize import one_word_difference, tokenize

# the pairs of the issue, seen on real Conceptual Captions ("film" -> "at" and so on)
MEANINGLESS = [("Actor attends film premiere", "Actor attends at premiere"),
               ("Boats moored on the river", "Boats moored along the river"),
               ("Guests at the party", "Guests of the party"),
               ("Actress attends the premiere", "Actress at the premiere")]
DESCRIBABLE = [("Dog running on the beach", "Horse running on the beach"),
               ("Cat under the table", "Cat on top the table"),
               ("Balloon flying up", "Balloon flying down")]


def pair_item(c1: str, c2: str) -> dict:
    w1, w2 = tokenize(c1), tokenize(c2)
    pos = one_word_difference(w1, w2)
    assert pos is not None, (c1, c2)
    return {"txt1": c1, "txt2": c2, "word1": w1[pos], "word2": w2[pos]}


def test_pairs_differing_by_a_function_word_are_dropped():
    flt = FunctionWordFilter()
    for c1, c2 in MEANINGLESS:
        drop = flt.check(pair_item(c1, c2))
        assert drop is not None and drop.reason == "function_word", (c1, c2)
        assert "function word" in drop.detail


def test_describable_pairs_are_kept():
    flt = FunctionWordFilter()
    for c1, c2 in DESCRIBABLE[:1] + DESCRIBABLE[2:]:
        assert flt.check(pair_item(c1, c2)) is None, (c1, c2)
    assert {"up", "down", "under", "inside", "outside"}.isdisjoint(FUNCTION_WORDS)


def test_word_list_is_configurable_and_case_insensitive():
    cfg = PairFilterConfig(function_words=["Premiere"])
    (flt,) = [f for f in cheap_pair_filters(cfg) if f.name == "function_word"]
    assert flt.check({"word1": "film", "word2": "premiere"}).reason == "function_word"
    assert flt.check({"word1": "on", "word2": "along"}) is None
    assert "function_word" in PairFilterConfig().enabled


@pytest.mark.slow
def test_stage_counts_and_writes_function_word_rejects(tmp_path):
    corpus = tmp_path / "c.csv"
    rows = [c for pair in MEANINGLESS[:2] + DESCRIBABLE[:1] for c in pair]
    corpus.write_text("caption\n" + "".join(f"{c}\n" for c in rows))
    config = tmp_path / "cfg.yaml"
    config.write_text("pair_filters:\n  enabled: [digit, function_word, oov]\n")
    out = tmp_path / "run"
    assert cli_main(["build", "--corpus", str(corpus), "--format", "csv", "--out", str(out),
                     "--config", str(config), "--until", "pair_filters"]) == 0
    stage = json.loads((out / "manifest.json").read_text())["stages"][-1]
    assert stage["name"] == "pair_filters"
    assert stage["dropped"] == {"function_word": 2}
    assert stage["input"] == stage["kept"] + 2
    rejects = pq.read_table(out / "rejects" / "pair_filters").to_pylist()
    assert sorted(r["reason"] for r in rejects) == ["function_word", "function_word"]
