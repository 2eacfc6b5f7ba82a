"""The report's data: the manifest and the tables it shows, read once from a run directory, and
the counts derived from them (headline statistics, triplets per target, word changes, a sample,
and, for runs with dense modification texts, their length statistics).

The dataset is named after the media kind: video -> "WebVid-CoVR-style", image -> "CC-CoIR-style"
(:func:`dataset_style` is the one place that decides it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.products.export import triplets_dataset

STYLES = {"video": "WebVid-CoVR-style", "image": "CC-CoIR-style"}
TASKS = {"video": "composed video retrieval", "image": "composed image retrieval"}
TRIPLET_COLUMNS = ["pth1", "pth2", "edit", "txt1", "txt2", "sim_txt", "sim_media", "word1", "word2",
                   "media_kind", "corpus", "direction", "engine", "model", "edit_dense"]
#: mean words per modification text of Dense-WebVid-CoVR (BSE-CoVR, ICCV 2025), the reference
#: the report sets dense texts against
DENSE_REFERENCE_WORDS = 31


def dataset_style(media_kind: str | None) -> str:
    """Dataset naming by media kind: ``WebVid-CoVR-style`` (video), ``CC-CoIR-style`` (image)."""
    return STYLES.get(media_kind or "", "CoVR-style")


def package_version() -> str:
    """The installed covr-datagen version (``unknown`` when not installed)."""
    try:
        return importlib_metadata.version("covr-datagen")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


@dataclass
class ReportData:
    """Everything the report shows, read once from the run directory."""

    run: RunDir
    manifest: dict
    triplets: pa.Table
    triplet_meta: dict[str, str]
    sim_txt: np.ndarray  # caption pairs, nulls removed
    sim_media: np.ndarray  # media pairs, nulls removed
    caption_pairs: int
    media_pairs: int
    media_kind: str | None = None
    corpus: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    dense: dict[str, Any] | None = None  # dense-text statistics; None when the run has none


def _column_values(run: RunDir, table: str, column: str) -> tuple[np.ndarray, int]:
    """Non-null float values of one column and the table's row count (``([], 0)`` if absent)."""
    if not run.has_table(table):
        return np.array([], dtype=np.float64), 0
    values = run.read_table(table, columns=[column])[column]
    valid = pc.drop_null(values).to_numpy(zero_copy_only=False).astype(np.float64)
    return valid[np.isfinite(valid)], len(values)


def _read_triplets(run: RunDir) -> tuple[pa.Table, dict[str, str]]:
    try:
        dataset = triplets_dataset(run)
    except FileNotFoundError:
        return pa.table({c: pa.array([], pa.string()) for c in TRIPLET_COLUMNS}), {}
    table = dataset.to_table(columns=TRIPLET_COLUMNS)
    meta = {k.decode(): v.decode() for k, v in (dataset.schema.metadata or {}).items()
            if k.startswith(b"covr_datagen.")}
    return table, meta


def _single(values: list, fallback: str | None) -> str | None:
    distinct = sorted({v for v in values if v})
    if len(distinct) == 1:
        return distinct[0]
    return "mixed" if distinct else fallback


