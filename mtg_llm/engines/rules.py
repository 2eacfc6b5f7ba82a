"""The paper's rule-based baseline (CoVR-2, Table A.3): one template chosen at random per pair.

The choice is seeded by ``(seed, txt1, txt2)``, so a pair gets the same text on every worker,
in every run and in any batch order. A multi-word pair that only inserts words (no ``word1``)
draws among the templates naming ``w2`` alone, one that only deletes words among those naming
``w1`` alone.

Dense mode has a deterministic baseline too (:func:`dense_baseline`): the two captions and the
target's description composed into one sentence. It names the change but describes nothing a
caption or description does not already say; it is a baseline for comparisons and tests, not a
substitute for a language model.
"""

from __future__ import annotations

import random
from typing import Sequence

from covr_datagen.mtg_llm.engines.base import (
    Engine,
    PairLike,
    as_edit_pair,
    attempt_seed,
    derive_seed,
)
from covr_datagen.mtg_llm.pairs import DensePair

#: template name -> format string over ``w1`` (word of the query caption), ``w2`` (target word)
TEMPLATES: dict[str, str] = {
    "remove": "Remove {w1}",
    "take_out_add": "Take out {w1} and add {w2}",
    "change_for": "Change {w1} for {w2}",
    "replace_with": "Replace {w1} with {w2}",
    "replace_by": "Replace {w1} by {w2}",
    "make_into": "Make the {w1} into {w2}",
    "add": "Add {w2}",
    "change_it_to": "Change it to {w2}",
}


def _sentence(text: str) -> str:
    """``text`` on one line, without a final full stop."""
    return " ".join(text.split()).rstrip(".")


def dense_baseline(pair: DensePair) -> str:
    """``Turn <query caption> into <target caption>`` and, when the target has a description,
    ``so that it shows: <target description>``."""
    text = f"Turn {_sentence(pair.txt1)} into {_sentence(pair.txt2)}"
    if pair.description2:
        text += f" so that it shows: {_sentence(pair.description2)}"
    return text + "."


def _fits(template: str, word1: str, word2: str) -> bool:
    """Whether ``template`` names only words the pair has."""
    return ("{w1}" not in template or bool(word1)) and ("{w2}" not in template or bool(word2))


class RulesEngine(Engine):
    """Template baseline; ``template`` forces one template (tests, ablations)."""

    name = "rules"
    resamples = False

    def __init__(self, seed: int = 0, template: str | None = None):
        if template is not None and template not in TEMPLATES:
            raise ValueError(f"unknown rules template {template!r}; known: {', '.join(TEMPLATES)}")
        self.seed = seed
        self.template = template

    def generate(self, pairs: Sequence[PairLike], attempt: int = 0) -> list[str]:
        out = []
        names = list(TEMPLATES)
        for raw in pairs:
            pair = as_edit_pair(raw)
            usable = [n for n in names if _fits(TEMPLATES[n], pair.word1, pair.word2)]
            if not usable or (self.template and self.template not in usable):
                raise ValueError(f"the rules engine needs the differing words; got {pair!r}")
            name = self.template or random.Random(
                derive_seed(attempt_seed(self.seed, attempt), pair.txt1, pair.txt2)).choice(usable)
            out.append(TEMPLATES[name].format(w1=pair.word1, w2=pair.word2))
        return out

    def generate_dense(self, pairs: Sequence[DensePair]) -> list[str]:
        return [dense_baseline(p) for p in pairs]

    def identity(self) -> dict:
        model = "rules" if self.template is None else f"rules:{self.template}"
        return {"engine": self.name, "model": model, "seed": self.seed}
