"""The faiss miner's numpy/faiss steps on their own: neighbour lists to candidate pairs, the
vectorised one-word pre-check, and the index choice (flat vs inverted file)."""

from itertools import combinations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covr_datagen.pipeline.mining.knn import OneWordPrecheck, build_index, candidate_pairs
from covr_datagen.pipeline.text.normalize import one_word_difference


def test_candidate_pairs_are_distinct_unordered_and_skip_self_and_missing():
    neighbours = np.array([[0, 1, 2],     # self, then 1 and 2
                           [1, 0, -1],    # 1-0 again (same pair), -1 = no neighbour
                           [2, 2, 0],     # self twice, 2-0 again
                           [3, 1, 1]])    # 3-1 twice
    assert candidate_pairs(neighbours).tolist() == [[0, 1], [0, 2], [1, 3]]


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(
    st.lists(st.lists(st.integers(-1, n - 1), min_size=4, max_size=4), min_size=n, max_size=n),
    st.integers(1, n))))
def test_candidate_pairs_taken_in_row_chunks_give_each_pair_once(case):
    rows, chunk = case
    neighbours = np.array(rows, dtype=np.int32)
    expected = {(min(i, j), max(i, j)) for i, row in enumerate(rows) for j in row
                if j >= 0 and j != i}
    chunks = [candidate_pairs(neighbours, slice(s, s + chunk))
              for s in range(0, len(rows), chunk)]
    found = [tuple(p) for part in chunks for p in part.tolist()]
    assert len(found) == len(set(found))  # no pair from two chunks
    assert set(found) == expected


words = st.sampled_from(["a", "red", "car", "cat", "sea"])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(words, min_size=1, max_size=4).map(tuple), min_size=2, max_size=25,
                unique=True))
def test_one_word_precheck_matches_the_word_by_word_rule_on_every_pair(captions):
    tokens = [list(c) for c in captions]
    pairs = np.array(list(combinations(range(len(tokens)), 2)), dtype=np.int64)
    mask = OneWordPrecheck(tokens).mask(pairs, chunk=7)  # several chunks
    expected = [one_word_difference(tokens[i], tokens[j]) is not None for i, j in pairs]
    assert mask.tolist() == expected


def _clustered(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(64, d))
    vecs = centres[rng.integers(0, 64, size=n)] + 0.3 * rng.normal(size=(n, d))
    return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


def test_auto_index_is_flat_up_to_flat_max_then_an_inverted_file_with_high_recall():
    vectors = _clustered(6_000, 32, seed=1)
    flat = build_index(vectors, flat_max=10_000)
    ivf = build_index(vectors, flat_max=5_000, nprobe=16)
    assert type(flat).__name__ == "IndexFlatIP" and type(ivf).__name__ == "IndexIVFFlat"
    assert ivf.nlist == min(6_000 // 39, int(4 * np.sqrt(6_000))) and ivf.nprobe == 16
    _, exact = flat.search(vectors[:500], 10)
    _, approx = ivf.search(vectors[:500], 10)
    assert (exact[:, 0] == np.arange(500)).all()  # each vector is its own nearest neighbour
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(exact, approx)])
    assert recall > 0.9, recall
    with pytest.raises(ValueError, match="unknown faiss index type"):
        build_index(vectors, index="hnsw")
