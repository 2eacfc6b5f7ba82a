"""Corpus readers as Beam sources: WebVid CSV, Conceptual-Captions TSV, generic CSV/JSONL/Parquet.

Text files are split into byte ranges at line boundaries by :func:`plan_text_chunks` (one pass
counting newlines, so every line keeps its row number), Parquet files into row groups; these read
units are spread over the workers. Each row is parsed by :class:`ParseRows` into a record (schema
``schemas.RECORDS``) or a reject row with a reason. Duplicate media ids are found by shuffling
only ``(media_id, row)`` pairs (:class:`FindDuplicateRows`): :class:`ParseUnit` parses each unit
once and saves its records to a scratch file in the stage's staging folder
(:mod:`pipeline.scratch`); :class:`EmitUniqueRecords` loads that file, keeps each media id's first
row and rejects the others — whole records are never shuffled (at 2M rows that shuffle held
~7 GB in the local runner's process), and no row is parsed twice. One physical line is one
row: a quoted field spanning lines is rejected as a bad row, never silently joined.

Reasons: ``blank_line``, ``undecodable``, ``bad_column_count``, ``bad_json``, ``missing_id``,
``empty_caption`` (no words after normalisation), ``duplicate_id``.
"""

from __future__ import annotations

import bisect
import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from filters.base import Drop
from pipeline.config import CorpusConfig
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
    reject_row,
)

FORMATS = ("webvid", "cc3m", "csv", "jsonl", "parquet")
WEBVID_REQUIRED = ("videoid", "page_dir", "name")


@dataclass(frozen=True)
class TextChunk:
    """Byte range ``[start, end)`` of a text file whose first line is data row ``first_row``."""

    path: str
    start: int
    end: int
    first_row: int


@dataclass(frozen=True)
class CorpusLayout:
    """What the parser needs to know about the corpus, decided once on the driver."""

    format: str
    header: tuple[str, ...] | None
    id_col: str | None
    caption_col: str
    media_col: str | None
    delimiter: str = ","


def _read_first_line(path: str) -> bytes:
    with FileSystems.open(path) as fh:
        return fh.readline()


