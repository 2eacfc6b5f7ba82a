"""MTG-LLM training data: loaders, validation and de-duplication.

Two JSONL formats are read, detected per line by their keys:

- InstructPix2Pix human-written prompts: ``{"input", "edit", "output"}`` -> caption1, edit, caption2;
- ours: ``{"caption1", "caption2", "edit"}``.

The project's own training data (:data:`BUILTIN_DATA`, files under ``mtg_llm/data/``, written for
this project) is merged with the files a user passes unless training is told not to.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

DATA_DIR = Path(__file__).parent / "data"
#: the shipped training files, in merge order (the first copy of a duplicate wins)
BUILTIN_DATA: tuple[Path, ...] = (DATA_DIR / "mtg_edits.jsonl",)
MAX_FIELD_CHARS = 500
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class MtgExample:
    """One training example: caption1 --edit--> caption2, and the file it came from."""

    caption1: str
    caption2: str
    edit: str
    source: str

    def key(self) -> tuple[str, str, str]:
        """De-duplication key: case- and whitespace-insensitive."""
        return tuple(_SPACES.sub(" ", s).strip().casefold()
                     for s in (self.caption1, self.caption2, self.edit))  # type: ignore[return-value]

    def to_row(self) -> dict:
        """A row of ``schemas.MTG_EXAMPLES``."""
        return {"caption1": self.caption1, "caption2": self.caption2, "edit": self.edit,
                "source": self.source}


def _fields(obj: dict) -> tuple[str, str, str] | None:
    if {"caption1", "caption2", "edit"} <= obj.keys():
        return obj["caption1"], obj["caption2"], obj["edit"]
    if {"input", "edit", "output"} <= obj.keys():
        return obj["input"], obj["output"], obj["edit"]
    return None


def _problem(values: Sequence[object]) -> str | None:
    for name, v in zip(("caption1", "caption2", "edit"), values):
        if not isinstance(v, str) or not v.strip():
            return f"{name} is missing or empty"
        if "\n" in v.strip():
            return f"{name} spans several lines"
        if len(v) > MAX_FIELD_CHARS:
            return f"{name} is longer than {MAX_FIELD_CHARS} characters"
    if _SPACES.sub(" ", values[0]).strip().casefold() == _SPACES.sub(" ", values[1]).strip().casefold():
        return "caption1 and caption2 are identical"
    return None


def load_jsonl(path: str | Path, source: str | None = None) -> list[MtgExample]:
    """Read one JSONL file in either format; ``source`` (default: the path) labels its examples.
    Raises ``ValueError`` naming every bad line."""
    path = Path(path)
    source = source or str(path)
    out: list[MtgExample] = []
    errors: list[str] = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{path}:{lineno}: not JSON ({exc.msg})")
                continue
            values = _fields(obj) if isinstance(obj, dict) else None
            if values is None:
                errors.append(f"{path}:{lineno}: expected keys caption1/caption2/edit "
                              "or input/edit/output")
                continue
            problem = _problem(values)
            if problem:
                errors.append(f"{path}:{lineno}: {problem}")
                continue
            c1, c2, e = (_SPACES.sub(" ", v).strip() for v in values)
            out.append(MtgExample(c1, c2, e, source))
    if errors:
        shown = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ValueError(f"{len(errors)} invalid training example(s):\n  {shown}{more}")
    if not out:
        raise ValueError(f"{path}: no training examples")
    return out


def builtin_label(path: Path) -> str:
    """How a shipped file is named in reports (``builtin:<file name>``)."""
    return f"builtin:{path.name}"


def builtin_data_files() -> list[Path]:
    """The shipped training files that are present."""
    return [p for p in BUILTIN_DATA if p.is_file()]


def load_builtin_examples() -> list[MtgExample]:
    """The project's own training data (authored for this project), de-duplicated."""
    return load_training_set()[0]


def deduplicate(examples: Iterable[MtgExample]) -> tuple[list[MtgExample], int]:
    """Keep the first of each (caption1, caption2, edit) ignoring case/spacing; return
    ``(kept, number_of_duplicates)``."""
    seen: set[tuple[str, str, str]] = set()
    kept: list[MtgExample] = []
    dupes = 0
    for ex in examples:
        k = ex.key()
        if k in seen:
            dupes += 1
            continue
        seen.add(k)
        kept.append(ex)
    return kept, dupes


def load_training_set(files: Sequence[str | Path] = (), include_builtin: bool = True
                      ) -> tuple[list[MtgExample], dict]:
    """Built-in data (optional) + ``files``, validated and de-duplicated; also returns stats."""
    examples: list[MtgExample] = []
    per_source: dict[str, int] = {}
    sources = [(p, builtin_label(p)) for p in (builtin_data_files() if include_builtin else [])]
    sources += [(Path(f), str(f)) for f in files]
    for src, label in sources:
        loaded = load_jsonl(src, label)
        per_source[label] = len(loaded)
        examples.extend(loaded)
    if not examples:
        raise ValueError("no training data: pass --data FILE or keep the built-in data")
    kept, dupes = deduplicate(examples)
    return kept, {"sources": per_source, "loaded": len(examples), "duplicates": dupes,
                  "examples": len(kept)}
