"""The report's figures, rendered with matplotlib to PNG bytes: the stage funnel, caption and media
similarity histograms (CoVR-2 Fig. A.1), words per modification text (Fig. A.2), triplets per
target on a log scale (Fig. A.3), the most frequent word changes and, for runs with dense texts,
words per dense text next to Dense-WebVid-CoVR's mean. A figure without data has ``png = None``
and renders as "no data"; the dense figure is made only for runs with dense texts."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from covr_datagen.pipeline.products.report.data import (
    DENSE_REFERENCE_WORDS,
    ReportData,
    dense_word_counts,
    triplets_per_target,
    word_changes,
)


@dataclass
class Figure:
    """One rendered figure: its file name, caption and PNG bytes (``None`` = no data)."""

    name: str
    title: str
    caption: str
    png: bytes | None


def _render(draw: Callable[[Any], None], size=(6.4, 3.8)) -> bytes:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size, dpi=100)
    try:
        draw(ax)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
        return buf.getvalue()
    finally:
        plt.close(fig)


def _thousands(axis) -> None:
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))


def _count_bars(ax, values: np.ndarray, color: str, max_span: int = 60) -> None:
    """Distribution of positive integer ``values``: one bar per value when they span at most
    ``max_span``, else a histogram with log-spaced bins on a log x axis (long tails stay visible)."""
    from matplotlib.ticker import MaxNLocator

    lo, hi = int(values.min()), int(values.max())
    if hi - lo <= max_span:
        xs, counts = np.unique(values, return_counts=True)
        ax.bar(xs, counts, color=color, width=0.8)
        ax.set_xlim(lo - 1, hi + 1)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts: no "0, 0, 1, 1" ticks
        _thousands(ax.yaxis)
    else:
        edges = np.unique(np.geomspace(max(lo, 1), hi + 1, 40).astype(np.int64))
        ax.hist(values, bins=edges, color=color)
        ax.set_xscale("log")


def funnel_figure(stages: list[dict]) -> Figure:
    """Input and kept items per stage (horizontal bars, first stage on top)."""
    title, caption = "Stage funnel", "Items in and kept per stage (manifest.json); units differ per stage."
    if not stages:
        return Figure("funnel", title, caption, None)

    def draw(ax):
        names = [s["name"] for s in stages][::-1]
        y = np.arange(len(names))
        inputs = [s.get("input", 0) for s in stages][::-1]
        kept = [s.get("kept", 0) for s in stages][::-1]
        ax.barh(y, inputs, color="#c7d2e4", label="input")
        ax.barh(y, kept, height=0.5, color="#1d3557", label="kept")
        for yi, (i, k) in enumerate(zip(inputs, kept)):
            ax.text(max(i, k), yi, f" {k:,} / {i:,}", va="center", fontsize=8)
        ax.set_yticks(y, names)
        ax.set_xlim(0, max(max(inputs), max(kept), 1) * 1.3)
        ax.set_xlabel("items")
        _thousands(ax.xaxis)
        ax.legend(loc="lower right", fontsize=8)

    return Figure("funnel", title, caption, _render(draw, (6.4, 0.5 * len(stages) + 1.5)))


def histogram_figure(name: str, title: str, values: np.ndarray, xlabel: str, caption: str,
                     log: bool = False) -> Figure:
    """Histogram of ``values`` (no data when empty)."""
    if values.size == 0:
        return Figure(name, title, caption, None)

    def draw(ax):
        ax.hist(values, bins=min(50, max(5, int(np.sqrt(values.size)) + 1)), color="#457b9d")
        ax.set_xlabel(xlabel)
        ax.set_ylabel("count")
        if log:
            ax.set_yscale("log")
        ax.set_title(f"n = {values.size:,}, mean = {values.mean():.3g}", fontsize=9)

    return Figure(name, title, caption, _render(draw))


def word_count_figure(edits: list[str]) -> Figure:
    """Bar chart of words per modification text (Fig. A.2)."""
    title = "Words per modification text"
    caption = "Number of modification texts by word count (CoVR-2 Fig. A.2)."
    if not edits:
        return Figure("edit_words", title, caption, None)
    words = np.array([len(e.split()) for e in edits], dtype=np.int64)

    def draw(ax):
        _count_bars(ax, words, "#457b9d")
        ax.set_xlabel("words")
        ax.set_ylabel("texts")
        ax.set_title(f"n = {len(edits):,}, mean = {words.mean():.2f} words", fontsize=9)

    return Figure("edit_words", title, caption, _render(draw))


def dense_word_count_figure(words: np.ndarray) -> Figure:
    """Histogram of words per dense text with the reference mean (~31 words) and this run's mean
    marked."""
    title = "Words per dense modification text"
    caption = (f"Dense texts (edit_dense) by word count; dashed: Dense-WebVid-CoVR's mean of "
               f"~{DENSE_REFERENCE_WORDS} words (BSE-CoVR, ICCV 2025), solid: this run's mean.")
    if not words.size:
        return Figure("dense_words", title, caption, None)

    def draw(ax):
        _count_bars(ax, words, "#6d597a", max_span=80)
        left, right = ax.get_xlim()  # keep the reference in view
        ax.set_xlim(min(left, DENSE_REFERENCE_WORDS - 1), max(right, DENSE_REFERENCE_WORDS + 1))
        ax.axvline(DENSE_REFERENCE_WORDS, color="#e63946", linestyle="--",
                   label=f"Dense-WebVid-CoVR mean ~{DENSE_REFERENCE_WORDS}")
        ax.axvline(words.mean(), color="#1d3557", label=f"this run: {words.mean():.1f}")
        ax.set_xlabel("words")
        ax.set_ylabel("texts")
        ax.legend(fontsize=8)
        ax.set_title(f"n = {words.size:,}, median = {np.median(words):g} words", fontsize=9)

    return Figure("dense_words", title, caption, _render(draw))


def per_target_figure(per_target: np.ndarray) -> Figure:
    """Distribution of triplets per target, log-scaled counts (Fig. A.3, the long tail)."""
    title = "Triplets per target"
    caption = "Number of targets (pth2) by how many triplets point at them, log scale (CoVR-2 Fig. A.3)."
    if per_target.size == 0:
        return Figure("per_target", title, caption, None)
    def draw(ax):
        _count_bars(ax, per_target, "#e76f51")
        ax.set_yscale("log")
        ax.set_ylim(bottom=0.7)
        ax.set_xlabel("triplets per target")
        ax.set_ylabel("targets (log)")
        ax.set_title(f"{per_target.size:,} targets, mean = {per_target.mean():.2f}, "
                     f"max = {per_target.max():,}", fontsize=9)

    return Figure("per_target", title, caption, _render(draw))


def word_change_figure(changes: list[tuple[str, str, int]]) -> Figure:
    """Horizontal bars of the most frequent word changes."""
    title, caption = "Most frequent word changes", "word1 \u2192 word2 over all triplets."
    if not changes:
        return Figure("word_changes", title, caption, None)

    def draw(ax):
        labels = [f"{a} \u2192 {b}" for a, b, _ in changes][::-1]
        ax.barh(np.arange(len(labels)), [n for _, _, n in changes][::-1], color="#2a9d8f")
        ax.set_yticks(np.arange(len(labels)), labels, fontsize=8)
        ax.set_xlabel("triplets")

    return Figure("word_changes", title, caption, _render(draw, (6.4, 0.28 * len(changes) + 1.4)))


def make_figures(data: ReportData, top_changes: int = 20) -> list[Figure]:
    """All figures of the report, in display order (the dense one only for runs with dense texts)."""
    label = "sim_vid" if data.media_kind == "video" else "sim_img" if data.media_kind == "image" \
        else "sim_media"
    dense = [dense_word_count_figure(dense_word_counts(data.triplets))] if data.dense else []
    return [
        funnel_figure(data.manifest.get("stages", [])),
        histogram_figure("sim_txt", "Caption similarity", data.sim_txt, "sim_txt (text cosine)",
                         "Text-embedding cosine of the kept caption pairs (CoVR-2 Fig. A.1, left)."),
        histogram_figure("sim_media", "Media similarity", data.sim_media, f"{label} (visual cosine)",
                         "Visual cosine of the kept media pairs (CoVR-2 Fig. A.1, right); "
                         "no data when media were not embedded."),
        word_count_figure(data.triplets["edit"].to_pylist()),
        per_target_figure(triplets_per_target(data.triplets)),
        word_change_figure(word_changes(data.triplets, top_changes)),
        *dense,
    ]