def inspect_corpus(path: str, cfg: CorpusConfig) -> CorpusLayout:
    """Validate the corpus header against the format and options; raise ``ValueError`` clearly."""
    fmt = cfg.format
    if fmt not in FORMATS:
        raise ValueError(f"unknown corpus format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"corpus file not found: {path}")
    if fmt == "cc3m":
        return CorpusLayout(fmt, None, cfg.id_col, "caption", None, "\t")
    if fmt in ("jsonl", "parquet"):
        return CorpusLayout(fmt, None, cfg.id_col, cfg.caption_col or "caption", cfg.media_col)
    first = _read_first_line(path)
    try:
        header_line = first.decode("utf-8-sig").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: the header line is not UTF-8") from exc
    header = tuple(h.strip() for h in next(csv.reader([header_line])))
    if fmt == "webvid":
        missing = [c for c in WEBVID_REQUIRED if c not in header]
        if missing:
            raise ValueError(f"{path}: WebVid CSV lacks column(s) {missing}; header is {list(header)}")
        return CorpusLayout(fmt, header, "videoid", "name", None)
    caption_col = cfg.caption_col or "caption"
    for col, what in ((caption_col, "--caption-col"), (cfg.id_col, "--id-col"),
                      (cfg.media_col, "--media-col")):
        if col is not None and col not in header:
            raise ValueError(f"{path}: column {col!r} ({what}) not in header {list(header)}")
    return CorpusLayout(fmt, header, cfg.id_col, caption_col, cfg.media_col)


def record_ends(data: bytes, quoted: bool) -> np.ndarray:
    """Offsets of the newline bytes that end records in ``data`` (which starts at a record).

    With ``quoted`` (CSV), a newline inside double quotes belongs to the field, so only newlines
    preceded by an even number of ``"`` bytes end a record (RFC 4180 quoting; ``""`` escapes
    count twice and keep the parity).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    if not quoted or len(newlines) == 0:
        return newlines
    quotes_before = np.searchsorted(np.flatnonzero(buf == 34), newlines)
    return newlines[(quotes_before & 1) == 0]


def plan_text_chunks(path: str, skip_header: bool, quoted: bool,
                     chunk_bytes: int = 16 << 20) -> list[TextChunk]:
    """Split a text file into record-aligned byte ranges, each knowing its first row number.

    One sequential pass over the file (vectorised), so row numbers are exact even when quoted
    CSV fields contain newlines.
    """
    chunks: list[TextChunk] = []
    with FileSystems.open(path) as fh:
        start = 0
        if skip_header:
            header = fh.readline()
            start = len(header)
            fh.seek(start)
        row = 0
        pending = b""
        pending_start = start
        while True:
            block = fh.read(chunk_bytes)
            data = pending + block
            if not block:
                if data:
                    chunks.append(TextChunk(path, pending_start, pending_start + len(data), row))
                break
            ends = record_ends(data, quoted)
            if len(ends) == 0:
                pending = data
                continue
            cut = int(ends[-1]) + 1
            chunks.append(TextChunk(path, pending_start, pending_start + cut, row))
            row += len(ends)
            pending = data[cut:]
            pending_start += cut
    return chunks


def text_chunk_rows(chunk: TextChunk, quoted: bool) -> Iterator[tuple[int, bytes]]:
    """``(row_number, raw_record_bytes)`` for every record of a :class:`TextChunk`."""
    with FileSystems.open(chunk.path) as fh:
        fh.seek(chunk.start)
        data = fh.read(chunk.end - chunk.start)
    ends = record_ends(data, quoted).tolist()
    if not data.endswith(b"\n"):
        ends.append(len(data))
    prev = 0
    for offset, end in enumerate(ends):
        yield chunk.first_row + offset, data[prev:end].rstrip(b"\r")
        prev = end + 1


def unit_rows(unit: Any, quoted: bool) -> Iterator[tuple[int, Any]]:
    """Rows of one read unit: a :class:`TextChunk`, or a Parquet ``(file, row_group, first_row)``."""
    if isinstance(unit, TextChunk):
        return text_chunk_rows(unit, quoted)
    return row_group_rows(unit)


def unit_first_row(unit: Any) -> int:
    """Row number of a read unit's first row."""
    return unit.first_row if isinstance(unit, TextChunk) else unit[2]


def _parse_bool(value: Any) -> bool | None:
    """A flag column (``r18``): parsed like metadata flags; unparseable values are unknown."""
    from pipeline.metadata import parse_flag

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


#: characters after which a CSV record needs the csv module (quotes, line breaks, NUL)
_CSV_SPECIAL = ('"', "\r", "\n", "\x00")


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else str(value)


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

    def _reject(self, reason: str, detail: str, row: int, raw: Any):
        if reason not in self._drops:
            self._drops[reason] = drop_counter(self.stage, reason)
        self._drops[reason].inc()
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", errors="replace")
        return beam.pvalue.TaggedOutput(
            REJECTS_TAG, reject_row(self.stage, Drop(reason, detail), row, {"row": row, "raw": raw}))

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
        if not any(ch in text for ch in _CSV_SPECIAL):  # nothing quoted: csv would split on ","
            values = text.split(",")
        else:
            try:
                values = next(csv.reader(io.StringIO(text, newline=""), strict=True))
            except (csv.Error, StopIteration) as exc:
                return None, ("bad_column_count", f"unparseable CSV record: {exc}")
        if len(values) != len(lay.header):
            return None, ("bad_column_count",
                          f"{len(values)} columns, header has {len(lay.header)}")
        return dict(zip(lay.header, values)), None

    # --- dict -> record -------------------------------------------------------------------------
    def _record(self, row: int, f: dict) -> tuple[dict | None, tuple[str, str] | None]:
        lay = self.layout
        caption = _text(f.get(lay.caption_col))
        extra_keys = set(f)
        rec: dict[str, Any] = {"row": row, "url": None, "path": None, "page_dir": None,
                               "videoid": None, "duration": None, "mature": None}
        if lay.format == "webvid":
            videoid, page_dir = (_text(f.get("videoid")) or "").strip(), (
                _text(f.get("page_dir")) or "").strip()
            if not videoid or not page_dir:
                return None, ("missing_id", "videoid or page_dir is empty")
            rec.update(media_id=f"{page_dir}/{videoid}", videoid=videoid, page_dir=page_dir,
                       url=_text(f.get("contentUrl")), duration=parse_duration(f.get("duration")))
            extra_keys -= {"videoid", "page_dir", "contentUrl", "duration", "name"}
        else:
            media_id = str(row)
            if lay.id_col is not None or (lay.format == "cc3m" and "id" in f):
                key = lay.id_col or "id"
                media_id = (_text(f.get(key)) or "").strip()
                if not media_id:
                    return None, ("missing_id", f"id column {key!r} is empty")
                extra_keys.discard(key)
            rec["media_id"] = media_id
            if "url" in f:
                rec["url"] = _text(f.get("url"))
                extra_keys.discard("url")
            if lay.media_col is not None:
                rec["path"] = _text(f.get(lay.media_col))
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
    """Pass 1 over one read unit ``(unit_index, unit)``: parse every row once. Bad rows go to the
    ``rejects`` output, ``(media_id, row)`` of every record to the ``media_ids`` output; the
    records are saved to the unit's scratch file, and the main output is ``(unit_index,
    number of records)`` once that file is complete."""

    def __init__(self, stage: str, layout: CorpusLayout, quoted: bool, scratch: str):
        super().__init__(stage, layout)
        self.quoted = quoted
        self.scratch = scratch

    def process(self, element: tuple[int, Any]):
        index, unit = element
        records = []
        for row, raw in unit_rows(unit, self.quoted):
            self._input.inc()
            self._progress.tick()
            record, problem, shown = self.parse(row, raw)
            if problem:
                yield self._reject(problem[0], problem[1], row, shown)
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
        quoted = lay.format in ("webvid", "csv")
        if lay.format == "parquet":
            plan = plan_parquet(self.path)
        else:
            plan = plan_text_chunks(self.path, skip_header=lay.header is not None, quoted=quoted,
                                    chunk_bytes=self.chunk_bytes)
        units = (pbegin | "PlanUnits" >> beam.Create(list(enumerate(plan)))
                 | "SpreadUnits" >> beam.Reshuffle())
        # pass 1: parse once, reject bad rows, save records; only (media id, row) pairs are shuffled
        parsed = units | "ParseUnits" >> beam.ParDo(
            ParseUnit(self.stage, lay, quoted, self.scratch)).with_outputs(
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
