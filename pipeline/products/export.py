"""Reading a run's triplets and exporting them as the files the CoVR-BLIP-2 trainer reads.

The trainer (``src/data/webvid_covr.py`` of github.com/lucas-ventura/CoVR) loads one CSV per split
with pandas, iterates over distinct ``pth2`` (targets), finds ``pth1`` as ``{vid_dir}/{pth1}.mp4``
and ``pth2`` as ``{emb_dir}/{pth2}.pth`` by globbing one folder level, numbers ids by its digit rule
(:mod:`pipeline.products.trainer_ids`) and parses ``scores`` with ``ast.literal_eval``. So the CSV has
``pth1, pth2, edit, txt1, txt2, sim_txt, scores`` first (``scores`` as a Python list literal,
``"[]"`` when not computed), then ``media_id1, media_id2`` (the run's own ids) and our provenance
columns. ``txt1`` / ``txt2`` are the query's and target's own captions when the run's records are
at hand. Rows whose ``edit`` or ``txt2`` pandas would read as NaN (``"N/A"``, ``"None"``, ...)
are left out and counted.

Variants (``--variant``): ``edit`` (default) exports the one-word modification texts; ``dense``
exports the triplets that have a dense text (``edit_dense``, written by ``mtg.mode: dense``) with
that text in ``edit`` (the column the trainer reads), the one-word text in ``edit_short`` and no
``edit_dense`` column; triplets without a dense text are left out and counted.

Held-out splits: :mod:`covr_datagen.pipeline.products.heldout`; trainer configs:
:mod:`covr_datagen.pipeline.products.trainer_config`. docs/DATASETS.md has the whole recipe.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.dataset as pads

from covr_datagen.pipeline.core.rundir import RunDir, write_json_atomic
from covr_datagen.pipeline.products.heldout import HELDOUT_SPLITS, TRAIN, plan_split
from covr_datagen.pipeline.products.trainer_ids import (
    ID_MODES,
    PANDAS_NA_STRINGS,
    id_problems,
    link_media,
    renumbered_ids,
)
from covr_datagen.schemas import TRIPLETS

log = logging.getLogger("covr_datagen")

#: columns the CoVR trainer reads, in the order of the released CSVs
COVR_COLUMNS = ("pth1", "pth2", "edit", "txt1", "txt2", "sim_txt", "scores")
#: the run's own media ids (``pth1`` / ``pth2`` may be renumbered trainer ids)
RUN_ID_COLUMNS = ("media_id1", "media_id2")
#: our provenance columns, after the trainer's
PROVENANCE_COLUMNS = tuple(n for n in TRIPLETS.names if n not in COVR_COLUMNS)
CSV_COLUMNS = COVR_COLUMNS + RUN_ID_COLUMNS + PROVENANCE_COLUMNS
#: what ``edit`` holds: the one-word texts, or the dense texts (``edit_dense``)
VARIANTS = ("edit", "dense")
DENSE_TEXT = "edit_dense"
#: the dense variant's column for the one-word text it moves out of ``edit``
SHORT_TEXT = "edit_short"
DENSE_CSV_COLUMNS = (COVR_COLUMNS + RUN_ID_COLUMNS + (SHORT_TEXT,)
                     + tuple(n for n in PROVENANCE_COLUMNS if n != DENSE_TEXT))
#: words ``pre_caption`` keeps by default in the CoVR trainer (``src/data/utils.py``)
TRAINER_DEFAULT_MAX_WORDS = 30
FORMATS = ("covr-csv",)
#: the file name of an unsplit export
ALL = "all"


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


def own_captions(run: RunDir, media_ids: pa.Array) -> dict[str, str]:
    """``{media_id: caption}`` from the run's records, for ``media_ids`` (first row of an id)."""
    if not any(run.table("records").glob("*.parquet")):
        return {}
    records = pads.dataset(str(run.table("records")), format="parquet").to_table(
        columns=["media_id", "caption"], filter=pc.field("media_id").isin(media_ids))
    captions: dict[str, str] = {}
    for media_id, caption in zip(records["media_id"].to_pylist(), records["caption"].to_pylist()):
        captions.setdefault(media_id, caption)
    return captions


def media_sources(run: RunDir, media_ids: pa.Array, kind: str) -> dict[str, str]:
    """``{media_id: file path}`` resolved from the run's records and media settings."""
    from covr_datagen.pipeline.config import load_config
    from covr_datagen.pipeline.media.resolve import resolve_media_path

    media = load_config(overrides={"media": run.read_manifest().get("config", {}).get("media", {})}).media
    if not any(run.table("records").glob("*.parquet")):
        return {}
    records = pads.dataset(str(run.table("records")), format="parquet").to_table(
        filter=pc.field("media_id").isin(media_ids))
    sources: dict[str, str] = {}
    for record in sorted(records.to_pylist(), key=lambda r: r["row"]):
        if record["media_id"] not in sources:
            sources[record["media_id"]] = resolve_media_path(record, media.media_root, kind,
                                                             media.path_template)
    return sources


