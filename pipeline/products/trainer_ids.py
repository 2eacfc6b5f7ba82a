"""Media ids the CoVR-BLIP-2 trainer can use, and the layout of media files that goes with them.

The trainer (``src/data/webvid_covr.py`` / ``cc_coir.py`` of github.com/lucas-ventura/CoVR) finds
media by globbing ``{dir}/*/*.mp4`` (videos) or ``{dir}/*/*.jpg|png`` (training images) and names
each file ``{parent folder stem}/{file stem}``; an annotation id must equal that name. For videos it
then turns every id into an integer with ``int(re.sub(r"\\D", "0", id))`` (every non-digit becomes
``0``), asserts those integers are as many as the distinct ids, and its evaluators put them in a
``torch.long`` tensor, so they must fit in a signed 64-bit integer. Image ids are numbered by
sorted position instead, so any ``{folder}/{stem}`` works for them.

Two ways to get such ids (``export --media-ids``):

* ``keep``: the run's own ids, validated with the rules above (a WebVid ``006001_006050/21179416``
  overflows; cc3m row numbers have no folder);
* ``renumber``: media number ``n`` (position in the sorted distinct ids) becomes
  ``{n // 1000}/{n:0Wd}`` with ``W`` the digits of the largest number. The fixed-width stem makes
  the trainer's integer unique, and it stays below 10^18 for up to 10^8 media.
  :func:`link_media` lays the files out under those names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterable, Mapping

#: ``numpy.iinfo(numpy.int64).max``: the trainer's evaluators hold ids in ``torch.long``
INT64_MAX = 2**63 - 1
#: files per folder when renumbering
FOLDER_SIZE = 1000
#: strings ``pandas.read_csv`` turns into NaN by default (its ``na_values``), plus the empty field
PANDAS_NA_STRINGS = frozenset({
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN",
    "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null",
})
ID_MODES = ("keep", "renumber")


def trainer_int(media_id: str) -> int:
    """The trainer's ``id2int``: every non-digit becomes ``0``, then ``int``."""
    return int(re.sub(r"\D", "0", media_id))


def id_problem(media_id: str, kind: str) -> str | None:
    """Why the trainer cannot find or number ``media_id`` on its own, or ``None`` when it can."""
    if media_id in PANDAS_NA_STRINGS:
        return "pandas reads it as NaN"
    folder, sep, stem = media_id.partition("/")
    if not sep or "/" in stem:
        return "not {folder}/{stem}: the trainer globs exactly one folder level"
    if not folder or not stem or folder.startswith(".") or stem.startswith("."):
        return "empty or hidden folder or stem"
    if "." in folder:
        return "folder has a '.': the trainer names a file by its folder's stem"
    if kind == "video" and trainer_int(media_id) > INT64_MAX:
        return "its trainer integer overflows int64"
    return None


def id_problems(media_ids: Iterable[str], kind: str) -> dict[str, str]:
    """``{media_id: reason}`` for every id the trainer cannot use, collisions of the trainer's
    integers (videos) included."""
    problems: dict[str, str] = {}
    first_with: dict[int, str] = {}
    for media_id in sorted(set(media_ids)):
        reason = id_problem(media_id, kind)
        if reason:
            problems[media_id] = reason
        elif kind == "video":
            number = trainer_int(media_id)
            other = first_with.setdefault(number, media_id)
            if other != media_id:
                problems[media_id] = f"same trainer integer {number} as {other}"
    return problems


def renumbered_ids(media_ids: Iterable[str]) -> dict[str, str]:
    """``{media_id: "{n // 1000}/{n:0Wd}"}`` over the sorted distinct ids (see the module doc)."""
    distinct = sorted(set(media_ids))
    width = len(str(max(len(distinct) - 1, 0)))
    return {m: f"{n // FOLDER_SIZE}/{n:0{width}d}" for n, m in enumerate(distinct)}


def link_suffix(source: str, kind: str) -> str:
    """File extension of the link the trainer globs: ``.mp4`` for videos, ``.png`` or ``.jpg``
    for images (decoders read the content, not the name)."""
    if kind == "video":
        return ".mp4"
    return ".png" if source.lower().endswith(".png") else ".jpg"


def link_media(sources: Mapping[str, str], dest: str | Path, kind: str) -> dict:
    """Symlink ``dest/{trainer_id}{suffix}`` -> source path for each ``{trainer_id: source}``.

    Existing symlinks are replaced; any other file in the way (not written by covr-datagen) is
    never deleted: it is a ``ValueError``. Returns ``{"linked": n, "missing": [trainer ids whose source file
    does not exist]}`` (those get no link, so the trainer reports them missing rather than failing
    on a dangling link)."""
    dest = Path(dest)
    linked, missing = 0, []
    for trainer_id, source in sorted(sources.items()):
        if not source or not os.path.exists(source):
            missing.append(trainer_id)
            continue
        link = dest / f"{trainer_id}{link_suffix(source, kind)}"
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            raise ValueError(f"{link} exists and is not a media link covr-datagen made; move it "
                             "away or choose another --link-media folder")
        link.symlink_to(os.path.abspath(source))
        linked += 1
    return {"linked": linked, "missing": missing}
