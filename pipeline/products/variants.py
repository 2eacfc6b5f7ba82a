"""Same-author / same-category / same-author-or-category subsets of a run's triplets.

A triplet qualifies for

* ``same_author`` when query (``pth1``) and target (``pth2``) both have an author and the two are
  equal (after stripping; case kept: authors are user names);
* ``same_category`` when both have categories and share at least one (compared case-insensitively);
* ``same_author_or_category`` when either holds.

Metadata comes from :func:`covr_datagen.pipeline.corpus.metadata.load_metadata`; media ids are matched as in
:class:`pipeline.corpus.metadata.MetadataIndex` (full id first, then the part after the last ``/``).
Nothing is guessed: a side without metadata (or without an author / categories) never qualifies,
and ``variants.json`` counts, per side, how each id was matched and what was missing.

Outputs under ``OUT/``: ``same_author/``, ``same_category/``, ``same_author_or_category/`` (Parquet,
TRIPLETS schema, the run's file metadata plus the variant name) and ``variants.json``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from covr_datagen.pipeline.core.rundir import RunDir, refuse_foreign_files, write_json_atomic
from covr_datagen.pipeline.corpus.metadata import (
    AMBIGUOUS,
    BARE,
    FULL,
    MISSING,
    MetadataIndex,
    load_metadata,
    metadata_stats,
)
from covr_datagen.pipeline.products.export import read_triplets
from covr_datagen.schemas import TRIPLETS

VARIANTS = ("same_author", "same_category", "same_author_or_category")
SIDES = (("query", "pth1"), ("target", "pth2"))
ROWS_PER_FILE = 1_000_000


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (list kernels below index rows across the whole column)."""
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks() if values.num_chunks else pa.array([], values.type)
    return values


def _tally(how: pa.Array) -> dict[str, int]:
    """How many ids were matched each way."""
    tallies = {v["values"]: v["counts"] for v in pc.value_counts(how).to_pylist()}
    return {k: int(tallies.get(k, 0)) for k in (FULL, BARE, AMBIGUOUS, MISSING)}


def _shared_category(q_cats: pa.Array, t_cats: pa.Array) -> pa.Array:
    """Boolean per triplet: query and target categories intersect (case-insensitive)."""
    def exploded(cats: pa.Array) -> pa.Table:
        return pa.table({
            "row": pc.list_parent_indices(cats),
            "cat": pc.utf8_lower(pc.list_flatten(cats)),
        })

    joined = exploded(q_cats).join(exploded(t_cats), keys=["row", "cat"], join_type="inner")
    shared_rows = pc.unique(_flat(joined["row"]))
    all_rows = pa.array(range(len(q_cats)), type=pa.int64())
    return pc.is_in(all_rows, value_set=pc.cast(shared_rows, pa.int64()))


def variant_masks(triplets: pa.Table, metadata: pa.Table) -> tuple[dict[str, pa.Array], dict]:
    """One boolean mask per variant over ``triplets``, and the counts for ``variants.json``."""
    index = MetadataIndex(metadata)
    unique_ids = pc.unique(pa.chunked_array(
        triplets["pth1"].chunks + triplets["pth2"].chunks, type=pa.string()))
    unique_rows, unique_how = index.resolve_array(unique_ids)
    counts: dict = {"media_ids": {"distinct": len(unique_ids), **_tally(unique_how)}}

    side_author, side_cats, matching, missing = {}, {}, {}, {}
    for side, column in SIDES:
        position = pc.index_in(triplets[column], value_set=unique_ids)
        side_rows = pc.take(unique_rows, position)
        side_how = pc.take(unique_how, position)
        side_author[side] = _flat(pc.take(metadata["author"], side_rows))
        side_cats[side] = _flat(pc.take(metadata["categories"], side_rows))
        matching[side] = _tally(side_how)
        found = pc.is_valid(side_rows)
        missing[side] = {
            "record": int(pc.sum(pc.invert(found)).as_py() or 0),
            "author": int(pc.sum(pc.and_(found, pc.is_null(side_author[side]))).as_py() or 0),
            "categories": int(pc.sum(pc.and_(found, pc.is_null(side_cats[side]))).as_py() or 0),
        }
    author_known = pc.and_(pc.is_valid(side_author["query"]), pc.is_valid(side_author["target"]))
    cats_known = pc.and_(pc.is_valid(side_cats["query"]), pc.is_valid(side_cats["target"]))
    same_author = pc.fill_null(pc.equal(side_author["query"], side_author["target"]), False)
    same_category = _shared_category(side_cats["query"], side_cats["target"])
    masks = {
        "same_author": same_author,
        "same_category": same_category,
        "same_author_or_category": pc.or_(same_author, same_category),
    }
    counts.update({
        "triplets": triplets.num_rows,
        "matching": matching,
        "missing": missing,
        "undecided": {
            "author": triplets.num_rows - int(pc.sum(author_known).as_py() or 0),
            "categories": triplets.num_rows - int(pc.sum(cats_known).as_py() or 0),
        },
        "variants": {name: int(pc.sum(mask).as_py() or 0) for name, mask in masks.items()},
    })
    return masks, counts


def _write_parquet(table: pa.Table, folder: Path) -> None:
    """Replace ``folder`` by one holding ``table`` as ``part-NNNNN.parquet`` shards (refused when
    the old folder holds files that are not Parquet)."""
    if folder.exists():
        refuse_foreign_files(folder)
    tmp = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir(parents=True)
    shards = max(1, -(-table.num_rows // ROWS_PER_FILE))
    for i in range(shards):
        pq.write_table(table.slice(i * ROWS_PER_FILE, ROWS_PER_FILE), tmp / f"part-{i:05d}.parquet")
    old = None
    if folder.exists():
        old = folder.with_name(f".{folder.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(folder, old)
    os.replace(tmp, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def write_variants(
    source: str | Path | RunDir, metadata_path: str | Path, out: str | Path,
    id_col: str | None = None,
) -> dict:
    """Compute the three variants of the triplets of ``source`` and write them under ``out``.

    Returns the content of ``out/variants.json``.
    """
    out = Path(out)
    triplets = read_triplets(source)
    metadata = load_metadata(metadata_path, id_col=id_col)
    masks, counts = variant_masks(triplets, metadata)
    file_meta = dict(triplets.schema.metadata or {})
    for name, mask in masks.items():
        meta = {**file_meta, b"covr_datagen.variant": name.encode(),
                b"covr_datagen.metadata_file": str(metadata_path).encode()}
        subset = triplets.filter(mask).cast(TRIPLETS.with_metadata(meta))
        _write_parquet(subset, out / name)
    summary = {
        "source": str(source.root if isinstance(source, RunDir) else source),
        "metadata": metadata_stats(metadata),
        **counts,
        "rules": {
            "same_author": "both sides have an author and the authors are equal",
            "same_category": "both sides have categories and share at least one (case-insensitive)",
            "same_author_or_category": "same_author or same_category",
            "matching": "media id as given, else its part after the last '/' (ambiguous = no match)",
        },
    }
    write_json_atomic(out / "variants.json", summary)
    return summary
