"""The run report: one self-contained HTML page (figures embedded as base64 PNG, also written as
files next to it) and a Markdown dataset card.

Contents: headline counts; the stage funnel from ``manifest.json``; histograms of caption-pair
text similarity and media-pair visual similarity (CoVR-2 Fig. A.1); words per modification text
(Fig. A.2); triplets per target media, log scale (Fig. A.3); the most frequent word changes; a
random sample of triplets; the configuration. Every part renders "no data" instead of failing when
its table is absent, empty, or has only null values.

The dataset is named after the media kind: video -> "WebVid-CoVR-style", image -> "CC-CoIR-style".
"""

from __future__ import annotations

import base64
import html
import io
import json
import string
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.export import triplets_dataset
from pipeline.rundir import RunDir

STYLES = {"video": "WebVid-CoVR-style", "image": "CC-CoIR-style"}
TASKS = {"video": "composed video retrieval", "image": "composed image retrieval"}
TRIPLET_COLUMNS = ["pth1", "pth2", "edit", "txt1", "txt2", "sim_txt", "sim_media", "word1", "word2",
                   "media_kind", "corpus", "direction"]
NO_DATA = '<p class="nodata">no data</p>'
DASH = "\u2013"


def dataset_style(media_kind: str | None) -> str:
    """Dataset naming by media kind: ``WebVid-CoVR-style`` (video), ``CC-CoIR-style`` (image)."""
    return STYLES.get(media_kind or "", "CoVR-style")


def _version() -> str:
    try:
        return importlib_metadata.version("covr-datagen")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


# --- data ---------------------------------------------------------------------------------------
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


# --- figures ------------------------------------------------------------------------------------
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
    """All figures of the report, in display order."""
    label = "sim_vid" if data.media_kind == "video" else "sim_img" if data.media_kind == "image" \
        else "sim_media"
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
    ]


# --- HTML ---------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _num(value: Any) -> str:
    if value is None:
        return DASH
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _figure_html(fig: Figure, heading: bool = True) -> str:
    body = NO_DATA if fig.png is None else (
        f'<img id="fig-{fig.name}" alt="{_e(fig.title)}" src="data:image/png;base64,'
        f'{base64.b64encode(fig.png).decode("ascii")}">')
    title = f"<h3>{_e(fig.title)}</h3>" if heading else ""
    return (f'<figure data-figure="{fig.name}">{title}{body}'
            f"<figcaption>{_e(fig.caption)}</figcaption></figure>")


def _funnel_table(stages: list[dict]) -> str:
    if not stages:
        return NO_DATA
    rows = []
    for s in stages:
        dropped = s.get("dropped", {}) or {}
        reasons = ", ".join(f"{_e(r)}: {_num(n)}" for r, n in sorted(dropped.items(), key=lambda kv: -kv[1]))
        info = ", ".join(f"{_e(k)}: {_num(v)}" for k, v in (s.get("info") or {}).items())
        failed = s.get("failed_attempts") or []
        if failed:
            reruns = "; ".join(_e(m) for m in failed)
            info = f"{info}; " if info else ""
            info += f"rerun after {len(failed)} attempt(s) that did not reconcile: {reruns}"
        rows.append(
            f'<tr data-stage="{_e(s["name"])}"><td>{_e(s["name"])}</td>'
            f'<td class="num" data-input="{int(s.get("input", 0))}">{_num(s.get("input", 0))}</td>'
            f'<td class="num" data-kept="{int(s.get("kept", 0))}">{_num(s.get("kept", 0))}</td>'
            f'<td class="num" data-dropped="{sum(dropped.values())}">{_num(sum(dropped.values()))}</td>'
            f"<td>{reasons or DASH}</td><td>{info or DASH}</td>"
            f'<td class="num">{_e(s.get("seconds", ""))}</td></tr>')
    head = ('<tr><th>stage</th><th class="num">input</th><th class="num">kept</th>'
            '<th class="num">dropped</th><th>drop reasons</th><th>info</th><th class="num">s</th></tr>')
    return f'<table id="funnel">{head}{"".join(rows)}</table>'


def _cards(stats: dict) -> str:
    labels = [("triplets", "triplets"), ("distinct_media", "distinct media"),
              ("distinct_targets", "distinct targets"), ("distinct_texts", "distinct texts"),
              ("avg_text_words", "words per text"), ("avg_triplets_per_target", "triplets per target"),
              ("caption_pairs", "caption pairs"), ("media_pairs", "media pairs")]
    return '<div class="cards">' + "".join(
        f'<div class="card" data-stat="{k}"><div class="value">{_num(stats.get(k))}</div>'
        f'<div class="label">{_e(label)}</div></div>' for k, label in labels) + "</div>"


