"""Field parsing of one corpus record: raw bytes (text formats) or a dict (Parquet) -> a
``records`` row (schema ``schemas.RECORDS``), or the reason it is not one.

Reasons: ``blank_line``, ``undecodable``, ``bad_quotes`` (unbalanced or misplaced ``"``),
``bad_column_count``, ``bad_json``, ``wrong_type`` (a JSONL value that is not a string),
``missing_id``, ``empty_caption`` (no words after normalisation).
"""

from __future__ import annotations

import csv
import json
import re
from typing import Any

from covr_datagen.pipeline.corpus.layout import CorpusLayout
from covr_datagen.pipeline.corpus.records import split_csv_record
from covr_datagen.pipeline.text.normalize import caption_id, normalize


def _parse_bool(value: Any) -> bool | None:
    """A flag column (``r18``): parsed like metadata flags; unparseable values are unknown."""
    from covr_datagen.pipeline.corpus.metadata import parse_flag

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


class RowParser:
    """Raw row of a corpus with a known :class:`CorpusLayout` -> record, or the reason it is not
    one (:meth:`parse`). Pure: the verdict depends only on the row."""

    def __init__(self, layout: CorpusLayout):
        self.layout = layout

    def parse(self, row: int, raw: Any) -> tuple[dict | None, tuple[str, str] | None, Any]:
        """``(record, None, None)``, or ``(None, (reason, detail), what to show in the reject)``."""
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
        if lay.description_col is not None:
            description = _text(f.get(lay.description_col), lay.description_col)
            rec["description"] = (description or "").strip() or None  # empty: no description
            extra_keys.discard(lay.description_col)
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
