"""Shared test helpers: optional real-data paths, a reproducible config, and run directories and
tables written with the project schemas. Fixtures live in ``conftest.py``; tests import these
with ``from tests.helpers import ...``."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Real data next to the repository (optional: tests using it skip when it is absent).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAPER_EXAMPLES = SHARED_DATA / "paper_examples.json"
WEBVID_VAL = SHARED_DATA / "webvid10m_val.csv"

# The dense-text calibration set shipped with the repository (scripts/calibrate_dense.py).
DENSE_CALIBRATION = Path(__file__).resolve().parents[1] / "scripts" / "data" / "dense_calibration.json"

REPRODUCIBLE_YAML = "text_encoder:\n  dtype: float64\nmtg:\n  engine: rules\n"


def reproducible_config():
    """Config whose embeddings are bit-identical across batchings (see TextEncoderConfig.dtype)
    and whose texts come from the rules engine (no model to load)."""
    from covr_datagen.pipeline.config import Config

    config = Config()
    config.text_encoder.dtype = "float64"
    config.mtg.engine = "rules"
    return config


def write_table(folder: Path, rows: list[dict], schema: pa.Schema, name: str = "part-0.parquet") -> Path:
    """Write ``rows`` as one Parquet file of ``schema`` into ``folder``."""
    from covr_datagen.schemas import conform

    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([conform(r, schema) for r in rows], schema=schema)
    path = folder / name
    pq.write_table(table, path)
    return path


def triplet_row(pth1: str, pth2: str, **overrides) -> dict:
    """A complete TRIPLETS row between two media ids (fields derived from the ids by default)."""
    row = {
        "pth1": pth1, "pth2": pth2, "edit": f"Turn {pth1} into {pth2}",
        "txt1": f"caption of {pth1}", "txt2": f"caption of {pth2}", "sim_txt": 0.8, "scores": [],
        "triplet_id": f"{pth1}>{pth2}", "corpus": "test", "media_kind": "video", "sim_media": 0.5,
        "word1": "a", "word2": "b", "direction": "forward", "pair_id": f"{pth1}-{pth2}",
        "engine": "rules", "model": "rules", "seed": 0,
    }
    row.update(overrides)
    return row


def write_run(root: Path, tables: dict[str, tuple[list[dict], pa.Schema]],
              stages: list[dict] | None = None, config: dict | None = None):
    """A run directory holding hand-written tables and a hand-written manifest."""
    from covr_datagen.pipeline.core.rundir import RunDir

    run = RunDir(root)
    for name, (rows, schema) in tables.items():
        write_table(run.table(name), rows, schema)
    run.write_manifest({"stages": stages or [], "config": config or {}, "config_hash": "test",
                        "versions": {}})
    return run
