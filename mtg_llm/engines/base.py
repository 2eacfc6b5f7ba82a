"""The one interface of every modification-text engine."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from covr_datagen.mtg_llm.pairs import DensePair, EditPair

PairLike = EditPair | tuple[str, str] | tuple[str, str, str, str]


def as_edit_pair(pair: PairLike) -> EditPair:
    """Accept an :class:`EditPair` or a ``(txt1, txt2[, word1, word2])`` tuple."""
    if isinstance(pair, EditPair):
        return pair
    if isinstance(pair, (tuple, list)) and len(pair) in (2, 4):
        return EditPair(*pair)
    raise TypeError(f"expected EditPair or (txt1, txt2[, word1, word2]), got {pair!r}")


def derive_seed(seed: int, *parts: str) -> int:
    """A 63-bit seed from ``seed`` and strings: same inputs, same seed, on any worker."""
    blob = "\x1f".join([str(seed), *parts]).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(blob, digest_size=8).digest(), "big") >> 1


def attempt_seed(seed: int, attempt: int) -> int:
    """The seed of draw ``attempt`` (0: ``seed`` itself, so single draws keep their texts)."""
    return seed if attempt == 0 else derive_seed(seed, f"attempt {attempt}")


def path_fingerprint(path: str | None) -> str:
    """Short content hash of a local model/adapter folder's weight files, '' for ids/None.

    Recorded in triplets so that two adapters saved under the same path are told apart.
    """
    if not path or not Path(path).is_dir():
        return ""
    h = hashlib.blake2b(digest_size=6)
    for f in sorted(Path(path).glob("*")):
        if f.suffix in {".safetensors", ".bin", ".json"} and f.is_file():
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()


def model_identity(base_model: str | None, adapter: str | None) -> str:
    """``base``, or ``base+adapter@hash`` (hash of the adapter folder's weights and config)."""
    from covr_datagen.mtg_llm.models import resolve_adapter

    model = base_model or ""
    if adapter:
        fp = path_fingerprint(resolve_adapter(adapter))
        model += f"+{adapter}" + (f"@{fp}" if fp else "")
    return model


@dataclass(frozen=True)
class WrittenTexts:
    """What :meth:`Engine.write` returns: the texts, how many pairs were sampled again because
    their first text missed the new concept, and how many still miss it."""

    texts: list[str]
    resampled: int = 0
    missing_concept: int = 0


class Engine:
    """Turns caption pairs into modification texts.

    ``setup()`` loads heavy resources once (a Beam worker calls it in ``DoFn.setup``);
    ``generate(pairs)`` returns one text per pair, in order; ``generate_dense(pairs)`` one dense
    text per :class:`DensePair` (``mtg.mode: dense``, :mod:`covr_datagen.mtg_llm.dense_prompt`);
    ``identity()`` names the engine, the model/adapter and the seed, as recorded in every triplet.
    """

    name: str = "engine"

    def setup(self) -> None:
        """Load models; default: nothing to load."""

    def check_access(self) -> None:
        """Fail fast with a ``ValueError`` (on the launching machine, before a stage runs) when
        the engine cannot be used as configured; default: nothing to check."""

    #: whether :meth:`write` samples again for texts that miss the new concept (language models;
    #: the rules engine's templates are the paper's baseline as they are)
    resamples: bool = True

    def generate(self, pairs: Sequence[PairLike], attempt: int = 0) -> list[str]:
        """One text per pair; ``attempt`` > 0 draws another sample (another seed per pair)."""
        raise NotImplementedError

    def generate_dense(self, pairs: Sequence[DensePair]) -> list[str]:
        """One dense modification text per pair, in order, each seeded on its own (one draw)."""
        raise NotImplementedError

    def write(self, pairs: Sequence[PairLike], attempts: int = 1) -> WrittenTexts:
        """Texts for ``pairs``, sampling again (up to ``attempts`` draws in all) for each text
        that does not name the pair's new concept (:func:`covr_datagen.mtg_llm.concepts.names_new_concept`).
        A pair whose draws all miss keeps its first text."""
        from covr_datagen.mtg_llm.concepts import names_new_concept

        pairs = [as_edit_pair(p) for p in pairs]
        texts = list(self.generate(pairs))
        missing = [i for i, (p, t) in enumerate(zip(pairs, texts))
                   if not names_new_concept(t, p.txt1, p.txt2)]
        draws = attempts if self.resamples else 1
        resampled = len(missing) if draws > 1 else 0
        for attempt in range(1, draws):
            if not missing:
                break
            again = dict(zip(missing, self.generate([pairs[i] for i in missing], attempt=attempt)))
            hits = {i for i, text in again.items() if names_new_concept(text, pairs[i].txt1, pairs[i].txt2)}
            for i in hits:
                texts[i] = again[i]
            missing = [i for i in missing if i not in hits]
        return WrittenTexts(texts, resampled=resampled, missing_concept=len(missing))

    def identity(self) -> dict:
        raise NotImplementedError
