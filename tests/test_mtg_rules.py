"""Rules engine: the paper's templates (Table A.3) and its rule-based column of Table A.11."""

import re

import pytest

from covr_datagen.mtg_llm.engines import make_engine
from covr_datagen.mtg_llm.engines.rules import TEMPLATES, RulesEngine
from covr_datagen.mtg_llm.pairs import EditPair, pair_from_captions
from covr_datagen.pipeline.config import MtgConfig

#: which template produced a Table A.11 rule-based text, read from its wording alone
_SHAPES = [
    (r"^Take out .+ and add .+$", "take_out_add"),
    (r"^Change it to .+$", "change_it_to"),
    (r"^Change .+ for .+$", "change_for"),
    (r"^Replace .+ with .+$", "replace_with"),
    (r"^Replace .+ by .+$", "replace_by"),
    (r"^Make the .+ into .+$", "make_into"),
    (r"^Remove .+$", "remove"),
    (r"^Add .+$", "add"),
]


def _template_of(text: str) -> str:
    for pattern, name in _SHAPES:
        if re.match(pattern, text):
            return name
    raise AssertionError(f"no template matches {text!r}")


def test_reproduces_table_a11_rule_based_column(paper_examples):
    rows = paper_examples["mtg_vs_rule_based_table_A11"]
    assert len(rows) >= 9
    for row in rows:
        pair = pair_from_captions(row["caption1"], row["caption2"])
        engine = RulesEngine(seed=0, template=_template_of(row["rule_based"]))
        (text,) = engine.generate([pair])
        # The paper prints the words as they appear in the captions, but not consistently
        # ("Make the Happy into Beautiful" vs "Change dandelion for rice" from "Dandelion field");
        # our words are the normalised ones from the caption_pairs table, so compare casefolded.
        assert text.casefold() == row["rule_based"].casefold(), row


def test_choice_is_seeded_per_pair_and_independent_of_batch_order():
    pairs = [EditPair(f"Dog number {i}", f"Cat number {i}", "dog", "cat") for i in range(50)]
    a = RulesEngine(seed=1).generate(pairs)
    assert a == RulesEngine(seed=1).generate(pairs)
    assert RulesEngine(seed=1).generate(pairs[::-1]) == a[::-1]
    assert a != RulesEngine(seed=2).generate(pairs)


def test_all_templates_are_used():
    pairs = [EditPair(f"Dog number {i}", f"Cat number {i}", "dog", "cat") for i in range(400)]
    used = set(RulesEngine(seed=0).generate(pairs))
    assert used == {t.format(w1="dog", w2="cat") for t in TEMPLATES.values()}


def test_missing_words_and_unknown_template_are_errors():
    with pytest.raises(ValueError, match="differing words"):
        RulesEngine().generate([("Black bird", "Black bear")])
    with pytest.raises(ValueError, match="unknown rules template"):
        RulesEngine(template="nope")


def test_factory_default_is_rules_and_identity_names_it():
    engine = make_engine(MtgConfig(engine="rules", seed=7))
    assert isinstance(engine, RulesEngine)
    assert engine.identity() == {"engine": "rules", "model": "rules", "seed": 7}
    with pytest.raises(ValueError, match="unknown mtg.engine"):
        make_engine(MtgConfig(engine="gpt"))


def test_pair_from_captions_requires_one_word_difference():
    assert pair_from_captions("Aerial shot of a lake.", "Aerial shot above a lake") == EditPair(
        "Aerial shot of a lake.", "Aerial shot above a lake", "of", "above")
    with pytest.raises(ValueError, match="exactly one word"):
        pair_from_captions("Red car", "Blue bus")


def test_cli_generate_on_a_csv(tmp_path):
    import csv

    from covr_datagen.pipeline.cli import main

    src = tmp_path / "pairs.csv"
    src.write_text("txt1,txt2\nDandelion field,Rice field\nBlack bird,black bear\n")
    out = tmp_path / "texts.csv"
    assert main(["mtg", "generate", "--pairs", str(src), "--out", str(out), "--seed", "3",
                 "--engine", "rules"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [(r["word1"], r["word2"]) for r in rows] == [("dandelion", "rice"), ("bird", "bear")]
    assert [r["edit"] for r in rows] == RulesEngine(seed=3).generate(
        [EditPair(r["txt1"], r["txt2"], r["word1"], r["word2"]) for r in rows])
    assert {(r["engine"], r["seed"]) for r in rows} == {("rules", "3")}

    bad = tmp_path / "bad.csv"
    bad.write_text("txt1,txt2\nRed car,Blue bus\n")
    assert main(["mtg", "generate", "--pairs", str(bad)]) == 2  # clear error, no traceback
