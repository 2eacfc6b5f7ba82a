"""Corpus readers: every format, bad rows become rejects with a reason, row numbers are exact."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from covr_datagen.pipeline.config import Config
from covr_datagen.pipeline.core.rundir import RunDir
from covr_datagen.pipeline.core.stage import RunFacts
from covr_datagen.pipeline.corpus.fields import parse_duration
from covr_datagen.pipeline.corpus.records import RecordRule, plan_text_chunks, record_ends, text_chunk_records
from covr_datagen.pipeline.run.stage_runner import run_stages
from covr_datagen.pipeline.stages.read import ReadStage


def read(tmp_path, corpus, fmt, **corpus_cfg):
    config = Config()
    config.corpus.format = fmt
    for key, value in corpus_cfg.items():
        setattr(config.corpus, key, value)
    run = RunDir(tmp_path / "run")
    facts = RunFacts("t", corpus_path=str(corpus))
    report = run_stages([ReadStage()], run, config, facts)[0].to_manifest()
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
    chunks = plan_text_chunks(str(path), skip_header=True, rule=RecordRule(True, 2),
                              chunk_bytes=997)
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

    from covr_datagen.pipeline.corpus.source import ReadCorpus

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
    assert len(plan_text_chunks(str(corpus), True, RecordRule(True, 3), chunk_bytes=48)) > 10
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
@given(st.lists(st.sampled_from(["a", "b c", ",", '"', "\x00", "é", " "]), max_size=30)
       .map("".join))
def test_csv_fields_are_what_the_csv_module_returns(text):
    """Records without quotes are split on commas, the csv module (strict) decides the rest;
    an odd number of quotes is ``bad_quotes`` even where the csv module would read it."""
    import csv
    import io

    from covr_datagen.pipeline.corpus.fields import RowParser
    from covr_datagen.pipeline.corpus.layout import CorpusLayout

    header = ("videoid", "page_dir", "name")
    parser = RowParser(CorpusLayout("webvid", header, "videoid", "name", None))
    fields, problem = parser._fields(text.encode("utf-8"))
    try:
        expected = list(csv.reader(io.StringIO(text, newline=""), strict=True))[0]
    except (csv.Error, IndexError):
        expected = None
    if not text.strip():
        assert problem[0] == "blank_line"
    elif expected is None or text.count('"') % 2:
        assert fields is None and problem[0] == "bad_quotes"
    elif len(expected) != len(header):
        assert fields is None and problem[0] == "bad_column_count"
    else:
        assert fields == dict(zip(header, expected))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", ",", '"', "\r", "\n", " "]), max_size=30).map("".join))
def test_a_bare_cr_is_an_ordinary_character_of_its_field(text):
    """Regression (issue 16.2): the csv module ended the record at a bare CR, cutting the
    caption; now a CR parses exactly like any other character would in its place."""
    import csv

    from covr_datagen.pipeline.corpus.records import split_csv_record

    def fields(t):
        try:
            return split_csv_record(t)
        except csv.Error:
            return None

    as_hash = fields(text.replace("\r", "#"))
    expected = None if as_hash is None else [f.replace("#", "\r") for f in as_hash]
    assert fields(text) == expected


def _reference_record_ends(data: bytes, rule: RecordRule) -> list[int]:
    """The record rule of covr_datagen.pipeline.corpus.records written the slow, obvious way (test oracle)."""
    ends = [i for i, byte in enumerate(data) if byte == 10]
    if data and data[-1] != 10:
        ends.append(len(data))
    starts = [0] + [e + 1 for e in ends[:-1]]
    odd = [data[s:e].count(b'"') % 2 == 1 for s, e in zip(starts, ends)]
    out, i = [], 0
    while i < len(ends):
        if rule.quoted and odd[i]:
            close = next((j for j in range(i + 1, len(ends)) if odd[j]), None)
            if (close is not None and close - i + 1 <= rule.max_lines
                    and rule.closes_record(data[starts[i]:ends[close]])):
                out.append(ends[close])
                i = close + 1
                continue
        out.append(ends[i])
        i += 1
    return out


_RULES = st.builds(RecordRule, st.booleans(), st.sampled_from([None, 1, 2, 3]),
                   st.integers(1, 4))


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"a", b",", b'"', b"\n", b"\r"]), max_size=60).map(b"".join),
       _RULES)
def test_record_ends_follow_the_record_rule(data, rule):
    assert record_ends(data, rule).tolist() == _reference_record_ends(data, rule)


def _csv_text(records: list[list[str]]) -> str:
    import csv
    import io

    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(records)
    return out.getvalue()


#: fields as captions look: they start with a letter, then anything CSV must quote
_FIELD = st.tuples(st.sampled_from("ab"), st.text(alphabet='ab ,"\n', max_size=8)).map("".join)
_GARBAGE = st.sampled_from(['"unterminated caption,p,9', 'a stray " quote,p,9', '"', 'x,"y'])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_FIELD, min_size=3, max_size=3), max_size=12),
       st.lists(st.tuples(st.integers(0, 12), _GARBAGE), max_size=4))
def test_a_malformed_line_costs_only_itself(records, garbage):
    """Regression (issue 16.1): an unterminated or stray quote swallowed every later row. Now,
    between well-formed records (quoted fields spanning lines included), each malformed line is
    one record of its own and every well-formed record is read back exactly."""
    import csv

    from covr_datagen.pipeline.corpus.records import split_csv_record

    rule = RecordRule(True, 3, max_lines=10)
    records = [r for r in records if _csv_text([r]).count("\n") <= rule.max_lines]
    lines = [_csv_text([r]).rstrip("\n") for r in records]
    expected: list = [list(r) for r in records]
    for position, line in sorted(garbage, reverse=True):
        lines.insert(min(position, len(lines)), line)
        expected.insert(min(position, len(expected)), line)
    data = "".join(line + "\n" for line in lines).encode()
    got, prev = [], 0
    for end in record_ends(data, rule).tolist():
        text = data[prev:end].decode()
        prev = end + 1
        try:
            fields = split_csv_record(text)
        except csv.Error:
            fields = None
        got.append(fields if text.count('"') % 2 == 0 and fields and len(fields) == 3 else text)
    assert got == expected


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b"ab", b",", b'"', b"\n", b"\r", b"\n\n"]), max_size=80)
       .map(b"".join), _RULES, st.integers(1, 24), st.booleans())
def test_planned_chunks_read_the_same_records_as_the_whole_file(data, rule, chunk_bytes, header):
    """Chunk boundaries never change a record (the planner reads ahead until it knows), and the
    planned line counts add up to the file's lines."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "c.csv")
        with open(path, "wb") as fh:
            fh.write(b"h\n" + data if header else data)
        chunks = plan_text_chunks(path, skip_header=header, rule=rule, chunk_bytes=chunk_bytes)
        records = [r for c in chunks for r in text_chunk_records(c, rule)]
    whole, prev = [], 0
    for end in record_ends(data, rule).tolist():
        whole.append(data[prev:end].rstrip(b"\r"))
        prev = end + 1
    assert [r.data for r in records] == whole
    assert [r.row for r in records] == list(range(len(whole)))
    n_lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    assert sum(c.lines for c in chunks) == sum(r.lines for r in records) == n_lines
    first = 2 if header else 1
    assert [r.line for r in records] == [first + sum(x.lines for x in records[:i])
                                         for i in range(len(records))]


