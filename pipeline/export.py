"""Reading a run's triplets and exporting them as the CSV the CoVR-BLIP-2 trainer reads.

The trainer (``src/data/webvid_covr.py`` of github.com/lucas-ventura/CoVR) loads one CSV per split
with pandas, iterates over distinct ``pth2`` (targets), resolves ``pth1`` to
``{vid_dir}/{page_dir}/{videoid}.mp4`` and ``pth2`` to ``{emb_dir}/{page_dir}/{videoid}.pth``,
turns both ids into integers with ``int(id.replace('/', '0'))`` and parses ``scores`` with
``ast.literal_eval``. So the CSV has ``pth1, pth2, edit, txt1, txt2, sim_txt, scores`` first
(``scores`` as a Python list literal, ``"[]"`` when not computed) and then our provenance columns.

``--split-val F`` moves a fraction ``F`` of the distinct targets (and every triplet pointing at
them) to a validation file: targets are sorted, shuffled with ``numpy.random.default_rng(seed)``
and the first ``round(F * n)`` (at least one when ``F > 0`` and ``n > 1``, at most ``n - 1``)
go to val. No target is in both files.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads

from pipeline.rundir import RunDir, write_json_atomic
from schemas import TRIPLETS

log = logging.getLogger("covr_datagen")

#: columns the CoVR trainer reads, in the order of the released CSVs
COVR_COLUMNS = ("pth1", "pth2", "edit", "txt1", "txt2", "sim_txt", "scores")
#: our provenance columns, after the trainer's
PROVENANCE_COLUMNS = tuple(n for n in TRIPLETS.names if n not in COVR_COLUMNS)
FORMATS = ("covr-csv",)


# --- reading triplets ---------------------------------------------------------------------------
def triplets_dataset(source: str | Path | RunDir) -> pads.Dataset:
    """The triplets of a run directory, or of a folder of TRIPLETS Parquet files (e.g. a variant).

    A run whose ``triplets`` stage kept nothing yields an empty dataset; a run without that stage
    raises ``FileNotFoundError``.
    """
    run = source if isinstance(source, RunDir) else None
    folder = Path(source.table("triplets") if run else source)
    if run is None and (folder / "manifest.json").exists():
        run = RunDir(folder)
        folder = Path(run.table("triplets"))
    if folder.is_dir() and any(folder.glob("*.parquet")):
        dataset = pads.dataset(str(folder), format="parquet")
        missing = [n for n in TRIPLETS.names if n not in dataset.schema.names]
        if missing:
            raise ValueError(f"{folder} is not a triplets table: missing columns {missing}")
        return dataset
    if run is not None and any(s.get("name") == "triplets" for s in run.read_manifest().get("stages", [])):
        return pads.dataset(pa.Table.from_pylist([], schema=TRIPLETS))
    raise FileNotFoundError(f"no triplets found at {folder} (run `covr-datagen build` first)")


def read_triplets(source: str | Path | RunDir) -> pa.Table:
    """All triplets as one ``pyarrow.Table`` with the TRIPLETS columns, file metadata kept."""
    dataset = triplets_dataset(source)
    table = dataset.to_table(columns=list(TRIPLETS.names))
    metadata = dataset.schema.metadata or {}
    return table.cast(TRIPLETS).replace_schema_metadata(metadata or None)


# --- the trainer's CSV --------------------------------------------------------------------------
def scores_literal(values: list | None) -> str:
    """A ``scores`` list as the Python literal the trainer parses (``"[]"`` when empty)."""
    if not values:
        return "[]"
    return "[" + ", ".join(str(v) for v in np.asarray(values, dtype=np.float32)) + "]"


def trainer_id_ok(media_id: str) -> bool:
    """Whether the trainer can use ``media_id``: ``{page_dir}/{videoid}`` that ``id2int`` accepts."""
    if media_id.count("/") != 1:
        return False
    try:
        int(media_id.replace("/", "0"))
    except ValueError:
        return False
    return True


def split_targets(targets: list[str], fraction: float, seed: int) -> set[str]:
    """The validation targets: a seeded shuffle of the sorted distinct targets, cut at ``fraction``."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"--split-val must be in [0, 1), got {fraction}")
    distinct = sorted(set(targets))
    n = len(distinct)
    k = int(round(fraction * n))
    if fraction > 0 and n > 1:
        k = min(max(k, 1), n - 1)
    elif n <= 1:
        k = 0
    order = np.random.default_rng(seed).permutation(n)
    return {distinct[i] for i in order[:k]}


