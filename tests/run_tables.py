"""Test helper: compare two run directories table by table and stage count by stage count."""

from __future__ import annotations

from covr_datagen.pipeline.core.rundir import RunDir

TABLES = ("records", "captions", "mined_pairs", "caption_pairs", "media_embeddings", "media_pairs",
          "triplets")
_SORT_KEY = {"records": "row", "captions": "caption_id", "triplets": "triplet_id",
             "media_embeddings": "media_id"}


def assert_same_tables(a: RunDir, b: RunDir, tables: tuple[str, ...] = TABLES) -> list[str]:
    """Every table of ``tables`` that ``b`` has holds the same rows in ``a`` (order ignored);
    returns the names compared."""
    compared = []
    for table in tables:
        if not b.has_table(table):
            continue
        key = _SORT_KEY.get(table, "pair_id")
        ta, tb = a.read_table(table), b.read_table(table)
        sort = [(key, "ascending")] + [(c, "ascending") for c in ta.column_names
                                       if c != key and not ta.schema.field(c).type.num_fields]
        assert ta.sort_by(sort).equals(tb.sort_by(sort)), table
        compared.append(table)
    return compared


def stage_counts(manifest: dict) -> list[tuple]:
    """(name, input, kept, dropped, info) of every stage of a manifest."""
    return [(s["name"], s["input"], s["kept"], s["dropped"], s.get("info", {}))
            for s in manifest["stages"]]
