"""Per-media metadata (author, categories, mature flag) loaded into one table keyed by media id.

Accepted files:

* the CleanVid-15M map (CSV with ``id, description, duration, aspectratio, videourl, author,
  categories, framerate, r18``; only ``id``, ``author``, ``categories`` and ``r18`` are read);
* any CSV / TSV / Parquet file (or folder of Parquet files) with an id column and any of
  ``author``, ``categories``, ``r18``. Absent columns are unknown (null) for every row.

Parsing rules (documented in ``docs/DATASETS.md``):

* ``author``: stripped; blank -> null.
* ``categories``: a list column is used as is. A string is parsed as a list when it starts with
  ``[`` (JSON first, then a Python literal such as ``"['Nature', 'Animals']"``), otherwise split on
  ``,``, ``;`` or ``|``. Items are stripped, blanks removed, duplicates removed (first kept);
  an empty result is null. A string that starts with ``[`` but is not a list of strings is
  counted as ``unparsable_categories`` and set to null (never guessed).
* ``r18``: ``1/true/yes/t/y`` -> true, ``0/false/no/f/n`` -> false (any case), blank -> null,
  anything else null and counted as ``unparsable_r18``.
* rows with a blank id are dropped and counted (``missing_id``); of several rows with one id the
  first is kept and the others counted (``duplicate_ids``).

The counts are stored as JSON in the table's schema metadata (see :func:`metadata_stats`).

Matching media ids (:class:`MetadataIndex`): WebVid media ids are ``{page_dir}/{videoid}`` while
metadata ids are often the bare ``videoid``. A media id is looked up as given first ("full"); when
absent, by its part after the last ``/`` against the metadata ids' parts after their last ``/``
("bare"). A bare key shared by several metadata ids is "ambiguous" and matches nothing.
"""

from __future__ import annotations

import ast
import csv
import json
import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads

from covr_datagen.schemas import MEDIA_METADATA

log = logging.getLogger("covr_datagen")

#: id columns tried, in order, when ``id_col`` is not given
ID_CANDIDATES = ("id", "media_id", "videoid", "pth")
STATS_KEY = b"covr_datagen.metadata_stats"
_TRUE = {"1", "true", "yes", "t", "y"}
_FALSE = {"0", "false", "no", "f", "n"}
_SEPARATORS = (",", ";", "|")

FULL, BARE, AMBIGUOUS, MISSING = "full", "bare", "ambiguous", "missing"


def bare_id(media_id: str) -> str:
    """The part of a media id after its last ``/`` (the id itself when it has none)."""
    return media_id.rsplit("/", 1)[-1]


# --- value parsing ------------------------------------------------------------------------------
def parse_categories(value: Any) -> list[str] | None:
    """Categories of one row as a clean list, or ``None`` when unknown / none listed.

    Raises ``ValueError`` for a bracketed string that is not a list of strings.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if text.startswith("["):
            items = _parse_bracketed(text)
        else:
            for sep in _SEPARATORS:
                if sep in text:
                    items = text.split(sep)
                    break
            else:
                items = [text]
    elif isinstance(value, (list, tuple)):
        items = list(value)
    else:
        raise ValueError(f"categories value of type {type(value).__name__}: {value!r}")
    out: list[str] = []
    for item in items:
        if item is None:
            continue
        if not isinstance(item, str):
            raise ValueError(f"category {item!r} is not a string")
        item = item.strip()
        if item and item not in out:
            out.append(item)
    return out or None


def _parse_bracketed(text: str) -> list:
    try:
        items = json.loads(text)
    except json.JSONDecodeError:
        try:
            items = ast.literal_eval(text)
        except (ValueError, SyntaxError) as exc:
            raise ValueError(f"categories {text!r} is not a list literal") from exc
    if not isinstance(items, list):
        raise ValueError(f"categories {text!r} is not a list")
    return items


def parse_flag(value: Any) -> bool | None:
    """An ``r18``-style flag: ``True`` / ``False`` / ``None`` (unknown). Raises ``ValueError``."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        if value in (0, 1):
            return bool(value)
        raise ValueError(f"flag value {value!r} is neither 0 nor 1")
    text = str(value).strip().lower()
    if not text:
        return None
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"flag value {value!r} is not a boolean")


def _parse_unique(column: pa.ChunkedArray, parse, out_type: pa.DataType) -> tuple[pa.Array, int]:
    """Apply ``parse`` to each distinct value of ``column`` once; unparsable values become null.

    Returns the parsed array and the number of rows whose value could not be parsed.
    """
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        results = [parse_or_none(parse, v) for v in column.to_pylist()]
        return pa.array([v for v, _ in results], type=out_type), sum(b for _, b in results)
    encoded = column.dictionary_encode()
    parsed, failed = [], []
    for v in encoded.dictionary.to_pylist():
        value, is_bad = parse_or_none(parse, v)
        parsed.append(value)
        failed.append(is_bad)
    indices = encoded.indices
    result = pc.take(pa.array(parsed, type=out_type), indices)
    bad_rows = 0
    if any(failed):
        bad_rows = pc.sum(pc.take(pa.array(failed), indices)).as_py() or 0
    return result, int(bad_rows)