def _webvid_rows(n: int) -> list[str]:
    return [f"{i},http://x/{i}.mp4,PT00H00M10S,p{i % 3},Caption number {i} of a clip"
            for i in range(n)]


WEBVID_HEADER = "videoid,contentUrl,duration,page_dir,name"


@pytest.mark.parametrize("row,bad", [
    (50, '50,http://x/50.mp4,PT00H00M10S,p2,"An unterminated caption'),
    (120, '120,http://x/120.mp4,PT00H00M10S,p0,A stray " quote in a caption'),
])
def test_a_malformed_quote_costs_only_its_row(tmp_path, row, bad):
    """Regression (issue 16.1): one unterminated or stray quote lost every later row (300 rows:
    input 65, kept 50, exit 0). Now that row alone is rejected, and every line is counted."""
    rows = _webvid_rows(300)
    rows[row] = bad
    rows[7] = '7,http://x/7.mp4,,p1,"A quoted caption ""with quotes"",\nover two lines"'
    corpus = tmp_path / "webvid.csv"
    corpus.write_text(WEBVID_HEADER + "\n" + "\n".join(rows) + "\n")
    report, records, rejects = read(tmp_path, corpus, "webvid")
    assert report["input"] == 300 and report["kept"] == 299
    assert report["dropped"] == {"bad_quotes": 1}
    assert report["info"] == {"lines": 301, "multiline_records": 1, "continuation_lines": 1}
    assert [r["row"] for r in records] == [i for i in range(300) if i != row]
    assert records[7]["caption"] == 'A quoted caption "with quotes",\nover two lines'
    shown = json.loads(rejects[0]["record"])
    # header on line 1, row 0 on line 2, row 7 over lines 9-10
    assert (shown["row"], shown["line"], shown["lines"]) == (row, row + 3, 1)
    assert "only this line" in rejects[0]["detail"]


