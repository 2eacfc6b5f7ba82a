"""Media id -> file path, through a configurable template.

Defaults by media kind: video ``{media_root}/{page_dir}/{videoid}.mp4`` (WebVid layout), image
``{media_root}/{media_id}.jpg``. A record's own ``path`` (``--media-col``) wins; a relative path
is taken under ``media_root``. Template fields: ``media_root``, ``media_id``, ``page_dir``,
``videoid`` and any key of the record.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

DEFAULT_TEMPLATES = {
    "video": "{media_root}/{page_dir}/{videoid}.mp4",
    "image": "{media_root}/{media_id}.jpg",
}


def path_template(kind: str, template: str | None = None) -> str:
    """The template in force for ``kind`` (explicit one first)."""
    if template:
        return template
    if kind not in DEFAULT_TEMPLATES:
        raise ValueError(f"unknown media kind {kind!r}; use video or image")
    return DEFAULT_TEMPLATES[kind]


def resolve_media_path(record: Mapping[str, Any], media_root: str | None, kind: str,
                       template: str | None = None) -> str:
    """Where the media file of ``record`` (a RECORDS row) is expected to be."""
    explicit = record.get("path")
    if explicit:
        if media_root and not os.path.isabs(explicit) and "://" not in explicit:
            return os.path.join(media_root, explicit)
        return explicit
    fields = {k: ("" if v is None else v) for k, v in record.items()}
    fields["media_root"] = media_root or "."
    try:
        return path_template(kind, template).format(**fields)
    except KeyError as exc:
        raise ValueError(f"media path template {path_template(kind, template)!r} uses {exc}, "
                         f"which records do not have") from exc