def parse_or_none(parse, value) -> tuple[Any, bool]:
    """``(parse(value), False)``, or ``(None, True)`` when ``parse`` raises ``ValueError``."""
    try:
        return parse(value), False
    except ValueError:
        return None, True


# --- reading ------------------------------------------------------------------------------------
def _csv_header(path: Path, delimiter: str) -> list[str]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        header = next(csv.reader(fh, delimiter=delimiter), None)
    if not header:
        raise ValueError(f"metadata file {path} is empty (no header line)")
    return [h.strip() for h in header]


def _read_raw(path: Path, wanted: Sequence[str], id_col: str | None) -> tuple[pa.Table, str]:
    """Read the id column and whichever of ``wanted`` exist; returns ``(table, id column)``."""
    suffix = "".join(path.suffixes[-2:]).lower() if path.is_file() else ""
    if path.is_dir() or path.suffix.lower() == ".parquet":
        dataset = pads.dataset(str(path), format="parquet")
        columns = list(dataset.schema.names)
        id_col = _pick_id(columns, id_col, path)
        keep = [id_col] + [c for c in wanted if c in columns and c != id_col]
        return dataset.to_table(columns=keep), id_col
    if path.suffix.lower() in (".csv", ".tsv", ".txt") or suffix.endswith((".csv.gz", ".tsv.gz")):
        delimiter = "\t" if ".tsv" in suffix or path.suffix.lower() == ".tsv" else ","
        if suffix.endswith(".gz"):
            raise ValueError(f"compressed metadata {path} is not supported; decompress it first")
        columns = _csv_header(path, delimiter)
        id_col = _pick_id(columns, id_col, path)
        keep = [id_col] + [c for c in wanted if c in columns and c != id_col]
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=True, encoding="utf8"),
            parse_options=pacsv.ParseOptions(delimiter=delimiter, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                include_columns=keep,
                column_types={c: pa.string() for c in keep},
                strings_can_be_null=False,
            ),
        )
        return table, id_col
    raise ValueError(f"metadata file {path}: unsupported format (use .csv, .tsv or .parquet)")


def _pick_id(columns: Sequence[str], id_col: str | None, path: Path) -> str:
    if id_col is not None:
        if id_col not in columns:
            raise ValueError(f"metadata file {path} has no column {id_col!r} (columns: {list(columns)})")
        return id_col
    for name in ID_CANDIDATES:
        if name in columns:
            return name
    raise ValueError(
        f"metadata file {path}: no id column found among {list(columns)}; "
        f"pass id_col (tried {', '.join(ID_CANDIDATES)})"
    )


