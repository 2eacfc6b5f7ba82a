"""Image encoders for middle frames. Every encoder has two steps:

* ``prepare(frame)`` (CPU, cheap, no model needed): shrink a decoded RGB frame to the encoder's
  input size. It runs in the decode workers, so only small arrays travel through the pipeline.
* ``encode(batch)``: a batch of prepared frames -> L2-normalised float32 vectors.

Encoders (``media.encoder``):

* ``pixels`` / ``pixels-N`` (default, weight-free): the frame resized to NxN (16) RGB, centred and
  L2-normalised. It measures near-duplicate *appearance* only (layout and colour), not semantics:
  enough to prefer visually consistent pairs and to run the whole path offline; not CLIP.
* ``open_clip:ARCH:PRETRAINED``: an open-clip image tower. ``ARCH`` is an open-clip model name or
  the path of a model-config JSON (registered under its file stem); ``PRETRAINED`` a tag such as
  ``openai`` (weights from the hub cache) or a local checkpoint path, or empty for random weights.
  This is the paper's choice (CLIP) and the production setting. On CUDA it runs under fp16
  autocast; vectors are normalised in float32. Its text tower (``encode_text``) scores target
  frames against modification texts (:mod:`covr_datagen.pipeline.stages.frame_scores`).

A ``media.encoder`` value is parsed once into a :class:`MediaEncoderSpec`, which names the
encoder (``identity``), says whether it can embed text in the same space as its frames
(``has_text_tower``) and builds or loads it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

OPEN_CLIP_PREFIX = "open_clip:"


def l2_normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def _resize_crop(frame: np.ndarray, size: int, crop: bool) -> np.ndarray:
    """Resize (shortest side to ``size`` then centre crop, or straight to size x size)."""
    from PIL import Image

    img = Image.fromarray(frame).convert("RGB")
    if not crop:
        return np.asarray(img.resize((size, size), Image.BILINEAR))
    w, h = img.size
    scale = size / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - size) // 2, (nh - size) // 2
    return np.asarray(img.crop((left, top, left + size, top + size)))


class PixelEncoder:
    """Downsampled-pixel embedding (see the module docstring)."""

    def __init__(self, size: int = 16):
        if size < 2:
            raise ValueError(f"pixels encoder size must be >= 2, got {size}")
        self.size = size

    def setup(self) -> None:
        """Nothing to load."""

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """The frame resized to size x size RGB."""
        return _resize_crop(frame, self.size, crop=False)

    def encode(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Centred, L2-normalised pixel vectors."""
        if len(prepared) == 0:
            return np.zeros((0, self.size * self.size * 3), dtype=np.float32)
        x = np.stack(prepared).reshape(len(prepared), -1).astype(np.float32) / 255.0
        return l2_normalise(x - x.mean(axis=1, keepdims=True))


def _register_arch(arch: str) -> str:
    """Model name for ``arch``: a config JSON path is registered with open-clip first."""
    if arch.endswith(".json"):
        import open_clip

        if not os.path.isfile(arch):
            raise FileNotFoundError(f"open-clip model config {arch} not found")
        open_clip.add_model_config(arch)
        return os.path.splitext(os.path.basename(arch))[0]
    return arch