def _csv_batch(batch: pa.RecordBatch) -> pa.Table:
    """One batch in CSV column order, ``scores`` rendered as a list literal."""
    table = pa.Table.from_batches([batch])
    scores = pa.array([scores_literal(v) for v in table["scores"].to_pylist()], type=pa.string())
    table = table.set_column(table.schema.get_field_index("scores"), "scores", scores)
    return table.select(list(COVR_COLUMNS) + list(PROVENANCE_COLUMNS))


def _batches(dataset: pads.Dataset, batch_size: int = 65536) -> Iterator[pa.RecordBatch]:
    yield from dataset.to_batches(columns=list(TRIPLETS.names), batch_size=batch_size)


def split_paths(out: Path) -> tuple[Path, Path]:
    """``FILE.csv`` -> ``FILE_train.csv``, ``FILE_val.csv`` (the CoVR release naming)."""
    return out.with_name(f"{out.stem}_train{out.suffix}"), out.with_name(f"{out.stem}_val{out.suffix}")


def export_covr_csv(
    source: str | Path | RunDir,
    out: str | Path,
    split_val: float | None = None,
    seed: int = 0,
) -> dict:
    """Write the trainer CSV(s) for the triplets of ``source``; returns (and writes next to the
    CSV as ``<stem>.export.json``) a summary with row and target counts per file."""
    out = Path(out)
    dataset = triplets_dataset(source)
    out.parent.mkdir(parents=True, exist_ok=True)
    targets = pc.unique(dataset.to_table(columns=["pth2"])["pth2"]).to_pylist()
    val_targets: set[str] = set()
    if split_val is not None:
        val_targets = split_targets(targets, split_val, seed)
        paths = dict(zip(("train", "val"), split_paths(out)))
    else:
        paths = {"all": out}
    counts = {name: {"path": str(p), "rows": 0, "targets": 0} for name, p in paths.items()}
    bad_ids: set[str] = set()
    tmp = {name: p.with_name(f".{p.name}.tmp") for name, p in paths.items()}
    writers: dict[str, pacsv.CSVWriter] = {}
    schema = _csv_batch(pa.RecordBatch.from_pylist([], schema=TRIPLETS)).schema
    try:
        for name, path in tmp.items():
            writers[name] = pacsv.CSVWriter(str(path), schema)
        value_set = pa.array(sorted(val_targets), type=pa.string())
        for batch in _batches(dataset):
            table = _csv_batch(batch)
            for col in ("pth1", "pth2"):
                bad_ids.update(m for m in pc.unique(table[col]).to_pylist() if not trainer_id_ok(m))
            if split_val is None:
                parts = {"all": table}
            else:
                is_val = pc.is_in(table["pth2"], value_set=value_set)
                parts = {"train": table.filter(pc.invert(is_val)), "val": table.filter(is_val)}
            for name, part in parts.items():
                if part.num_rows:
                    writers[name].write_table(part)
                    counts[name]["rows"] += part.num_rows
    finally:
        for writer in writers.values():
            writer.close()
    for name, path in tmp.items():
        path.replace(paths[name])
    if split_val is None:
        counts["all"]["targets"] = len(targets)
    else:
        counts["val"]["targets"] = len(val_targets)
        counts["train"]["targets"] = len(targets) - len(val_targets)
    summary = {
        "format": "covr-csv",
        "source": str(source.root if isinstance(source, RunDir) else source),
        "columns": list(COVR_COLUMNS) + list(PROVENANCE_COLUMNS),
        "split_val": split_val,
        "seed": seed if split_val is not None else None,
        "files": counts,
        "ids_not_trainer_compatible": len(bad_ids),
        "example_bad_ids": sorted(bad_ids)[:5],
    }
    if bad_ids:
        log.warning("%d media ids are not of the form {page_dir}/{videoid} with digits that the CoVR "
                    "trainer's id2int accepts, e.g. %s", len(bad_ids), sorted(bad_ids)[:3])
    write_json_atomic(out.with_name(f"{out.stem}.export.json"), summary)
    return summary