def load_metadata(
    path: str | Path,
    id_col: str | None = None,
    author_col: str = "author",
    categories_col: str = "categories",
    r18_col: str = "r18",
) -> pa.Table:
    """Load per-media metadata as a ``schemas.MEDIA_METADATA`` table, one row per distinct id.

    Parsing and de-duplication rules are in the module docstring; the counts they produce are in
    :func:`metadata_stats` of the returned table. Raises ``FileNotFoundError`` / ``ValueError``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"metadata file {path} not found")
    wanted = [author_col, categories_col, r18_col]
    raw, id_col = _read_raw(path, wanted, id_col)
    stats: dict[str, Any] = {"path": str(path), "id_column": id_col, "rows_read": raw.num_rows,
                             "absent_columns": [c for c in wanted if c not in raw.column_names]}

    ids = pc.utf8_trim_whitespace(pc.cast(raw[id_col], pa.string()))
    has_id = pc.and_(pc.is_valid(ids), pc.not_equal(pc.fill_null(ids, ""), ""))
    stats["missing_id"] = raw.num_rows - (pc.sum(has_id).as_py() or 0)
    raw = raw.filter(has_id)
    ids = ids.filter(has_id)

    n = raw.num_rows
    if author_col in raw.column_names:
        author = pc.utf8_trim_whitespace(pc.cast(raw[author_col], pa.string()))
        author = pc.if_else(pc.equal(pc.fill_null(author, ""), ""), pa.scalar(None, pa.string()), author)
    else:
        author = pa.nulls(n, pa.string())
    if categories_col in raw.column_names:
        categories, stats["unparsable_categories"] = _parse_unique(
            raw[categories_col], parse_categories, pa.list_(pa.string()))
    else:
        categories, stats["unparsable_categories"] = pa.nulls(n, pa.list_(pa.string())), 0
    if r18_col in raw.column_names:
        r18, stats["unparsable_r18"] = _parse_unique(raw[r18_col], parse_flag, pa.bool_())
    else:
        r18, stats["unparsable_r18"] = pa.nulls(n, pa.bool_()), 0

    table = pa.table({"media_id": ids, "author": author, "categories": categories, "r18": r18})
    table, stats["duplicate_ids"] = _first_per_id(table)
    stats["rows"] = table.num_rows
    for key in ("missing_id", "duplicate_ids", "unparsable_categories", "unparsable_r18"):
        if stats[key]:
            log.warning("metadata %s: %d rows with %s", path, stats[key], key.replace("_", " "))
    schema = MEDIA_METADATA.with_metadata({STATS_KEY: json.dumps(stats).encode("utf-8")})
    return table.cast(schema)


def _first_per_id(table: pa.Table) -> tuple[pa.Table, int]:
    """Keep the first row of each ``media_id``; return the table and how many rows went."""
    indexed = table.append_column("_row", pa.array(range(table.num_rows), type=pa.int64()))
    firsts = indexed.group_by("media_id", use_threads=False).aggregate([("_row", "min")])
    keep = pc.sort_indices(firsts["_row_min"])
    rows = pc.take(firsts["_row_min"], keep)
    return table.take(rows), table.num_rows - len(rows)


def metadata_stats(table: pa.Table) -> dict:
    """The loading counts stored in a table returned by :func:`load_metadata`."""
    raw = (table.schema.metadata or {}).get(STATS_KEY)
    return json.loads(raw) if raw else {}


# --- lookup -------------------------------------------------------------------------------------
class MetadataIndex:
    """Resolve media ids of a run to rows of a metadata table (full id first, then bare id).

    :meth:`resolve_array` is columnar (pyarrow hash joins; use it for many ids); :meth:`resolve`
    answers one id at a time from dictionaries built on first use.
    """

    def __init__(self, table: pa.Table):
        self.table = table
        self._ids = _combined(table["media_id"])
        self._bare_ids = _bare_array(self._ids)
        repeated = pc.value_counts(self._bare_ids)
        self._ambiguous = repeated.field("values").filter(pc.greater(repeated.field("counts"), 1))
        self._full: dict[str, int] | None = None
        self._bare: dict[str, int] | None = None

    def resolve_array(self, media_ids: pa.Array | pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
        """Row index (int64, null when unmatched) and how (``full``/``bare``/``ambiguous``/
        ``missing``) for each of ``media_ids``."""
        ids = _combined(media_ids).cast(pa.string())
        full = pc.index_in(ids, value_set=self._ids)
        bare_keys = _bare_array(ids)
        bare = pc.index_in(bare_keys, value_set=self._bare_ids)
        ambiguous = pc.fill_null(pc.is_in(bare_keys, value_set=self._ambiguous), False)
        has_full, has_bare = pc.is_valid(full), pc.and_(pc.is_valid(bare), pc.invert(ambiguous))
        null_row = pa.scalar(None, pa.int64())
        rows = pc.if_else(has_full, pc.cast(full, pa.int64()),
                          pc.if_else(has_bare, pc.cast(bare, pa.int64()), null_row))
        how = pc.if_else(has_full, FULL, pc.if_else(has_bare, BARE,
                                                   pc.if_else(ambiguous, AMBIGUOUS, MISSING)))
        return rows, how

    def resolve_many(self, media_ids: Iterable[str]) -> tuple[list[int | None], dict[str, int]]:
        """Row indices of ``media_ids`` and how many were matched each way."""
        rows, how = self.resolve_array(pa.array(list(media_ids), type=pa.string()))
        tallies = {v["values"]: v["counts"] for v in pc.value_counts(how).to_pylist()}
        return rows.to_pylist(), {k: int(tallies.get(k, 0)) for k in (FULL, BARE, AMBIGUOUS, MISSING)}

    def resolve(self, media_id: str) -> tuple[int | None, str]:
        """``(row index or None, how)`` for one media id (same rules as :meth:`resolve_array`)."""
        if self._full is None:
            self._full = {mid: i for i, mid in enumerate(self._ids.to_pylist())}
            self._bare = {}
            ambiguous = set(self._ambiguous.to_pylist())
            for i, key in enumerate(self._bare_ids.to_pylist()):
                self._bare.setdefault(key, -1 if key in ambiguous else i)
        row = self._full.get(media_id)
        if row is not None:
            return row, FULL
        row = self._bare.get(bare_id(media_id))
        if row is None:
            return None, MISSING
        if row < 0:
            return None, AMBIGUOUS
        return row, BARE

    def get(self, media_id: str) -> dict | None:
        """The metadata row of ``media_id`` as a dict, or ``None`` when not found."""
        row, _ = self.resolve(media_id)
        return None if row is None else self.table.slice(row, 1).to_pylist()[0]


def _combined(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return values


def _bare_array(ids: pa.Array) -> pa.Array:
    """:func:`bare_id` of every element (greedy match up to the last ``/``)."""
    return pc.replace_substring_regex(ids, pattern="^.*/", replacement="")
