"""Shared test helpers: temporary run directories and tables written with the project schemas."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAPER_EXAMPLES = SHARED_DATA / "paper_examples.json"
WEBVID_VAL = SHARED_DATA / "webvid10m_val.csv"


def write_table(folder: Path, rows: list[dict], schema: pa.Schema, name: str = "part-0.parquet") -> Path:
    """Write ``rows`` as one Parquet file of ``schema`` into ``folder``."""
    from schemas import conform

    folder.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([conform(r, schema) for r in rows], schema=schema)
    path = folder / name
    pq.write_table(table, path)
    return path


@pytest.fixture
def paper_examples() -> dict:
    """The CoVR-2 paper examples from ../shared (tests using it skip when it is absent)."""
    import json

    if not PAPER_EXAMPLES.exists():
        pytest.skip(f"{PAPER_EXAMPLES} not present (shared data is optional)")
    return json.loads(PAPER_EXAMPLES.read_text())


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """The demo (bundled corpus copied to ``corpus.csv``, synthetic clips under ``run/media``,
    rules engine, float64 text embeddings), built once per test session."""
    import shutil

    from pipeline.commands.demo import demo_corpus_path, run_demo

    root = tmp_path_factory.mktemp("demo_run")
    corpus = root / "corpus.csv"
    shutil.copy(demo_corpus_path(), corpus)
    config = reproducible_config()
    config.corpus.name = "corpus"
    return run_demo(root / "run", config, corpus=str(corpus))


REPRODUCIBLE_YAML = "text_encoder:\n  dtype: float64\nmtg:\n  engine: rules\n"


def reproducible_config():
    """Config whose embeddings are bit-identical across batchings (see TextEncoderConfig.dtype)
    and whose texts come from the rules engine (no model to load)."""
    from pipeline.config import Config

    config = Config()
    config.text_encoder.dtype = "float64"
    config.mtg.engine = "rules"
    return config


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
    from pipeline.rundir import RunDir

    run = RunDir(root)
    for name, (rows, schema) in tables.items():
        write_table(run.table(name), rows, schema)
    run.write_manifest({"stages": stages or [], "config": config or {}, "config_hash": "test",
                        "versions": {}})
    return run
