"""The synthetic corpus generator: determinism, sizes, format, and its one-word-pair statistics
(checked with an independent brute-force grouping, not the miner)."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict

import pytest

from covr_datagen.pipeline.devtools.synth import HEADER, SynthConfig, generate_captions, write_corpus
from covr_datagen.pipeline.text.normalize import normalize

TEMPLATE_WORDS = {"background", "abstract", "concept", "flag"}


def pair_stats(captions: list[str]) -> dict[str, float]:
    """Share of distinct (>= 2-word) captions in a one-word pair, pairs per caption, and share of
    pairs between template captions, by grouping on (length, position, words around it)."""
    distinct = sorted({n for n in map(normalize, captions) if len(n.split()) >= 2})
    groups: dict[tuple, list[int]] = defaultdict(list)
    for i, text in enumerate(distinct):
        words = text.split()
        for p in range(len(words)):
            groups[(len(words), p, tuple(words[:p]), tuple(words[p + 1:]))].append(i)
    pairs = template_pairs = 0
    in_pair: set[int] = set()
    for members in groups.values():
        if len(members) > 1:
            n = len(members) * (len(members) - 1) // 2
            pairs += n
            in_pair.update(members)
            if TEMPLATE_WORDS & set(distinct[members[0]].split()):
                template_pairs += n
    return {"in_pair": len(in_pair) / len(distinct), "pairs_per_caption": pairs / len(distinct),
            "template_share": template_pairs / max(pairs, 1), "distinct": len(distinct)}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    write_corpus(a, SynthConfig(captions=3000, seed=7))
    write_corpus(b, SynthConfig(captions=3000, seed=7))
    write_corpus(c, SynthConfig(captions=3000, seed=8))
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


@pytest.mark.parametrize("seed_csv", ["default", None])
def test_sizes_and_webvid_format(tmp_path, seed_csv):
    cfg = SynthConfig(captions=5000, seed=1) if seed_csv == "default" else \
        SynthConfig(captions=5000, seed=1, seed_csv=None)
    path = tmp_path / "corpus.csv"
    n = write_corpus(path, cfg)
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        assert tuple(next(reader)) == HEADER
        rows = list(reader)
    assert len(rows) == n
    captions = [r[4] for r in rows]
    distinct = set(captions)
    # every generated caption appears; a few are shared by several videos
    assert 0.97 * cfg.captions <= len(distinct) <= cfg.captions
    assert cfg.captions < n < cfg.captions * (1 + cfg.shared_frac * cfg.max_videos_per_caption)
    assert len({r[0] for r in rows}) == n  # video ids unique
    shared = sum(1 for count in Counter(captions).values() if count > 1)
    assert 0.02 * cfg.captions < shared < 0.08 * cfg.captions
    for vid, url, duration, page_dir, name in rows[:50]:
        assert vid.isdigit() and url.endswith(".mp4") and vid in url
        assert duration.startswith("PT00H00M") and duration.endswith("S")
        lo, hi = page_dir.split("_")
        assert int(hi) - int(lo) == 49
        assert name.strip()


def test_one_word_pair_rates_match_the_webvid2m_targets():
    """WebVid2M (CoVR-2 Sec. 3.1): ~9% of distinct captions in a one-word pair, ~0.6 pairs per
    caption, ~60% of pairs from templates."""
    stats = pair_stats(generate_captions(SynthConfig(captions=30000, seed=3)))
    assert 0.065 < stats["in_pair"] < 0.12, stats
    assert 0.4 < stats["pairs_per_caption"] < 0.85, stats
    assert 0.45 < stats["template_share"] < 0.8, stats


def test_knobs_move_the_rates():
    """No families and no templates leave only accidental pairs of the long tail (few)."""
    base = dict(captions=20000, seed=4)
    tail_only = pair_stats(generate_captions(SynthConfig(**base, family_frac=0.0,
                                                         template_frac=0.0)))
    more = pair_stats(generate_captions(SynthConfig(**base, family_frac=0.15)))
    default = pair_stats(generate_captions(SynthConfig(**base)))
    assert tail_only["in_pair"] < 0.02, tail_only
    assert more["in_pair"] > default["in_pair"] + 0.05
    assert more["template_share"] < default["template_share"]


@pytest.mark.parametrize("bad", [dict(captions=0), dict(family_frac=0.7, template_frac=0.5),
                                 dict(shared_frac=1.5)])
def test_bad_config_is_an_error(bad):
    with pytest.raises(ValueError):
        generate_captions(SynthConfig(**bad))


def test_seed_csv_without_name_column_is_an_error(tmp_path):
    path = tmp_path / "seeds.csv"
    path.write_text("id,text\n1,hello world\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no 'name' column"):
        generate_captions(SynthConfig(captions=10, seed_csv=str(path)))
