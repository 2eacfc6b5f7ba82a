"""Small synthetic media for demos, tests and benchmarks: mp4 clips (PyAV) and jpgs (PIL) whose
look is derived deterministically from the caption.

A frame is a grid of cells, one per caption word position, each cell's colour a hash of the word
there: captions that differ by one word give clips that differ in one cell, so similar captions
look alike. Over time a white bar sweeps left to right (its column encodes the frame number) and
the middle frame ``n // 2`` also gets a white border, so a decoder can be checked to return that
frame.
"""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction
from typing import Iterable, Mapping

import numpy as np

from covr_datagen.pipeline.media.resolve import resolve_media_path


def _word_colour(word: str) -> np.ndarray:
    digest = hashlib.blake2b(word.lower().encode("utf-8"), digest_size=3).digest()
    return np.frombuffer(digest, dtype=np.uint8).astype(np.int32)


def caption_image(caption: str, height: int = 48, width: int = 64, grid: int = 3) -> np.ndarray:
    """The still content of a caption: ``grid x grid`` cells coloured by the caption's words."""
    words = caption.split() or [""]
    img = np.zeros((height, width, 3), dtype=np.uint8)
    ys = np.linspace(0, height, grid + 1).astype(int)
    xs = np.linspace(0, width, grid + 1).astype(int)
    for cell in range(grid * grid):
        word = words[cell] if cell < len(words) else f"<pad{cell}>"
        r, c = divmod(cell, grid)
        img[ys[r]:ys[r + 1], xs[c]:xs[c + 1]] = _word_colour(word)
    return img


def clip_description(caption: str, n_frames: int = 16, grid: int = 3) -> str:
    """What :func:`clip_frames` draws for ``caption``, in words: the long description the demo
    gives its clips for dense mode (true of the synthetic clip, not of any real footage)."""
    words = caption.split()[: grid * grid]
    cells = "; ".join(f"{word} #{bytes(_word_colour(word).astype(np.uint8)).hex()}" for word in words)
    padding = grid * grid - len(words)
    return (f"A synthetic {n_frames}-frame clip showing a {grid} by {grid} grid of coloured cells, "
            f"one per caption word ({cells})"
            + (f", and {padding} padding cell{'s' * (padding > 1)}" if padding else "")
            + "; a white bar sweeps from left to right and the middle frame has a white border.")


def clip_frames(caption: str, n_frames: int = 16, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """RGB uint8 frames of the synthetic clip of ``caption`` (see the module docstring)."""
    base = caption_image(caption, height, width)
    bar = max(2, width // 16)
    frames = []
    for t in range(n_frames):
        frame = base.copy()
        x0 = int(round(t * (width - bar) / max(1, n_frames - 1)))
        frame[:, x0:x0 + bar] = 255
        if t == n_frames // 2:
            frame[:2], frame[-2:], frame[:, :2], frame[:, -2:] = 255, 255, 255, 255
        frames.append(frame)
    return frames


def write_mp4(path: str, frames: list[np.ndarray], fps: int = 8, codec: str = "mpeg4",
              bit_rate: int = 2_000_000, gop: int | None = None) -> None:
    """Encode RGB frames as an mp4 (``mpeg4`` = OpenCV's ``mp4v``; ``libx264`` for H.264),
    with a keyframe every ``gop`` frames when given."""
    import av

    if not frames:
        raise ValueError("write_mp4 needs at least one frame")
    height, width = frames[0].shape[:2]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp.mp4"
    with av.open(tmp, mode="w") as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.bit_rate = bit_rate
        if gop:
            stream.codec_context.gop_size = gop
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    os.replace(tmp, path)


def overwrite_bytes(path: str, start: float = 0.35, end: float = 0.65, seed: int = 0) -> None:
    """Damage a media file in place: overwrite the bytes between fractions ``start`` and ``end``
    of its size with seeded random bytes (a partly corrupted download, for tests)."""
    data = bytearray(open(path, "rb").read())
    lo, hi = int(len(data) * start), int(len(data) * end)
    data[lo:hi] = np.random.default_rng(seed).integers(0, 256, hi - lo, dtype=np.uint8).tobytes()
    with open(path, "wb") as f:
        f.write(data)


def write_jpg(path: str, image: np.ndarray, quality: int = 95) -> None:
    """Save an RGB uint8 array as a jpg."""
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(image).save(path, format="JPEG", quality=quality)


def write_synthetic_media(records: Iterable[Mapping], media_root: str, kind: str = "video",
                          template: str | None = None, n_frames: int = 16, height: int = 48,
                          width: int = 64, overwrite: bool = False) -> int:
    """Write one clip (video) or jpg (image) per record where the pipeline will look for it.

    ``records`` are RECORDS-like mappings (``media_id``, ``caption``, ``page_dir``, ``videoid``,
    optional ``path``). Existing files are kept unless ``overwrite``. Returns how many were written.
    """
    written = 0
    for rec in records:
        path = resolve_media_path(rec, media_root, kind, template)
        if os.path.exists(path) and not overwrite:
            continue
        if kind == "video":
            write_mp4(path, clip_frames(rec["caption"], n_frames, height, width))
        else:
            write_jpg(path, caption_image(rec["caption"], height, width))
        written += 1
    return written
