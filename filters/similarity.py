"""Text-embedding similarity band: drop caption pairs that are too similar (near-synonyms,
"a"/"the") or too different (unrelated subjects).

The decision reads the pair's ``sim_txt`` (cosine of L2-normalised caption embeddings), which the
``pair_filters`` stage computes once per distinct caption before this filter runs (or the faiss
miner already set). Thresholds are inclusive drops: ``sim >= sim_max`` and ``sim <= sim_min``;
their defaults live in :class:`covr_datagen.pipeline.config.PairFilterConfig` only.
"""

from __future__ import annotations

from typing import Any, Mapping

from covr_datagen.filters.base import Drop, Filter


class SimilarityBandFilter(Filter):
    """Keep pairs with ``sim_min < sim_txt < sim_max``."""

    name = "similarity"

    def __init__(self, sim_min: float, sim_max: float):
        if not sim_min < sim_max:
            raise ValueError(f"sim_min ({sim_min}) must be below sim_max ({sim_max})")
        self.sim_min = sim_min
        self.sim_max = sim_max

    def decide(self, sim: float) -> Drop | None:
        """Band decision for one similarity value."""
        if sim >= self.sim_max:
            return self.drop(f"sim_txt {sim:.4f} >= {self.sim_max}", reason="too_similar")
        if sim <= self.sim_min:
            return self.drop(f"sim_txt {sim:.4f} <= {self.sim_min}", reason="too_different")
        return None

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        sim = item.get("sim_txt")
        if sim is None:
            raise RuntimeError(f"similarity filter got a pair without sim_txt ({item.get('pair_id')}); "
                               "the pair_filters stage computes it before this filter")
        return self.decide(float(sim))
