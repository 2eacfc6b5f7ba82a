"""The run directory: where tables live, how a stage's output is committed atomically, the
per-stage checkpoints that make ``build`` resumable, and ``manifest.json``.

Layout of ``RUN/``::

    manifest.json            stages (input/kept/dropped/seconds), config, versions
    <table>/part-*.parquet   one folder per table (records, captions, caption_pairs, ...)
    rejects/<stage>/...      rejected rows of each stage
    _checkpoints/<stage>.json  key (config + upstream hash) of the stage's committed output
    .staging/                in-progress outputs; never read as results

A stage writes into ``.staging/<stage>-<uuid>/`` and only after its pipeline succeeded are its
folders moved into place and its checkpoint written (last). A table folder whose stage has no
checkpoint is incomplete and is never trusted.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow.dataset as pads


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temp file and ``os.replace`` (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class RunDir:
    """Paths and commit protocol of one run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root).resolve()

    # --- paths ----------------------------------------------------------------------------------
    def table(self, name: str) -> Path:
        """Folder of a committed table."""
        return self.root / name

    def table_glob(self, name: str) -> str:
        """File pattern matching the Parquet files of a committed table (for Beam readers)."""
        return str(self.table(name) / "*.parquet")

    def rejects(self, stage: str) -> Path:
        return self.root / "rejects" / stage

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    def checkpoint_path(self, stage: str) -> Path:
        return self.root / "_checkpoints" / f"{stage}.json"

    def new_staging(self, stage: str) -> Path:
        """A fresh, empty staging folder for one attempt of ``stage``."""
        path = self.root / ".staging" / f"{stage}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    # --- tables ---------------------------------------------------------------------------------
    def has_table(self, name: str) -> bool:
        return self.table(name).is_dir() and any(self.table(name).glob("*.parquet"))

    def read_table(self, name: str, columns: list[str] | None = None):
        """Read a committed table as a ``pyarrow.Table`` (raises if missing)."""
        if not self.has_table(name):
            raise FileNotFoundError(f"table {name!r} not found in run directory {self.root}")
        return pads.dataset(str(self.table(name)), format="parquet").to_table(columns=columns)

    def count_rows(self, name: str) -> int:
        if not self.has_table(name):
            return 0
        return pads.dataset(str(self.table(name)), format="parquet").count_rows()

    # --- commit protocol ------------------------------------------------------------------------
    def commit(self, stage: str, staging: Path, tables: list[str], checkpoint: dict) -> None:
        """Move ``staging/<table>`` and ``staging/rejects`` into place, then write the checkpoint.

        Old outputs are moved aside first, so at every instant each table folder is either the old
        complete one, absent, or the new complete one. The checkpoint is written last.
        """
        self.checkpoint_path(stage).unlink(missing_ok=True)
        trash = self.root / ".staging" / f"trash-{uuid.uuid4().hex[:12]}"
        trash.mkdir(parents=True)
        moves = [(staging / t, self.table(t)) for t in tables]
        moves.append((staging / "rejects", self.rejects(stage)))
        for src, dst in moves:
            if dst.exists():
                os.replace(dst, trash / f"{dst.parent.name}-{dst.name}")
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                os.replace(src, dst)
        write_json_atomic(self.checkpoint_path(stage), checkpoint)
        shutil.rmtree(trash, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)

    def read_checkpoint(self, stage: str) -> dict | None:
        path = self.checkpoint_path(stage)
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    def invalidate(self, stage: str) -> None:
        """Forget a stage's checkpoint (its tables will be rewritten)."""
        self.checkpoint_path(stage).unlink(missing_ok=True)

    def clean_staging(self) -> None:
        """Remove leftovers of crashed attempts."""
        shutil.rmtree(self.root / ".staging", ignore_errors=True)

    # --- manifest -------------------------------------------------------------------------------
    def read_manifest(self) -> dict:
        if not self.manifest_path.exists():
            return {"stages": [], "config": {}, "versions": {}}
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def write_manifest(self, manifest: dict) -> None:
        write_json_atomic(self.manifest_path, manifest)
