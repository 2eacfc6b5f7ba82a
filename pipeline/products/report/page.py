"""The report's pages: one self-contained HTML page (figures embedded as base64 PNG, also written as
files next to it) and a Markdown dataset card; :func:`write_report` writes them all.

Page contents: headline counts; the stage funnel from ``manifest.json``; the figures
(:mod:`covr_datagen.pipeline.products.report.figures`); the most frequent word changes; a random sample of
triplets; for runs with dense modification texts, their length statistics next to the ~31-word
reference, a histogram and a sample (nothing dense otherwise); the configuration. Every part
renders "no data" instead of failing when its table is absent, empty, or has only null values.
"""

from __future__ import annotations

import base64
import html
import json
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.products.report.data import (
    TASKS,
    ReportData,
    dataset_style,
    dense_triplets,
    load_report_data,
    package_version,
    sample_triplets,
    word_changes,
)
from covr_datagen.pipeline.products.report.figures import Figure, make_figures

NO_DATA = '<p class="nodata">no data</p>'
DASH = "\u2013"


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


def funnel_table(stages: list[dict]) -> str:
    """The manifest's stages as an HTML table: counts, drop reasons, info and reruns."""
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


DENSE_STAT_LABELS = (("mean_words", "mean"), ("median_words", "median"), ("p5_words", "5th percentile"),
                     ("p95_words", "95th percentile"), ("min_words", "min"), ("max_words", "max"))


def _dense_stats_table(dense: dict) -> str:
    rows = "".join(f"<tr data-stat='{k}'><td>{_e(label)}</td><td class='num'>{_num(dense[k])}</td></tr>"
                   for k, label in DENSE_STAT_LABELS)
    return ("<table id='dense-stats'><tr><th>words per dense text</th><th class='num'>this run</th></tr>"
            f"{rows}<tr data-stat='reference'><td>Dense-WebVid-CoVR mean (reference)</td>"
            f"<td class='num'>~{dense['reference_mean_words']}</td></tr></table>")


def _dense_sample_table(rows: list[dict]) -> str:
    body = "".join(
        f"<tr><td><div>{_e(r['txt1'])}</div><div class='id'>{_e(r['pth1'])}</div></td>"
        f"<td class='edit'>{_e(r['edit'])}</td><td class='edit'>{_e(r['edit_dense'])}</td>"
        f"<td><div>{_e(r['txt2'])}</div><div class='id'>{_e(r['pth2'])}</div></td></tr>"
        for r in rows)
    return ("<table id='dense-sample'><tr><th>query caption (txt1)</th><th>one-word text (edit)</th>"
            "<th>dense text (edit_dense)</th><th>target caption (txt2)</th></tr>"
            f"{body}</table>")


def _dense_section(data: ReportData, figure: Figure, sample: list[dict]) -> str:
    """Dense texts: counts, length statistics, histogram and a sample (runs with dense texts)."""
    dense = data.dense
    return ("<section id='dense'><h2>Dense modification texts</h2>"
            f"<p>{_num(dense['triplets'])} of {_num(data.stats['triplets'])} triplets have a dense text "
            f"({_num(dense['distinct_texts'])} distinct); "
            "<code>covr-datagen export --variant dense</code> exports them.</p>"
            f"<div class='figures'>{_figure_html(figure, heading=False)}"
            f"<div>{_dense_stats_table(dense)}</div></div>"
            f"<h3>Sample of dense triplets</h3>{_dense_sample_table(sample)}</section>")


def _asset(name: str) -> str:
    return (resources.files(__package__) / "assets" / name).read_text(encoding="utf-8")


