"""The exact miner finds exactly the one-word pairs a brute-force comparison finds; the faiss miner
finds a subset of them with similarities; hot keys are capped and counted."""

from itertools import combinations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from covr_datagen.pipeline.mining.knn import SearchAndPair
from covr_datagen.pipeline.text.normalize import one_word_difference
from tests.mining_helpers import caption_rows, mine


def brute_force_pairs(rows: list[dict]) -> set[tuple[str, str]]:
    out = set()
    for a, b in combinations(rows, 2):
        if one_word_difference(a["normalized"].split(" "), b["normalized"].split(" ")) is not None:
            out.add(tuple(sorted((a["caption_id"], b["caption_id"]))))
    return out


words = st.sampled_from(["red", "blue", "car", "cat", "sea", "old"])
captions_strategy = st.lists(st.lists(words, min_size=1, max_size=4).map(" ".join),
                             min_size=2, max_size=30)


@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(captions=captions_strategy, buckets=st.sampled_from([1, 3, 64]))
def test_exact_miner_equals_brute_force(tmp_path_factory, captions, buckets):
    rows = caption_rows(captions)
    tmp = tmp_path_factory.mktemp("mine")
    _, pairs, manifest = mine(tmp, rows, method="exact", max_group_size=10_000,
                              num_buckets=buckets)
    found = {(p["caption_id1"], p["caption_id2"]) for p in pairs}
    assert found == brute_force_pairs(rows)
    assert len(found) == len(pairs)  # no duplicates
    assert manifest["input"] == manifest["kept"] + sum(manifest["dropped"].values())
    by_id = {r["caption_id"]: r for r in rows}
    for p in pairs:
        w1 = by_id[p["caption_id1"]]["normalized"].split(" ")
        w2 = by_id[p["caption_id2"]]["normalized"].split(" ")
        assert p["caption_id1"] < p["caption_id2"]
        assert (w1[p["position"]], w2[p["position"]]) == (p["word1"], p["word2"])


def test_paper_young_woman_smiling_pairs_are_found(tmp_path, paper_examples):
    example = paper_examples["one_word_pairing_section_3_1"]
    captions = [example["caption"], *example["pairs_with"], "Young woman crying in the rain",
                "Old couple smiling"]
    _, pairs, _ = mine(tmp_path, caption_rows(captions), method="exact")
    texts = {frozenset((p["txt1"], p["txt2"])) for p in pairs}
    for other in example["pairs_with"]:
        assert frozenset((example["caption"], other)) in texts
    # "Old woman smiling" ~ "Old couple smiling" too, but not "Young woman" ~ "Old couple"
    assert frozenset(("Young woman smiling", "Old couple smiling")) not in texts


def test_hot_keys_are_capped_and_counted(tmp_path):
    captions = [f"{w} background" for w in ["red", "blue", "green", "black", "white", "pink"]]
    captions += ["young woman smiling", "old woman smiling"]
    run, pairs, manifest = mine(tmp_path, caption_rows(captions), method="exact",
                                max_group_size=3)
    # 6 captions share "<*> background": 15 pairs, 3 kept (first 3 by id), 12 dropped by the cap
    assert manifest["input"] == 15 + 1
    assert manifest["dropped"] == {"hot_key_cap": 12}
    assert manifest["kept"] == len(pairs) == 4
    rejects = run.read_table("rejects/mine").to_pylist()
    assert len(rejects) == 1 and rejects[0]["reason"] == "hot_key_cap"
    assert "6 captions share one masked key" in rejects[0]["detail"]


def test_faiss_miner_finds_a_subset_with_similarities(tmp_path, monkeypatch):
    # search and pair a few captions at a time, as at 2M captions
    monkeypatch.setattr(SearchAndPair, "SEARCH_ROWS", 4)
    monkeypatch.setattr(SearchAndPair, "PAIR_ROWS", 2)
    captions = ["Young woman smiling", "Old woman smiling", "Young couple smiling",
                "Red car on the road", "Blue car on the road", "Cat sleeping on the sofa",
                "Dog sleeping on the sofa", "Sunset over the sea", "A completely unrelated thing"]
    rows = caption_rows(captions)
    _, pairs, manifest = mine(tmp_path, rows, method="faiss", k=5)
    found = {(p["caption_id1"], p["caption_id2"]) for p in pairs}
    truth = brute_force_pairs(rows)
    assert found <= truth
    assert len(found) >= len(truth) - 1  # k=5 over 9 captions: nearly everything is a neighbour
    assert manifest["input"] == manifest["kept"] + manifest["dropped"].get("not_one_word", 0)
    assert all(0.0 < p["sim_txt"] <= 1.0 for p in pairs)