def test_a_bare_cr_stays_in_the_caption(tmp_path):
    """Regression (issue 16.2): a bare CR cut the caption ("little girl plays with a")."""
    corpus = tmp_path / "webvid.csv"
    corpus.write_bytes(WEBVID_HEADER.encode() + b"\r\n"
                       b"1,u,,p,little girl plays with a\rball in the park\r\n"
                       b'2,u,,p,"quoted girl plays with a\rball"\n')
    _, records, _ = read(tmp_path, corpus, "webvid")
    assert [r["caption"] for r in records] == ["little girl plays with a\rball in the park",
                                               "quoted girl plays with a\rball"]
    assert records[0]["normalized"] == "little girl plays with a ball in the park"


@pytest.mark.parametrize("fmt", ["webvid", "cc3m", "jsonl"])
def test_cr_only_line_endings_are_a_clear_error(tmp_path, fmt):
    """Regression (issue 16.2): a CR-only file crashed with a ``_csv.Error`` traceback."""
    corpus = tmp_path / "mac.csv"
    corpus.write_bytes(WEBVID_HEADER.encode() + b"\r1,u,,p,A caption\r2,u,,p,Another one\r")
    with pytest.raises(ValueError, match="CR-only"):
        read(tmp_path, corpus, fmt)


def test_a_line_lost_between_planning_and_parsing_fails_the_stage(tmp_path, monkeypatch):
    """The read stage counts the lines it planned; records that do not account for them make
    the stage fail instead of reconciling (input == kept + dropped alone cannot see this)."""
    import covr_datagen.pipeline.corpus.source as readers
    from covr_datagen.pipeline.run.stage_runner import ReconciliationError

    corpus = tmp_path / "webvid.csv"
    corpus.write_text(WEBVID_HEADER + "\n" + "\n".join(_webvid_rows(20)) + "\n")
    real = readers.text_chunk_records
    monkeypatch.setattr(readers, "text_chunk_records",
                        lambda chunk, rule: (r for r in real(chunk, rule) if r.row != 5))
    with pytest.raises(ReconciliationError, match="20 corpus lines but 19 records"):
        read(tmp_path, corpus, "webvid")


