"""Text-embedding similarity band: drop caption pairs that are too similar (near-synonyms,
"a"/"the") or too different (unrelated subjects).

The decision reads the pair's ``sim_txt`` (cosine of L2-normalised caption embeddings). In the
pipeline, ``sim_txt`` is computed once per distinct caption by the mining/pair stage; when a pair
arrives without it, :meth:`check_batch` embeds the batch's distinct captions itself with the
configured encoder. Thresholds are inclusive drops: ``sim >= sim_max`` and ``sim <= sim_min``.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from filters.base import Drop, Filter


class SimilarityBandFilter(Filter):
    """Keep pairs with ``sim_min < sim_txt < sim_max``."""

    name = "similarity"

    def __init__(self, sim_min: float = 0.6, sim_max: float = 0.96, encoder: Any = None):
        if not sim_min < sim_max:
            raise ValueError(f"sim_min ({sim_min}) must be below sim_max ({sim_max})")
        self.sim_min = sim_min
        self.sim_max = sim_max
        self._encoder = encoder  # a pipeline.text_encoders.TextEncoder (or any .encode(texts))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "sim_min": self.sim_min, "sim_max": self.sim_max}

    def setup(self) -> None:
        if self._encoder is not None and hasattr(self._encoder, "setup"):
            self._encoder.setup()

    def decide(self, sim: float) -> Drop | None:
        """Band decision for one similarity value."""
        if sim >= self.sim_max:
            return self.drop(f"sim_txt {sim:.4f} >= {self.sim_max}", reason="too_similar")
        if sim <= self.sim_min:
            return self.drop(f"sim_txt {sim:.4f} <= {self.sim_min}", reason="too_different")
        return None

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        return self.check_batch([item])[0]

    def check_batch(self, items: Sequence[Mapping[str, Any]]) -> list[Drop | None]:
        missing = [i for i, it in enumerate(items) if it.get("sim_txt") is None]
        sims = [it.get("sim_txt") for it in items]
        if missing:
            if self._encoder is None:
                raise RuntimeError("similarity filter got pairs without sim_txt and no encoder")
            texts = sorted({items[i][k] for i in missing for k in ("txt1", "txt2")})
            vectors = self._encoder.encode(texts)
            index = {t: v for t, v in zip(texts, vectors)}
            for i in missing:
                sims[i] = float(np.dot(index[items[i]["txt1"]], index[items[i]["txt2"]]))
                if isinstance(items[i], dict):
                    items[i]["sim_txt"] = sims[i]
        return [self.decide(float(s)) for s in sims]
