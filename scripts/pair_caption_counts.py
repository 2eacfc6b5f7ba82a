"""Distinct captions behind a run's pairs: in ``mined_pairs``, and in the pairs that reached the
similarity step (mined pairs minus those the digit / oov filters dropped) — the captions
``pair_filters`` embeds.

    .venv/bin/python scripts/pair_caption_counts.py RUN_DIR
"""

from __future__ import annotations

import sys

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds


def main(run: str) -> int:
    pairs = ds.dataset(f"{run}/mined_pairs", format="parquet").to_table(
        columns=["pair_id", "caption_id1", "caption_id2"])
    rejects = ds.dataset(f"{run}/rejects/pair_filters", format="parquet").to_table(
        columns=["reason", "item_id"])
    cheap = rejects.filter(pc.is_in(rejects["reason"], value_set=pa.array(["digit", "oov"])))["item_id"]
    scored = pairs.filter(pc.invert(pc.is_in(pairs["pair_id"], value_set=cheap)))

    def distinct(t) -> int:
        return len(set(t["caption_id1"].to_pylist()) | set(t["caption_id2"].to_pylist()))

    print(f"mined pairs {len(pairs):,}: {distinct(pairs):,} distinct captions; "
          f"pairs reaching the similarity step {len(scored):,}: {distinct(scored):,} distinct captions")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