def test_parquet_columns_of_the_wrong_type_are_a_clear_error(tmp_path):
    """Regression (issue 16.3): binary, list and float captions went through ``str()``."""
    for name, values in (("binary", [b"Disco ball"]), ("list", [["a", "x"]]), ("float", [0.0])):
        path = tmp_path / f"{name}.parquet"
        pq.write_table(pa.table({"caption": values}), path)
        with pytest.raises(ValueError, match="'caption' .* has type .* must be a string"):
            read(tmp_path / name, path, "parquet")
    path = tmp_path / "ids.parquet"
    pq.write_table(pa.table({"caption": ["Red car", "Blue car"], "key": [1.5, 2.5]}), path)
    with pytest.raises(ValueError, match="'key' .* must be a string or an integer"):
        read(tmp_path / "ids", path, "parquet", id_col="key")
    pq.write_table(pa.table({"caption": ["Red car", "Blue car"], "key": [7, 8]}), path)
    _, records, _ = read(tmp_path / "ints", path, "parquet", id_col="key")
    assert [r["media_id"] for r in records] == ["7", "8"]


def test_jsonl_values_of_the_wrong_type_are_rejected(tmp_path):
    """Regression (issue 16.3), JSON lines: a value of the wrong type is a reject per row."""
    path = tmp_path / "c.jsonl"
    rows = [{"caption": "Red car on a road", "id": 1}, {"caption": ["Red", "car"], "id": 2},
            {"caption": 0.0, "id": 3}, {"caption": "Blue car on a road", "id": 4.5},
            {"caption": "Green car on a road", "id": "x"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report, records, rejects = read(tmp_path, path, "jsonl", id_col="id")
    assert [r["media_id"] for r in records] == ["1", "x"]
    assert report["dropped"] == {"wrong_type": 3}
    assert "column 'caption' holds list" in rejects[0]["detail"]


# --- descriptions (issue 19 item 2) -------------------------------------------------------------
def test_description_column_is_read_empty_is_null_and_leaves_extra(tmp_path):
    corpus = tmp_path / "c.csv"
    corpus.write_text('id,caption,description,tag\n'
                      'a,Red car,"A red car drives, slowly,\nalong a road.",x\n'
                      'b,Blue car,,y\n'
                      'c,Green car,   ,z\n', encoding="utf-8")
    report, records, rejects = read(tmp_path, corpus, "csv", id_col="id", description_col="description")
    assert report["kept"] == 3 and rejects == []
    assert [r["description"] for r in records] == ["A red car drives, slowly,\nalong a road.", None, None]
    assert all(json.loads(r["extra"]) == {"tag": t} for r, t in zip(records, "xyz"))
    jsonl = tmp_path / "c.jsonl"
    jsonl.write_text('{"id": "a", "caption": "Red car", "description": "A red car."}\n'
                     '{"id": "b", "caption": "Blue car"}\n', encoding="utf-8")
    _, records, _ = read(tmp_path / "j", jsonl, "jsonl", id_col="id", description_col="description")
    assert [r["description"] for r in records] == ["A red car.", None]
    webvid = tmp_path / "w.csv"
    webvid.write_text("videoid,page_dir,name,desc\n1,p,Red car,A red car.\n", encoding="utf-8")
    _, records, _ = read(tmp_path / "w", webvid, "webvid", description_col="desc")
    assert records[0]["description"] == "A red car." and records[0]["extra"] is None


@pytest.mark.parametrize("fmt,text", [
    ("csv", "id,caption\na,Red car\n"),
    ("webvid", "videoid,page_dir,name\n1,p,Red car\n"),
    ("cc3m", "Red car\thttp://x/1.jpg\n"),
    ("parquet", None),
])
def test_a_missing_description_column_is_one_line_exit_2(tmp_path, capsys, fmt, text):
    from covr_datagen.pipeline.cli import main as cli_main

    corpus = tmp_path / f"c.{fmt}"
    if text is None:
        pq.write_table(pa.table({"caption": ["Red car"]}), corpus)
    else:
        corpus.write_text(text, encoding="utf-8")
    rc = cli_main(["build", "--corpus", str(corpus), "--format", fmt, "--out", str(tmp_path / "run"),
                   "--description-col", "summary", "--until", "read"])
    err = capsys.readouterr().err
    lines = [line for line in err.strip().splitlines() if not line.startswith("[")]  # progress
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert ("'summary' (--description-col) not in" in err if fmt != "cc3m"
            else "--description-col needs a corpus with named columns" in err)
