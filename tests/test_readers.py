"""Corpus readers: every format, bad rows become rejects with a reason, row numbers are exact."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.config import Config
from pipeline.readers import parse_duration, plan_text_chunks
from pipeline.rundir import RunDir
from pipeline.stage_runner import run_stages
from pipeline.stages.corpus import ReadStage


def read(tmp_path, corpus, fmt, **corpus_cfg):
    config = Config()
    config.corpus.format = fmt
    for key, value in corpus_cfg.items():
        setattr(config.corpus, key, value)
    run = RunDir(tmp_path / "run")
    report = run_stages([ReadStage()], run, config, corpus_path=str(corpus),
                        corpus_fingerprint="t")[0].to_manifest()
    records = sorted(run.read_table("records").to_pylist(), key=lambda r: r["row"])
    rejects = run.read_table("rejects/read").to_pylist() if (run.root / "rejects/read").exists() else []
    assert report["input"] == report["kept"] + sum(report["dropped"].values())
    assert report["kept"] == len(records) and sum(report["dropped"].values()) == len(rejects)
    return report, records, rejects


def test_webvid_csv_any_column_order_and_bad_rows(tmp_path):
    corpus = tmp_path / "webvid.csv"
    corpus.write_bytes(
        b"name,page_dir,videoid,duration,contentUrl\n"
        b"Young woman smiling,001_050,11,PT00H00M30S,http://x/11.mp4\n"
        b'"Old woman smiling, outdoors",001_050,12,12.5,http://x/12.mp4\n'
        b'"A caption with a\nnewline inside quotes",001_050,13,,\n'
        b"only,three,columns\n"
        b"   ,001_050,14,,\n"
        b"Caf\xe9 latin-1 bytes,001_050,15,,\n"
        b"Duplicate id,001_050,11,,\n"
        b"\n"
        b"Last row without newline,001_050,16,3,"
    )
    report, records, rejects = read(tmp_path, corpus, "webvid")
    assert [r["media_id"] for r in records] == ["001_050/11", "001_050/12", "001_050/13",
                                                "001_050/16"]
    assert [r["row"] for r in records] == [0, 1, 2, 8]
    assert records[0]["duration"] == 30.0 and records[1]["duration"] == 12.5
    assert records[1]["caption"] == "Old woman smiling, outdoors"
    assert records[2]["normalized"] == "a caption with a newline inside quotes"
    assert report["dropped"] == {"bad_column_count": 1, "empty_caption": 1, "undecodable": 1,
                                 "duplicate_id": 1, "blank_line": 1}
    by_reason = {r["reason"]: r for r in rejects}
    assert json.loads(by_reason["duplicate_id"]["record"])["caption"] == "Duplicate id"
    assert by_reason["undecodable"]["item_id"] == "5"


def test_webvid_missing_column_is_a_clear_error(tmp_path):
    corpus = tmp_path / "bad.csv"
    corpus.write_text("videoid,name\n1,hello world\n")
    with pytest.raises(ValueError, match="page_dir"):
        read(tmp_path, corpus, "webvid")


def test_cc3m_tsv_ids_are_row_numbers(tmp_path):
    corpus = tmp_path / "cc.tsv"
    corpus.write_text('A "quoted" dog on the beach\thttp://a/1.jpg\n'
                      "A cat on the beach\thttp://a/2.jpg\n"
                      "no url column\n"
                      "A cow on the beach\thttp://a/4.jpg\n")
    report, records, rejects = read(tmp_path, corpus, "cc3m")
    assert [(r["media_id"], r["url"]) for r in records] == [
        ("0", "http://a/1.jpg"), ("1", "http://a/2.jpg"), ("3", "http://a/4.jpg")]
    assert records[0]["caption"] == 'A "quoted" dog on the beach'
    assert report["dropped"] == {"bad_column_count": 1}


def test_generic_csv_jsonl_parquet_with_column_options(tmp_path):
    rows = [{"key": "a", "text": "Red car on the road", "file": "/m/a.mp4", "r18": "0", "lang": "en"},
            {"key": "b", "text": "Blue car on the road", "file": "/m/b.mp4", "r18": "1", "lang": "en"},
            {"key": "", "text": "no id", "file": "/m/c.mp4", "r18": "0", "lang": "en"}]
    opts = dict(id_col="key", caption_col="text", media_col="file")
    csv_path = tmp_path / "c.csv"
    csv_path.write_text("key,text,file,r18,lang\n" + "".join(
        f"{r['key']},{r['text']},{r['file']},{r['r18']},{r['lang']}\n" for r in rows))
    jsonl_path = tmp_path / "c.jsonl"
    jsonl_path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "{not json\n")
    pq_path = tmp_path / "c.parquet"
    pq.write_table(pa.Table.from_pylist(rows), pq_path, row_group_size=2)
    for path, fmt in ((csv_path, "csv"), (jsonl_path, "jsonl"), (pq_path, "parquet")):
        report, records, _ = read(tmp_path / fmt, path, fmt, **opts)
        assert [(r["media_id"], r["path"], r["mature"]) for r in records] == [
            ("a", "/m/a.mp4", False), ("b", "/m/b.mp4", True)], fmt
        assert json.loads(records[0]["extra"]) == {"lang": "en"}
        assert report["dropped"].get("missing_id") == 1
    assert report_for_jsonl_bad_json(tmp_path, jsonl_path, opts) == 1


def report_for_jsonl_bad_json(tmp_path, path, opts):
    report, _, _ = read(tmp_path / "again", path, "jsonl", **opts)
    return report["dropped"]["bad_json"]


def test_generic_csv_unknown_column_is_a_clear_error(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,caption\n1,hello there\n")
    with pytest.raises(ValueError, match="--caption-col"):
        read(tmp_path, path, "csv", caption_col="text")


def test_chunks_split_only_at_record_boundaries(tmp_path):
    path = tmp_path / "big.csv"
    lines = ["h1,h2"] + [f'{i},"caption {i}\nsecond line"' if i % 7 == 0 else f"{i},caption {i}"
                         for i in range(2000)]
    path.write_text("\n".join(lines) + "\n")
    chunks = plan_text_chunks(str(path), skip_header=True, quoted=True, chunk_bytes=997)
    assert len(chunks) > 5
    assert chunks[0].first_row == 0
    data = path.read_bytes()
    for a, b in zip(chunks, chunks[1:]):
        assert a.end == b.start and data[a.end - 1:a.end] == b"\n"
        # the next chunk starts with the row number it claims
        assert data[b.start:].split(b",", 1)[0] == str(b.first_row).encode()


@pytest.mark.parametrize("value,seconds", [("PT00H00M30S", 30.0), ("PT1H2M3.5S", 3723.5),
                                           ("12", 12.0), ("", None), ("soon", None)])
def test_parse_duration(value, seconds):
    assert parse_duration(value) == seconds


def test_duplicates_across_read_units_keep_the_first_row(tmp_path):
    """Many tiny read units: duplicate ids in other units than their first row, bad rows between."""
    import apache_beam as beam
    from apache_beam.testing.util import assert_that, equal_to

    from pipeline.readers import ReadCorpus

    lines = [b"name,page_dir,videoid"]
    for i in range(40):
        lines.append(b"caption number %d,p,%d" % (i, i % 13))  # ids repeat every 13 rows
        if i % 7 == 3:
            lines.append(b"bad,row")
    corpus = tmp_path / "c.csv"
    corpus.write_bytes(b"\n".join(lines) + b"\n")
    cfg = Config().corpus
    reader = ReadCorpus(str(corpus), cfg, str(tmp_path / "scratch"), chunk_bytes=48)
    (tmp_path / "scratch").mkdir()
    assert len(plan_text_chunks(str(corpus), True, True, chunk_bytes=48)) > 10
    rows = [(i, line) for i, line in enumerate(lines[1:])]
    first = {}
    for row, line in rows:
        if line != b"bad,row":
            first.setdefault(line.rsplit(b",", 1)[1], row)
    kept = sorted(first.values())
    dups = sorted(row for row, line in rows
                  if line != b"bad,row" and first[line.rsplit(b",", 1)[1]] != row)
    with beam.Pipeline() as p:
        records, rejects = p | reader
        assert_that(records | beam.Map(lambda r: r["row"]), equal_to(kept), label="kept")
        assert_that(rejects | beam.Filter(lambda r: r["reason"] == "duplicate_id")
                    | beam.Map(lambda r: int(r["item_id"])), equal_to(dups), label="dups")
        assert_that(rejects | beam.Filter(lambda r: r["reason"] == "bad_column_count")
                    | beam.Map(lambda r: 1), equal_to([1] * 6), label="bad")
    assert len(kept) == 13 and len(dups) == 27


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"a", b",", b'"', b"\n", b"\r"]), max_size=60).map(b"".join))
def test_record_ends_are_the_newlines_outside_quotes(data):
    from pipeline.readers import record_ends

    outside = [i for i, byte in enumerate(data) if byte == 10 and data[:i].count(b'"') % 2 == 0]
    assert record_ends(data, quoted=True).tolist() == outside
    assert record_ends(data, quoted=False).tolist() == [i for i, b in enumerate(data) if b == 10]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b c", ",", '"', "\r", "\x00", "é", " "]), max_size=30)
       .map("".join))
def test_unquoted_fast_path_splits_like_the_csv_module(text):
    """Records without quotes, line breaks or NUL are split on commas; the csv module decides
    the rest. Either way a record's fields are what ``csv.reader`` returns."""
    import csv
    import io

    from pipeline.readers import CorpusLayout, ParseRows

    header = ("videoid", "page_dir", "name")
    parser = ParseRows("read", CorpusLayout("webvid", header, "videoid", "name", None))
    fields, problem = parser._fields(text.encode("utf-8"))
    try:
        expected = next(csv.reader(io.StringIO(text, newline=""), strict=True))
    except (csv.Error, StopIteration):
        expected = None
    if not text.strip():
        assert problem[0] == "blank_line"
    elif expected is None or len(expected) != len(header):
        assert fields is None and problem[0] == "bad_column_count"
    else:
        assert fields == dict(zip(header, expected))
