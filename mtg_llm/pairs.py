"""The unit of generation: a caption pair in one direction, with its differing words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EditPair:
    """Turn ``txt1`` into ``txt2``; ``word1`` (in txt1) is replaced by ``word2`` (in txt2).

    Multi-word pairs hold the changed words of each side joined by spaces (``word1`` empty for a
    pure insertion, ``word2`` empty for a pure deletion), as the ``caption_pairs`` table does.
    The words are needed by the rules engine; LLM engines only use the captions.
    """

    txt1: str
    txt2: str
    word1: str = ""
    word2: str = ""

    def reversed(self) -> "EditPair":
        """The same pair in the other direction (txt2 -> txt1)."""
        return EditPair(self.txt2, self.txt1, self.word2, self.word1)


def pair_from_captions(txt1: str, txt2: str) -> EditPair:
    """Build an :class:`EditPair`, finding the differing words with the pipeline's word rule:
    one word, or up to :data:`covr_datagen.pipeline.mining.MAX_WORD_DIFF` words of equal-length
    captions or within that token edit distance.

    Raises ``ValueError`` when the captions are further apart. The words are in normalised
    (case-folded) form, as in the ``caption_pairs`` table.
    """
    from covr_datagen.pipeline.mining import MAX_WORD_DIFF
    from covr_datagen.pipeline.text.normalize import tokenize, word_changes

    changes = word_changes(tokenize(txt1), tokenize(txt2), MAX_WORD_DIFF, allow_length_change=True)
    if changes is None:
        raise ValueError(f"captions do not differ by exactly one word, nor by up to {MAX_WORD_DIFF} "
                         f"words with one in common: {txt1!r} / {txt2!r}")
    return EditPair(txt1, txt2, " ".join(changes.removed), " ".join(changes.added))


@dataclass(frozen=True)
class DensePair:
    """Describe every change from the query (``txt1``, ``description1``) to the target (``txt2``,
    ``description2``); a description is ``None`` when the corpus has none for that media item
    (the prompt then uses the caption alone)."""

    txt1: str
    txt2: str
    description1: str | None = None
    description2: str | None = None
