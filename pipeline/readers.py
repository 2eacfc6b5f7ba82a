"""Corpus readers as Beam sources: WebVid CSV, Conceptual-Captions TSV, generic CSV/JSONL/Parquet.

Text files are split into record-aligned byte ranges by :func:`plan_text_chunks` (one pass; the
record rule, and what it guarantees for malformed lines, is in :mod:`pipeline.text_records`),
Parquet files into row groups; these read units are spread over the workers. Each record is
parsed by :class:`ParseRows` into a record (schema ``schemas.RECORDS``) or a reject row with a
reason. Duplicate media ids are found by shuffling only ``(media_id, row)`` pairs
(:class:`FindDuplicateRows`): :class:`ParseUnit` parses each unit once and saves its records to
a scratch file in the stage's staging folder (:mod:`pipeline.scratch`);
:class:`EmitUniqueRecords` loads that file, keeps each media id's first row and rejects the
others — whole records are never shuffled (at 2M rows that shuffle held ~7 GB in the local
runner's process), and no row is parsed twice.

Counting: ``input`` is the records found, and for text corpora the manifest's ``info`` also has
``lines`` (lines of the file after any header, counted by the planner), ``multiline_records``
and ``continuation_lines`` (lines after the first of a multi-line record); the read stage
checks ``lines == input + continuation_lines``, so a line cannot vanish without the build
failing.

Reasons: ``blank_line``, ``undecodable``, ``bad_quotes`` (unbalanced or misplaced ``"``),
``bad_column_count``, ``bad_json``, ``wrong_type`` (a JSONL value that is not a string),
``missing_id``, ``empty_caption`` (no words after normalisation), ``duplicate_id``.
"""

from __future__ import annotations

import bisect
import csv
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from filters.base import Drop
from pipeline.config import CORPUS_FORMATS, CorpusConfig
from pipeline.grouping import GroupByKeyInBuckets
from pipeline.normalize import caption_id, normalize
from pipeline.parquet_io import plan_parquet, row_group_rows
from pipeline.scratch import read_objects, write_objects
from pipeline.stages.base import (
    KEPT,
    REJECTS_TAG,
    Progress,
    counter,
    drop_counter,
    info_counter,
    reject_row,
)
from pipeline.text_records import (
    RawRecord,
    RecordRule,
    TextChunk,
    plan_text_chunks,
    split_csv_record,
    text_chunk_records,
)

FORMATS = CORPUS_FORMATS
WEBVID_REQUIRED = ("videoid", "page_dir", "name")
#: bytes read to find the header line and the line-ending style
_SAMPLE_BYTES = 1 << 20
#: ``info`` counters of the read stage: lines found (text corpora), records spanning several
#: lines, and their lines after the first
LINES, MULTILINE_RECORDS, CONTINUATION_LINES = "lines", "multiline_records", "continuation_lines"


@dataclass(frozen=True)
class CorpusLayout:
    """What the parser needs to know about the corpus, decided once on the driver."""

    format: str
    header: tuple[str, ...] | None
    id_col: str | None
    caption_col: str
    media_col: str | None
    max_record_lines: int = CorpusConfig.max_record_lines

    @property
    def rule(self) -> RecordRule:
        """How this corpus' text splits into records (see :mod:`pipeline.text_records`)."""
        return RecordRule(quoted=self.format in ("webvid", "csv"),
                          columns=len(self.header) if self.header else None,
                          max_lines=self.max_record_lines)