class OpenClipImageEncoder:
    """open-clip image tower, loaded once on the configured device."""

    def __init__(self, arch: str, pretrained: str | None, device: str = "cpu"):
        self.arch, self.pretrained, self.device = arch, pretrained or None, device
        self._model = None
        self.name = _register_arch(arch)
        import open_clip

        cfg = open_clip.get_model_config(self.name)
        if cfg is None:
            raise ValueError(f"unknown open-clip model {arch!r}")
        size = cfg["vision_cfg"].get("image_size", 224)
        self.image_size = size if isinstance(size, int) else size[0]

    def setup(self) -> None:
        """Load the model (once)."""
        if self._model is not None:
            return
        import open_clip
        import torch

        model = open_clip.create_model(self.name, pretrained=self.pretrained, device=self.device)
        model.eval()
        mean = getattr(model.visual, "image_mean", None) or open_clip.OPENAI_DATASET_MEAN
        std = getattr(model.visual, "image_std", None) or open_clip.OPENAI_DATASET_STD
        self._mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)
        self._model, self._torch = model, torch
        self._tokenizer = open_clip.get_tokenizer(self.name)

    def prepare(self, frame: np.ndarray) -> np.ndarray:
        """Shortest side to the model's input size, centre crop (CLIP's preprocessing)."""
        return _resize_crop(frame, self.image_size, crop=True)

    def encode(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Normalise pixels on the device, run the image tower, L2-normalise."""
        self.setup()
        torch = self._torch
        if len(prepared) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        x = torch.from_numpy(np.stack(prepared)).to(self.device, non_blocking=True)
        x = (x.permute(0, 3, 1, 2).float() / 255.0 - self._mean) / self._std
        cuda = str(self.device).startswith("cuda")
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            feats = self._model.encode_image(x)
        return l2_normalise(feats.float().cpu().numpy())

    def encode_text(self, texts: Sequence[str]) -> np.ndarray:
        """The text tower on ``texts`` (CLIP's tokenizer, truncated to its context), L2-normalised."""
        self.setup()
        torch = self._torch
        tokens = self._tokenizer(list(texts)).to(self.device)
        cuda = str(self.device).startswith("cuda")
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=cuda):
            feats = self._model.encode_text(tokens)
        return l2_normalise(feats.float().cpu().numpy())


@dataclass(frozen=True)
class MediaEncoderSpec:
    """A ``media.encoder`` value parsed once (:meth:`parse`), with the device to run on: knows
    the encoder's identity (embedding-cache key), whether it has a text tower, and how to build
    (:meth:`encoder`, no weights) and load (:meth:`load`) it. Small and picklable, so stages
    hand it to their DoFns, which load it through :class:`covr_datagen.pipeline.core.models.SharedModel`."""

    kind: str  # "pixels" | "open_clip"
    size: int = 16  # pixels: side of the resized frame
    arch: str = ""  # open_clip: model name or model-config JSON path
    pretrained: str | None = None  # open_clip: tag or checkpoint path; None = random weights
    device: str = "cpu"

    @classmethod
    def parse(cls, spec: str, device: str = "cpu") -> "MediaEncoderSpec":
        """``pixels``, ``pixels-N`` or ``open_clip:ARCH:PRETRAINED``; ``ValueError`` otherwise."""
        if spec == "pixels" or spec.startswith("pixels-"):
            try:
                size = int(spec.split("-", 1)[1]) if "-" in spec else 16
            except ValueError:
                raise ValueError(f"bad pixels encoder spec {spec!r}: use pixels or pixels-N") from None
            parsed = cls("pixels", size=size, device=device)
        elif spec.startswith(OPEN_CLIP_PREFIX):
            arch, _, pretrained = spec[len(OPEN_CLIP_PREFIX):].partition(":")
            parsed = cls("open_clip", arch=arch, pretrained=pretrained or None, device=device)
        else:
            raise ValueError(f"unknown media encoder {spec!r}: use 'pixels' or "
                             "'open_clip:ARCH:PRETRAINED'")
        parsed.encoder()  # validates the size / the open-clip model name
        return parsed

    @property
    def identity(self) -> str:
        """Stable name of the encoder (part of the embedding-cache key)."""
        if self.kind == "pixels":
            return f"pixels-{self.size}"
        name = os.path.splitext(os.path.basename(self.arch))[0] if self.arch.endswith(".json") \
            else self.arch
        return f"{OPEN_CLIP_PREFIX}{name}:{self.pretrained or 'random'}"

    @property
    def has_text_tower(self) -> bool:
        """Whether the encoder embeds text in the same space as its frames."""
        return self.kind == "open_clip"

    def encoder(self) -> PixelEncoder | OpenClipImageEncoder:
        """The encoder, weights not loaded (enough for ``prepare``)."""
        if self.kind == "pixels":
            return PixelEncoder(self.size)
        return OpenClipImageEncoder(self.arch, self.pretrained, self.device)

    def load(self) -> PixelEncoder | OpenClipImageEncoder:
        """The encoder with its weights loaded."""
        encoder = self.encoder()
        encoder.setup()
        return encoder
