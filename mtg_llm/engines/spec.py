"""The MTG engine as a model spec (see :mod:`covr_datagen.pipeline.core.models`): an ``mtg`` config section
taken once, that names its engine and model and loads it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from covr_datagen.mtg_llm.engines.base import Engine


@dataclass(frozen=True)
class EngineSpec:
    """The engine of a :class:`covr_datagen.pipeline.config.MtgConfig` (its repr names every setting)."""

    config: Any

    def build(self) -> Engine:
        """The engine, not yet set up (cheap: no model is loaded)."""
        from covr_datagen.mtg_llm.engines import make_engine

        return make_engine(self.config)

    @property
    def identity(self) -> str:
        """``engine:model`` as recorded in every triplet."""
        ident = self.build().identity()
        return f"{ident['engine']}:{ident['model']}"

    def load(self) -> Engine:
        """The engine with its model loaded."""
        engine = self.build()
        engine.setup()
        return engine
