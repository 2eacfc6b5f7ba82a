"""Decode the frame a media item is represented by: for a video (decord) the frame chosen by
``media.frame``, for an image the image itself (PIL). Failures raise :class:`MediaError` with a
reason the pipeline counts: ``missing_file``, ``empty_video``, ``corrupt_video``,
``unreadable_image``.

Video frame rules (:data:`VIDEO_FRAMES`):

* ``middle`` (default, the paper's): frame ``n // 2`` of the decoded stream. Reaching it means
  decoding every frame from the keyframe before it, up to a whole group of pictures.
* ``keyframe``: the keyframe nearest to frame ``n // 2`` (the earlier one on a tie), which decodes
  on its own: cheaper, and at most half a keyframe interval away from the middle. A stream that
  lists no keyframes falls back to ``middle``.

Either way the index of the frame used is returned and recorded (``frame_index``).

:func:`read_sampled_frames` decodes the frames the CoVR trainer's embedding tools use for a target
video (``tools/embs`` of github.com/lucas-ventura/CoVR): ``min(n, count)`` frames, the middle of each
of ``n`` equal intervals (:func:`sample_frame_indices`), in frame order.

Stream check (``media.check_stream``, on by default): decord conceals damaged data — a clip with
the middle 30% of its bytes overwritten often still yields a "frame" (docs/MEDIA.md), the
decoder's complaints going only to stderr. So before a video's frame is read, its whole video
stream is decoded once with PyAV with FFmpeg's ``err_detect=explode``; any decoder error, or
fewer decoded frames than the container lists, is a ``corrupt_video`` reject
(:func:`check_video_stream`). The CoVR trainer decodes the query video's frames itself, so a
clip that is damaged anywhere is unusable, not only one whose middle frame is.
"""

from __future__ import annotations

import os

import numpy as np


class MediaError(Exception):
    """A media item that cannot be used, with a counted ``reason``."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


#: values of ``media.frame`` (see the module docstring)
VIDEO_FRAMES = ("middle", "keyframe")


def check_frame_rule(frame: str) -> str:
    """``frame`` if it is a known video frame rule, else a ``ValueError`` naming the choices."""
    if frame not in VIDEO_FRAMES:
        raise ValueError(f"media.frame {frame!r}: use one of {', '.join(VIDEO_FRAMES)}")
    return frame


def nearest_keyframe(keyframes, count: int) -> int:
    """The keyframe index nearest to the middle frame ``count // 2`` (earlier on a tie), or the
    middle frame itself when there are no keyframes."""
    middle = count // 2
    keys = [k for k in map(int, keyframes) if 0 <= k < count]
    if not keys:
        return middle
    return min(keys, key=lambda k: (abs(k - middle), k))


def check_video_stream(path: str) -> int:
    """Decode every frame of the first video stream with PyAV, failing on any decoder error
    (``err_detect=explode``); returns the number of frames decoded. Raises ``corrupt_video``
    on a decoder or container error, or when fewer frames decode than the container lists."""
    import av

    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MediaError("corrupt_video", f"{path}: no video stream")
            stream = container.streams.video[0]
            stream.codec_context.options = {"err_detect": "explode"}
            listed = stream.frames
            decoded = sum(1 for _ in container.decode(stream))
    except MediaError:
        raise
    except (av.error.FFmpegError, ValueError) as exc:
        raise MediaError("corrupt_video", f"{path}: stream check: {type(exc).__name__}: {exc}"[:300]
                         ) from exc
    if listed and decoded < listed:
        raise MediaError("corrupt_video", f"{path}: stream check: decoded {decoded} of the "
                         f"{listed} frames the container lists")
    return decoded


def read_video_frame(path: str, frame: str = "middle", check_stream: bool = True
                     ) -> tuple[np.ndarray, int]:
    """``(RGB uint8 HxWx3 frame, frame index)`` of a video file, the frame chosen by the rule
    ``frame`` (:data:`VIDEO_FRAMES`); with ``check_stream`` the whole stream is checked first
    (:func:`check_video_stream`)."""
    check_frame_rule(frame)
    if not os.path.exists(path):
        raise MediaError("missing_file", f"no file at {path}")
    if os.path.getsize(path) == 0:
        raise MediaError("empty_video", f"{path} is zero bytes")
    if check_stream:
        check_video_stream(path)
    import decord

    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        count = len(reader)
        if count == 0:
            raise MediaError("empty_video", f"{path} has no decodable frames")
        if frame == "keyframe":
            index = nearest_keyframe(reader.get_key_indices(), count)
        else:
            index = count // 2
        image = reader[index].asnumpy()
    except MediaError:
        raise
    except Exception as exc:  # decord raises DECORDError / RuntimeError on broken streams
        raise MediaError("corrupt_video", f"{path}: {type(exc).__name__}: {exc}"[:300]) from exc
    return image, index


def sample_frame_indices(count: int, n: int) -> list[int]:
    """Indices of ``min(n, count)`` frames: the stream split into that many equal intervals
    (bounds ``linspace(0, count, k + 1)`` truncated to integers), the middle of each."""
    k = min(n, count)
    bounds = np.linspace(0, count, k + 1).astype(int)
    return [int((start + end - 1) // 2) for start, end in zip(bounds[:-1], bounds[1:])]


def read_sampled_frames(path: str, n: int) -> tuple[list[np.ndarray], list[int]]:
    """``(RGB frames, their indices)`` of :func:`sample_frame_indices` for a video file."""
    if not os.path.exists(path):
        raise MediaError("missing_file", f"no file at {path}")
    import decord

    try:
        reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
        indices = sample_frame_indices(len(reader), n)
        if not indices:
            raise MediaError("empty_video", f"{path} has no decodable frames")
        frames = reader.get_batch(indices).asnumpy()
    except MediaError:
        raise
    except Exception as exc:  # decord raises DECORDError / RuntimeError on broken streams
        raise MediaError("corrupt_video", f"{path}: {type(exc).__name__}: {exc}"[:300]) from exc
    return list(frames), indices


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


def read_representative_frame(path: str, kind: str, frame: str = "middle",
                              check_stream: bool = True) -> tuple[np.ndarray, int | None]:
    """The video's frame chosen by ``frame`` (its stream checked first with ``check_stream``),
    or the image; the frame index is ``None`` for images."""
    if kind == "video":
        return read_video_frame(path, frame, check_stream)
    return read_image(path), None
