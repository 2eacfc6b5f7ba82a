"""Decode the frame a media item is represented by: the middle frame ``n // 2`` of a video's
decoded stream (decord), or the image itself (PIL). Failures raise :class:`MediaError` with a
reason the pipeline counts: ``missing_file``, ``empty_video``, ``corrupt_video``,
``unreadable_image``."""

from __future__ import annotations

import os

import numpy as np


class MediaError(Exception):
    """A media item that cannot be used, with a counted ``reason``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def read_middle_video_frame(path: str) -> tuple[np.ndarray, int]:
    """``(RGB uint8 HxWx3 frame, frame index)`` of the middle frame of a video file."""
    if not os.path.exists(path):
        raise MediaError("missing_file", f"no file at {path}")
    if os.path.getsize(path) == 0:
        raise MediaError("empty_video", f"{path} is zero bytes")
    import decord

    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        count = len(reader)
        if count == 0:
            raise MediaError("empty_video", f"{path} has no decodable frames")
        index = count // 2
        frame = reader[index].asnumpy()
    except MediaError:
        raise
    except Exception as exc:  # decord raises DECORDError / RuntimeError on broken streams
        raise MediaError("corrupt_video", f"{path}: {type(exc).__name__}: {exc}"[:300]) from exc
    return frame, index


def read_image(path: str) -> np.ndarray:
    """RGB uint8 array of an image file."""
    if not os.path.exists(path):
        raise MediaError("missing_file", f"no file at {path}")
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise MediaError("unreadable_image", f"{path}: {exc}"[:300]) from exc


def read_representative_frame(path: str, kind: str) -> tuple[np.ndarray, int | None]:
    """Middle frame (video) or the image (image); the frame index is ``None`` for images."""
    if kind == "video":
        return read_middle_video_frame(path)
    return read_image(path), None