def _changes_table(changes: list[tuple[str, str, int]]) -> str:
    if not changes:
        return NO_DATA
    rows = "".join(f"<tr><td>{_e(a)}</td><td>{_e(b)}</td><td class='num'>{_num(n)}</td></tr>"
                   for a, b, n in changes)
    head = "<tr><th>word1</th><th>word2</th><th class='num'>triplets</th></tr>"
    return f"<table id='word-changes'>{head}{rows}</table>"


def sample_triplets(triplets: pa.Table, n: int, seed: int) -> list[dict]:
    """``n`` triplets drawn without replacement with ``seed`` (all when fewer)."""
    if not triplets.num_rows:
        return []
    k = min(n, triplets.num_rows)
    idx = np.sort(np.random.default_rng(seed).choice(triplets.num_rows, size=k, replace=False))
    return triplets.take(pa.array(idx)).to_pylist()


def _sim(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def _sample_table(rows: list[dict]) -> str:
    if not rows:
        return NO_DATA
    body = "".join(
        f"<tr><td><div>{_e(r['txt1'])}</div><div class='id'>{_e(r['pth1'])}</div></td>"
        f"<td class='edit'>{_e(r['edit'])}</td>"
        f"<td><div>{_e(r['txt2'])}</div><div class='id'>{_e(r['pth2'])}</div></td>"
        f"<td class='num'>{_sim(r['sim_txt'])}</td><td class='num'>{_sim(r['sim_media'])}</td></tr>"
        for r in rows)
    return ("<table id='sample'><tr><th>query caption (txt1)</th><th>modification text (edit)</th>"
            "<th>target caption (txt2)</th><th class='num'>sim_txt</th><th class='num'>sim_media</th></tr>"
            f"{body}</table>")


def _asset(name: str) -> str:
    return (resources.files("pipeline") / "report_assets" / name).read_text(encoding="utf-8")


def render_html(data: ReportData, figures: list[Figure], sample: list[dict],
                changes: list[tuple[str, str, int]]) -> str:
    """The report page (figures embedded as data URIs)."""
    by_name = {f.name: f for f in figures}
    style = dataset_style(data.media_kind)
    stages = data.manifest.get("stages", [])
    sections = [
        f"<section id='summary'><h2>Dataset</h2>{_cards(data.stats)}</section>",
        f"<section id='funnel-section'><h2>Stage funnel</h2>{_figure_html(by_name['funnel'], heading=False)}"
        f"{_funnel_table(stages)}</section>",
        "<section id='distributions'><h2>Distributions</h2><div class='figures'>"
        + "".join(_figure_html(by_name[n]) for n in ("sim_txt", "sim_media", "edit_words", "per_target"))
        + "</div></section>",
        f"<section id='changes'><h2>Most frequent word changes</h2><div class='figures'>"
        f"{_figure_html(by_name['word_changes'], heading=False)}"
        f"<div>{_changes_table(changes)}</div></div></section>",
        f"<section id='samples'><h2>Sample of triplets</h2>{_sample_table(sample)}</section>",
        "<section id='config'><h2>Configuration</h2>"
        f"<p>config hash <code>{_e(data.manifest.get('config_hash', ''))}</code></p>"
        f"<pre>{_e(json.dumps(data.manifest.get('config', {}), indent=2, sort_keys=True))}</pre></section>",
    ]
    template = string.Template(_asset("report.html"))
    return template.substitute(
        title=_e(f"{data.corpus}: {style} dataset"),
        subtitle=_e(f"{TASKS.get(data.media_kind or '', 'composed retrieval')} triplets "
                    f"(query media, modification text, target media)"),
        style=_asset("report.css"), body="\n".join(sections), version=_e(_version()),
        run=_e(str(data.run.root)))


# --- dataset card -------------------------------------------------------------------------------
def dataset_card(data: ReportData, changes: list[tuple[str, str, int]]) -> str:
    """The Markdown dataset card: naming, counts, funnel, format, provenance, config."""
    style = dataset_style(data.media_kind)
    s = data.stats
    lines = [
        f"# {data.corpus}: {style} dataset",
        "",
        f"Training triplets for {TASKS.get(data.media_kind or '', 'composed retrieval')} "
        "(query media, modification text, target media), generated by covr-datagen following "
        "CoVR-2 (Ventura et al., TPAMI 2024): caption pairs differing by one word, filtered, their "
        "most similar media pairs, and a modification text per pair and direction.",
        "",
        "## Counts",
        "",
        "| quantity | value |",
        "| --- | ---: |",
    ]
    names = {"triplets": "triplets", "distinct_media": "distinct media",
             "distinct_queries": "distinct queries (pth1)",
             "distinct_targets": "distinct targets (pth2)", "distinct_texts": "distinct modification texts",
             "avg_text_chars": "mean text length (characters)", "avg_text_words": "mean text length (words)",
             "avg_triplets_per_target": "mean triplets per target",
             "max_triplets_per_target": "max triplets per target",
             "caption_pairs": "caption pairs (kept)", "media_pairs": "media pairs (kept)"}
    lines += [f"| {label} | {_num(s.get(key))} |" for key, label in names.items()]
    lines += ["", "## Pipeline funnel", ""]
    stages = data.manifest.get("stages", [])
    if stages:
        lines += ["| stage | input | kept | dropped (reason: count) |", "| --- | ---: | ---: | --- |"]
        for st in stages:
            dropped = ", ".join(f"{r}: {n:,}" for r, n in sorted((st.get("dropped") or {}).items()))
            lines.append(f"| {st['name']} | {st.get('input', 0):,} | {st.get('kept', 0):,} "
                         f"| {dropped or '-'} |")
    else:
        lines.append("no data")
    lines += ["", "## Most frequent word changes", ""]
    lines += [f"- {a} -> {b}: {n:,}" for a, b, n in changes[:10]] or ["no data"]
    meta = data.triplet_meta
    cfg = data.manifest.get("config", {})
    enabled = (cfg.get("caption_filters") or {}).get("enabled")
    lines += [
        "", "## Format", "",
        "Parquet files under `triplets/` with the `schemas.TRIPLETS` schema. The CoVR trainer's "
        "columns come first: `pth1` (query media id), `pth2` (target media id), `edit`, `txt1`, "
        "`txt2`, `sim_txt`, `scores` (empty list: not computed); then provenance: `triplet_id`, "
        "`corpus`, `media_kind`, `sim_media`, `word1`, `word2`, `direction`, `pair_id`, `engine`, "
        "`model`, `seed`. `covr-datagen export --format covr-csv` writes the trainer's CSV.",
        "", "## Provenance", "",
        f"- covr-datagen version: {meta.get('covr_datagen.version') or _version()}",
        f"- config hash: {data.manifest.get('config_hash') or meta.get('covr_datagen.config_hash', '')}",
        f"- corpus fingerprint: {meta.get('covr_datagen.corpus_fingerprint', '') or 'unknown'}",
        f"- media kind: {data.media_kind or 'unknown'}",
        "- caption filters: " + ("unknown (no caption_filters in the config)" if enabled is None
                                 else (", ".join(enabled) or "none")
                                 + ("" if "mature" in enabled else " (mature-content filter off)")),
        "", "## Limitations", "",
        "- Modification texts are machine-generated and can be wrong or miss visual changes not "
        "described by the captions; query and target are only as related as their captions are.",
        "- Media are referenced by id, not redistributed; their licences are those of the source corpus.",
        "", "## Configuration", "", "```json", json.dumps(cfg, indent=2, sort_keys=True), "```", "",
    ]
    return "\n".join(lines)


# --- entry point --------------------------------------------------------------------------------
@dataclass
class ReportFiles:
    """Where the report went."""

    html: Path
    card: Path
    pngs: list[Path]


def write_report(run_dir: str | Path | RunDir, out: str | Path | None = None,
                 sample_size: int = 25, seed: int = 0, top_changes: int = 20) -> ReportFiles:
    """Write ``report.html``, one PNG per figure and ``DATASET_CARD.md`` into ``out``
    (default ``RUN/report``), holding the run directory's lock (exclusive when writing into
    it)."""
    run = run_dir if isinstance(run_dir, RunDir) else RunDir(run_dir)
    with run.lock_if_run_dir(shared=out is not None):
        return _write_report(run, out, sample_size, seed, top_changes)


def _write_report(run: RunDir, out: str | Path | None, sample_size: int, seed: int,
                  top_changes: int) -> ReportFiles:
    data = load_report_data(run)
    out = Path(out) if out else data.run.root / "report"
    out.mkdir(parents=True, exist_ok=True)
    figures = make_figures(data, top_changes)
    pngs = []
    for fig in figures:
        path = out / f"{fig.name}.png"
        if fig.png is None:
            path.unlink(missing_ok=True)
            continue
        path.write_bytes(fig.png)
        pngs.append(path)
    changes = word_changes(data.triplets, top_changes)
    sample = sample_triplets(data.triplets, sample_size, seed)
    html_path = out / "report.html"
    html_path.write_text(render_html(data, figures, sample, changes), encoding="utf-8")
    card = out / "DATASET_CARD.md"
    card.write_text(dataset_card(data, changes), encoding="utf-8")
    return ReportFiles(html_path, card, pngs)