def load_report_data(run_dir: str | Path | RunDir) -> ReportData:
    """Read the manifest and the tables the report needs (missing tables are empty)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    if not run.root.is_dir():
        raise FileNotFoundError(f"run directory {run.root} not found")
    manifest = run.read_manifest()
    triplets, meta = _read_triplets(run)
    sim_txt, n_cp = _column_values(run, "caption_pairs", "sim_txt")
    sim_media, n_mp = _column_values(run, "media_pairs", "sim_media")
    corpus_cfg = manifest.get("config", {}).get("corpus", {}) or {}
    kind = _single(pc.unique(triplets["media_kind"]).to_pylist(),
                   meta.get("covr_datagen.media_kind") or corpus_cfg.get("media_kind"))
    corpus = _single(pc.unique(triplets["corpus"]).to_pylist(),
                     meta.get("covr_datagen.corpus") or corpus_cfg.get("name") or run.root.name)
    data = ReportData(run, manifest, triplets, meta, sim_txt, sim_media, n_cp, n_mp, kind,
                      corpus or run.root.name)
    data.stats = dataset_stats(data)
    data.dense = dense_stats(data.triplets)
    return data


def dataset_stats(data: ReportData) -> dict[str, Any]:
    """Headline counts (CoVR-2 Sec. 3.2 style)."""
    t = data.triplets
    n = t.num_rows
    edits = t["edit"].to_pylist()
    words = np.array([len(e.split()) for e in edits], dtype=np.int64)
    chars = np.array([len(e) for e in edits], dtype=np.int64)
    per_target = triplets_per_target(t)
    media = pc.unique(pa.chunked_array(t["pth1"].chunks + t["pth2"].chunks, type=pa.string())) \
        if n else pa.array([], pa.string())
    return {
        "triplets": n,
        "distinct_media": len(media),
        "distinct_queries": len(pc.unique(t["pth1"])) if n else 0,
        "distinct_targets": len(per_target),
        "distinct_texts": len(set(edits)),
        "avg_text_chars": round(float(chars.mean()), 2) if n else None,
        "avg_text_words": round(float(words.mean()), 2) if n else None,
        "avg_triplets_per_target": round(float(per_target.mean()), 2) if len(per_target) else None,
        "max_triplets_per_target": int(per_target.max()) if len(per_target) else None,
        "caption_pairs": data.caption_pairs,
        "media_pairs": data.media_pairs,
    }


def dense_triplets(triplets: pa.Table) -> pa.Table:
    """The triplets that have a dense modification text."""
    from covr_datagen.pipeline.products.export import DENSE_TEXT, has_text

    if DENSE_TEXT not in triplets.column_names:
        return triplets.slice(0, 0)
    return triplets.filter(has_text(triplets[DENSE_TEXT]))


def dense_word_counts(triplets: pa.Table) -> np.ndarray:
    """Words per dense text (as the dense length filter counts them), one per triplet having one."""
    from covr_datagen.filters.dense import words

    texts = dense_triplets(triplets)["edit_dense"].to_pylist()
    return np.array([len(words(t)) for t in texts], dtype=np.int64)


def dense_stats(triplets: pa.Table) -> dict[str, Any] | None:
    """Length statistics of the dense texts next to the reference mean; ``None`` without any."""
    counts = dense_word_counts(triplets)
    if not counts.size:
        return None
    p5, median, p95 = np.percentile(counts, [5, 50, 95])
    distinct = pc.count_distinct(dense_triplets(triplets)["edit_dense"]).as_py()
    return {"triplets": int(counts.size), "distinct_texts": int(distinct),
            "mean_words": round(float(counts.mean()), 2), "median_words": float(median),
            "p5_words": float(p5), "p95_words": float(p95), "min_words": int(counts.min()),
            "max_words": int(counts.max()), "reference_mean_words": DENSE_REFERENCE_WORDS}


def triplets_per_target(triplets: pa.Table) -> np.ndarray:
    """Number of triplets of each distinct target (``pth2``)."""
    if not triplets.num_rows:
        return np.array([], dtype=np.int64)
    counts = pc.value_counts(triplets["pth2"]).field("counts")
    return counts.to_numpy(zero_copy_only=False).astype(np.int64)


def word_changes(triplets: pa.Table, top: int = 20) -> list[tuple[str, str, int]]:
    """Most frequent ``(word1, word2)`` changes over the triplets, most frequent first."""
    if not triplets.num_rows:
        return []
    grouped = triplets.group_by(["word1", "word2"]).aggregate([("pth1", "count")])
    rows = sorted(zip(grouped["word1"].to_pylist(), grouped["word2"].to_pylist(),
                      grouped["pth1_count"].to_pylist()), key=lambda r: (-r[2], r[0], r[1]))
    return rows[:top]


def sample_triplets(triplets: pa.Table, n: int, seed: int) -> list[dict]:
    """``n`` triplets drawn without replacement with ``seed`` (all when fewer)."""
    if not triplets.num_rows:
        return []
    k = min(n, triplets.num_rows)
    idx = np.sort(np.random.default_rng(seed).choice(triplets.num_rows, size=k, replace=False))
    return triplets.take(pa.array(idx)).to_pylist()