def check_corpus_path(path: str) -> None:
    """Raise ``ValueError`` (one clear line) unless ``path`` is a corpus file we can read."""
    if "://" in path or any(ch in path for ch in "*?["):  # remote or a Parquet pattern
        if not FileSystems.match([path])[0].metadata_list:
            raise FileNotFoundError(f"corpus file not found: {path}")
        return
    if not os.path.exists(path):
        raise FileNotFoundError(f"corpus file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"corpus {path} is a directory; pass the corpus file itself")
    try:
        with open(path, "rb") as fh:
            fh.read(1)
    except OSError as exc:
        raise ValueError(f"cannot read corpus {path}: {exc.strerror or exc}") from None


def _header_line(path: str) -> str:
    """The first line of a text corpus, decoded; ``ValueError`` for CR-only line endings."""
    with FileSystems.open(path) as fh:
        sample = fh.read(_SAMPLE_BYTES)
    first = sample.split(b"\n", 1)[0]
    if b"\r" in first.rstrip(b"\r"):
        raise ValueError(f"{path}: the first line holds a carriage return (CR) that does not end "
                         "it: CR-only (classic Mac) line endings are not supported; convert them "
                         "to LF, e.g. tr '\\r' '\\n' < IN > OUT")
    try:
        return first.decode("utf-8-sig").rstrip("\r")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: the header line is not UTF-8") from exc


def _check_parquet_columns(path: str, layout: CorpusLayout) -> None:
    """Caption and media columns must be strings, the id column strings or integers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = plan_parquet(path)
    if not first:
        return
    with FileSystems.open(first[0][0]) as fh:
        schema = pq.read_schema(fh)
    text = (pa.types.is_string, pa.types.is_large_string)
    wanted = [(layout.caption_col, "--caption-col", text, "a string")]
    if layout.media_col:
        wanted.append((layout.media_col, "--media-col", text, "a string"))
    if layout.id_col:
        wanted.append((layout.id_col, "--id-col", text + (pa.types.is_integer,),
                       "a string or an integer"))
    for col, what, checks, expected in wanted:
        if col not in schema.names:
            raise ValueError(f"{path}: column {col!r} ({what}) not in {schema.names}")
        kind = schema.field(col).type
        if pa.types.is_dictionary(kind):
            kind = kind.value_type
        if not any(check(kind) for check in checks):
            raise ValueError(f"{path}: column {col!r} ({what}) has type {kind}; it must be "
                             f"{expected} (values are never converted)")


def inspect_corpus(path: str, cfg: CorpusConfig) -> CorpusLayout:
    """Validate the corpus header against the format and options; raise ``ValueError`` clearly."""
    fmt = cfg.format
    if fmt not in FORMATS:
        raise ValueError(f"unknown corpus format {fmt!r}; choose one of {', '.join(FORMATS)}")
    check_corpus_path(path)
    lines = cfg.max_record_lines
    if fmt == "parquet":
        layout = CorpusLayout(fmt, None, cfg.id_col, cfg.caption_col or "caption", cfg.media_col)
        _check_parquet_columns(path, layout)
        return layout
    header_line = _header_line(path)  # also refuses CR-only line endings
    if fmt == "cc3m":
        return CorpusLayout(fmt, None, cfg.id_col, "caption", None, lines)
    if fmt == "jsonl":
        return CorpusLayout(fmt, None, cfg.id_col, cfg.caption_col or "caption", cfg.media_col, lines)
    try:
        header = tuple(h.strip() for h in split_csv_record(header_line))
    except csv.Error as exc:
        raise ValueError(f"{path}: the header line is not valid CSV ({exc})") from None
    if fmt == "webvid":
        missing = [c for c in WEBVID_REQUIRED if c not in header]
        if missing:
            raise ValueError(f"{path}: WebVid CSV lacks column(s) {missing}; header is {list(header)}")
        return CorpusLayout(fmt, header, "videoid", "name", None, lines)
    caption_col = cfg.caption_col or "caption"
    for col, what in ((caption_col, "--caption-col"), (cfg.id_col, "--id-col"),
                      (cfg.media_col, "--media-col")):
        if col is not None and col not in header:
            raise ValueError(f"{path}: column {col!r} ({what}) not in header {list(header)}")
    return CorpusLayout(fmt, header, cfg.id_col, caption_col, cfg.media_col, lines)


def unit_records(unit: Any, rule: RecordRule) -> Iterator[RawRecord]:
    """Records of one read unit: a :class:`TextChunk`, or a Parquet ``(file, row_group,
    first_row)`` (whose rows have no line number and span one row)."""
    if isinstance(unit, TextChunk):
        return text_chunk_records(unit, rule)
    return (RawRecord(row, values, None, 1) for row, values in row_group_rows(unit))


def unit_first_row(unit: Any) -> int:
    """Row number of a read unit's first row."""
    return unit.first_row if isinstance(unit, TextChunk) else unit[2]


def _parse_bool(value: Any) -> bool | None:
    """A flag column (``r18``): parsed like metadata flags; unparseable values are unknown."""
    from pipeline.corpus.metadata import parse_flag

    try:
        return parse_flag(value)
    except ValueError:
        return None


def _parse_float(value: Any) -> float | None:
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


_ISO_DURATION = re.compile(r"^P(?:T)?(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$")


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or an ISO-8601 duration such as WebVid's ``PT00H00M30S``."""
    text = value.strip() if isinstance(value, str) else value
    if not (isinstance(text, str) and text.startswith("P")):  # float() never parses "P..."
        return _parse_float(value)
    match = _ISO_DURATION.match(text)
    if not match or not any(match.groups()):
        return None
    h, m, s = (float(g) if g else 0.0 for g in match.groups())
    return h * 3600 + m * 60 + s


def _text(value: Any, key: str, ids: bool = False) -> str | None:
    """A column's text; an id column may also hold an integer. Any other type (a JSON list or
    number, bytes) raises ``TypeError``: values are never converted with ``str()``."""
    if value is None or isinstance(value, str):
        return value
    if ids and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    expected = "a string or an integer" if ids else "a string"
    raise TypeError(f"column {key!r} holds {type(value).__name__} {json.dumps(value, default=repr)[:60]}"
                    f", expected {expected}")


class ParseRows(beam.DoFn):
    """Row parsing shared by the read steps: raw row -> record, or a reject row with a reason
    (:meth:`parse`, :meth:`_reject`); :class:`ParseUnit` applies it to whole read units."""

    def __init__(self, stage: str, layout: CorpusLayout):
        self.stage = stage
        self.layout = layout

    def setup(self):
        self._input = counter(self.stage, "input")
        self._drops: dict[str, Any] = {}
        self._progress = Progress(self.stage, "rows")

    def _reject(self, reason: str, detail: str, record: RawRecord, shown: Any):
        if reason not in self._drops:
            self._drops[reason] = drop_counter(self.stage, reason)
        self._drops[reason].inc()
        if isinstance(shown, bytes):
            shown = shown.decode("utf-8", errors="replace")
        where = {"row": record.row, "raw": shown}
        if record.line is not None:
            where.update(line=record.line, lines=record.lines)
        return beam.pvalue.TaggedOutput(
            REJECTS_TAG, reject_row(self.stage, Drop(reason, detail), record.row, where))

    def parse(self, row: int, raw: Any) -> tuple[dict | None, tuple[str, str] | None, Any]:
        """``(record, None, None)``, or ``(None, (reason, detail), what to show in the reject)``.

        Pure (no counting): the verdict depends only on the row."""
        fields, problem = self._fields(raw)
        if problem:
            return None, problem, raw
        record, problem = self._record(row, fields)
        if problem:
            return None, problem, fields
        return record, None, None

    # --- raw -> dict of columns -----------------------------------------------------------------
    def _fields(self, raw: Any) -> tuple[dict | None, tuple[str, str] | None]:
        lay = self.layout
        if lay.format == "parquet":
            return raw, None
        if not raw.strip():
            return None, ("blank_line", "line is empty")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, ("undecodable", f"not UTF-8: {exc.reason} at byte {exc.start}")
        if lay.format == "jsonl":
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as exc:
                return None, ("bad_json", str(exc))
            if not isinstance(obj, dict):
                return None, ("bad_json", "line is not a JSON object")
            return obj, None
        if lay.format == "cc3m":
            values = text.split("\t")
            if len(values) not in (2, 3):
                return None, ("bad_column_count", f"{len(values)} columns, expected 2 (caption, url)")
            names = ("caption", "url", "id")[: len(values)]
            return dict(zip(names, values)), None
        if text.count('"') % 2:
            return None, ("bad_quotes", f"odd number of '\"': a quoted field opened here is not "
                          f"closed by a well-formed record within {lay.max_record_lines} lines; "
                          "only this line is rejected")
        try:
            values = split_csv_record(text)
        except csv.Error as exc:
            return None, ("bad_quotes", f"malformed CSV quoting: {exc}")
        if len(values) != len(lay.header):
            return None, ("bad_column_count",
                          f"{len(values)} columns, header has {len(lay.header)}")
        return dict(zip(lay.header, values)), None

    # --- dict -> record -------------------------------------------------------------------------
    def _record(self, row: int, f: dict) -> tuple[dict | None, tuple[str, str] | None]:
        try:
            return self._typed_record(row, f)
        except TypeError as exc:
            return None, ("wrong_type", str(exc))

    def _typed_record(self, row: int, f: dict) -> tuple[dict | None, tuple[str, str] | None]:
        lay = self.layout
        caption = _text(f.get(lay.caption_col), lay.caption_col)
        extra_keys = set(f)
        rec: dict[str, Any] = {"row": row, "url": None, "path": None, "page_dir": None,
                               "videoid": None, "duration": None, "mature": None}
        if lay.format == "webvid":
            videoid, page_dir = f.get("videoid", "").strip(), f.get("page_dir", "").strip()
            if not videoid or not page_dir:
                return None, ("missing_id", "videoid or page_dir is empty")
            rec.update(media_id=f"{page_dir}/{videoid}", videoid=videoid, page_dir=page_dir,
                       url=f.get("contentUrl"), duration=parse_duration(f.get("duration")))
            extra_keys -= {"videoid", "page_dir", "contentUrl", "duration", "name"}
        else:
            media_id = str(row)
            if lay.id_col is not None or (lay.format == "cc3m" and "id" in f):
                key = lay.id_col or "id"
                media_id = (_text(f.get(key), key, ids=True) or "").strip()
                if not media_id:
                    return None, ("missing_id", f"id column {key!r} is empty")
                extra_keys.discard(key)
            rec["media_id"] = media_id
            if "url" in f:
                rec["url"] = _text(f.get("url"), "url")
                extra_keys.discard("url")
            if lay.media_col is not None:
                rec["path"] = _text(f.get(lay.media_col), lay.media_col)
                extra_keys.discard(lay.media_col)
            extra_keys.discard(lay.caption_col)
        if "r18" in f:
            rec["mature"] = _parse_bool(f.get("r18"))
            extra_keys.discard("r18")
        caption = (caption or "").strip()
        normalized = normalize(caption)
        if not normalized:
            return None, ("empty_caption", "caption has no words")
        rec.update(caption=caption, normalized=normalized, caption_id=caption_id(normalized))
        extra = {k: f[k] for k in sorted(extra_keys)}
        rec["extra"] = json.dumps(extra, default=str, ensure_ascii=False) if extra else None
        return rec, None


class FindDuplicateRows(beam.DoFn):
    """``(media_id, rows)`` -> ``(unit_index, (row, first_row, media_id))`` for every row after
    the first of a media id (the unit is the read unit holding that row)."""

    def __init__(self, first_rows: list[int]):
        self.first_rows = first_rows

    def process(self, element: tuple[str, Any]):
        media_id, rows = element
        rows = sorted(rows)
        for row in rows[1:]:
            yield bisect.bisect_right(self.first_rows, row) - 1, (row, rows[0], media_id)


IDS_TAG = "media_ids"


def unit_records_path(scratch: str, unit_index: int) -> str:
    """Scratch file holding the parsed records of read unit ``unit_index``."""
    return FileSystems.join(scratch, f"unit-{unit_index:06d}.records.pkl")


class ParseUnit(ParseRows):
    """Pass 1 over one read unit ``(unit_index, unit)``: parse every record once. Bad records
    go to the ``rejects`` output, ``(media_id, row)`` of every good one to the ``media_ids``
    output; the records are saved to the unit's scratch file, and the main output is
    ``(unit_index, number of records)`` once that file is complete. Counts the unit's lines
    (as planned) and the lines its records span (see :meth:`ReadStage.count_problem`)."""

    def __init__(self, stage: str, layout: CorpusLayout, scratch: str):
        super().__init__(stage, layout)
        self.scratch = scratch

    def setup(self):
        super().setup()
        self._lines = info_counter(self.stage, LINES)
        self._multiline = info_counter(self.stage, MULTILINE_RECORDS)
        self._continuation = info_counter(self.stage, CONTINUATION_LINES)

    def process(self, element: tuple[int, Any]):
        index, unit = element
        if isinstance(unit, TextChunk):
            self._lines.inc(unit.lines)
        records = []
        for raw in unit_records(unit, self.layout.rule):
            row = raw.row
            self._input.inc()
            self._progress.tick()
            if raw.lines > 1:
                self._multiline.inc()
                self._continuation.inc(raw.lines - 1)
            record, problem, shown = self.parse(row, raw.data)
            if problem:
                yield self._reject(problem[0], problem[1], raw, shown)
                continue
            records.append(record)
            yield beam.pvalue.TaggedOutput(IDS_TAG, (record["media_id"], row))
        write_objects(unit_records_path(self.scratch, index), records)
        yield index, len(records)


class EmitUniqueRecords(beam.DoFn):
    """Pass 2 over one read unit: load the records :class:`ParseUnit` saved, keep each media id's
    first row, reject the others as ``duplicate_id``."""

    def __init__(self, stage: str, scratch: str):
        self.stage = stage
        self.scratch = scratch

    def setup(self):
        self._kept = counter(self.stage, KEPT)
        self._dup = drop_counter(self.stage, "duplicate_id")

    def process(self, element: tuple[int, dict]):
        index, grouped = element
        expected = list(grouped["parsed"])
        if len(expected) != 1:
            raise RuntimeError(f"read unit {index}: {len(expected)} parse results, expected 1")
        records = read_objects(unit_records_path(self.scratch, index))
        if len(records) != expected[0]:
            raise RuntimeError(f"read unit {index}: scratch file has {len(records)} records, "
                               f"the parse pass wrote {expected[0]}")
        duplicates = {row: (first, media_id) for row, first, media_id in grouped["dups"]}
        for record in records:
            row = record["row"]
            if row in duplicates:
                first, media_id = duplicates[row]
                self._dup.inc()
                yield beam.pvalue.TaggedOutput(REJECTS_TAG, reject_row(
                    self.stage, Drop("duplicate_id", f"media id {media_id!r} first seen at "
                                     f"row {first}"), row, record))
                continue
            self._kept.inc()
            yield record


class ReadCorpus(beam.PTransform):
    """Composite source: corpus file -> ``(records, rejects)``."""

    def __init__(self, path: str, cfg: CorpusConfig, scratch: str, stage: str = "read",
                 chunk_bytes: int = 16 << 20):
        """``scratch``: an empty folder every worker can reach (the stage's staging folder)
        where the parse pass leaves each unit's records for the dedup pass."""
        super().__init__()
        self.path = path
        self.cfg = cfg
        self.scratch = scratch
        self.stage = stage
        self.chunk_bytes = chunk_bytes
        self.layout = inspect_corpus(path, cfg)

    def expand(self, pbegin):
        lay = self.layout
        if lay.format == "parquet":
            plan = plan_parquet(self.path)
        else:
            plan = plan_text_chunks(self.path, skip_header=lay.header is not None, rule=lay.rule,
                                    chunk_bytes=self.chunk_bytes)
        units = (pbegin | "PlanUnits" >> beam.Create(list(enumerate(plan)))
                 | "SpreadUnits" >> beam.Reshuffle())
        # pass 1: parse once, reject bad rows, save records; only (media id, row) pairs are shuffled
        parsed = units | "ParseUnits" >> beam.ParDo(
            ParseUnit(self.stage, lay, self.scratch)).with_outputs(
                REJECTS_TAG, IDS_TAG, main="parsed")
        duplicates = (parsed[IDS_TAG]
                      | "GroupByMediaId" >> GroupByKeyInBuckets()
                      | "DuplicateRows" >> beam.ParDo(
                          FindDuplicateRows([unit_first_row(u) for u in plan])))
        # pass 2: each unit's saved records (keyed by the parse result, so the file exists),
        # with the rows to reject as duplicates
        unique = ({"parsed": parsed.parsed, "dups": duplicates}
                  | "UnitsWithDuplicates" >> beam.CoGroupByKey()
                  | "UniqueRecords" >> beam.ParDo(EmitUniqueRecords(self.stage, self.scratch))
                  .with_outputs(REJECTS_TAG, main="records"))
        rejects = (parsed[REJECTS_TAG], unique[REJECTS_TAG]) | "AllRejects" >> beam.Flatten()
        return unique.records, rejects


def corpus_fingerprint(path: str) -> str:
    """Identity of a corpus: SHA-256 of its bytes (all files, for a Parquet pattern)."""
    import hashlib

    h = hashlib.sha256()
    files = sorted(m.path for m in FileSystems.match([path])[0].metadata_list)
    if not files:
        raise FileNotFoundError(f"corpus file not found: {path}")
    for f in files:
        h.update(Path(f).name.encode() + b"\0")
        with FileSystems.open(f) as fh:
            for block in iter(lambda: fh.read(8 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]