def render_html(data: ReportData, figures: list[Figure], sample: list[dict],
                changes: list[tuple[str, str, int]], dense_sample: list[dict] | None = None) -> str:
    """The report page (figures embedded as data URIs)."""
    by_name = {f.name: f for f in figures}
    style = dataset_style(data.media_kind)
    stages = data.manifest.get("stages", [])
    sections = [
        f"<section id='summary'><h2>Dataset</h2>{_cards(data.stats)}</section>",
        f"<section id='funnel-section'><h2>Stage funnel</h2>{_figure_html(by_name['funnel'], heading=False)}"
        f"{funnel_table(stages)}</section>",
        "<section id='distributions'><h2>Distributions</h2><div class='figures'>"
        + "".join(_figure_html(by_name[n]) for n in ("sim_txt", "sim_media", "edit_words", "per_target"))
        + "</div></section>",
        f"<section id='changes'><h2>Most frequent word changes</h2><div class='figures'>"
        f"{_figure_html(by_name['word_changes'], heading=False)}"
        f"<div>{_changes_table(changes)}</div></div></section>",
        f"<section id='samples'><h2>Sample of triplets</h2>{_sample_table(sample)}</section>",
        *([_dense_section(data, by_name["dense_words"], dense_sample or [])] if data.dense else []),
        "<section id='config'><h2>Configuration</h2>"
        f"<p>config hash <code>{_e(data.manifest.get('config_hash', ''))}</code></p>"
        f"<pre>{_e(json.dumps(data.manifest.get('config', {}), indent=2, sort_keys=True))}</pre></section>",
    ]
    template = string.Template(_asset("report.html"))
    return template.substitute(
        title=_e(f"{data.corpus}: {style} dataset"),
        subtitle=_e(f"{TASKS.get(data.media_kind or '', 'composed retrieval')} triplets "
                    f"(query media, modification text, target media)"),
        style=_asset("report.css"), body="\n".join(sections), version=_e(package_version()),
        run=_e(str(data.run.root)))


def _dense_card(data: ReportData) -> list[str]:
    """The card's section on the dense variant: size, lengths against the reference, provenance
    (mode, engine, dense filters and the triplets stage's dense drops)."""
    dense, cfg = data.dense, data.manifest.get("config", {})
    mtg = cfg.get("mtg") or {}
    written = dense_triplets(data.triplets)
    engines = ", ".join(sorted(set(written["engine"].to_pylist()))) or "unknown"
    models = ", ".join(sorted(set(written["model"].to_pylist()))) or "unknown"
    triplets_stage = next((s for s in data.manifest.get("stages", []) if s.get("name") == "triplets"), {})
    drops = {r: n for r, n in (triplets_stage.get("dropped") or {}).items() if r.startswith("dense_")}
    lines = [
        "", "## Variant `dense`", "",
        f"{dense['triplets']:,} of {data.stats['triplets']:,} triplets also have a dense modification "
        f"text (`edit_dense`, {dense['distinct_texts']:,} distinct) describing every change from query "
        "to target, in the style of Dense-WebVid-CoVR (BSE-CoVR, ICCV 2025). "
        "`covr-datagen export --variant dense` writes them with the dense text in `edit` and the "
        "one-word text in `edit_short`.", "",
        "| words per dense text | this run | Dense-WebVid-CoVR |", "| --- | ---: | ---: |",
    ]
    reference = {"mean_words": f"~{dense['reference_mean_words']}"}
    lines += [f"| {label} | {_num(dense[key])} | {reference.get(key, '-')} |"
              for key, label in DENSE_STAT_LABELS]
    lines += [
        "", "Provenance:", "",
        f"- MTG mode: {mtg.get('mode', 'unknown')}; engine: {engines}; model: {models} (as recorded "
        "in the dense triplets)",
        "- dense filters: " + (json.dumps(cfg["dense_filters"], sort_keys=True) if cfg.get("dense_filters")
                               else "unknown (no dense_filters in the config)"),
        f"- consistency encoder: {(cfg.get('text_encoder') or {}).get('model', 'unknown')}",
        "- dense drops in the triplets stage: "
        + (", ".join(f"{r}: {n:,}" for r, n in sorted(drops.items())) or "none"),
    ]
    return lines


def dataset_card(data: ReportData, changes: list[tuple[str, str, int]]) -> str:
    """The Markdown dataset card: naming, counts, funnel, (dense variant,) format, provenance,
    config."""
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
    if data.dense:
        lines += _dense_card(data)
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
        f"- covr-datagen version: {meta.get('covr_datagen.version') or package_version()}",
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
    dense_sample = sample_triplets(dense_triplets(data.triplets), sample_size, seed)
    html_path = out / "report.html"
    html_path.write_text(render_html(data, figures, sample, changes, dense_sample), encoding="utf-8")
    card = out / "DATASET_CARD.md"
    card.write_text(dataset_card(data, changes), encoding="utf-8")
    return ReportFiles(html_path, card, pngs)
