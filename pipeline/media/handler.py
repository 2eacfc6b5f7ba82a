"""Beam RunInference model handler for middle-frame embeddings.

:class:`FrameEmbeddingHandler` loads the configured image encoder once per worker (RunInference
keeps the loaded model in a ``Shared`` handle across the worker's threads and bundles) and embeds
batches of prepared frames. The stage wraps it in ``KeyedModelHandler`` so the media id travels
with each frame.
"""

from __future__ import annotations

from typing import Any, Iterable, Optional, Sequence

import numpy as np
from apache_beam.ml.inference.base import ModelHandler, PredictionResult


class FrameEmbeddingHandler(ModelHandler[np.ndarray, PredictionResult, Any]):
    """ModelHandler around :func:`pipeline.media.encoders.make_image_encoder`."""

    def __init__(self, encoder_spec: str, device: str = "cpu", max_batch: int = 64):
        super().__init__()
        self.encoder_spec = encoder_spec
        self.device = device
        self.max_batch = max(1, int(max_batch))

    def load_model(self) -> Any:
        """Build the encoder and load its weights (called once per worker)."""
        from pipeline.media.encoders import make_image_encoder

        encoder = make_image_encoder(self.encoder_spec, self.device)
        encoder.setup()
        return encoder

    def run_inference(self, batch: Sequence[np.ndarray], model: Any,
                      inference_args: Optional[dict[str, Any]] = None) -> Iterable[PredictionResult]:
        """One embedding per prepared frame, in order."""
        vectors = model.encode(list(batch))
        return [PredictionResult(example=None, inference=vec) for vec in vectors]

    def batch_elements_kwargs(self) -> dict:
        """Batches of up to ``media.batch_size`` frames."""
        return {"min_batch_size": 1, "max_batch_size": self.max_batch}

    def get_metrics_namespace(self) -> str:
        return "covr_datagen_media_embed"
