"""A corpus' layout: which format, which header and columns, decided once on the launching
machine before any worker starts (:func:`inspect_corpus`), plus the checks and the fingerprint of
a corpus path. Everything a user can get wrong about the corpus file is a ``ValueError`` (or
``FileNotFoundError``) with one clear line here.
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from apache_beam.io.filesystems import FileSystems

from covr_datagen.pipeline.config import CORPUS_FORMATS, CorpusConfig
from covr_datagen.pipeline.core.tables import plan_parquet
from covr_datagen.pipeline.corpus.records import RecordRule, split_csv_record

FORMATS = CORPUS_FORMATS
WEBVID_REQUIRED = ("videoid", "page_dir", "name")
#: bytes read to find the header line and the line-ending style
_SAMPLE_BYTES = 1 << 20


@dataclass(frozen=True)
class CorpusLayout:
    """What the parser needs to know about the corpus, decided once on the driver."""

    format: str
    header: tuple[str, ...] | None
    id_col: str | None
    caption_col: str
    media_col: str | None
    max_record_lines: int = CorpusConfig.max_record_lines
    description_col: str | None = None  # long description of each media item (--description-col)

    @property
    def rule(self) -> RecordRule:
        """How this corpus' text splits into records (see :mod:`covr_datagen.pipeline.corpus.records`)."""
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
    if layout.description_col:
        wanted.append((layout.description_col, "--description-col", text, "a string"))
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
    lines, described = cfg.max_record_lines, cfg.description_col
    if fmt == "parquet":
        layout = CorpusLayout(fmt, None, cfg.id_col, cfg.caption_col or "caption", cfg.media_col,
                              description_col=described)
        _check_parquet_columns(path, layout)
        return layout
    header_line = _header_line(path)  # also refuses CR-only line endings
    if fmt == "cc3m":
        if described:
            raise ValueError("--description-col needs a corpus with named columns; the cc3m "
                             "format has none (use --format csv, jsonl or parquet)")
        return CorpusLayout(fmt, None, cfg.id_col, "caption", None, lines)
    if fmt == "jsonl":  # no header: a row without the description column has none
        return CorpusLayout(fmt, None, cfg.id_col, cfg.caption_col or "caption", cfg.media_col, lines,
                            described)
    try:
        header = tuple(h.strip() for h in split_csv_record(header_line))
    except csv.Error as exc:
        raise ValueError(f"{path}: the header line is not valid CSV ({exc})") from None
    if described is not None and described not in header:
        raise ValueError(f"{path}: column {described!r} (--description-col) not in header {list(header)}")
    if fmt == "webvid":
        missing = [c for c in WEBVID_REQUIRED if c not in header]
        if missing:
            raise ValueError(f"{path}: WebVid CSV lacks column(s) {missing}; header is {list(header)}")
        return CorpusLayout(fmt, header, "videoid", "name", None, lines, described)
    caption_col = cfg.caption_col or "caption"
    for col, what in ((caption_col, "--caption-col"), (cfg.id_col, "--id-col"),
                      (cfg.media_col, "--media-col")):
        if col is not None and col not in header:
            raise ValueError(f"{path}: column {col!r} ({what}) not in header {list(header)}")
    return CorpusLayout(fmt, header, cfg.id_col, caption_col, cfg.media_col, lines, described)


def corpus_fingerprint(path: str) -> str:
    """Identity of a corpus: SHA-256 of its bytes (all files, for a Parquet pattern)."""
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
