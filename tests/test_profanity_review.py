"""Issue #16 item 12: captions better-profanity flags are listed for review in the run
directory; a decisions file passed to the next build keeps or drops each one, and the manifest
counts both."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from covr_datagen.filters.profanity import ProfanityFilter, read_decisions
from covr_datagen.pipeline.cli import main as cli_main
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.text.normalize import caption_id, normalize

PADDY, POT, GOD = "Farmers in a paddy field", "A pot of tea on a table", "Statue of a god at dawn"
CLEAN = ["A red car on a road", "A blue car on a road", "Waves on a sandy beach"]


def _cid(caption: str) -> str:
    return caption_id(normalize(caption))


def _corpus(tmp_path: Path) -> Path:
    captions = [PADDY, PADDY, POT, GOD, *CLEAN]
    lines = ["videoid,contentUrl,duration,page_dir,name"]
    lines += [f"{i},http://x/{i}.mp4,PT00H00M10S,p,{c}" for i, c in enumerate(captions)]
    path = tmp_path / "corpus.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _build(corpus: Path, out: Path, *extra: str) -> dict:
    assert cli_main(["build", "--corpus", str(corpus), "--format", "webvid", "--out", str(out),
                     "--until", "caption_filters", *extra]) == 0
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    return {s["name"]: s for s in stages}["caption_filters"]


def _review(out: Path) -> dict[str, dict]:
    with (out / "profanity_review.csv").open(newline="", encoding="utf-8") as f:
        return {row["caption"]: row for row in csv.DictReader(f)}


def test_flags_are_reviewed_and_decisions_keep_or_drop_them(tmp_path):
    corpus, out = _corpus(tmp_path), tmp_path / "run"
    first = _build(corpus, out)
    assert first["dropped"]["profanity"] == 4 and first["kept"] == 3
    assert first["info"]["profanity_not_reviewed"] == 4
    review = _review(out)
    assert set(review) == {PADDY, POT, GOD}
    assert review[PADDY]["matched"] == "paddy" and review[PADDY]["records"] == "2"
    assert review[POT]["matched"] == "pot" and review[GOD]["matched"] == "god"
    assert {r["decision"] for r in review.values()} == {""}
    assert review[PADDY]["caption_id"] == _cid(PADDY)

    # the reviewer keeps "paddy field", confirms "pot" and leaves "god" undecided
    decisions = tmp_path / "decisions.csv"
    with decisions.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(review[PADDY]))
        writer.writeheader()
        for caption, decision in ((PADDY, "keep"), (POT, "Drop"), (GOD, "")):
            writer.writerow({**review[caption], "decision": decision})
    second = _build(corpus, out, "--profanity-decisions", str(decisions))
    assert "skipped" not in second  # the decisions are an input of the stage
    assert second["input"] == second["kept"] + sum(second["dropped"].values()) == 7
    assert second["kept"] == 5 and second["dropped"]["profanity"] == 2
    assert second["info"]["profanity_kept_after_review"] == 2
    assert second["info"]["profanity_dropped_after_review"] == 1
    assert second["info"]["profanity_not_reviewed"] == 1
    captions = set(RunDir(out).read_table("captions")["caption"].to_pylist())
    assert PADDY in captions and POT not in captions and GOD not in captions
    review = _review(out)  # rewritten with the decisions filled in
    assert {c: r["decision"] for c, r in review.items()} == {PADDY: "keep", POT: "drop", GOD: ""}
    rejects = {r["item_id"]: r["detail"]
               for r in RunDir(out).read_table("rejects/caption_filters").to_pylist()}
    assert rejects["p/2"] == "flagged by better-profanity (matched pot); dropped after review"
    assert rejects["p/3"] == "flagged by better-profanity (matched god); not reviewed"

    # the rewritten review file, passed back, decides the same; the stage rewrites that file
    # after its commit, with the same decisions, so the next build reuses the stage
    again = ["--profanity-decisions", str(out / "profanity_review.csv")]
    third = _build(corpus, out, *again)
    assert third["kept"] == 5 and third["info"] == second["info"]
    assert _build(corpus, out, *again).get("skipped") is True


def test_no_flags_gives_a_header_only_review_file(tmp_path):
    corpus = tmp_path / "clean.csv"
    corpus.write_text("videoid,contentUrl,duration,page_dir,name\n"
                      + "".join(f"{i},u,PT1S,p,{c}\n" for i, c in enumerate(CLEAN)), encoding="utf-8")
    stage = _build(corpus, tmp_path / "run")
    assert "profanity" not in stage["dropped"]
    text = (tmp_path / "run" / "profanity_review.csv").read_text(encoding="utf-8")
    assert text.strip() == "caption_id,caption,matched,records,decision"


def test_filter_decisions():
    flt = ProfanityFilter(decisions={_cid(PADDY): "keep", _cid(POT): "drop"})
    assert flt.check({"caption": PADDY, "caption_id": _cid(PADDY)}) is None
    assert "dropped after review" in flt.check({"caption": POT, "caption_id": _cid(POT)}).detail
    assert "not reviewed" in flt.check({"caption": GOD, "caption_id": _cid(GOD)}).detail
    assert flt.check({"caption": CLEAN[0], "caption_id": _cid(CLEAN[0])}) is None


@pytest.mark.parametrize("text,message", [
    ("caption_id,decision\nabc,maybe\n", r"decisions.csv:2: decision must be keep, drop or empty"),
    ("caption,decision\nx,keep\n", "lacks column(s) caption_id"),
    ("caption_id,decision\nabc,keep\nabc,drop\n", "has both keep and drop"),
])
def test_bad_decisions_files_are_one_clear_error(tmp_path, capsys, text, message):
    path = tmp_path / "decisions.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       if "lacks" in message else message):
        read_decisions(path)
    assert cli_main(["build", "--corpus", str(_corpus(tmp_path)), "--format", "webvid", "--out",
                     str(tmp_path / "run"), "--until", "caption_filters",
                     "--profanity-decisions", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len([line for line in err if "error:" in line]) == 1 and "Traceback" not in "\n".join(err)


def test_read_decisions_skips_undecided_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("caption_id,caption,decision\na,x,KEEP\nb,y,\nc,z, drop \n", encoding="utf-8")
    assert read_decisions(path) == {"a": "keep", "c": "drop"}
