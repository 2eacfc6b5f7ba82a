"""How a text corpus splits into records, and how a CSV record splits into fields.

The record rule (the read stage's guarantee about malformed input, docs/DATASETS.md):

* Lines end with ``\\n`` (a ``\\r`` right before it belongs to the line ending). A bare ``\\r``
  elsewhere is an ordinary character of its field.
* Unquoted formats (``cc3m``, ``jsonl``): one line is one record.
* Quoted formats (``webvid``, ``csv``): a line with an even number of ``"`` is one record. A line
  with an odd number opens a quoted field that goes on to the next line; the record then ends at
  the next line with an odd number of ``"``, provided that line is at most ``max_lines - 1``
  lines further on and the joined lines are exactly one well-formed CSV record with the
  header's number of fields. Otherwise the opening line alone is the record (the parser rejects
  it for its unbalanced quotes) and the next record starts on the following line.

So a malformed line costs that line (with a reject saying why), never the lines after it, and
no record spans more than ``max_lines`` lines. The rule only looks ahead from lines with an
odd number of quotes, so well-formed files are split by a few vectorised passes.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np
from apache_beam.io.filesystems import FileSystems

from covr_datagen.pipeline.config import CorpusConfig

NEWLINE, QUOTE = 10, 34


@dataclass(frozen=True)
class RecordRule:
    """What decides record boundaries: quoting, fields per CSV record, longest record in lines."""

    quoted: bool
    columns: int | None = None  # fields a multi-line CSV record must have (None: any number)
    max_lines: int = CorpusConfig.max_record_lines

    def closes_record(self, candidate: bytes) -> bool:
        """Whether ``candidate`` (lines joined by ``\\n``) is one well-formed CSV record."""
        text = candidate.rstrip(b"\r").decode("utf-8", errors="replace")  # structure only
        try:
            fields = split_csv_record(text)
        except csv.Error:
            return False
        return self.columns is None or len(fields) == self.columns


@dataclass(frozen=True)
class TextChunk:
    """Byte range ``[start, end)`` of a text file holding whole records: its first record is
    data row ``first_row`` and starts on file line ``first_line`` (1-based, header included);
    ``lines`` is the number of lines in the range."""

    path: str
    start: int
    end: int
    first_row: int
    first_line: int
    lines: int


class RawRecord(NamedTuple):
    """One record of a text chunk: row number, bytes, first file line, lines it spans."""

    row: int
    data: bytes
    line: int
    lines: int


def _stand_in(text: str) -> str:
    """A private-use character absent from ``text`` (stands for ``\\r`` while csv parses)."""
    return next(chr(c) for c in range(0xE000, 0xF900) if chr(c) not in text)


def split_csv_record(text: str) -> list[str]:
    """Fields of exactly one CSV record (RFC 4180 quoting, a bare ``\\r`` is an ordinary
    character); raises ``csv.Error`` when ``text`` is not exactly one well-formed record."""
    if '"' not in text:  # nothing quoted: the csv module would split on "," too
        return text.split(",")
    stand_in = _stand_in(text) if "\r" in text else None
    if stand_in:
        text = text.replace("\r", stand_in)
    rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    if len(rows) != 1:
        raise csv.Error(f"{len(rows)} records where one was expected (a line break outside quotes)")
    fields = rows[0]
    return [f.replace(stand_in, "\r") for f in fields] if stand_in else fields


def line_ends(data: bytes, final: bool) -> np.ndarray:
    """Offsets where the lines of ``data`` end: each ``\\n``, plus ``len(data)`` for a last line
    without one when ``final`` (the end of the file)."""
    ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == NEWLINE)
    if final and data and data[-1] != NEWLINE:
        ends = np.append(ends, len(data))
    return ends


def record_ends(data: bytes, rule: RecordRule, final: bool = True) -> np.ndarray:
    """Offsets (from :func:`line_ends`) where the records of ``data`` end; ``data`` starts at a
    record. Unless ``final``, records whose end depends on lines after ``data`` are left out
    (with everything after them): read more and call again from the last returned end."""
    ends = line_ends(data, final)
    if not rule.quoted or len(ends) == 0:
        return ends
    quotes = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == QUOTE)
    if len(quotes) == 0:
        return ends
    per_line = np.diff(np.searchsorted(quotes, ends), prepend=0)
    odd = np.flatnonzero(per_line & 1).tolist()
    if not odd:
        return ends
    is_end = np.ones(len(ends), dtype=bool)
    k = 0
    while k < len(odd):
        first = odd[k]
        close = odd[k + 1] if k + 1 < len(odd) else None
        if close is None and not final and len(ends) - first < rule.max_lines:
            return ends[:first][is_end[:first]]  # the closing line may come in the next read
        if close is not None and close - first < rule.max_lines:
            start = int(ends[first - 1]) + 1 if first else 0
            if rule.closes_record(data[start:int(ends[close])]):
                is_end[first:close] = False
                k += 2
                continue
        k += 1  # the opening line alone is a record; its unbalanced quotes reject it
    return ends[is_end]


def plan_text_chunks(path: str, skip_header: bool, rule: RecordRule,
                     chunk_bytes: int = 16 << 20) -> list[TextChunk]:
    """Split a text file into record-aligned byte ranges, each knowing its first row and line.

    One sequential pass over the file (vectorised), so row and line numbers are exact.
    """
    chunks: list[TextChunk] = []
    with FileSystems.open(path) as fh:
        start = 0
        line = 1
        if skip_header:
            start = len(fh.readline())
            fh.seek(start)
            line = 2
        row = 0
        pending = b""
        while True:
            block = fh.read(chunk_bytes)
            data = pending + block
            final = not block
            ends = record_ends(data, rule, final=final)
            if len(ends) == 0:
                if final:
                    break
                pending = data
                continue
            cut = min(int(ends[-1]) + 1, len(data))
            lines = len(line_ends(data[:cut], final=True))
            chunks.append(TextChunk(path, start, start + cut, row, line, lines))
            row += len(ends)
            line += lines
            pending = data[cut:]
            start += cut
            if final:
                break
    return chunks


def text_chunk_records(chunk: TextChunk, rule: RecordRule) -> Iterator[RawRecord]:
    """Every record of a :class:`TextChunk`, without its line ending."""
    with FileSystems.open(chunk.path) as fh:
        fh.seek(chunk.start)
        data = fh.read(chunk.end - chunk.start)
    lines = line_ends(data, final=True)
    ends = record_ends(data, rule, final=True)
    last_lines = np.searchsorted(lines, ends).tolist()  # index of each record's last line
    prev, prev_line = 0, -1
    for offset, (end, last) in enumerate(zip(ends.tolist(), last_lines)):
        yield RawRecord(chunk.first_row + offset, data[prev:end].rstrip(b"\r"),
                        chunk.first_line + prev_line + 1, last - prev_line)
        prev, prev_line = end + 1, last
