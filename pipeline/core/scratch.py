"""Scratch files shared between the steps of one stage (inside its staging folder).

Some intermediate data is cheaper to hand from one step to the next through files than through
Beam shuffles (which, in the local runners, pass every element through the launcher process):
the read stage's parsed records, the similarity filter's caption vectors. A file is written to
a temporary name and renamed, so a retried bundle rewrites it whole and a reader never sees half
a file; paths go through Beam's ``FileSystems``, so a staging folder on a cluster filesystem
works too. The staging folder, scratch files included, is removed when the stage commits.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import numpy as np
from apache_beam.io.filesystems import FileSystems


def write_bytes_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary name (readers never see a partial file)."""
    tmp = path + ".tmp"
    with FileSystems.create(tmp) as fh:
        fh.write(data)
    if FileSystems.exists(path):
        FileSystems.delete([path])
    FileSystems.rename([tmp], [path])


def read_bytes(path: str) -> bytes:
    """The whole content of ``path``; a missing file is a loud error naming it."""
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"scratch file {path} is missing (was its producer skipped?)")
    with FileSystems.open(path) as fh:
        return fh.read()


def write_npy(path: str, array: np.ndarray) -> None:
    """Save ``array`` as a ``.npy`` file (atomically)."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    write_bytes_atomically(path, buf.getvalue())


def read_npy(path: str) -> np.ndarray:
    """Load a ``.npy`` file: memory-mapped when local, read whole otherwise."""
    if "://" not in path:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    return np.load(io.BytesIO(read_bytes(path)), allow_pickle=False)


def write_objects(path: str, objects: list[Any]) -> None:
    """Save a list of plain Python objects (rows this stage produced itself) atomically."""
    write_bytes_atomically(path, pickle.dumps(objects, protocol=pickle.HIGHEST_PROTOCOL))


def read_objects(path: str) -> list[Any]:
    """Load a list written by :func:`write_objects` (only ever files this stage wrote)."""
    return pickle.loads(read_bytes(path))
