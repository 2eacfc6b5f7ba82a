"""MTG-LLM training data: loaders, validation and de-duplication.

Two JSONL formats are read, detected per line by their keys:

- InstructPix2Pix human-written prompts: ``{"input", "edit", "output"}`` -> caption1, edit, caption2;
- ours: ``{"caption1", "caption2", "edit"}``.

The project's own seed set (``mtg_llm/data/seed_edits.jsonl``) is always available and is merged
with the files a user passes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

SEED_PATH = Path(__file__).parent / "data" / "seed_edits.jsonl"
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


def load_jsonl(path: str | Path) -> list[MtgExample]:
    """Read one JSONL file in either format. Raises ``ValueError`` naming every bad line."""
    path = Path(path)
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
            out.append(MtgExample(c1, c2, e, str(path)))
    if errors:
        shown = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ValueError(f"{len(errors)} invalid training example(s):\n  {shown}{more}")
    if not out:
        raise ValueError(f"{path}: no training examples")
    return out


def load_seed_examples() -> list[MtgExample]:
    """The project's own seed set (authored for this project)."""
    return load_jsonl(SEED_PATH)


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


def load_training_set(files: Sequence[str | Path] = (), include_seed: bool = True
                      ) -> tuple[list[MtgExample], dict]:
    """Seed set (optional) + ``files``, validated and de-duplicated; also returns stats."""
    examples: list[MtgExample] = []
    per_source: dict[str, int] = {}
    sources = ([SEED_PATH] if include_seed else []) + [Path(f) for f in files]
    for src in sources:
        loaded = load_jsonl(src)
        per_source[str(src)] = len(loaded)
        examples.extend(loaded)
    if not examples:
        raise ValueError("no training data: pass --data FILE or keep the seed set")
    kept, dupes = deduplicate(examples)
    return kept, {"sources": per_source, "loaded": len(examples), "duplicates": dupes,
                  "examples": len(kept)}
