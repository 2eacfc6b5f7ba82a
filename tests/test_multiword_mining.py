"""Multi-word mining (``mining.max_word_diff`` 2-3, ``mining.allow_length_change``): the keys,
the exact miner through Beam and the faiss miner against the rule stated directly (brute force),
and the pair filters, concept check and rules engine on multi-word pairs."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covr_datagen.filters.digits import DigitFilter
from covr_datagen.filters.function_words import FunctionWordFilter
from covr_datagen.filters.vocabulary import OutOfVocabularyFilter
from covr_datagen.mtg_llm.concepts import names_new_concept, new_words
from covr_datagen.mtg_llm.engines.rules import RulesEngine
from covr_datagen.mtg_llm.pairs import EditPair, pair_from_captions
from covr_datagen.pipeline.config import load_config
from covr_datagen.pipeline.mining.masked_keys import (
    WordIds,
    canonical_mask,
    deletion_keys,
    keys_per_caption,
    masked_keys,
)
from covr_datagen.pipeline.text.normalize import one_word_difference, word_changes
from tests.mining_helpers import brute_force_rule_pairs, caption_rows, is_rule_pair, mine

# three words over lengths 1-5: many captions differ in 1-3 places
token_lists = st.lists(st.lists(st.sampled_from(["red", "car", "sea"]), min_size=1, max_size=5),
                       min_size=2, max_size=14, unique_by=tuple)


# --- the rule ---------------------------------------------------------------------------------
def test_word_changes_name_the_changed_tokens_in_order():
    same = word_changes("a red car on a road".split(), "a blue bus on a road".split(), 2)
    assert (same.position, same.removed, same.added, same.count) == (1, ("red", "car"),
                                                                     ("blue", "bus"), 2)
    inserted = word_changes("dog running".split(), "big dog running fast".split(), 2, True)
    assert (inserted.position, inserted.removed, inserted.added, inserted.count) == (
        0, (), ("big", "fast"), 2)
    deleted = word_changes("old man walking".split(), "man walking".split(), 1, True)
    assert (deleted.position, deleted.removed, deleted.added) == (0, ("old",), ())
    assert word_changes("red car".split(), "blue bus".split(), 3) is None  # nothing shared
    assert word_changes("dog running".split(), "big dog running".split(), 3) is None  # lengths
    assert word_changes("a b c".split(), "x y".split(), 3, True) is None  # no token kept


@settings(max_examples=150, deadline=None)
@given(a=st.lists(st.sampled_from("ab"), max_size=5), b=st.lists(st.sampled_from("ab"), max_size=5))
def test_one_word_rule_is_unchanged_and_k_rules_match_the_oracle(a, b):
    changes = word_changes(a, b)
    pos = one_word_difference(a, b)
    assert (changes.position if changes else None) == pos
    for k in (1, 2, 3):
        for length_change in (False, True):
            got = word_changes(a, b, k, length_change)
            assert (got is not None) == is_rule_pair(a, b, k, length_change)
            if got is not None and len(a) == len(b):
                assert [x for x, y in zip(a, b) if x != y] == list(got.removed)


# --- the keys, without Beam -------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(tokens=token_lists, k=st.sampled_from([1, 2, 3]))
def test_each_equal_length_pair_is_formed_in_exactly_one_masked_key_group(tokens, k):
    keys = masked_keys(tokens, WordIds(), k)
    assert len(keys.keys) == sum(keys_per_caption(len(t), k) for t in tokens)
    groups: dict[int, list[int]] = {}
    for row, key in enumerate(keys.keys.tolist()):
        groups.setdefault(key, []).append(row)
    formed: dict[tuple[int, int], int] = {}
    for rows in groups.values():
        for a, b in combinations(rows, 2):
            differs = (keys.word_ids[a] != keys.word_ids[b]) & (keys.positions[a] >= 0)
            if differs.any() and canonical_mask(keys.positions[a][None], differs[None])[0]:
                pair = tuple(sorted((int(keys.caption[a]), int(keys.caption[b]))))
                formed[pair] = formed.get(pair, 0) + 1
    truth = {(i, j) for i, j in combinations(range(len(tokens)), 2)
             if is_rule_pair(tokens[i], tokens[j], k, False)}
    assert set(formed) == truth
    assert set(formed.values()) <= {1}


@settings(max_examples=60, deadline=None)
@given(tokens=token_lists, k=st.sampled_from([1, 2, 3]))
def test_pairs_across_lengths_share_a_deletion_key(tokens, k):
    keys = deletion_keys(tokens, WordIds(), k)
    assert len(keys.keys) == sum(keys_per_caption(len(t), k, True) - keys_per_caption(len(t), k)
                                 for t in tokens)
    shared = {}
    for key, row in zip(keys.keys.tolist(), keys.caption.tolist()):
        shared.setdefault(key, set()).add(row)
    meet = {tuple(sorted(p)) for rows in shared.values() for p in combinations(sorted(rows), 2)}
    for i, j in combinations(range(len(tokens)), 2):
        if len(tokens[i]) != len(tokens[j]) and is_rule_pair(tokens[i], tokens[j], k, True):
            assert (i, j) in meet


def test_canonical_wildcard_set_fills_the_differing_positions_with_the_smallest_others():
    # differing at {2}: of the groups wildcarding {0,2}, {1,2}, {2,3} only {0,2} forms the pair
    positions = np.array([[0, 2], [1, 2], [2, 3]])
    differs = np.array([[False, True], [False, True], [True, False]])
    assert canonical_mask(positions, differs).tolist() == [True, False, False]


# --- the miners through Beam ------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("length_change", [False, True])
@settings(max_examples=3, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tokens=token_lists, buckets=st.sampled_from([1, 5]))
def test_exact_miner_equals_brute_force(tmp_path_factory, tokens, k, length_change, buckets):
    rows = caption_rows([" ".join(t) for t in tokens])
    _, pairs, manifest = mine(tmp_path_factory.mktemp("mine"), rows, method="exact",
                              max_group_size=10_000, num_buckets=buckets, max_word_diff=k,
                              allow_length_change=length_change)
    found = [(p["caption_id1"], p["caption_id2"]) for p in pairs]
    assert len(set(found)) == len(found)  # no duplicates
    assert set(found) == brute_force_rule_pairs(rows, k, length_change)
    assert manifest["input"] == manifest["kept"] + sum(manifest["dropped"].values())
    by_id = {r["caption_id"]: r["normalized"].split(" ") for r in rows}
    for p in pairs:
        changes = word_changes(by_id[p["caption_id1"]], by_id[p["caption_id2"]], k, length_change)
        assert (p["word1"], p["word2"], p["position"], p["word_diff"]) == (
            " ".join(changes.removed), " ".join(changes.added), changes.position, changes.count)
        assert 1 <= p["word_diff"] <= k


def test_hot_keys_are_capped_and_counted_with_two_wildcards(tmp_path):
    captions = [f"{a} {b} background" for a in ("red", "blue", "green") for b in ("sky", "sea")]
    run, pairs, manifest = mine(tmp_path, caption_rows(captions), method="exact",
                                max_group_size=3, max_word_diff=2)
    assert manifest["input"] == manifest["kept"] + manifest["dropped"]["hot_key_cap"]
    assert manifest["dropped"]["hot_key_cap"] > 0
    assert {r["reason"] for r in run.read_table("rejects/mine").to_pylist()} == {"hot_key_cap"}


def test_deletion_pairs_beyond_the_edit_distance_are_counted(tmp_path):
    # "x y" and "y z w" share the deletion key "y" but are 3 edits apart
    rows = caption_rows(["x y", "y z w", "big dog running", "dog running"])
    _, pairs, manifest = mine(tmp_path, rows, method="exact", max_word_diff=2,
                              allow_length_change=True)
    # "big dog running" and "dog running" meet under three deletion keys: one row
    assert sorted(p["pair_id"] for p in pairs) == sorted(
        "-".join(ids) for ids in brute_force_rule_pairs(rows, 2, True))
    assert len(pairs) == 1
    assert manifest["dropped"].get("not_within_edit_distance", 0) >= 1
    assert manifest["input"] == manifest["kept"] + sum(manifest["dropped"].values())


def test_faiss_miner_applies_the_same_rule(tmp_path):
    captions = ["Young woman smiling", "Old man smiling", "Young woman smiling happily",
                "Red car on the road", "Blue bus on the road", "Cat sleeping on the sofa",
                "Dog sleeping on the sofa", "Sunset over the sea"]
    rows = caption_rows(captions)
    _, pairs, manifest = mine(tmp_path, rows, method="faiss", k=7, max_word_diff=2,
                              allow_length_change=True)
    found = {(p["caption_id1"], p["caption_id2"]) for p in pairs}
    assert found == brute_force_rule_pairs(rows, 2, True)  # k = all others: nothing missed
    assert {p["word_diff"] for p in pairs} == {1, 2}
    assert manifest["input"] == manifest["kept"] + manifest["dropped"]["not_within_word_diff"]


def test_max_word_diff_is_validated():
    for bad in (0, 4):
        with pytest.raises(ValueError, match="mining.max_word_diff must be between 1 and 3"):
            load_config(overrides={"mining": {"max_word_diff": bad}})
    with pytest.raises(ValueError, match="mining.allow_length_change must be true or false"):
        load_config(overrides={"mining": {"allow_length_change": "yes"}})


def test_cli_refuses_a_bad_max_word_diff_in_one_line(tmp_path, capsys):
    from covr_datagen.pipeline.cli import main

    corpus = tmp_path / "c.csv"
    corpus.write_text("videoid,contentUrl,duration,page_dir,name\n1,http://x/1.mp4,PT1S,p,A car\n")
    code = main(["build", "--corpus", str(corpus), "--format", "webvid", "--out",
                 str(tmp_path / "run"), "--max-word-diff", "5", "--allow-length-change"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "mining.max_word_diff must be between 1 and 3, got 5" in err


# --- downstream of mining ---------------------------------------------------------------------
def test_pair_filters_check_every_changed_word():
    digit, function = DigitFilter(), FunctionWordFilter()
    assert digit.check({"word1": "red car", "word2": "blue 2020"}).reason == "digit"
    assert digit.check({"word1": "", "word2": "big"}) is None
    assert function.check({"word1": "in the", "word2": "at a"}).reason == "function_word"
    assert function.check({"word1": "in red", "word2": "at blue"}) is None
    assert function.check({"word1": "", "word2": "big"}) is None
    assert function.check({"word1": "", "word2": "the"}).reason == "function_word"
    oov = OutOfVocabularyFilter()
    assert oov.check({"word1": "red car", "word2": "blue bus"}) is None
    assert oov.check({"word1": "red car", "word2": "blue xqzzv"}).reason == "oov"
    assert oov.check({"word1": "", "word2": "big"}) is None


def test_concept_of_a_multi_word_pair_is_any_new_content_word():
    assert new_words("a red car on the road", "a blue bus on the road") == ["blue", "bus"]
    assert names_new_concept("Make it a bus", "a red car on the road", "a blue bus on the road")
    assert not names_new_concept("Make it red", "a red car on the road", "a blue bus on the road")
    assert new_words("dog in park", "dog at the park") == ["at", "the"]  # only function words
    assert names_new_concept("Remove the hat", "old man with hat walking", "old man walking")


def test_rules_engine_and_pairs_handle_insertions_and_deletions():
    pair = pair_from_captions("Dog running", "Big dog running")
    assert pair == EditPair("Dog running", "Big dog running", "", "big")
    added = RulesEngine(seed=0).generate([pair])[0]
    assert added in {"Add big", "Change it to big"}
    removed = RulesEngine(seed=0).generate([pair.reversed()])[0]
    assert removed == "Remove big"
    assert pair_from_captions("A red car", "A blue bus").word1 == "red car"
    with pytest.raises(ValueError, match="differing words"):
        RulesEngine(template="replace_with").generate([pair])
