"""The unit of generation: a caption pair in one direction, with its differing words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EditPair:
    """Turn ``txt1`` into ``txt2``; ``word1`` (in txt1) is replaced by ``word2`` (in txt2).

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
    """Build an :class:`EditPair`, finding the differing words with the pipeline's word rule.

    Raises ``ValueError`` when the captions do not differ by exactly one word. The words are
    in normalised (case-folded) form, as in the ``caption_pairs`` table.
    """
    from covr_datagen.pipeline.text.normalize import one_word_difference, tokenize

    w1, w2 = tokenize(txt1), tokenize(txt2)
    pos = one_word_difference(w1, w2)
    if pos is None:
        raise ValueError(f"captions do not differ by exactly one word: {txt1!r} / {txt2!r}")
    return EditPair(txt1, txt2, w1[pos], w2[pos])


@dataclass(frozen=True)
class DensePair:
    """Describe every change from the query (``txt1``, ``description1``) to the target (``txt2``,
    ``description2``); a description is ``None`` when the corpus has none for that media item
    (the prompt then uses the caption alone)."""

    txt1: str
    txt2: str
    description1: str | None = None
    description2: str | None = None
