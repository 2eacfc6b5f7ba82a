"""Mature content, by a metadata flag (e.g. CleanVid-15M's ``r18``) carried in the record."""

from __future__ import annotations

from typing import Any, Mapping

from covr_datagen.filters.base import Drop, Filter


class MatureFilter(Filter):
    """Drop records whose ``mature`` flag is true; unknown (null) is kept."""

    name = "mature"

    def __init__(self, flag_key: str = "mature"):
        self.flag_key = flag_key

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        if item.get(self.flag_key) is True:
            return self.drop(f"{self.flag_key} flag set")
        return None
