"""The run directory: where tables live, how a stage's output is committed atomically, the
per-stage checkpoints that make ``build`` resumable, and ``manifest.json``.

Layout of ``RUN/``::

    manifest.json            stages (input/kept/dropped/seconds), config, versions
    <table>/part-*.parquet   one folder per table (records, captions, caption_pairs, ...)
    rejects/<stage>/...      rejected rows of each stage
    _checkpoints/<stage>.json  key (config + upstream hash) of the stage's committed output
    .staging/                in-progress outputs; never read as results
    .covr-datagen-run        marker: this folder is a covr-datagen run directory
    .lock                    lock file (pid of the last process that took the lock); the lock
                             itself is an flock

A stage writes into ``.staging/<stage>-<uuid>/`` and only after its pipeline succeeded are its
folders moved into place and its checkpoint written (last). A table folder whose stage has no
checkpoint is incomplete and is never trusted.

Ownership: a folder is one of our run directories when it holds the marker file (or, for runs
written before the marker existed, a ``manifest.json`` with a ``stages`` list).
:meth:`RunDir.writing` refuses a non-empty folder that is not one, so a wrong ``--out`` never
loses a user's files; and a commit refuses to replace a table or rejects folder holding files
other than Parquet (files covr-datagen did not write), ``--force`` or not.

Locking: writers hold an exclusive ``fcntl.flock`` on ``.lock`` for the whole build, readers
(export, variants) a shared one; a second writer fails at once with :class:`RunDirBusy`. The
OS releases an flock when its process dies, so a killed run never leaves a lock that blocks a
resume. Locks are re-entrant within one process (the demo holds one around two builds).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pyarrow.dataset as pads


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to ``path`` via a temp file and ``os.replace`` (never half-written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


MARKER_FILE = ".covr-datagen-run"
LOCK_FILE = ".lock"


class RunDirBusy(ValueError):
    """Another process holds the run directory's lock."""


class NotARunDir(ValueError):
    """A folder that is not (and may not become) one of our run directories."""


def refuse_foreign_files(folder: Path) -> None:
    """Raise :class:`NotARunDir` when ``folder`` (about to be replaced) holds a file that is not
    Parquet: covr-datagen did not write it, so it must not be deleted."""
    foreign = [p for p in folder.rglob("*") if p.is_file() and p.suffix != ".parquet"]
    if foreign:
        raise NotARunDir(f"{folder} holds files covr-datagen did not write (e.g. {foreign[0]}); "
                         "move them out first")


#: locks this process holds: resolved root -> [file descriptor, depth, exclusive]
_HELD: dict[Path, list] = {}


class RunDir:
    """Paths, ownership, locking and commit protocol of one run directory."""

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

    def create(self) -> None:
        """Create the folder if needed and make sure files can be written in it; ``ValueError``
        (one clear line) when it cannot be."""
        probe = self.root / f".write-test-{uuid.uuid4().hex[:12]}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise ValueError(f"cannot write run directory {self.root}: "
                             f"{exc.strerror or exc}") from None

    def new_staging(self, stage: str) -> Path:
        """A fresh, empty staging folder for one attempt of ``stage``."""
        path = self.root / ".staging" / f"{stage}-{uuid.uuid4().hex[:12]}"
        path.mkdir(parents=True)
        return path

    # --- ownership and locking ------------------------------------------------------------------
    def is_run_dir(self) -> bool:
        """Whether the folder is one of our run directories (marker, or a pre-marker manifest)."""
        if (self.root / MARKER_FILE).is_file():
            return True
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        return isinstance(manifest, dict) and isinstance(manifest.get("stages"), list)

    def check_writable(self) -> None:
        """Raise :class:`NotARunDir` unless the folder is absent, empty (a lock file aside) or one
        of our run directories."""
        if self.root.exists() and not self.root.is_dir():
            raise NotARunDir(f"output {self.root} exists and is not a folder")
        if not self.root.exists() or self.is_run_dir():
            return
        foreign = sorted(p.name for p in self.root.iterdir() if p.name != LOCK_FILE)
        if foreign:
            raise NotARunDir(
                f"output folder {self.root} is not empty and is not a covr-datagen run directory "
                f"(no {MARKER_FILE}; it holds {', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); choose a new or empty folder")

    @contextmanager
    def lock(self, shared: bool = False) -> Iterator[None]:
        """Hold the run directory's lock: exclusive for writers, ``shared`` for readers.

        Fails at once with :class:`RunDirBusy` when another process holds it in a conflicting
        mode. Re-entrant within this process (an exclusive hold covers nested shared ones).
        """
        held = _HELD.get(self.root)
        if held is not None and (held[2] or shared):
            held[1] += 1
            try:
                yield
            finally:
                held[1] -= 1
            return
        if held is not None:
            raise RuntimeError(f"cannot upgrade a shared lock on {self.root} to an exclusive one")
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise RunDirBusy(f"run directory {self.root} is in use by another covr-datagen "
                             f"process (pid {holder}); wait for it to finish or use another "
                             "folder") from None
        os.pwrite(fd, f"{os.getpid():>10}\n".encode(), 0)  # fixed width: readers may race
        _HELD[self.root] = [fd, 1, not shared]
        try:
            yield
        finally:
            _HELD.pop(self.root, None)
            os.close(fd)  # closing the descriptor releases the flock

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Claim the folder as a run directory (see :meth:`check_writable`) and hold its
        exclusive lock."""
        self.check_writable()
        self.create()
        with self.lock():
            self.check_writable()  # again under the lock: another process may have written
            marker = self.root / MARKER_FILE
            if not marker.exists():
                write_json_atomic(marker, {"tool": "covr-datagen"})
            yield

    @contextmanager
    def lock_if_run_dir(self, shared: bool = True) -> Iterator[None]:
        """:meth:`lock` if the folder is a run directory; a plain folder (e.g. a variant's
        Parquet) is used without one."""
        if not self.is_run_dir():
            yield
            return
        with self.lock(shared=shared):
            yield

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

        Beam's ``beam-temp-*`` folders left in the staged tables (a write retried after a lost
        worker) are removed first. Old outputs are moved aside first, so at every instant each
        table folder is either the old complete one, absent, or the new complete one. The
        checkpoint is written last. Raises :class:`NotARunDir` (before moving anything) when an
        old folder holds a file that is not Parquet: such a file was not written by covr-datagen
        and is never deleted.
        """
        moves = [(staging / t, self.table(t)) for t in tables]
        moves.append((staging / "rejects", self.rejects(stage)))
        for src, _ in moves:  # Beam's own temp folders (a retried write's leftovers) are ours
            for leftover in src.rglob("beam-temp-*") if src.exists() else ():
                shutil.rmtree(leftover, ignore_errors=True)
        for _, dst in moves:
            refuse_foreign_files(dst)
        self.checkpoint_path(stage).unlink(missing_ok=True)
        trash = self.root / ".staging" / f"trash-{uuid.uuid4().hex[:12]}"
        trash.mkdir(parents=True)
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
