"""Loading models in Beam workers: the one way every stage does it.

A model is described by a *spec*: a small, picklable object parsed once from the config on the
launching machine (:class:`covr_datagen.pipeline.media.encoders.MediaEncoderSpec`,
:class:`pipeline.text.encoders.TextEncoderSpec`, :class:`mtg_llm.engines.EngineSpec`). A spec
has an ``identity`` (the name outputs and cache keys record) and a ``load()`` that builds the
model and loads its weights. A DoFn wraps its spec in a :class:`SharedModel` when it is
constructed and calls :meth:`SharedModel.acquire` in ``setup``: the model is loaded once per
worker process and shared by the process's threads (Beam's ``apache_beam.utils.shared``).

Why not RunInference: the MTG engine must see the caption pairs grouped and batched as the
stage decides (its texts are seeded per batch) and route a pair it cannot handle to the rejects;
one DoFn per model keeps batching and failures in the stage's hands for all three models.
"""

from __future__ import annotations

from typing import Any, Protocol

from apache_beam.utils.shared import Shared


class ModelSpec(Protocol):
    """What :class:`SharedModel` needs of a spec."""

    @property
    def identity(self) -> str: ...

    def load(self) -> Any: ...


class SharedModel:
    """A spec's model, loaded once per worker process (create in ``DoFn.__init__``, call
    :meth:`acquire` in ``DoFn.setup``). Models must be thread-safe or lock inside."""

    def __init__(self, spec: ModelSpec):
        self.spec = spec
        self._shared = Shared()

    def acquire(self) -> Any:
        """The loaded model (loaded now if this process has none for an equal spec)."""
        spec = self.spec
        return self._shared.acquire(spec.load, tag=repr(spec))
