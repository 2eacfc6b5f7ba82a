"""The one interface every filter implements: look at an item, keep it or drop it with a reason.

A filter is a small object with a ``name`` and a ``check(item)`` method returning ``None`` (keep)
or a :class:`Drop` (reason + human-readable detail). Filters that are cheaper in batches (embedding
similarity) override :meth:`Filter.check_batch`. Heavy resources (models, dictionaries) are loaded in
:meth:`Filter.setup`, which a pipeline worker calls once, never at import time.

Items are plain ``dict`` rows (the schemas in :mod:`covr_datagen.schemas.tables` name their keys).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence


@dataclass(frozen=True)
class Drop:
    """Why an item was dropped.

    ``reason`` is a short stable key counted in the run manifest (e.g. ``"template"``);
    ``detail`` is free text for the rejects table (e.g. ``"matched 'background'"``).
    """

    reason: str
    detail: str = ""


class Filter:
    """Base class: subclasses set ``name`` and implement :meth:`check`."""

    #: stable identifier, used as the default drop reason and in config
    name: str = "filter"

    def setup(self) -> None:
        """Load heavy resources once per worker. Default: nothing to load."""

    def check(self, item: Mapping[str, Any]) -> Drop | None:
        """Return ``None`` to keep ``item`` or a :class:`Drop` saying why it goes."""
        raise NotImplementedError

    def check_batch(self, items: Sequence[Mapping[str, Any]]) -> list[Drop | None]:
        """Decide a batch at once; the default calls :meth:`check` on each item."""
        return [self.check(item) for item in items]

    def drop(self, detail: str = "", reason: str | None = None) -> Drop:
        """Build a :class:`Drop` whose reason defaults to this filter's name."""
        return Drop(reason or self.name, detail)

    def describe(self) -> dict[str, Any]:
        """Parameters of this filter, recorded in the run manifest."""
        params = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        return {"name": self.name, **params}


def changed_words(item: Mapping[str, Any], key: str) -> list[str]:
    """The words of a caption pair's ``word1``/``word2`` column: one word for one-word pairs,
    several (space-separated) or none (an insertion or deletion) for multi-word pairs."""
    return item[key].split(" ") if item[key] else []


def apply_filters(
    filters: Sequence[Filter], items: Sequence[Mapping[str, Any]]
) -> list[Drop | None]:
    """Run ``filters`` in order over ``items``; the first filter that drops an item decides.

    Each filter only sees the items that survived the filters before it, so expensive filters
    placed last (embedding similarity) see the fewest items.
    """
    decisions: list[Drop | None] = [None] * len(items)
    alive = list(range(len(items)))
    for flt in filters:
        if not alive:
            break
        results = flt.check_batch([items[i] for i in alive])
        if len(results) != len(alive):
            raise RuntimeError(
                f"filter {flt.name!r} returned {len(results)} decisions for {len(alive)} items"
            )
        still = []
        for idx, decision in zip(alive, results):
            if decision is None:
                still.append(idx)
            else:
                decisions[idx] = decision
        alive = still
    return decisions


def setup_all(filters: Iterable[Filter]) -> None:
    """Call :meth:`Filter.setup` on every filter."""
    for flt in filters:
        flt.setup()