def _run_of(source: str | Path | RunDir) -> RunDir | None:
    """The run directory behind ``source``, or ``None`` for a bare folder of triplets."""
    if isinstance(source, RunDir):
        return source
    return RunDir(Path(source)) if (Path(source) / "manifest.json").exists() else None


def _media_kind(table: pa.Table) -> str:
    kinds = pc.unique(table["media_kind"]).to_pylist()
    if len(kinds) > 1:
        raise ValueError(f"the triplets mix media kinds {sorted(kinds)}; export one kind at a time")
    return kinds[0] if kinds else "video"


def _read_as_nan(table: pa.Table) -> pa.Array:
    """Rows whose ``edit`` or ``txt2`` pandas would read as NaN."""
    na = pa.array(sorted(PANDAS_NA_STRINGS), type=pa.string())
    return pc.or_(pc.is_in(table["edit"], value_set=na), pc.is_in(table["txt2"], value_set=na))


def has_text(values: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Boolean per row: the text is neither null nor blank."""
    return pc.fill_null(pc.invert(pc.match_substring_regex(values, r"^\s*$")), False)


def dense_variant(table: pa.Table, source) -> tuple[pa.Table, int]:
    """The triplets with a dense text, ``edit`` holding it and ``edit_short`` the one-word text;
    and how many triplets had none. A source without any dense text raises ``ValueError``."""
    present = has_text(table[DENSE_TEXT])
    kept = table.filter(present)
    if table.num_rows and not kept.num_rows:
        raise ValueError(f"{source} has no dense modification texts (edit_dense is empty in all "
                         f"{table.num_rows:,} triplets): build with mtg.mode: dense, or export "
                         "--variant edit")
    kept = kept.append_column(SHORT_TEXT, kept["edit"])
    kept = kept.set_column(kept.schema.get_field_index("edit"), "edit", kept[DENSE_TEXT])
    return kept, table.num_rows - kept.num_rows


def _trainer_table(table: pa.Table, ids: dict[str, str], columns_out: tuple[str, ...] = CSV_COLUMNS
                   ) -> pa.Table:
    """Rows in CSV column order: trainer ids, ``scores`` as list literals, the run's ids kept."""
    scores = pa.array([scores_literal(v) for v in table["scores"].to_pylist()], type=pa.string())
    columns = {name: table[name] for name in table.column_names}
    columns.update({"scores": scores, "media_id1": table["pth1"], "media_id2": table["pth2"],
                    "pth1": pa.array([ids[m] for m in table["pth1"].to_pylist()], pa.string()),
                    "pth2": pa.array([ids[m] for m in table["pth2"].to_pylist()], pa.string())})
    return pa.table({name: columns[name] for name in columns_out})


def _write_csv(table: pa.Table, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    pacsv.write_csv(table, str(tmp))
    tmp.replace(path)


def split_path(out: Path, split: str) -> Path:
    """``FILE.csv`` -> ``FILE_<split>.csv`` (the CoVR release naming); ``FILE.csv`` unsplit."""
    return out if split == ALL else out.with_name(f"{out.stem}_{split}{out.suffix}")


def _problem_message(problems: dict[str, str]) -> str:
    shown = "; ".join(f"{m!r} ({why})" for m, why in list(problems.items())[:10])
    more = f" and {len(problems) - 10:,} more" if len(problems) > 10 else ""
    return (f"{len(problems):,} media ids cannot be used by the CoVR trainer: {shown}{more}. "
            "Export with --media-ids renumber (and --link-media DIR) to give them trainer ids")


def export_covr_csv(
    source: str | Path | RunDir,
    out: str | Path,
    split: dict[str, float] | None = None,
    seed: int = 0,
    media_ids: str = "keep",
    link_dir: str | Path | None = None,
    media_dir: str | Path | None = None,
    emb_dir: str | Path | None = None,
    variant: str = "edit",
) -> dict:
    """Write the trainer CSV(s) of ``variant``, the trainer's data (and test) config and, with
    ``media_ids`` ``renumber``, the media map (and links under ``link_dir``). Returns the summary
    that is also written as ``<stem>.export.json``. Ids the trainer cannot use raise ``ValueError``
    listing them; so does the dense variant of triplets without dense texts."""
    if media_ids not in ID_MODES:
        raise ValueError(f"--media-ids must be one of {', '.join(ID_MODES)}, got {media_ids!r}")
    if variant not in VARIANTS:
        raise ValueError(f"--variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    out = Path(out)
    run = _run_of(source)
    table = read_triplets(source)
    kind = _media_kind(table)
    dropped: dict[str, int] = {}
    columns_out = CSV_COLUMNS
    if variant == "dense":
        table, dropped["no_dense_text"] = dense_variant(table, source)
        columns_out = DENSE_CSV_COLUMNS
    distinct = pc.unique(pa.concat_arrays([table["pth1"].combine_chunks(),
                                           table["pth2"].combine_chunks()]))
    if run is not None:
        captions = own_captions(run, distinct)
        for col, id_col in (("txt1", "pth1"), ("txt2", "pth2")):
            own = [captions.get(m, t) for m, t in zip(table[id_col].to_pylist(), table[col].to_pylist())]
            table = table.set_column(table.schema.get_field_index(col), col, pa.array(own, pa.string()))
    nan_rows = _read_as_nan(table)
    dropped["text_read_as_nan"] = pc.sum(nan_rows).as_py() or 0
    table = table.filter(pc.invert(nan_rows))
    distinct = pc.unique(pa.concat_arrays([table["pth1"].combine_chunks(),
                                           table["pth2"].combine_chunks()]))
    ids = (renumbered_ids(distinct.to_pylist()) if media_ids == "renumber"
           else {m: m for m in distinct.to_pylist()})
    problems = id_problems(ids.values(), kind)
    if problems:
        raise ValueError(_problem_message(problems))

    parts: dict[str, pa.Table] = {}
    split_info = None
    if split:
        plan = plan_split(table.select(["triplet_id", "pth1", "pth2", "pair_id", "sim_media"]).to_pandas(),
                          split, seed)
        names = pa.array([plan.assignment.get(t) for t in table["triplet_id"].to_pylist()], pa.string())
        dropped.update(plan.removed)
        split_info = {"fractions": split, "seed": seed, "targets_wanted": plan.wanted,
                      "targets_found": plan.found}
        for name in (TRAIN, *HELDOUT_SPLITS):
            part = _trainer_table(table.filter(pc.equal(names, name)), ids, columns_out)
            if name != TRAIN:
                if name not in split:
                    continue
                part = part.sort_by("pth2")
            parts[name] = part
    else:
        parts[ALL] = _trainer_table(table, ids, columns_out)

    out.parent.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, part in parts.items():
        path = split_path(out, name)
        _write_csv(part, path)
        files[name] = {"path": str(path), "rows": part.num_rows,
                       "targets": len(pc.unique(part["pth2"]))}

    sources = media_sources(run, distinct, kind) if run is not None else {}
    links = None
    if media_ids == "renumber":
        map_path = out.with_name(f"{out.stem}.media_map.csv")
        _write_csv(pa.table({"trainer_id": [ids[m] for m in ids], "media_id": list(ids),
                             "path": [sources.get(m, "") for m in ids]}), map_path)
    if link_dir is not None:
        if run is None:
            raise ValueError("--link-media needs a run directory (the media paths come from its records)")
        links = link_media({ids[m]: sources.get(m, "") for m in ids}, link_dir, kind)
    configs = _write_trainer_configs(out, kind, {n: f["path"] for n, f in files.items()},
                                     media_dir or link_dir, emb_dir)
    scored = int(pc.sum(pc.greater(pc.list_value_length(table["scores"]), 0)).as_py() or 0)
    long_texts = sum(len(text.split()) > TRAINER_DEFAULT_MAX_WORDS for text in table["edit"].to_pylist())
    summary = {
        "format": "covr-csv",
        "variant": variant,
        "source": str(source.root if isinstance(source, RunDir) else source),
        "columns": list(columns_out),
        "media_kind": kind,
        "media_ids": media_ids,
        "split": split_info,
        "files": files,
        "dropped": dropped,
        "rows_with_scores": scored,
        "texts_over_trainer_max_words": long_texts,
        "media_links": ({"dir": str(link_dir), "linked": links["linked"],
                         "missing": len(links["missing"]), "example_missing": links["missing"][:5]}
                        if links else None),
        "trainer_configs": configs,
    }
    write_json_atomic(out.with_name(f"{out.stem}.export.json"), summary)
    return summary


def _write_trainer_configs(out: Path, kind: str, files: dict[str, str], media_dir, emb_dir) -> dict:
    """``<stem>.data.yaml`` (and ``<stem>.test.yaml`` with a test file) for the trainer."""
    from covr_datagen.pipeline.products.trainer_config import (
        data_config,
        default_emb_dir,
        test_config,
        write_yaml,
    )

    files = {n: str(Path(p).absolute()) for n, p in files.items()}
    if ALL in files:
        files = {TRAIN: files[ALL]}
    media = str(Path(media_dir).absolute()) if media_dir else f"${{paths.datasets_dir}}/{out.stem}/media"
    emb = str(Path(emb_dir).absolute()) if emb_dir else default_emb_dir(media)
    header = (f"written by covr-datagen export for {out.name}: copy to the CoVR repository's "
              "configs/{data,test}/ (see docs/DATASETS.md)")
    written = {}
    path = out.with_name(f"{out.stem}.data.yaml")
    write_yaml(path, data_config(out.stem, kind, files, media, emb), header)
    written["data"] = str(path)
    if "test" in files and kind == "video":
        path = out.with_name(f"{out.stem}.test.yaml")
        write_yaml(path, test_config(out.stem, files["test"], media, emb), header)
        written["test"] = str(path)
    return written
