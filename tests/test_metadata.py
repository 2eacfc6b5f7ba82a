"""pipeline.corpus.metadata: CleanVid-15M map and plain CSV/Parquet loading, parsing rules, id matching."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from covr_datagen.pipeline.corpus.metadata import (
    MetadataIndex,
    bare_id,
    load_metadata,
    metadata_stats,
    parse_categories,
    parse_flag,
)
from covr_datagen.schemas import MEDIA_METADATA

CLEANVID_MAP = """id,description,duration,aspectratio,videourl,author,categories,framerate,r18
1001,"A dog, running
on grass",PT00H00M10S,16:9,http://x/1001.mp4,alice,"['Animals', 'Nature']",25,0
1002,Sea,PT00H00M05S,16:9,http://x/1002.mp4, bob ,"Nature, Travel",25,1
1003,Sky,PT00H00M05S,16:9,http://x/1003.mp4,,,25,
1001,duplicate,PT00H00M05S,16:9,http://x/1001b.mp4,carol,[],25,0
,no id,PT00H00M05S,16:9,http://x/none.mp4,dave,Nature,25,0
1004,Odd,PT00H00M05S,16:9,http://x/1004.mp4,erin,[oops,25,maybe
"""


@pytest.fixture
def cleanvid_map(tmp_path):
    path = tmp_path / "cleanvid_map.csv"
    path.write_text(CLEANVID_MAP, encoding="utf-8")
    return path


def test_cleanvid_map_layout(cleanvid_map):
    table = load_metadata(cleanvid_map)
    assert table.schema.equals(MEDIA_METADATA, check_metadata=False)
    rows = {r["media_id"]: r for r in table.to_pylist()}
    assert list(rows) == ["1001", "1002", "1003", "1004"]
    # first row of a duplicated id wins; the quoted multi-line description did not split the row
    assert rows["1001"] == {"media_id": "1001", "author": "alice",
                            "categories": ["Animals", "Nature"], "r18": False}
    assert rows["1002"] == {"media_id": "1002", "author": "bob",
                            "categories": ["Nature", "Travel"], "r18": True}
    assert rows["1003"] == {"media_id": "1003", "author": None, "categories": None, "r18": None}
    assert rows["1004"]["categories"] is None and rows["1004"]["r18"] is None
    stats = metadata_stats(table)
    assert stats["rows_read"] == 6 and stats["rows"] == 4
    assert stats["missing_id"] == 1
    assert stats["duplicate_ids"] == 1
    assert stats["unparsable_categories"] == 1
    assert stats["unparsable_r18"] == 1
    assert stats["id_column"] == "id" and stats["absent_columns"] == []


def test_parquet_with_list_categories_and_custom_id(tmp_path):
    path = tmp_path / "meta.parquet"
    pq.write_table(pa.table({
        "video": ["a/1", "a/2", "b/3"],
        "author": ["x", None, "y"],
        "categories": [["Food", " food", "Food"], [], None],
    }), path)
    table = load_metadata(path, id_col="video")
    assert table.to_pylist() == [
        {"media_id": "a/1", "author": "x", "categories": ["Food", "food"], "r18": None},
        {"media_id": "a/2", "author": None, "categories": None, "r18": None},
        {"media_id": "b/3", "author": "y", "categories": None, "r18": None},
    ]
    assert metadata_stats(table)["absent_columns"] == ["r18"]


def test_tsv_and_errors(tmp_path):
    tsv = tmp_path / "meta.tsv"
    tsv.write_text("media_id\tauthor\nv1\tann\n", encoding="utf-8")
    assert load_metadata(tsv).to_pylist() == [
        {"media_id": "v1", "author": "ann", "categories": None, "r18": None}]
    with pytest.raises(ValueError, match="no column 'nope'"):
        load_metadata(tsv, id_col="nope")
    noid = tmp_path / "noid.csv"
    noid.write_text("name,author\nx,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no id column"):
        load_metadata(noid)
    with pytest.raises(FileNotFoundError):
        load_metadata(tmp_path / "absent.csv")
    with pytest.raises(ValueError, match="unsupported format"):
        (tmp_path / "meta.xlsx").write_text("x")
        load_metadata(tmp_path / "meta.xlsx")


@pytest.mark.parametrize("value,expected", [
    ("['Animals', 'Nature']", ["Animals", "Nature"]),
    ('["Animals","Nature"]', ["Animals", "Nature"]),
    ("Animals|Nature|Animals", ["Animals", "Nature"]),
    ("Animals; Nature", ["Animals", "Nature"]),
    ("Nature", ["Nature"]),
    ("  ", None),
    ("[]", None),
    (None, None),
])
def test_parse_categories(value, expected):
    assert parse_categories(value) == expected


@pytest.mark.parametrize("value", ["[oops", "['a', 1]", "[1, 2]", "['a'] + ['b']", "[{'a': 1}]"])
def test_parse_categories_rejects_bad_literals(value):
    with pytest.raises(ValueError):
        parse_categories(value)


def test_parse_flag():
    assert [parse_flag(v) for v in ("1", "TRUE", "yes", "0", "false", "", None, 1, 0)] == [
        True, True, True, False, False, None, None, True, False]
    with pytest.raises(ValueError):
        parse_flag("maybe")


def test_index_full_then_bare_then_ambiguous():
    table = pa.Table.from_pylist([
        {"media_id": "1001", "author": "a", "categories": None, "r18": None},
        {"media_id": "pageA/2002", "author": "b", "categories": None, "r18": None},
        {"media_id": "p1/3003", "author": "c", "categories": None, "r18": None},
        {"media_id": "p2/3003", "author": "d", "categories": None, "r18": None},
    ], schema=MEDIA_METADATA)
    index = MetadataIndex(table)
    assert bare_id("dir/sub/77") == "77" and bare_id("77") == "77"
    assert index.resolve("1001") == (0, "full")
    assert index.resolve("page_dir/1001") == (0, "bare")
    assert index.resolve("pageA/2002") == (1, "full")
    assert index.resolve("2002") == (1, "bare")
    assert index.resolve("p1/3003") == (2, "full")
    assert index.resolve("p9/3003") == (None, "ambiguous")
    assert index.resolve("p/9999") == (None, "missing")
    rows, how = index.resolve_many(["1001", "x/1001", "p9/3003", "nope"])
    assert rows == [0, 0, None, None]
    assert how == {"full": 1, "bare": 1, "ambiguous": 1, "missing": 1}
    assert index.get("x/2002")["author"] == "b" and index.get("nope") is None


def test_columnar_and_single_lookups_agree():
    ids = ["1001", "pageA/2002", "p1/3003", "p2/3003", "4004", "x/4004"]
    table = pa.Table.from_pylist([{"media_id": m, "author": None, "categories": None, "r18": None}
                                  for m in ids], schema=MEDIA_METADATA)
    index = MetadataIndex(table)
    queries = ["1001", "z/1001", "2002", "pageA/2002", "p3/3003", "p1/3003", "4004", "y/4004",
               "x/4004", "none", "a/b/1001", ""]
    rows, how = index.resolve_array(pa.chunked_array([queries[:5], queries[5:]]))
    assert list(zip(rows.to_pylist(), how.to_pylist())) == [index.resolve(q) for q in queries]
    # "4004" and "x/4004" share the bare key "4004": only exact ids match them
    assert index.resolve("y/4004") == (None, "ambiguous") and index.resolve("x/4004") == (5, "full")
    assert index.resolve("a/b/1001") == (0, "bare")
