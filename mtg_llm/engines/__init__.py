"""Modification-text engines behind one interface (:class:`~covr_datagen.mtg_llm.engines.base.Engine`)."""

from __future__ import annotations

from covr_datagen.mtg_llm.engines.base import Engine, as_edit_pair
from covr_datagen.mtg_llm.engines.rules import RulesEngine

ENGINES = ("rules", "hf", "vllm")
#: ``mtg.mode``: one short text per pair (the paper), or also a dense text (``edit_dense``)
MTG_MODES = ("edit", "dense")


def make_engine(cfg) -> Engine:
    """The engine named by ``cfg.engine`` (a :class:`pipeline.config.MtgConfig`), not yet set up."""
    if cfg.engine == "rules":
        return RulesEngine(seed=cfg.seed)
    if cfg.engine == "hf":
        from covr_datagen.mtg_llm.engines.hf import HFEngine

        return HFEngine(cfg.base_model, cfg.adapter, top_k=cfg.top_k, temperature=cfg.temperature,
                        max_new_tokens=cfg.max_new_tokens, seed=cfg.seed,
                        device=cfg.device, model_cache=cfg.model_cache)
    if cfg.engine == "vllm":
        from covr_datagen.mtg_llm.engines.vllm import VLLMEngine

        return VLLMEngine(cfg.base_model, cfg.adapter, endpoint=cfg.endpoint, top_k=cfg.top_k,
                          temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens,
                          seed=cfg.seed, api_key_env=cfg.api_key_env,
                          model_cache=cfg.model_cache)
    raise ValueError(f"unknown mtg.engine {cfg.engine!r}; choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Engine", "RulesEngine", "as_edit_pair", "make_engine"]
