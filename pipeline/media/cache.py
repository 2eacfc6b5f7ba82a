"""Embedding cache shared across runs and corpora: Parquet shards (schema MEDIA_EMBEDDINGS) under
``<cache_dir>/<model_key>/``, one folder per encoder identity, so a re-run or another corpus
sharing media embeds nothing twice.

Shards are only ever added. Each is written to a hidden temp file in the cache folder and moved
into place with one atomic rename, so a reader (or a crashed writer) never sees half a shard.
Two runs adding the same media id both leave a row; readers take one row per media id (all rows of
one id under one model key hold the same embedding). The cache trusts that a media id's content
does not change; delete the model's folder to start over.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path
from typing import Sequence

import pyarrow as pa
import pyarrow.parquet as pq

from covr_datagen.schemas import MEDIA_EMBEDDINGS, Conformer


def model_key(encoder_identity: str, kind: str, frame: str = "middle") -> str:
    """Cache key of an encoder: readable prefix + hash of its identity, the media kind and, for
    videos read by another rule than ``middle``, the frame rule (``media.frame``).

    A local checkpoint path contributes its size and modification time, so a changed file gets
    a fresh cache.
    """
    ident = f"{kind}|{encoder_identity}"
    if kind == "video" and frame != "middle":
        ident += f"|frame={frame}"
    pretrained = encoder_identity.rsplit(":", 1)[-1]
    if os.path.isfile(pretrained):
        st = os.stat(pretrained)
        ident += f"|{st.st_size}|{int(st.st_mtime)}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:16]
    prefix = "".join(c if c.isalnum() else "-" for c in encoder_identity.split("/")[-1])[:40]
    return f"{prefix.strip('-')}-{kind}-{digest}"


class EmbeddingCache:
    """One encoder's folder of cached embedding shards."""

    def __init__(self, cache_dir: str | Path, key: str):
        self.folder = Path(cache_dir) / key
        self.key = key

    def shard_glob(self) -> str | None:
        """Glob of the existing shards, or ``None`` when the cache is empty."""
        if self.folder.is_dir() and any(self.folder.glob("shard-*.parquet")):
            return str(self.folder / "shard-*.parquet")
        return None

    def write_shard(self, rows: Sequence[dict]) -> Path | None:
        """Add rows (MEDIA_EMBEDDINGS) as one new shard, atomically; ``None`` if no rows."""
        if not rows:
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist(list(map(Conformer(MEDIA_EMBEDDINGS), rows)),
                                     schema=MEDIA_EMBEDDINGS)
        name = f"shard-{uuid.uuid4().hex}.parquet"
        tmp = self.folder / f".{name}.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, self.folder / name)
        return self.folder / name

    def read_all(self) -> pa.Table:
        """Every cached row (for inspection and tests; the stage reads shards with Beam)."""
        files = sorted(self.folder.glob("shard-*.parquet")) if self.folder.is_dir() else []
        if not files:
            return MEDIA_EMBEDDINGS.empty_table()
        return pa.concat_tables(pq.read_table(f, schema=MEDIA_EMBEDDINGS) for f in files)
