"""``covr-datagen build`` through the media stages on the demo corpus with synthetic clips: the
manifest reconciles, ``media_pairs/`` is written, a forced re-run hits the cache for every media
item, and ``--no-media`` writes null similarities without reading any media."""

from __future__ import annotations

import json

import pytest

from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.commands.demo import demo_corpus_path
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.devtools.synthetic_media import write_synthetic_media


def _build(out, *extra: str) -> dict:
    assert cli_main(["build", "--corpus", demo_corpus_path(), "--format", "webvid", "--out",
                     str(out), "--mtg-engine", "rules", *extra]) == 0
    return {s["name"]: s for s in json.loads((out / "manifest.json").read_text())["stages"]}


@pytest.mark.slow
def test_build_writes_media_pairs_and_reuses_the_cache(tmp_path):
    out, media = tmp_path / "run", tmp_path / "media"
    _build(out, "--until", "pair_filters")
    run = RunDir(out)
    records = run.read_table("records").to_pylist()
    assert write_synthetic_media(records, str(media)) == len(records)
    stages = _build(out, "--media-root", str(media))
    embed, pairs = stages["media_embed"], stages["media_pairs"]
    assert embed["input"] == embed["kept"] > 0 and embed["dropped"] == {}
    assert pairs["input"] == run.count_rows("caption_pairs")
    rows = run.read_table("media_pairs").to_pylist()
    assert len(rows) == pairs["info"]["media_pairs"]
    assert all(r["sim_media"] is not None and -1.0001 <= r["sim_media"] <= 1.0001 for r in rows)
    per_pair: dict[str, list] = {}
    for r in rows:
        per_pair.setdefault(r["pair_id"], []).append(r)
    assert max(len(v) for v in per_pair.values()) <= 10
    for group in per_pair.values():
        group.sort(key=lambda r: r["rank"])
        assert [r["rank"] for r in group] == list(range(len(group)))
        assert all(a["sim_media"] >= b["sim_media"] for a, b in zip(group, group[1:]))

    again = _build(out, "--media-root", str(media), "--force")
    assert again["media_embed"]["info"]["cache_hits"] == embed["kept"]
    assert sorted(run.read_table("media_pairs").to_pylist(),
                  key=lambda r: (r["pair_id"], r["rank"])) == sorted(
        rows, key=lambda r: (r["pair_id"], r["rank"]))

    text_only = _build(tmp_path / "text_only", "--no-media")
    assert "media_embed" not in text_only
    tm = RunDir(tmp_path / "text_only").read_table("media_pairs").to_pylist()
    assert tm and all(r["sim_media"] is None for r in tm)
    assert text_only["media_pairs"]["kept"] == pairs["kept"]
